"""The fuzz target for the simulator's parsers: ``SimConnection.receive_data``.

Run it by hand::

    python fuzz/fuzz_simulator.py [libFuzzer options] [corpus dirs]

With atheris importable this is a coverage-guided libFuzzer run over raw
inputs (:func:`decode_input`), seeded with :func:`seed_inputs` when no corpus
directory is given. Without atheris (or with ``FUZZ_ENGINE=hypothesis``) it
runs two Hypothesis targets, raw bytes and structured client traffic
(:func:`cases`), each for ``FUZZ_EXAMPLES`` examples (default 20000).

One case is what a client sends on one connection to a fresh
:class:`~qqproto.testing.QQSimulator` (which has issued
:data:`~fuzz.sim_traffic.TOKEN` and has one group message,
:data:`~fuzz.sim_traffic.MSG_ID`, waiting for a session): HTTP
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

The parts live beside it: ``fuzz/sim_traffic.py`` writes the client's bytes
(the builders, the canned requests, :class:`~fuzz.sim_traffic.Case` and the
strategies for requests, upgrades, payloads and frames), and
``fuzz/sim_oracles.py`` reads what comes back (the HTTP responses, the
server frames, and the records against both). This file is the target:
the scripted moves, :func:`run_case`, the raw format and its seeds,
:func:`cases`, and the engine hooks.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

if __name__ == "__main__":  # run as a script: import the fuzz package from the repo root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from hypothesis import strategies as st

from fuzz import engine
from fuzz.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, frame
from fuzz.sim_oracles import check_records, client_requests, parse_frames, parse_http
from fuzz.sim_traffic import (
    APP_ID,
    DEADLINE,
    GARBAGE,
    GATEWAY_BOT,
    GROUP,
    GROUP_REPLY,
    HEARTBEAT,
    IDENTIFY,
    MASK,
    T0,
    TOKEN,
    TOKEN_REQUEST,
    UPGRADE,
    Case,
    client_frames,
    close,
    fresh,
    http_requests,
    json_bytes,
    request,
    text,
    upgrades,
)
from qqproto.testing import Heartbeat, QQSimulator, SimConnection

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


# -- running a case -----------------------------------------------------------------------


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
    statuses, ws, closing = parse_http(bytes(out), client_requests(case))
    if closing:
        assert conn.closed, "a response said Connection: close, the connection is not closed"
    frames = parse_frames(ws) if ws is not None else []
    check_records(sim, bytes(out), frames)
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
    request("POST", "/app/getAppAccessToken", json_bytes({"appId": APP_ID, "clientSecret": "no"})),
    request("GET", "/app/getAppAccessToken", auth=None),
    GATEWAY_BOT,
    request("GET", "/gateway/bot", auth="expired"),
    GROUP_REPLY,
    GROUP_REPLY + GROUP_REPLY,  # the same msg_seq twice
    request("POST", f"/v2/groups/{GROUP}/messages", json_bytes({"content": "x", "msg_type": 0})),
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
    UPGRADE + frame(OP_TEXT, json_bytes(HEARTBEAT)),  # unmasked
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


# -- the structured format (Hypothesis) ----------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """HTTP requests, maybe an upgrade and frames after it, cut, with maybe some moves."""
    stream = b"".join(draw(st.lists(http_requests(), max_size=3)))
    if draw(st.integers(0, 3)):
        stream += draw(upgrades())
        if draw(st.integers(0, 3)):
            stream += text(IDENTIFY)
        stream += draw(client_frames())
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
