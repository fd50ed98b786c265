"""The oracles of the simulator fuzz target: what its output must look like.

:func:`client_requests` reads a case's bytes the way a well-behaved server
would, so :func:`parse_http` knows what each response answers; it reads the
simulator's output as HTTP/1.1 responses with an h11 client. After a 101,
:func:`parse_frames` reads the server frames, and :func:`check_records` holds
the simulator's records to the bytes that went out.
"""

from __future__ import annotations

import itertools
import json
from typing import Final

import h11

from fuzz.frames import OP_CLOSE, OP_PONG, OP_TEXT
from fuzz.sim_traffic import GARBAGE, Case
from qqproto.testing import QQSimulator

_GATEWAY_PATHS: Final = (b"/websocket", b"/websocket/")


def client_requests(case: Case) -> list[tuple[bytes, bool]]:
    """(method, asks for the gateway) of the requests in the client's bytes, in
    order, read by an h11 server of our own that answers each with an empty 200."""
    server = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
    server.receive_data(case.data)
    if case.eof:
        server.receive_data(b"")
    found: list[tuple[bytes, bool]] = []
    while True:
        try:
            event = server.next_event()
        except h11.RemoteProtocolError:
            return found
        if isinstance(event, h11.Request):
            found.append((event.method, event.target.split(b"?", 1)[0] in _GATEWAY_PATHS))
        elif isinstance(event, h11.EndOfMessage):
            try:
                server.send(h11.Response(status_code=200, headers=[(b"Content-Length", b"0")]))
                server.send(h11.EndOfMessage())
            except h11.LocalProtocolError:
                return found
            if server.our_state is not h11.DONE or server.their_state is not h11.DONE:
                return found
            server.start_next_cycle()
        elif not isinstance(event, h11.Data):
            return found  # NEED_DATA, PAUSED, ConnectionClosed


