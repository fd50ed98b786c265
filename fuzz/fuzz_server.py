"""The fuzz target for the server pieces: ``HttpServerConnection`` and ``WebSocketServer``.

Run it by hand::

    python fuzz/fuzz_server.py [libFuzzer options] [corpus dirs]

With atheris importable this is a coverage-guided libFuzzer run over raw
inputs (:func:`decode_input`), seeded with :func:`seed_inputs`. Without it (or
with ``FUZZ_ENGINE=hypothesis``) Hypothesis runs structured streams
(:func:`cases`) for ``FUZZ_EXAMPLES`` examples (default 20000).

One case is what a client sends an accepted connection, cut into reads.
:func:`run_case` plays the serving object: every request is answered (204),
every upgrade accepted and its WebSocket fed what follows. It holds the
pieces to their contract:

- nothing is raised but a typed :class:`~qqproto.errors.RemoteProtocolError`,
  and that only where a WebSocket is made of an upgrade's bytes;
- every refusal carries one of the statuses the pieces promise, and is
  answered, in order, before the answers to what came after it;
- one upgrade at most, and nothing after the connection is closed;
- a WebSocket gives whole messages and at most one ``Closed``, last.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

if __name__ == "__main__":  # run as a script: import the fuzz package from the repo root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from hypothesis import strategies as st

from fuzz import engine
from qqproto.errors import RemoteProtocolError
from qqproto.http_server import Dropped, HttpServerConnection, Incoming, Refused, Request
from qqproto.ws import Closed
from qqproto.ws_server import WebSocketServer

ROUTES: Final = {"/webhook": ("POST",), "/onebot": ("GET",)}
STATUSES: Final = (400, 404, 405, 413, 426, 431)
UPGRADE: Final = (
    b"GET /onebot?access_token=t HTTP/1.1\r\nHost: bot.example\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\nX-Self-ID: 10001\r\n\r\n"
)
FRAMES: Final = (
    bytes([0x81, 0x82, 1, 2, 3, 4, ord("h") ^ 1, ord("i") ^ 2]),  # a masked "hi"
    bytes([0x01, 0x81, 0, 0, 0, 0]) + b"a" + bytes([0x80, 0x81, 0, 0, 0, 0]) + b"b",
    bytes([0x89, 0x80, 0, 0, 0, 0]),  # a ping
    bytes([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8]),  # close 1000
    bytes([0x82, 0xFE, 0x01, 0x00, 0, 0, 0, 0]) + b"x" * 256,  # binary, 16-bit length
)


def post(path: str, body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: bot.example\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


SEEDS: Final = (
    post("/webhook", b'{"op":13,"d":{"plain_token":"p","event_ts":"1"}}'),
    post("/webhook", b"{}") + post("/webhook", b"{}"),
    post("/nowhere", b"skip") + post("/webhook", b"{}"),
    b"GET /webhook HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    UPGRADE + FRAMES[0],
    post("/webhook", b"{}") + UPGRADE + b"".join(FRAMES),
    UPGRADE.replace(b"13", b"8"),
    b"GET / HTTP/1.0\r\n\r\n",
    b"garbage\r\n\r\n",
    # A refused request whose skipped body breaks off, or is not chunked right.
    b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
    b"PUT /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbad\r\n",
)


@dataclass(frozen=True, slots=True)
class Case:
    """The bytes a client sends, where they are cut, and whether EOF follows."""

    stream: bytes
    cuts: tuple[int, ...]
    eof: bool


class ContractViolation(AssertionError):
    """The pieces broke a promise of their docstrings."""


def run_case(case: Case) -> str:
    """Serve one connection's bytes; the outcome's tally key."""
    server = HttpServerConnection(ROUTES, max_header_size=1024, max_body_size=512)
    ws: WebSocketServer | None = None
    ws_events: list[object] = []
    refusals: list[int] = []

    def take(events: list[Incoming]) -> None:
        nonlocal ws
        for event in events:
            if server.closed and not isinstance(event, Refused | Dropped):
                raise ContractViolation(f"{event!r} after the connection closed")
            if isinstance(event, Dropped):
                if not server.closed or event is not events[-1]:
                    raise ContractViolation(f"{event!r} without the connection closing")
            elif isinstance(event, Refused):
                if event.status not in STATUSES:
                    raise ContractViolation(f"refused with {event.status}")
                refusals.append(event.status)
            elif isinstance(event, Request):
                take(server.respond(204))
            else:
                if ws is not None:
                    raise ContractViolation("a second upgrade")
                try:
                    ws = WebSocketServer(event.raw, max_message_size=300)
                except RemoteProtocolError:
                    return
                ws.accept()

    pieces = engine.reads(case.stream, case.cuts) + ([b""] if case.eof else [])
    for piece in pieces:
        if ws is not None:
            ws_events += ws.receive_data(piece)
        elif piece or case.eof:
            take(server.receive_data(piece))
    closes = [i for i, e in enumerate(ws_events) if isinstance(e, Closed)]
    if len(closes) > 1 or (closes and closes[0] != len(ws_events) - 1):
        raise ContractViolation(f"Closed is not the one last event: {ws_events}")
    answers = server.data_to_send()
    for status in refusals:  # each refusal answered, in order
        at = answers.find(f"HTTP/1.1 {status} ".encode())
        if at < 0:
            raise ContractViolation(f"refused with {status} and not answered")
        answers = answers[at + 1 :]
    if ws is not None:
        return f"websocket, {len(ws_events)} events"
    return f"http, refused {sorted(set(refusals))}" if refusals else "http, served"


# -- the raw input format (atheris, and st.binary()) ---------------------------------


def decode_input(data: bytes) -> Case:
    """Arbitrary bytes as a case. Layout: ``flags cut1 cut2 cut3 stream``;
    bit 0 of ``flags`` leaves EOF off."""
    flags = data[0] if data else 0
    return Case(data[4:], tuple(data[1:4]), eof=not flags & 1)


def seed_inputs() -> list[bytes]:
    return [
        bytes((eof, cut, cut * 3, 200)) + seed
        for seed in SEEDS
        for eof in (0, 1)
        for cut in (0, 1, 9)
    ]


# -- Hypothesis strategies ------------------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Seeds and frames spliced, sometimes with a byte changed, cut at random."""
    parts = draw(st.lists(st.sampled_from((*SEEDS, *FRAMES)), min_size=1, max_size=4))
    stream, cuts = engine.spliced(draw, parts)
    return Case(stream, cuts, draw(st.booleans()))


def main(argv: list[str]) -> int:
    return engine.run(
        argv,
        corpus_prefix="qqproto-fuzz-server-",
        seed_inputs=seed_inputs,
        decode=decode_input,
        check=run_case,
        structured=("structured streams", cases()),
        rows=lambda tally: Counter(tally).most_common(20),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
