"""Run one fuzz case: a gateway put in a chosen state, fed bytes, held to its contract.

What :func:`run_case` checks after every call into the object:

- nothing is raised (``LocalProtocolError`` is documented only for a call
  without an open transport, and bytes are only fed while one is open or
  closing);
- ``state`` is a ``GatewayState``, ``next_deadline()`` is None or a finite
  float, ``actions()`` is a list of ``Action`` values;
- the actions keep the driver contract: no ``Connect`` while a transport is
  open or opening, no ``SendData`` without an open transport, nothing after
  ``Failed``, and ``link`` agrees with what the driver was told;
- bytes fed after ``Disconnect`` are ignored without a sound;
- a typed event delivered can be read whole: ``repr``, ``hash``, ``raw``,
  ``as_dispatch()`` and, for messages, ``text``, ``to_me``, ``empty`` and the
  attachments' URLs never raise;
- (an internal oracle) the link is never OPEN on a WebSocket that is closed:
  that would mean the gateway missed the end of its connection.

After the bytes, a short driver epilogue calls ``connection_lost`` (when a
``Disconnect`` is outstanding) and ``handle_timer`` at the next deadline,
with the same checks.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

from fuzz.frames import Response
from qqproto.actions import Action, Connect, Deliver, Disconnect, Failed, SendData
from qqproto.errors import ProtocolViolation
from qqproto.link import LinkState, Retry
from qqproto.qq.config import DEFAULT_GATEWAY_URL, GatewayConfig
from qqproto.qq.events import Dispatch, Event, Message
from qqproto.qq.gateway import GatewayProtocol
from qqproto.qq.lifecycle import GatewayState as S
from qqproto.qq.session import Session, TokenWanted
from qqproto.testing.wire import FakeServer

#: The fake clock's time while a gateway is prepared.
T0: Final = 1000.0
SESSION: Final = Session("fuzz-session", 41, (0, 1), DEFAULT_GATEWAY_URL)

HELLO: Final = {"op": 10, "d": {"heartbeat_interval": 45_000}}
READY: Final = {
    "op": 0,
    "s": 1,
    "t": "READY",
    "d": {"version": 1, "session_id": "fuzz-session", "user": {"id": "1"}, "shard": [0, 1]},
}
RESUMED: Final = {"op": 0, "s": 42, "t": "RESUMED", "d": ""}


def dispatch(seq: int) -> dict[str, Any]:
    """A well-formed group @bot message event with sequence number ``seq``."""
    d = {
        "id": f"msg-{seq}",
        "content": f" hello {seq}",
        "author": {"member_openid": "0BA1C3D5E7F90B1D3F5A7C9E1B3D7F13"},
        "group_openid": "82B3C5D7E9FA1B3C5D7E9F0A1B2C6064",
    }
    return {"op": 0, "s": seq, "t": "GROUP_AT_MESSAGE_CREATE", "id": f"event-{seq}", "d": d}


#: Every state bytes are fed in, and the gateway state it is.
EXPECTED: Final = {
    "awaiting_101": S.CONNECTING,  # upgrade request sent, nothing received
    "mid_handshake": S.CONNECTING,  # part of the 101 received
    "awaiting_hello": S.CONNECTING,  # the 101 received, Hello awaited
    "token_pending": S.IDENTIFY,  # Hello received, no token yet (TokenWanted out)
    "identify": S.IDENTIFY,  # Identify sent, READY awaited
    "ready": S.READY,  # after Identify and READY, two dispatches received
    "resuming": S.RESUMING,  # a restored session, Resume sent, RESUMED awaited
    "resumed": S.READY,  # after Resume and RESUMED, a dispatch received
}
STATES: Final = tuple(EXPECTED)


@dataclass
class Prepared:
    """A gateway in one of :data:`STATES` with its transport open, and its server."""

    proto: GatewayProtocol
    server: FakeServer  # past the upgrade: it builds well-formed frames
    response: bytes  # the valid 101 answer to the gateway's upgrade request
    accept: bytes  # the Sec-WebSocket-Accept value in it
    fed: int  # bytes of ``response`` the gateway has seen
    conn: int = 1  # the id of its one connection


def prepare(state: str, cut: int = 0) -> Prepared:
    """A fresh gateway in ``state``; ``cut`` picks how much of the 101 a
    ``mid_handshake`` gateway has seen (1 to len - 1 bytes)."""
    session = SESSION if state in ("resuming", "resumed") else None
    proto = GatewayProtocol(GatewayConfig(app_id="102000000", seed=0), session)
    proto.actions()  # Deliver(TokenWanted), Connect(1, ...)
    if state != "token_pending":
        proto.token_received("fuzz-token", T0 + 7200.0, T0)
    proto.connection_made(1, T0)
    server = FakeServer()
    response = server.receive(b"".join(a.data for a in proto.actions() if isinstance(a, SendData)))
    accept = re.search(rb"(?im)^sec-websocket-accept: *(\S+)", response)
    assert accept is not None, response
    partial = {"awaiting_101": 0, "mid_handshake": 1 + cut % (len(response) - 1)}
    script = [response[: partial.get(state, len(response))]]
    if EXPECTED[state] is not S.CONNECTING:
        script.append(server.send(HELLO))
    if state == "ready":
        script.append(server.send(READY) + server.send(dispatch(2)) + server.send(dispatch(3)))
    elif state == "resumed":
        script.append(server.send(RESUMED) + server.send(dispatch(43)))
    for data in filter(None, script):
        proto.receive_data(1, data, T0)
        proto.actions()
    assert proto.state is EXPECTED[state], f"prepare({state!r}) reached {proto.state}"
    assert proto.link is LinkState.OPEN, f"prepare({state!r}): link {proto.link}"
    return Prepared(proto, server, response, accept.group(1), len(script[0]))


#: Pieces of a case's stream known only once the gateway is prepared: the
#: whole valid 101, and the part of it a ``mid_handshake`` gateway has not seen.
FULL_101: Final = "101"
REST_OF_101: Final = "rest"

Piece = bytes | str | Response


@dataclass(frozen=True)
class Case:
    """One fuzz input: a state, a byte stream, and how it is cut into reads."""

    state: str
    pieces: tuple[Piece, ...]
    #: Sizes of successive receive_data calls, cycled; () feeds it all at once.
    sizes: tuple[int, ...] = ()
    eof: bool = False  # finish with receive_data(b"")
    cut: int = 0  # for mid_handshake
    step: float = 0.0  # seconds between calls

    def chunks(self, prep: Prepared) -> list[bytes]:
        """The stream, cut into the data of successive receive_data calls."""
        parts = {FULL_101: prep.response, REST_OF_101: prep.response[prep.fed :]}
        data = b"".join(
            p if isinstance(p, bytes) else parts[p] if isinstance(p, str) else p.render(prep.accept)
            for p in self.pieces
        )
        out: list[bytes] = []
        i = 0
        while i < len(data):
            n = max(1, self.sizes[len(out) % len(self.sizes)]) if self.sizes else len(data)
            out.append(data[i : i + n])
            i += n
        return [*out, b""] if self.eof else out


class ContractViolation(AssertionError):
    """The gateway broke a documented promise (rather than raising)."""


@dataclass
class _Driver:
    """What a driver would know: the transport, and whether the object failed."""

    link: LinkState = LinkState.OPEN
    conn: int = 1  # the connection the link is on
    failed: bool = False
    delivered: int = 0
    violations: int = 0

    def take(self, actions: object, where: str) -> None:
        if type(actions) is not list:
            raise ContractViolation(f"{where}: actions() returned {type(actions).__name__}")
        for action in actions:
            if not isinstance(action, Action):
                raise ContractViolation(f"{where}: actions() gave a non-Action {action!r}")
            problem = self._problem(action)
            if problem:
                raise ContractViolation(f"{where}: {type(action).__name__} {problem}")

    def _problem(self, action: Action) -> str | None:
        if self.failed:
            return "after Failed"
        if isinstance(action, Failed):
            self.failed = True
        elif isinstance(action, Connect):
            if self.link is not LinkState.IDLE or action.conn <= self.conn:
                return f"with the link {self.link.value}, as connection {action.conn}"
            self.link, self.conn = LinkState.OPENING, action.conn
        elif isinstance(action, Disconnect):
            if self.link not in (LinkState.OPEN, LinkState.OPENING) or action.conn != self.conn:
                return f"of connection {action.conn} with the link {self.link.value}"
            self.link = LinkState.CLOSING
        elif isinstance(action, SendData):
            if self.link is not LinkState.OPEN or action.conn != self.conn:
                return f"on connection {action.conn} with the link {self.link.value}"
            if type(action.data) is not bytes:
                return f"of {type(action.data).__name__}"
        elif isinstance(action, Deliver):
            self.delivered += 1
            event = action.event
            self.violations += isinstance(event, ProtocolViolation)
            if isinstance(event, Event):
                _read_whole(event)
            elif not isinstance(event, Dispatch | ProtocolViolation | TokenWanted | Retry):
                return f"of a {type(event).__name__}"
        return None


def _read_whole(event: Event) -> None:
    """Everything an application may read of an event (any exception is a crash)."""
    repr(event)
    hash(event)
    if event.as_dispatch().data != event.raw:
        raise ContractViolation(f"{event!r}: as_dispatch() and raw disagree")
    if isinstance(event, Message):
        event.text, event.to_me, event.empty  # noqa: B018
        for attachment in event.attachments:
            attachment.url, attachment.voice_wav_url  # noqa: B018


def _check(proto: GatewayProtocol, driver: _Driver, where: str) -> None:
    if not isinstance(proto.state, S):
        raise ContractViolation(f"{where}: state is {proto.state!r}")
    deadline = proto.next_deadline()
    if deadline is not None and (type(deadline) is not float or not math.isfinite(deadline)):
        raise ContractViolation(f"{where}: next_deadline() is {deadline!r}")
    driver.take(proto.actions(), where)
    ws = proto._link.ws
    if proto.link is LinkState.OPEN and ws is not None and ws.is_closed:
        # The WebSocket is over (a close frame, a broken frame, a message too
        # big) but the gateway never saw it end.
        raise ContractViolation(f"{where}: the link is open but its WebSocket is closed")
    if proto.link is not driver.link:
        raise ContractViolation(f"{where}: link {proto.link.value}, driver {driver.link.value}")


@dataclass(frozen=True)
class Outcome:
    """What one case did."""

    after_bytes: S  # the state once the bytes were fed
    delivered: int
    violations: int


def run_case(case: Case) -> Outcome:
    """Run one case; raise on any exception or :class:`ContractViolation`."""
    prep = prepare(case.state, case.cut)
    proto, now = prep.proto, T0
    driver = _Driver()
    for k, chunk in enumerate(case.chunks(prep)):
        if proto.link is LinkState.CLOSING:
            # After Disconnect, bytes still in flight are dropped quietly.
            proto.receive_data(driver.conn, chunk, now)
            if proto.actions():
                raise ContractViolation("receive_data after Disconnect produced actions")
            continue
        if proto.link is not LinkState.OPEN:
            break
        proto.receive_data(driver.conn, chunk, now)
        _check(proto, driver, f"receive_data #{k + 1} ({len(chunk)} bytes)")
        now += case.step
    after_bytes = proto.state
    # The driver's side of the story: close what was asked, fire the timers.
    for _ in range(3):
        if driver.link is LinkState.CLOSING:
            proto.connection_lost(driver.conn, now, None)
            driver.link = LinkState.IDLE
            _check(proto, driver, "connection_lost after Disconnect")
            continue
        deadline = proto.next_deadline()
        if deadline is None or driver.link is LinkState.OPENING:
            break
        now = max(now, deadline)
        proto.handle_timer(now)
        _check(proto, driver, "handle_timer")
    return Outcome(after_bytes, driver.delivered, driver.violations)