def parse_http(
    out: bytes, requests: list[tuple[bytes, bool]]
) -> tuple[list[int], bytes | None, bool]:
    """The statuses of the HTTP responses in ``out``, the bytes after a 101
    (``None``: no 101), and whether the last response closes the connection.
    Each response is read by an h11 client that sent the matching request."""
    client = h11.Connection(h11.CLIENT)
    if out:  # (b"" would be EOF)
        client.receive_data(out)
    statuses: list[int] = []
    for k in itertools.count():
        method, gateway = requests[k] if k < len(requests) else (b"GET", False)
        headers = [(b"Host", b"sim")]
        if gateway:
            headers += [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")]
        client.send(h11.Request(method=method, target=b"/", headers=headers))
        client.send(h11.EndOfMessage())
        while True:
            try:
                event = client.next_event()
            except h11.RemoteProtocolError as exc:
                raise AssertionError(f"response {k} does not parse: {exc!r}\n{out!r}") from exc
            if event is h11.NEED_DATA:
                rest = client.trailing_data[0]
                assert rest == b"", f"response {k} is cut short: {rest[:200]!r}"
                return statuses, None, False
            if isinstance(event, h11.InformationalResponse):
                assert event.status_code == 101, f"a {event.status_code} response"
                assert gateway, "a 101 to a request that did not ask for the gateway"
                assert client.their_state is h11.SWITCHED_PROTOCOL
                statuses.append(101)
                return statuses, client.trailing_data[0], False
            if isinstance(event, h11.Response):
                statuses.append(event.status_code)
                _check_response(event, method)
            elif isinstance(event, h11.EndOfMessage):
                break
        if client.their_state is h11.MUST_CLOSE:
            rest = client.trailing_data[0]
            assert rest == b"", f"bytes after a response that closes: {rest[:200]!r}"
            return statuses, None, True
        client.start_next_cycle()
    raise AssertionError("unreachable")  # pragma: no cover


def _check_response(response: h11.Response, method: bytes) -> None:
    assert response.http_version == b"1.1", response
    assert 200 <= response.status_code < 600, response
    names = [name for name, _ in response.headers]
    assert names.count(b"content-length") <= 1, response
    if response.status_code != 204:
        assert b"content-length" in names, f"no Content-Length: {response}"


def parse_frames(data: bytes) -> list[tuple[int, object]]:
    """The server frames in ``data``: (opcode, the JSON object | the close code | payload).

    Server frames are unmasked, final, without RSV bits, with the shortest
    length encoding; text is a JSON object with an integer op; a close frame
    comes last."""
    frames: list[tuple[int, object]] = []
    k = 0
    while k < len(data):
        assert not frames or frames[-1][0] != OP_CLOSE, f"a frame after the close: {data[k:]!r}"
        assert len(data) - k >= 2, f"a cut frame head: {data[k:]!r}"
        head, size = data[k], data[k + 1]
        assert head & 0xF0 == 0x80, f"not FIN, or RSV bits: {head:#x}"
        assert not size & 0x80, "a masked server frame"
        k += 2
        if size == 126:
            size, k = int.from_bytes(data[k : k + 2]), k + 2
            assert size >= 126, "a padded length"
        elif size == 127:
            size, k = int.from_bytes(data[k : k + 8]), k + 8
            assert size >= 1 << 16, "a padded length"
        payload, k = data[k : k + size], k + size
        assert len(payload) == size, f"a cut frame: {len(payload)} of {size} bytes"
        opcode = head & 0x0F
        if opcode == OP_TEXT and payload == GARBAGE.encode():
            frames.append((opcode, None))
        elif opcode == OP_TEXT:
            value = json.loads(payload.decode())
            assert isinstance(value, dict) and type(value.get("op")) is int, value
            frames.append((opcode, value))
        elif opcode == OP_CLOSE:
            assert len(payload) != 1 and size <= 125, f"a bad close payload: {payload!r}"
            code = int.from_bytes(payload[:2]) if payload else None
            assert code is None or 1000 <= code < 5000, f"close code {code}"
            payload[2:].decode()
            frames.append((opcode, code))
        else:
            assert opcode == OP_PONG and size <= 125, f"a server frame with opcode {opcode}"
            frames.append((opcode, payload))
    return frames


def check_records(sim: QQSimulator, out: bytes, frames: list[tuple[int, object]]) -> None:
    ids = [s.id for s in sim.sent]
    assert all(type(i) is str and i for i in ids), ids
    assert len(set(ids)) == len(ids), f"an id given twice: {ids}"
    for i in ids:
        assert b'"id":"%s"' % i.encode() in out, f"sent {i}, the id never went out"
    for r in sim.rejected:
        assert 400 <= r.status < 600 and type(r.code) is int and r.message, r
    # A refusal carries a trace id; nothing else does.
    assert out.count(b"\r\nX-Tps-trace-ID: ") == len(sim.rejected), sim.rejected
    payloads = [f[1] for f in frames if f[0] == OP_TEXT]
    ops = [p.get("op") for p in payloads if isinstance(p, dict)]
    if frames:
        assert ops[:1] == [10], f"the gateway did not start with Hello: {payloads[:1]}"
    kinds = [p.get("t") for p in payloads if isinstance(p, dict) and p.get("op") == 0]
    ready = [i for i in sim.identifies if i.outcome == "READY"]
    assert all(i.session_id for i in ready), sim.identifies
    assert kinds.count("READY") == len(ready), (kinds, sim.identifies)
    assert kinds.count("RESUMED") == sum(r.outcome == "RESUMED" for r in sim.resumes)
    assert ops.count(11) == len(sim.heartbeats) - len(sim.unacked), (ops, sim.heartbeats)
    for d in sim.delivered:
        assert d.id is not None and d.id.encode() in out, d
    seqs = [p["s"] for p in payloads if isinstance(p, dict) and type(p.get("s")) is int]
    assert seqs == sorted(seqs), f"seq went backwards: {seqs}"
