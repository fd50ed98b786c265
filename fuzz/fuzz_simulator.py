"""The fuzz target for the simulator's parsers: ``SimConnection.receive_data``.

Run it by hand::

    python fuzz/fuzz_simulator.py [libFuzzer options] [corpus dirs]

With atheris importable this is a coverage-guided libFuzzer run over raw
inputs (:func:`decode_input`), seeded with :func:`seed_inputs` when no corpus
directory is given. Without atheris (or with ``FUZZ_ENGINE=hypothesis``) it
runs two Hypothesis targets, raw bytes and structured client traffic
(:func:`cases`), each for ``FUZZ_EXAMPLES`` examples (default 20000).

One case is what a client sends on one connection to a fresh
:class:`~qqproto.testing.QQSimulator` (which has issued :data:`TOKEN` and
has one group message, :data:`MSG_ID`, waiting for a session): HTTP
requests, maybe a WebSocket upgrade and masked client frames, cut into
pieces, maybe followed by EOF, with scripted simulator moves (a pushed
message, a drop, a close code, a timer, the socket going away) between the
pieces. :func:`run_case` holds the simulator to its contract:

- nothing the client sends makes it raise (any exception is a crash);
- ``data_to_send()`` returns bytes; once ``closed`` is true it stays true,
  and nothing comes out after the output pending at that moment;
- what comes out is well formed: HTTP/1.1 responses that h11 parses as a
  client (nothing truncated, nothing after a closing one), then, after a
  101, unmasked, unfragmented server frames carrying JSON objects, at most
  one close frame, and nothing after it;
- the records agree with the bytes: every accepted send has a fresh,
  non-empty id that went out, every refusal went out with its trace id,
  every heartbeat got its ACK, every READY and RESUMED recorded went out;
- without scripted moves, the outcome (the bytes, ``closed`` and the
  records) does not depend on where the bytes were cut.

Known and accepted: a request head over h11's 64 KiB incomplete-event limit
is refused (431) when it arrives in pieces and read when it arrives whole;
the cases here keep heads well below it.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

if __name__ == "__main__":  # run as a script: import the fuzz package from the repo root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import h11
from hypothesis import strategies as st

from fuzz import engine
from fuzz.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, frame
from qqproto.testing import Heartbeat, QQSimulator, SimConnection

T0: Final = 10.0
#: The text of the scripted garbage frame (the one text frame that is not JSON).
GARBAGE: Final = "{not json"
MASK: Final = b"\x37\xfa\x21\x3d"


def fresh() -> tuple[QQSimulator, str, str]:
    """A new simulator with a token issued and a group message pending:
    (the simulator, the token, the message's id). The same every time."""
    sim = QQSimulator()
    token, _ = sim.issue_token(T0)
    msg_id = str(sim.group_at_message("hello", T0)["id"])
    return sim, token, msg_id


_SIM, TOKEN, MSG_ID = fresh()
GROUP: Final = _SIM.group_openid
APP_ID: Final = _SIM.config.app_id
SECRET: Final = _SIM.config.secret
DEADLINE: Final = _SIM.config.heartbeat_deadline

#: Scripted simulator moves, by name; a case lists them with where they go.
ACTIONS: Final[dict[str, Callable[[QQSimulator, SimConnection, float], object]]] = {
    "push": lambda sim, conn, now: sim.group_at_message("pushed", now),
    "drop": lambda sim, conn, now: sim.drop(now),
    "close 4009": lambda sim, conn, now: sim.close(4009, now, "bye"),
    "close 4914": lambda sim, conn, now: sim.close(4914, now),
    "reconnect": lambda sim, conn, now: sim.reconnect(now),
    "invalid false": lambda sim, conn, now: sim.invalid_session(False, now),
    "garbage": lambda sim, conn, now: sim.send_garbage(GARBAGE, now),
    "ask heartbeat": lambda sim, conn, now: sim.ask_heartbeat(now),
    "timer": lambda sim, conn, now: sim.handle_timer(now),
    "lost": lambda sim, conn, now: conn.connection_lost(now),
}
_ACTION_NAMES: Final = tuple(ACTIONS)


# -- client bytes ---------------------------------------------------------------------------


def request(
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    auth: str | None = TOKEN,
    headers: tuple[str, ...] = (),
    version: str = "1.1",
) -> bytes:
    """One HTTP request, framed by Content-Length when it has a body."""
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
    if auth is not None:
        lines.append(f"Authorization: QQBot {auth}")
    lines += headers
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def text(payload: Any, *, mask: bytes = MASK) -> bytes:
    """A masked client text frame carrying ``payload`` (JSON unless bytes)."""
    return frame(OP_TEXT, payload if isinstance(payload, bytes) else _json(payload), mask=mask)


def close(code: int | None, reason: bytes = b"") -> bytes:
    """A masked client close frame (``None``: an empty body)."""
    body = b"" if code is None else code.to_bytes(2, "big") + reason
    return frame(OP_CLOSE, body, mask=MASK)


TOKEN_BODY: Final = _json({"appId": APP_ID, "clientSecret": SECRET})
TOKEN_REQUEST: Final = request("POST", "/app/getAppAccessToken", TOKEN_BODY, auth=None)
GATEWAY_BOT: Final = request("GET", "/gateway/bot")
REPLY: Final = _json({"content": "hi", "msg_type": 0, "msg_id": MSG_ID, "msg_seq": 1})
GROUP_REPLY: Final = request("POST", f"/v2/groups/{GROUP}/messages", REPLY)
UPGRADE: Final = request(
    "GET",
    "/websocket",
    auth=None,
    headers=(
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ),
)
IDENTIFY: Final[dict[str, Any]] = {
    "op": 2,
    "d": {"token": f"QQBot {TOKEN}", "intents": 1 << 25, "shard": [0, 1]},
}
HEARTBEAT: Final[dict[str, Any]] = {"op": 1, "d": None}

#: What a raw input's stream follows (picked by two flag bits).
OPENINGS: Final = (
    b"",
    UPGRADE,
    UPGRADE + text(IDENTIFY),
    request("POST", f"/v2/groups/{GROUP}/messages")[:-2],  # the head, open for more headers
)


# -- the case, and running it ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """A client's bytes (``OPENINGS[opening] + stream``), where they are cut,
    whether EOF follows, and scripted moves: (after which piece, name)."""

    stream: bytes
    cuts: tuple[int, ...] = ()
    eof: bool = True
    actions: tuple[tuple[int, str], ...] = ()
    opening: int = 0

    @property
    def data(self) -> bytes:
        return OPENINGS[self.opening] + self.stream


class Records(NamedTuple):
    """The simulator's records after a case, as plain values."""

    sent: tuple[tuple[object, ...], ...]
    rejected: tuple[tuple[str, str, int, int], ...]
    identifies: tuple[str, ...]
    resumes: tuple[str, ...]
    heartbeats: tuple[Heartbeat, ...]
    tokens: tuple[tuple[float, bool], ...]
    delivered: tuple[tuple[int, str, str | None], ...]
    lost: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a case came to: every byte out, ``closed``, and a digest of the records."""

    out: bytes
    closed: bool
    records: Records
    statuses: tuple[int, ...]
    upgraded: bool
    close_code: int | None


def _pieces(data: bytes, cuts: tuple[int, ...]) -> list[bytes]:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _records(sim: QQSimulator) -> Records:
    return Records(
        tuple((s.scene.value, s.target, s.id, s.msg_id, s.msg_seq) for s in sim.sent),
        tuple((r.method, r.path, r.status, r.code) for r in sim.rejected),
        tuple(i.outcome for i in sim.identifies),
        tuple(r.outcome for r in sim.resumes),
        tuple(sim.heartbeats),
        tuple(sim.token_requests),
        tuple((d.seq, d.t, d.id) for d in sim.delivered),
        len(sim.lost),
    )


def _feed(case: Case, pieces: list[bytes], actions: tuple[tuple[int, str], ...]) -> Outcome:
    sim, token, _ = fresh()
    assert token == TOKEN
    conn = sim.accept(T0)
    now = T0
    out = bytearray()
    was_closed = False

    def drain(step: str) -> None:
        nonlocal was_closed
        data = conn.data_to_send()
        assert type(data) is bytes, f"data_to_send() gave {type(data).__name__} after {step}"
        if was_closed:
            assert data == b"", f"{len(data)} bytes out after closed, after {step}"
        out.extend(data)
        if was_closed:
            assert conn.closed, f"closed went back to False after {step}"
        was_closed = conn.closed

    chunks = [*pieces, b""] if case.eof else pieces
    steps: list[bytes | str] = []
    for k, chunk in enumerate(chunks):
        steps += [name for at, name in actions if at == k]
        steps.append(chunk)
    steps += [name for at, name in actions if at >= len(chunks)]
    for item in steps:
        if isinstance(item, str):
            if item == "timer":
                now += DEADLINE + 1
            ACTIONS[item](sim, conn, now)
            drain(item)
        else:
            conn.receive_data(item, now)
            drain("EOF" if not item else f"{len(item)} bytes")
    statuses, ws, closing = _parse_http(bytes(out), _requests(case))
    if closing:
        assert conn.closed, "a response said Connection: close, the connection is not closed"
    frames = _parse_frames(ws) if ws is not None else []
    _check_records(sim, bytes(out), frames)
    codes = [f[1] for f in frames if f[0] == OP_CLOSE]
    return Outcome(
        bytes(out),
        conn.closed,
        _records(sim),
        tuple(statuses),
        ws is not None,
        codes[0] if codes and isinstance(codes[0], int) else None,
    )


def run_case(case: Case) -> Outcome:
    """Run ``case`` cut as it says; without scripted moves, also whole, and
    check the two agree."""
    data = case.data
    outcome = _feed(case, _pieces(data, case.cuts), case.actions)
    if not case.actions:
        whole = _feed(case, [data] if data else [], ())
        assert outcome == whole, f"cutting changed the outcome:\n{outcome}\nvs\n{whole}"
    return outcome


# -- the oracles -------------------------------------------------------------------------------

_GATEWAY_PATHS: Final = (b"/websocket", b"/websocket/")


def _requests(case: Case) -> list[tuple[bytes, bool]]:
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


def _parse_http(
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


def _parse_frames(data: bytes) -> list[tuple[int, object]]:
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


def _check_records(sim: QQSimulator, out: bytes, frames: list[tuple[int, object]]) -> None:
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


# -- the raw input format (atheris, and st.binary()) ---------------------------------


def decode_input(data: bytes) -> Case:
    """Arbitrary bytes as a case. Layout: ``flags cut1 cut2 stream``; ``flags``
    says: no EOF (bit 0), the opening (bits 1-2), a scripted move (bits 3-6,
    0 for none) and whether it goes after the first piece or the second (bit 7)."""
    flags = data[0] if data else 0
    action = (flags >> 3 & 15) - 1
    actions = ((1 + (flags >> 7), _ACTION_NAMES[action]),) if 0 <= action < len(ACTIONS) else ()
    return Case(data[3:], tuple(data[1:3]), not flags & 1, actions, flags >> 1 & 3)


def encode_input(case: Case) -> bytes:
    """The raw input :func:`decode_input` turns into ``case`` (cuts: the first
    two; scripted moves: the first, after piece 1 or 2)."""
    cuts = (*case.cuts, 0, 0)[:2]
    flags = (not case.eof) | case.opening << 1
    if case.actions:
        at, name = case.actions[0]
        flags |= (_ACTION_NAMES.index(name) + 1) << 3 | (at == 2) << 7
    return bytes((flags, *(c % 256 for c in cuts))) + case.stream


SEEDS: Final = (
    TOKEN_REQUEST,
    request("POST", "/app/getAppAccessToken", _json({"appId": APP_ID, "clientSecret": "no"})),
    request("GET", "/app/getAppAccessToken", auth=None),
    GATEWAY_BOT,
    request("GET", "/gateway/bot", auth="expired"),
    GROUP_REPLY,
    GROUP_REPLY + GROUP_REPLY,  # the same msg_seq twice
    request("POST", f"/v2/groups/{GROUP}/messages", _json({"content": "x", "msg_type": 0})),
    request("POST", f"/v2/users/{GROUP}/messages", b"{not json"),
    request("DELETE", f"/v2/groups/{GROUP}/messages/nope", auth=TOKEN),
    request("HEAD", "/users/@me") + request("GET", "/users/@me"),
    request("GET", "/users/@me", version="1.0"),
    request("GET", "/gateway/bot", headers=("Connection: close",)) + GATEWAY_BOT,
    b"POST /v2/groups/G/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\n{}\r\n0\r\n\r\n",
    TOKEN_REQUEST + GATEWAY_BOT + UPGRADE + text(IDENTIFY) + text(HEARTBEAT) + close(1000, b"bye"),
    UPGRADE + text(IDENTIFY) + text({"op": 1, "d": 1}) + text(IDENTIFY),
    UPGRADE + text({"op": 2, "d": {"token": "QQBot nope", "intents": 1, "shard": [0, 1]}}),
    UPGRADE + text({"op": 2, "d": {**IDENTIFY["d"], "shard": [1, 1]}}),
    UPGRADE + text({"op": 6, "d": {"token": f"QQBot {TOKEN}", "session_id": "x", "seq": 1}}),
    UPGRADE + text(b"{not json") + text(HEARTBEAT),
    UPGRADE + text(b"[" * 3000),
    UPGRADE + text({"op": 99}),
    UPGRADE + frame(OP_PING, b"p", mask=MASK) + frame(OP_PONG, b"", mask=MASK),
    UPGRADE
    + frame(OP_TEXT, b'{"op":1,', fin=False, mask=MASK)
    + frame(OP_PING, b"", mask=MASK)
    + frame(OP_CONT, b'"d":null}', mask=MASK),
    UPGRADE + frame(OP_TEXT, _json(HEARTBEAT)),  # unmasked
    UPGRADE + frame(OP_TEXT, b"x" * 10, mask=MASK)[:2] + b"\xff" * 8,
    UPGRADE + b"\x81\xff" + (1 << 62).to_bytes(8, "big") + MASK + b"abc",
    UPGRADE + frame(OP_BINARY, b"{}", mask=MASK),
    UPGRADE + frame(OP_TEXT, b"\xff\xfe", mask=MASK),
    UPGRADE + close(1000) + text(HEARTBEAT),
    UPGRADE + close(None),
    UPGRADE + close(999),
    UPGRADE + frame(OP_CLOSE, b"\x03", mask=MASK),
    UPGRADE.replace(b"Version: 13", b"Version: 12") + GATEWAY_BOT,
    UPGRADE.replace(b"Connection: Upgrade\r\n", b"") + GATEWAY_BOT,
    UPGRADE.replace(b"GET", b"POST"),
    b"garbage\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
)


def seed_inputs() -> list[bytes]:
    """Every seed, cut three ways, with and without EOF, alone or with a move."""
    moves: list[tuple[tuple[int, str], ...]] = [(), *(((2, name),) for name in _ACTION_NAMES)]
    return [
        encode_input(Case(seed, (cut, cut * 5), eof, move))
        for seed in SEEDS
        for eof in (True, False)
        for cut in (0, 1, 41)
        for move in (moves if cut == 41 and eof else moves[:1])
    ]


# -- Hypothesis strategies ------------------------------------------------------------------

_text = st.text(max_size=20)
_json_value: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def _http_request(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["token", "gateway", "reply", "send", "other", "odd"]))
    auth = draw(st.sampled_from([TOKEN, TOKEN, TOKEN, None, "stale"]))
    if kind == "token":
        body = draw(
            st.sampled_from([TOKEN_BODY, b"{}", b"[]", b"", b"\xff"])
            | st.builds(_json, st.fixed_dictionaries({"appId": _text, "clientSecret": _text}))
        )
        return request(
            draw(st.sampled_from(["POST", "POST", "GET"])), "/app/getAppAccessToken", body
        )
    if kind == "gateway":
        return request(draw(st.sampled_from(["GET", "POST"])), "/gateway/bot", auth=auth)
    if kind in ("reply", "send"):
        scene = draw(st.sampled_from([f"v2/groups/{GROUP}", "v2/users/U", "channels/1", "dms/2"]))
        fields = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "content": st.sampled_from(["hi", ""]) | _json_value,
                    "msg_type": st.sampled_from([0, 0, 2, 7, 9]) | _json_value,
                    "msg_id": st.sampled_from([MSG_ID, MSG_ID, "ROBOT1.0_x"]) | _json_value,
                    "msg_seq": st.integers(-1, 6) | _json_value,
                    "event_id": _json_value,
                    "markdown": _json_value,
                    "media": _json_value,
                },
            )
        )
        if kind == "reply":
            fields = {"content": "hi", "msg_type": 0, "msg_id": MSG_ID, **fields}
        body = _json(fields) if draw(st.integers(0, 9)) else draw(st.binary(max_size=20))
        path = f"/{scene}/{draw(st.sampled_from(['messages', 'files', 'messages/ROBOT1.0_x']))}"
        method = draw(st.sampled_from(["POST", "POST", "POST", "DELETE", "GET", "HEAD"]))
        return request(method, path, body, auth=auth)
    if kind == "other":
        path = draw(
            st.sampled_from(["/users/@me", "/interactions/i", "/gateway", "/", "/v2/groups//m"])
        )
        other = draw(st.none() | st.builds(_json, _json_value))
        return request(draw(st.sampled_from(["GET", "PUT", "HEAD"])), path, other, auth=auth)
    return draw(
        st.sampled_from(
            [
                request("GET", "/users/@me", version="1.0"),
                request("GET", "/users/@me", headers=("Connection: close",)),
                request("POST", "/gateway/bot", b"{}", headers=("Expect: 100-continue",)),
                b"POST /app/getAppAccessToken HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n%s\r\n0\r\n\r\n"
                % (len(TOKEN_BODY), TOKEN_BODY),
                b"GET /users/@me HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
                b"GET /users/@me HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                b"GET /users/@me HTTP/1.1\r\n\r\n",
                b"GET  HTTP/1.1\r\nHost: x\r\n\r\n",
                b"\r\n\r\n",
                b"GET /users/@me HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                b"GET /users/@me HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 2000 + b"\r\n\r\n",
            ]
        )
    )


@st.composite
def _upgrade(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 5)):
        return UPGRADE
    return draw(
        st.sampled_from(
            [
                UPGRADE.replace(b"Version: 13", b"Version: 8"),
                UPGRADE.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
                UPGRADE.replace(b"Connection: Upgrade\r\n", b""),
                UPGRADE.replace(b"Upgrade: websocket\r\n", b""),
                UPGRADE.replace(b"GET", b"POST"),
                UPGRADE.replace(b"/websocket", b"/websocket/?compress=0"),
                UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0"),
            ]
        )
    )


@st.composite
def _payload(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["identify", "heartbeat", "resume", "any", "raw"]))
    if kind == "identify":
        d = dict(IDENTIFY["d"])
        for key, value in draw(
            st.dictionaries(
                st.sampled_from(["token", "intents", "shard"]),
                st.sampled_from([f"QQBot {TOKEN}", TOKEN, 0, -1, 1 << 31, [0, 1], [1, 1]])
                | _json_value,
                max_size=2,
            )
        ).items():
            d[key] = value
        return _json({"op": 2, "d": d})
    if kind == "heartbeat":
        return _json({"op": 1, "d": draw(st.none() | st.integers(-1, 5) | _json_value)})
    if kind == "resume":
        d = {"token": f"QQBot {TOKEN}", "session_id": draw(_text), "seq": draw(_json_value)}
        return _json({"op": 6, "d": d})
    if kind == "any":
        return _json(draw(st.fixed_dictionaries({"op": _json_value}, optional={"d": _json_value})))
    return draw(
        st.sampled_from([b"{not json", b"[]", b"null", b'{"op":"1"}', b"[" * 5000, b"\xff\xfe"])
        | st.binary(max_size=30)
    )


_BAD_OPCODES: Final = (3, 4, 5, 6, 7, 11, 12, 15)


@st.composite
def _frames(draw: st.DrawFn) -> bytes:
    """A few client frames: mostly masked text carrying payloads, and the odd ones."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(
            st.sampled_from(
                ["text"] * 6 + ["fragments", "control", "close", "unmasked", "bad", "huge"]
            )
        )
        mask = draw(st.sampled_from([MASK, b"\x00\x00\x00\x00"]))
        if kind == "text":
            out += text(draw(_payload()), mask=mask)
        elif kind == "fragments":
            payload = draw(_payload())
            at = draw(st.integers(0, len(payload)))
            out += frame(OP_TEXT, payload[:at], fin=False, mask=mask)
            if draw(st.booleans()):
                out += frame(OP_PING, b"x", mask=mask)
            out += frame(OP_CONT, payload[at:], fin=draw(st.integers(0, 5)) > 0, mask=mask)
        elif kind == "control":
            opcode = draw(st.sampled_from([OP_PING, OP_PONG]))
            out += frame(opcode, draw(st.binary(max_size=130)), mask=mask)
        elif kind == "close":
            code = draw(st.sampled_from([1000, 1001, 4009, 4914, 999, 1005, 3000, 5000]))
            out += close(None) if draw(st.integers(0, 4)) == 0 else close(code, b"r")
        elif kind == "unmasked":
            out += frame(OP_TEXT, _json(HEARTBEAT))
        elif kind == "bad":
            out += frame(
                draw(st.sampled_from((*_BAD_OPCODES, OP_TEXT, OP_CONT))),
                draw(st.binary(max_size=8)),
                rsv=draw(st.integers(0, 7)),
                mask=mask,
                wide_length=draw(st.booleans()),
            )
        else:
            size = draw(st.sampled_from([(1 << 20) + 1, 1 << 40, 1 << 63, 200_000]))
            out += b"\x81\xff" + size.to_bytes(8, "big") + mask + draw(st.binary(max_size=40))
    return bytes(out)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """HTTP requests, maybe an upgrade and frames after it, cut, with maybe some moves."""
    stream = b"".join(draw(st.lists(_http_request(), max_size=3)))
    if draw(st.integers(0, 3)):
        stream += draw(_upgrade())
        if draw(st.integers(0, 3)):
            stream += text(IDENTIFY)
        stream += draw(_frames())
    if draw(st.integers(0, 9)) == 0:
        stream = stream[: draw(st.integers(0, len(stream)))] + draw(st.binary(max_size=20))
    actions: tuple[tuple[int, str], ...] = ()
    if draw(st.integers(0, 2)) == 0:
        move = st.tuples(st.integers(0, 6), st.sampled_from(_ACTION_NAMES))
        actions = tuple(draw(st.lists(move, min_size=1, max_size=3)))
    return Case(
        stream,
        tuple(draw(st.lists(st.integers(0, 2000), max_size=6))),
        eof=draw(st.booleans()),
        actions=actions,
    )


# -- the engine hooks --------------------------------------------------------------------------


def _check(case: Case) -> str:
    out = run_case(case)
    if out.upgraded:
        where = "ws READY" if b'"t":"READY"' in out.out else "ws"
        where += f" close {out.close_code}" if out.close_code else " open"
    else:
        where = f"http {','.join(map(str, out.statuses[:3])) or '-'}"
    return f"{where}{' closed' if out.closed else ''}"


def main(argv: list[str]) -> int:
    return engine.run(
        argv,
        corpus_prefix="qqproto-fuzz-simulator-",
        seed_inputs=seed_inputs,
        decode=decode_input,
        check=_check,
        structured=("structured client traffic", cases()),
        rows=lambda tally: tally.most_common(20),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
