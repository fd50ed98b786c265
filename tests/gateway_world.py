"""Where the gateway state machine runs: a fake driver and a scripted QQ
gateway server, wired to one GatewayProtocol.

``GatewayWorld`` is the machine without its rules and invariants (those are
in ``tests/test_gateway_stateful.py``). It plays

- the driver: a fake clock, one transport at a time, the client's actions
  carried out (``_carry_out``) and the server's automatic replies delivered
  until both sides are quiet (``_settle``);
- the server's end of the wire, through the sans-IO WebSocket protocol of the
  ``websockets`` library (not wsproto, so our framing meets an independent
  implementation): what it does with the client's frames, and how it answers
  Identify and Resume, from the sessions in ``ServerState``.

Everything the client does is checked as it happens against the
``ClientModel``; what is wrong goes into ``problems``, under the name of the
check whose invariant reports it, so the failure points at the broken rule.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis.stateful import RuleBasedStateMachine
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from qqproto.actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    SendData,
    StateChanged,
)
from qqproto.errors import ProtocolViolation
from qqproto.link import Retry
from qqproto.qq.config import GatewayConfig
from qqproto.qq.events import EVENT_TYPES, Dispatch, Event
from qqproto.qq.gateway import GatewayProtocol
from qqproto.qq.lifecycle import GatewayState
from qqproto.qq.session import Session, TokenWanted

from .gateway_model import ClientModel, ServerSession, ServerState, close_cause

#: How long the driver waits for a Connect to open before it gives up and
#: reports the connection lost (drivers have such a timeout; 30 s here).
CONNECT_TIMEOUT = 30.0


class ServerConn:
    """The server end of one connection, and how the server plays it."""

    def __init__(self, upgrade: bool, prompt: bool, rejection: str | int, overlap: int) -> None:
        self.ws = ServerProtocol(max_size=None)
        self.upgrade = upgrade  # False: answer the upgrade with HTTP 503
        self.prompt = prompt  # answer Identify/Resume as soon as they come
        self.rejection = rejection  # how a prompt answer refuses a Resume
        self.overlap = overlap  # how many old events a prompt replay repeats
        self.open = False  # the upgrade went through
        self.hello = False
        self.login: str | None = None  # "identify" or "resume", once received
        self.resume_from: tuple[Any, Any] = (None, None)
        self.answered = False  # READY, RESUMED or a refusal went out
        self.session: ServerSession | None = None  # the live session on it
        self.drop_acks = False
        self.server_closed = False

    def output(self) -> bytes:
        return b"".join(self.ws.data_to_send())


class GatewayWorld(RuleBasedStateMachine):
    config: GatewayConfig  # set by the machine's initialize rule
    proto: GatewayProtocol  # the client under test; replaced on restart

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.problems: dict[str, list[str]] = {
            "transport": [],
            "terminal": [],
            "delivery": [],
            "login": [],
            "timer": [],
            "pacing": [],
            "garbage": [],
        }
        # The driver.
        self.pending_connect = False
        self.connect_at = 0.0  # when the pending Connect was asked for
        self.conn: ServerConn | None = None
        self.lost_pending = False  # Disconnect carried out, connection_lost not yet reported
        self.conn_id = 0  # the id of the last Connect
        self.retries: list[Retry] = []  # every failed attempt the client reported
        self.eager_lost = True
        self.prompt_tokens = True
        self.lives: list[float] = [7200.0]
        self.fetches_outstanding = 0
        self.token_gen = 0
        self.tokens: dict[str, tuple[int, float, float]] = {}  # token: gen, expiry, margin
        self.state_changes: list[StateChanged] = []
        self.checked_changes = 0
        self.last_state = ""
        self.failed: list[str] = []
        self.terminal_seen = False
        self.violations = 0
        self.disconnects = 0
        self.server = ServerState()
        # What the client sent, with what the model expected at that moment.
        self.heartbeats: list[tuple[Any, int | None]] = []
        self.checked_heartbeats = 0
        self.logins: list[tuple[str, Any, str | None, int | None]] = []
        self.checked_logins = 0
        self.model = ClientModel()

    def _new_client(self, session: Session | None) -> None:
        if session is not None:
            # Stored as JSON and read back, as an application would.
            session = Session.from_dict(json.loads(json.dumps(session.to_dict())))
        self.proto = GatewayProtocol(self.config, session)
        self.conn_id = 0  # a new object numbers its connections anew
        self.last_state = "CONNECTING" if session is None else "RESUMING"
        self._settle()

    # -- the driver ---------------------------------------------------------------

    def _settle(self, *, wait: bool = True) -> None:
        """Carry out the client's actions, deliver the server's automatic
        replies (upgrade response, ACKs, close answers), answer logins and
        token requests when playing prompt, until both sides are quiet.

        Then, if the client waits with no transport for its reconnect (and
        ``wait``), the clock moves on to that deadline, as a driver's does:
        nothing else can happen to it in between but a late token, which
        may as well come once the next Connect is out. (Leaving that wait
        to the time rules made it a step only they could take, and
        Hypothesis turns rules off at random in each schedule.)"""
        proto = self.proto
        while True:
            actions = proto.actions()
            if actions:
                for action in actions:
                    self._carry_out(action)
                    if self.lost_pending and self.eager_lost:
                        self._report_lost()
                if self.lost_pending:
                    self._report_lost()
                continue
            conn = self.conn
            if conn is not None:
                data = conn.output()
                if data:
                    proto.receive_data(self.conn_id, data, self.now)
                    continue
                if conn.prompt and conn.login is not None and not conn.answered:
                    if conn.login == "identify":
                        self._ready(conn, 0)
                    else:
                        self._answer_resume(conn, conn.rejection, conn.overlap, one_read=True)
                    continue
            if self.prompt_tokens and self.fetches_outstanding:
                self._give_token(self.lives[self.token_gen % len(self.lives)])
                continue
            break
        if wait and self._waiting_to_reconnect():
            deadline = proto.next_deadline()
            assert deadline is not None  # never_stuck holds it so
            self._advance_to(max(self.now, deadline))
        self.model.cause = "resume"

    def _report_lost(self) -> None:
        self.lost_pending = False
        self.proto.connection_lost(self.conn_id, self.now, None)

    def _carry_out(self, action: Action) -> None:
        model = self.model
        if self.failed:
            self.problems["terminal"].append(f"{action!r} after Failed")
        if isinstance(action, Connect):
            if self.pending_connect or self.conn is not None or self.lost_pending:
                self.problems["transport"].append(f"second transport asked for at {self.now}")
            if self.terminal_seen:
                self.problems["terminal"].append(f"Connect at {self.now} after the end")
            if model.reconnect_window is not None:
                low, high, cause = model.reconnect_window
                if not low - 1e-9 <= self.now <= high + 1e-9:
                    self.problems["pacing"].append(
                        f"reconnect at {self.now} after {cause}; expected in [{low}, {high}]"
                    )
            if action.conn <= self.conn_id:
                self.problems["transport"].append(f"connection id {action.conn} used again")
            self.conn_id = action.conn
            self.pending_connect = True
            self.connect_at = self.now
            model.attempt_started()
        elif isinstance(action, SendData):
            if self.conn is None or action.conn != self.conn_id:
                self.problems["transport"].append("SendData without a transport")
            else:
                self._server_receive(self.conn, action.data)
        elif isinstance(action, Disconnect):
            if (not self.pending_connect and self.conn is None) or action.conn != self.conn_id:
                self.problems["transport"].append("Disconnect without a transport")
            self.disconnects += 1
            self._attempt_ended()
            self.pending_connect = False
            self.conn = None
            self.lost_pending = True
        elif isinstance(action, Deliver) and isinstance(action.event, TokenWanted):
            self.fetches_outstanding += 1
        elif isinstance(action, Deliver):
            event = action.event
            if isinstance(event, Event):
                self._delivered(event.as_dispatch())
            elif isinstance(event, Dispatch):
                if event.type in EVENT_TYPES:  # every payload the server sends is well formed
                    self.problems["delivery"].append(f"delivered untyped: {event!r}")
                self._delivered(event)
            elif isinstance(event, ProtocolViolation):
                self.violations += 1
            elif isinstance(event, Retry):
                self.retries.append(event)
            else:
                self.problems["delivery"].append(f"unexpected event {event!r}")
        elif isinstance(action, StateChanged):
            self.state_changes.append(action)
            self.terminal_seen = self.terminal_seen or action.new in ("FAILED", "CLOSED")
        elif isinstance(action, Failed):
            self.failed.append(action.reason)

    def _attempt_ended(self) -> None:
        self.model.attempt_ended(self.now, self.token_gen)

    def _delivered(self, event: Dispatch) -> None:
        found = self.server.entries.get(event.id or "")
        if found is None:
            self.problems["delivery"].append(f"delivered a dispatch never sent: {event!r}")
            return
        session, entry = found
        if (event.type, event.seq, event.data) != (entry.type, entry.seq, entry.data):
            self.problems["delivery"].append(f"{event!r} is not what was sent: {entry!r}")
        session.got.append(entry.seq)

    def _give_token(self, life: float) -> None:
        self.fetches_outstanding = 0
        self.token_gen += 1
        token = f"tok-{self.token_gen}"
        self.tokens[token] = (self.token_gen, self.now + life, min(10.0, life / 2))
        self.proto.token_received(token, self.now + life, self.now)

    def _next_deadline(self) -> float | None:
        """The client's next deadline, or the driver's connect timeout if sooner."""
        deadline = self.proto.next_deadline()
        if self.pending_connect:
            timeout = self.connect_at + CONNECT_TIMEOUT
            deadline = timeout if deadline is None else min(deadline, timeout)
        return deadline

    def _advance_to(self, target: float) -> None:
        """Move the clock, firing the deadlines on the way (at most 20: a long
        jump over a short heartbeat interval stops early)."""
        proto = self.proto
        for _ in range(20):
            deadline = self._next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            if self.pending_connect and self.now >= self.connect_at + CONNECT_TIMEOUT:
                self.pending_connect = False  # the driver gives the Connect up
                self._attempt_ended()
                proto.connection_lost(self.conn_id, self.now, "connect timed out")
                self._settle(wait=False)
                continue
            proto.handle_timer(self.now)
            self._settle(wait=False)
            after = proto.next_deadline()
            if after is not None and after <= self.now:
                self.problems["timer"].append(
                    f"handle_timer({self.now}) left the deadline at {after}"
                )
                return
        else:
            return
        self.now = target

    # -- the server: the wire -------------------------------------------------------

    def _push(self, payloads: list[dict[str, Any] | str], cause: str = "resume") -> None:
        """Send payloads in one read, without settling. ``cause`` is what it
        means when they end the connection."""
        conn = self.conn
        assert conn is not None
        for p in payloads:
            conn.ws.send_text((p if isinstance(p, str) else json.dumps(p)).encode())
        self._push_raw(conn.output(), cause)

    def _push_raw(self, data: bytes, cause: str = "resume") -> None:
        self.model.cause = cause
        self.proto.receive_data(self.conn_id, data, self.now)

    def _send(self, payloads: list[dict[str, Any] | str], cause: str = "resume") -> None:
        self._push(payloads, cause)
        self._settle()

    def _server_receive(self, conn: ServerConn, data: bytes) -> None:
        conn.ws.receive_data(data)
        for event in conn.ws.events_received():
            if isinstance(event, Request):
                if conn.upgrade:
                    conn.ws.send_response(conn.ws.accept(event))
                    conn.open = True
                else:
                    conn.ws.send_response(conn.ws.reject(503, "try again later"))
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self._client_payload(conn, json.loads(bytes(event.data)))
            elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                self._client_closed(conn, int.from_bytes(event.data[:2], "big"))
            elif isinstance(event, Frame) and event.opcode is not Opcode.PONG:
                self.problems["transport"].append(f"the client sent a {event.opcode.name} frame")
        if conn.ws.parser_exc is not None:
            self.problems["transport"].append(f"bad frame from the client: {conn.ws.parser_exc}")

    def _client_closed(self, conn: ServerConn, code: int) -> None:
        """A close frame from the client. 1000 and 1001 end the session on the
        server, so the client must use them only when the application closes."""
        if conn.server_closed:
            return  # the answer to ours: it echoes our code
        if code in (1000, 1001):
            if self.model.cause != "closed":
                self.problems["transport"].append(f"the client closed with {code} to reconnect")
            if conn.session is not None:
                conn.session.invalidated = True

    def _client_payload(self, conn: ServerConn, payload: Any) -> None:
        op = payload.get("op") if isinstance(payload, dict) else None
        d = payload.get("d") if isinstance(payload, dict) else None
        if op == 1:
            self.heartbeats.append((d, self.model.seq))
            if not conn.drop_acks:
                conn.ws.send_text(b'{"op":11}')
        elif op in (2, 6) and isinstance(d, dict):
            kind = "identify" if op == 2 else "resume"
            if not conn.hello or conn.login is not None:
                early = "before Hello" if not conn.hello else f"after {conn.login}"
                self.problems["login"].append(f"{kind} {early}")
            conn.login = self.model.attempt_login = kind
            conn.resume_from = (d.get("session_id"), d.get("seq"))
            self.logins.append((kind, d, self.model.session, self.model.seq))
            self._check_token(d.get("token"))
        else:
            self.problems["login"].append(f"unexpected payload from the client: {payload!r}")

    def _check_token(self, token: Any) -> None:
        known = self.tokens.get(token.removeprefix("QQBot ") if isinstance(token, str) else "")
        if known is None:
            self.problems["login"].append(f"unknown token {token!r}")
            return
        gen, expires_at, margin = known
        if gen != self.token_gen or gen < self.model.token_floor:
            self.problems["login"].append(f"token #{gen} used; latest #{self.token_gen}")
        if self.now >= expires_at - margin:
            self.problems["login"].append(f"token #{gen} about to expire at {self.now}")

    # -- the server: its moves (they push without settling) --------------------------

    def _ready(self, conn: ServerConn, then: int) -> None:
        """Answer Identify: READY for a new session, maybe more in the same read."""
        s, entries = self.server.ready(then)
        conn.answered = True
        conn.session = s
        self.model.saw(entries)
        self.model.good(self.now)
        self._push([e.frame() for e in entries])

    def _answer_resume(
        self, conn: ServerConn, rejection: str | int, overlap: int, *, one_read: bool
    ) -> None:
        """Honour the Resume (replay, then RESUMED) or refuse it."""
        conn.answered = True
        sid, seq = conn.resume_from
        honoured = self.server.resume(sid, seq, overlap)
        if honoured is None:
            if rejection == "op 9":
                self._push([{"op": 9, "d": False}], "invalidate op 9")
            else:
                assert isinstance(rejection, int)
                self._close(rejection)
            return
        conn.session, entries = honoured
        self.model.saw(entries)
        self.model.good(self.now)
        if one_read:
            self._push([e.frame() for e in entries])
        else:
            for e in entries:
                if self.conn is conn:
                    self._send([e.frame()])

    def _close(self, code: int) -> None:
        """A close frame from the server."""
        conn = self.conn
        assert conn is not None
        cause = close_cause(code)
        if cause == "invalidate close":
            self.server.invalidate_newest()
        self.model.cause_code = code
        conn.server_closed = True
        conn.ws.send_close(code, "bye")
        self._push_raw(conn.output(), cause)

    def _invalid_session(self, resumable: bool) -> None:
        """op 9, and what it means now (settled)."""
        if self._awaiting("identify"):
            cause = "intents"
        elif resumable:
            cause = "resume"
        else:
            cause = "invalidate op 9"
            self.server.invalidate_newest()
        self._send([{"op": 9, "d": resumable}], cause)

    def _lose_transport(self) -> None:
        """The transport dies under the client (settled)."""
        self.conn = None
        self._attempt_ended()
        self.proto.connection_lost(self.conn_id, self.now, "connection reset")
        self._settle()

    # -- what the rules' preconditions ask ------------------------------------------

    def _open(self) -> bool:
        return self.conn is not None and self.conn.open

    def _live_session(self) -> bool:
        return self.conn is not None and self.conn.session is not None

    def _waiting_to_reconnect(self) -> bool:
        return (
            self.conn is None
            and not self.pending_connect
            and not self.lost_pending
            and self.proto.state not in (GatewayState.FAILED, GatewayState.CLOSED)
            and self.proto.next_deadline() is not None
        )

    def _awaiting(self, kind: str) -> bool:
        conn = self.conn
        return conn is not None and conn.login == kind and not conn.answered
