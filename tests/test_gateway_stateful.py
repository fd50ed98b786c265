"""GatewayProtocol against a scripted QQ gateway server, through random schedules.

A Hypothesis ``RuleBasedStateMachine`` plays three parts at once:

- the driver: a fake clock, one transport at a time, tokens handed over on
  request (at once, late, or short-lived), ``connection_lost`` reported at once
  or after the batch of actions;
- the network: connects accepted or refused, upgrades refused, transports
  dropped, dispatches lost in flight;
- the QQ gateway server, speaking WebSocket through the sans-IO protocol of
  the ``websockets`` library (not wsproto, so our framing meets an independent
  implementation). It keeps real session bookkeeping: READY creates a session
  it remembers, every dispatch takes the next seq of its session and goes into
  that session's log, and a Resume is honoured only for the newest session id,
  never for one the server invalidated (op 9 false, 4006, 4007, 49xx). An
  honoured Resume replays the log after the client's seq (sometimes with a few
  events the client already has, as an at-least-once server may) and then
  sends RESUMED; any other Resume gets op 9 false or a 4006/4007/4902 close.

Beside the server the machine keeps a model of what the client must believe,
written from the spec rather than from the code: the session it holds, the
last seq it received, how many attempts in a row failed, how many resumes
failed, how many 4004s came in a row, which token it may use. The invariants
compare the client's actions and public state with the model after every step.

Profiles (``tests/conftest.py``): ``dev`` by default, ``ci`` when CI=true,
``soak`` with HYPOTHESIS_PROFILE=soak (``make soak``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from qqproto.actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    FetchToken,
    SendData,
    StateChanged,
)
from qqproto.qq.events import EVENT_TYPES, Dispatch, Event, ProtocolViolation
from qqproto.qq.gateway import GatewayConfig, GatewayProtocol, Link, Session
from qqproto.qq.lifecycle import TABLE, GatewayState

MAX_ATTEMPTS = 5
MAX_FAILED_RESUMES = 3  # documented: after 3 failed resumes, start a new session
MAX_MESSAGE_SIZE = 4096
URL = "wss://gateway.test/websocket/"
BACKOFF_BASE, BACKOFF_CAP, JITTER = 1.0, 10.0, 0.25
RATE_LIMITED_PAUSE = 60.0  # spec 4.1: wait 60 s after 4008
NEW_SESSION_PAUSE = (1.0, 5.0)  # before a new Identify after the server dropped the session
SHORT_SESSION = 10.0  # a session lost sooner than this after READY/RESUMED was short-lived
SHORT_SESSIONS_TOLERATED = 2  # in a row; from the next one on, reconnects back off

#: Every (old, new) a StateChanged may carry: the rows of TABLE that move.
STATE_PAIRS = frozenset(
    (source.name, dest.name)
    for _, sources, dest in TABLE
    for source in sources
    if dest is not None and dest is not source
)
TERMINAL = (GatewayState.FAILED, GatewayState.CLOSED)

# Close codes by what the client must do (spec section 4.1), written out
# here, not read from payloads.CLOSE_CODES, so a wrong row there is caught.
RESUME_CODES = (1000, 1001, 1011, 4000, 4009, 3000, 4500, 4999)  # the last 3 are unknown
IDENTIFY_CODES = (4003, 4005, 4006, 4007, *range(4900, 4914))
FATAL_CODES = (4001, 4002, 4010, 4011, 4012, 4013, 4014, 4914, 4915)
close_codes = st.one_of(
    st.sampled_from(RESUME_CODES),
    st.sampled_from(RESUME_CODES),
    st.sampled_from((4004, 4008)),  # refresh the token; wait 60 s
    st.sampled_from(IDENTIFY_CODES),
    st.sampled_from(IDENTIFY_CODES),
    st.sampled_from(FATAL_CODES),
)

# Mostly short jumps (heartbeats, hello timeouts, backoff), now and then long
# ones (the 60 s pause after 4008, tokens expiring).
time_steps = st.one_of(
    st.integers(0, 30).map(lambda n: n / 10),
    st.integers(0, 150).map(lambda n: n / 10),
    st.integers(0, 90).map(float),
)
token_lives = st.sampled_from([1.0, 7.0, 25.0, 7200.0, 7200.0])
hello_intervals = st.one_of(
    st.integers(1_000, 15_000),
    st.sampled_from([None, 0, -1, "45000"]),  # unusable: the client falls back
)
rejections = st.sampled_from(["op 9", 4006, 4007, 4902])

# Bad payloads the client must report (ProtocolViolation) and survive.
GARBAGE = (
    "invalid json",
    "json array",
    "json number",
    "json null",
    "binary frame",
    "unknown opcode",
    "string opcode",
    "no opcode",
    "second hello",
    "dispatch without d",
    "dispatch without t",
    "READY out of turn",
    "RESUMED out of turn",
)


@dataclass(slots=True)
class Entry:
    """One dispatch in a server session's log."""

    seq: int
    type: str
    id: str
    data: Any
    deliverable: bool = True  # well formed: the client must hand it over
    replayable: bool = True  # READY and RESUMED are never replayed

    def frame(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"op": 0, "s": self.seq, "t": self.type, "id": self.id}
        if self.deliverable:
            payload["d"] = self.data
        return payload


@dataclass(slots=True)
class ServerSession:
    sid: str
    log: list[Entry] = field(default_factory=list)
    invalidated: bool = False
    expected: list[int] = field(default_factory=list)  # deliverable seqs, in log order
    got: list[int] = field(default_factory=list)  # seqs the client delivered, in order
    #: How many of ``expected`` the client must have delivered: all of them
    #: as of the last READY or RESUMED.
    must_have: int = 0

    @property
    def last_seq(self) -> int:
        return self.log[-1].seq if self.log else 0


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


class GatewayMachine(RuleBasedStateMachine):
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
        self.conn: ServerConn | None = None
        self.lost_pending = False  # Disconnect carried out, connection_lost not yet reported
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
        self.goods = 0
        # The server.
        self.sessions: dict[str, ServerSession] = {}
        self.entries: dict[str, tuple[ServerSession, Entry]] = {}
        self.newest: str | None = None
        # What the client sent, with what the model expected at that moment.
        self.heartbeats: list[tuple[Any, int | None]] = []
        self.checked_heartbeats = 0
        self.logins: list[tuple[str, Any, str | None, int | None]] = []
        self.checked_logins = 0
        # The model of the client.
        self.cl_session: str | None = None
        self.cl_seq: int | None = None
        self.failures = 0  # attempts in a row that reached neither READY nor RESUMED
        self.short_sessions = 0  # good sessions in a row lost within SHORT_SESSION
        self.good_since = 0.0
        self.auth_failures = 0  # 4004s in a row
        self.failed_resumes = 0
        self.token_floor = 0  # the next login needs a token of this generation or later
        self.expect_failed: str | None = None  # why the client must be FAILED
        self.expect_closed = False
        # The current connection attempt, and what ends it.
        self.att_login: str | None = None
        self.att_good = False
        self.cause = "resume"
        self.cause_code = 0
        self.reconnect_window: tuple[float, float, str] | None = None

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        eager_lost=st.booleans(),
        prompt_tokens=st.booleans(),
        lives=st.lists(token_lives, min_size=1, max_size=3),
        restart=st.sampled_from(["fresh", "fresh", "valid", "invalidated", "unknown"]),
        restored=st.integers(0, 4),
        seen=st.integers(0, 4),
    )
    def start(
        self,
        seed: int,
        eager_lost: bool,
        prompt_tokens: bool,
        lives: list[float],
        restart: str,
        restored: int,
        seen: int,
    ) -> None:
        self.eager_lost = eager_lost
        self.prompt_tokens = prompt_tokens
        self.lives = lives
        self.config = GatewayConfig(
            app_id="1",
            gateway_url=URL,
            max_attempts=MAX_ATTEMPTS,
            backoff_base=BACKOFF_BASE,
            backoff_cap=BACKOFF_CAP,
            hello_timeout=5.0,
            max_message_size=MAX_MESSAGE_SIZE,
            seed=seed,
        )
        session = None
        if restart != "fresh":
            # A process restart: the client resumes a stored session. The server
            # knows it (or not), with READY and ``restored`` dispatches in its
            # log, of which the client had seen the first ``seen``.
            seq = 1 + min(seen, restored)
            if restart == "unknown":
                sid = "forgotten"
            else:
                s = self._new_session()
                sid = s.sid
                self._log(s, "READY", {"session_id": sid}, replayable=False)
                for _ in range(restored):
                    self._message(s)
                s.got = [n for n in s.expected if n <= seq]
                s.must_have = len(s.got)
                s.invalidated = restart == "invalidated"
            self.cl_session, self.cl_seq = sid, seq
            session = Session(sid, seq, (0, 1), URL)
        self._new_client(session)

    def _new_client(self, session: Session | None) -> None:
        if session is not None:
            # Stored as JSON and read back, as an application would.
            session = Session.from_dict(json.loads(json.dumps(session.to_dict())))
        self.proto = GatewayProtocol(self.config, session)
        self.last_state = "CONNECTING" if session is None else "RESUMING"
        self._settle()

    # -- the driver ---------------------------------------------------------------

    def _settle(self) -> None:
        """Carry out the client's actions, deliver the server's automatic
        replies (upgrade response, ACKs, close answers), answer logins and
        token requests when playing prompt, until both sides are quiet."""
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
                    proto.receive_data(data, self.now)
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
        self.cause = "resume"

    def _report_lost(self) -> None:
        self.lost_pending = False
        self.proto.connection_lost(self.now, None)

    def _carry_out(self, action: Action) -> None:
        if self.failed:
            self.problems["terminal"].append(f"{action!r} after Failed")
        if isinstance(action, Connect):
            if self.pending_connect or self.conn is not None or self.lost_pending:
                self.problems["transport"].append(f"second transport asked for at {self.now}")
            if self.terminal_seen:
                self.problems["terminal"].append(f"Connect at {self.now} after the end")
            if self.reconnect_window is not None:
                low, high, cause = self.reconnect_window
                if not low - 1e-9 <= self.now <= high + 1e-9:
                    self.problems["pacing"].append(
                        f"reconnect at {self.now} after {cause}; expected in [{low}, {high}]"
                    )
                self.reconnect_window = None
            self.pending_connect = True
            self.att_login = None
            self.att_good = False
        elif isinstance(action, SendData):
            if self.conn is None:
                self.problems["transport"].append("SendData without a transport")
            else:
                self._server_receive(self.conn, action.data)
        elif isinstance(action, Disconnect):
            if not self.pending_connect and self.conn is None:
                self.problems["transport"].append("Disconnect without a transport")
            self.disconnects += 1
            self._attempt_ended()
            self.pending_connect = False
            self.conn = None
            self.lost_pending = True
        elif isinstance(action, FetchToken):
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
            else:
                self.problems["delivery"].append(f"unexpected event {event!r}")
        elif isinstance(action, StateChanged):
            self.state_changes.append(action)
            self.terminal_seen = self.terminal_seen or action.new in ("FAILED", "CLOSED")
        elif isinstance(action, Failed):
            self.failed.append(action.reason)

    def _delivered(self, event: Dispatch) -> None:
        found = self.entries.get(event.id or "")
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

    # -- the model ------------------------------------------------------------------

    def _attempt_ended(self) -> None:
        """A connection attempt is over: move the model the way the spec says
        the client must, by what ended the attempt (``self.cause``)."""
        cause, self.cause = self.cause, "resume"
        if cause == "closed":
            return
        if cause in ("fatal", "intents"):
            self.expect_failed = cause
            return
        if cause == "auth":
            self.auth_failures += 1
            if self.auth_failures > 1:
                self.expect_failed = "auth"
                return
        if cause in ("auth", "invalidate op 9"):
            self.token_floor = self.token_gen + 1
        if self.att_login == "resume" and not self.att_good:
            self.failed_resumes += 1
        if cause.startswith("invalidate") or (
            self.cl_session is not None and self.failed_resumes >= MAX_FAILED_RESUMES
        ):
            self.cl_session = self.cl_seq = None
            self.failed_resumes = 0
        if not self.att_good:
            self.failures += 1
            if self.failures >= MAX_ATTEMPTS:
                self.expect_failed = "gave up"
                return
        # When the next Connect may come: after a pause the cause asks for,
        # and, when this attempt failed, after an exponential backoff with
        # jitter that a good session resets.
        pause = (0.0, 0.0)
        if cause == "resume later":
            pause = (RATE_LIMITED_PAUSE, RATE_LIMITED_PAUSE)
        elif cause.startswith("invalidate"):
            pause = NEW_SESSION_PAUSE
        backoff = (0.0, 0.0)
        if not self.att_good:
            backoff = self._backoff_window(self.failures)
        elif self.now - self.good_since >= SHORT_SESSION:
            self.short_sessions = 0
        else:
            self.short_sessions += 1
            if self.short_sessions > SHORT_SESSIONS_TOLERATED:
                backoff = self._backoff_window(self.short_sessions - SHORT_SESSIONS_TOLERATED)
        low, high = max(pause[0], backoff[0]), max(pause[1], backoff[1])
        self.reconnect_window = (self.now + low, self.now + high, cause)

    @staticmethod
    def _backoff_window(nth: int) -> tuple[float, float]:
        """Where the ``nth`` wait of a backoff falls (doubling, capped, +-JITTER)."""
        raw = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (nth - 1))
        return raw * (1 - JITTER), min(BACKOFF_CAP, raw * (1 + JITTER))

    def _saw(self, entries: list[Entry]) -> None:
        """The client is about to read these dispatches."""
        for e in entries:
            if e.type == "READY":
                self.cl_session, self.cl_seq = e.id.split(":")[0], e.seq
            elif self.cl_seq is None or e.seq > self.cl_seq:
                self.cl_seq = e.seq

    def _good(self) -> None:
        """READY or RESUMED is about to reach the client."""
        self.att_good = True
        self.good_since = self.now
        self.goods += 1
        self.failures = self.auth_failures = self.failed_resumes = 0

    # -- the server -------------------------------------------------------------------

    def _new_session(self) -> ServerSession:
        s = ServerSession(f"sess-{len(self.sessions) + 1}")
        self.sessions[s.sid] = s
        self.newest = s.sid
        return s

    def _invalidate_newest(self) -> None:
        if self.newest is not None:
            self.sessions[self.newest].invalidated = True

    def _log(
        self,
        s: ServerSession,
        kind: str,
        data: Any,
        *,
        deliverable: bool = True,
        replayable: bool = True,
    ) -> Entry:
        seq = s.last_seq + 1
        entry = Entry(seq, kind, f"{s.sid}:{seq}", data, deliverable, replayable)
        s.log.append(entry)
        self.entries[entry.id] = (s, entry)
        if deliverable:
            s.expected.append(seq)
        return entry

    def _message(self, s: ServerSession) -> Entry:
        n = len(s.log)
        d = {
            "id": f"m{n}",
            "content": f" hi {n}",
            "author": {"member_openid": f"member-{n % 3}"},
            "group_openid": "group-1",
        }
        return self._log(s, "GROUP_AT_MESSAGE_CREATE", d)

    def _push(self, payloads: list[dict[str, Any] | str], cause: str = "resume") -> None:
        """Send payloads in one read, without settling. ``cause`` is what it
        means when they end the connection."""
        conn = self.conn
        assert conn is not None
        for p in payloads:
            conn.ws.send_text((p if isinstance(p, str) else json.dumps(p)).encode())
        self._push_raw(conn.output(), cause)

    def _push_raw(self, data: bytes, cause: str = "resume") -> None:
        self.cause = cause
        self.proto.receive_data(data, self.now)

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
            if self.cause != "closed":
                self.problems["transport"].append(f"the client closed with {code} to reconnect")
            if conn.session is not None:
                conn.session.invalidated = True

    def _client_payload(self, conn: ServerConn, payload: Any) -> None:
        op = payload.get("op") if isinstance(payload, dict) else None
        d = payload.get("d") if isinstance(payload, dict) else None
        if op == 1:
            self.heartbeats.append((d, self.cl_seq))
            if not conn.drop_acks:
                conn.ws.send_text(b'{"op":11}')
        elif op in (2, 6) and isinstance(d, dict):
            kind = "identify" if op == 2 else "resume"
            if not conn.hello or conn.login is not None:
                early = "before Hello" if not conn.hello else f"after {conn.login}"
                self.problems["login"].append(f"{kind} {early}")
            conn.login = self.att_login = kind
            conn.resume_from = (d.get("session_id"), d.get("seq"))
            self.logins.append((kind, d, self.cl_session, self.cl_seq))
            self._check_token(d.get("token"))
        else:
            self.problems["login"].append(f"unexpected payload from the client: {payload!r}")

    def _check_token(self, token: Any) -> None:
        known = self.tokens.get(token.removeprefix("QQBot ") if isinstance(token, str) else "")
        if known is None:
            self.problems["login"].append(f"unknown token {token!r}")
            return
        gen, expires_at, margin = known
        if gen != self.token_gen or gen < self.token_floor:
            self.problems["login"].append(f"token #{gen} used; latest #{self.token_gen}")
        if self.now >= expires_at - margin:
            self.problems["login"].append(f"token #{gen} about to expire at {self.now}")

    def _ready(self, conn: ServerConn, then: int) -> None:
        """Answer Identify: READY for a new session, maybe more in the same read."""
        s = self._new_session()
        ready = self._log(
            s,
            "READY",
            {"version": 1, "session_id": s.sid, "user": {"id": "42", "bot": True}},
            replayable=False,
        )
        entries = [ready] + [self._message(s) for _ in range(then)]
        conn.answered = True
        conn.session = s
        s.must_have = 1
        self._saw(entries)
        self._good()
        self._push([e.frame() for e in entries])

    def _answer_resume(
        self, conn: ServerConn, rejection: str | int, overlap: int, *, one_read: bool
    ) -> None:
        """Honour the Resume (replay, then RESUMED) or refuse it."""
        conn.answered = True
        sid, seq = conn.resume_from
        s = self.sessions.get(sid)
        if s is None or s.invalidated or sid != self.newest or not 0 < seq <= s.last_seq:
            if s is not None:
                s.invalidated = True
            if rejection == "op 9":
                self._push([{"op": 9, "d": False}], "invalidate op 9")
            else:
                assert isinstance(rejection, int)
                self._close(rejection)
            return
        replay = [e for e in s.log if e.replayable and e.seq > seq]
        seen = [e for e in s.log if e.replayable and e.seq <= seq]
        again = seen[max(0, len(seen) - overlap) :]
        entries = again + replay + [self._log(s, "RESUMED", "", replayable=False)]
        conn.session = s
        s.must_have = len(s.expected)
        self._saw(entries)
        self._good()
        if one_read:
            self._push([e.frame() for e in entries])
        else:
            for e in entries:
                if self.conn is conn:
                    self._send([e.frame()])

    def _close(self, code: int) -> None:
        """A close frame from the server (without settling)."""
        conn = self.conn
        assert conn is not None
        if code in FATAL_CODES:
            cause = "fatal"
        elif code == 4004:
            cause = "auth"
        elif code in IDENTIFY_CODES:
            cause = "invalidate close"
            self._invalidate_newest()
        else:
            cause = "resume later" if code == 4008 else "resume"
        self.cause_code = code
        conn.server_closed = True
        conn.ws.send_close(code, "bye")
        self._push_raw(conn.output(), cause)

    def _lose_transport(self) -> None:
        self.conn = None
        self._attempt_ended()
        self.proto.connection_lost(self.now, "connection reset")
        self._settle()

    # -- preconditions ------------------------------------------------------------------

    def _open(self) -> bool:
        return self.conn is not None and self.conn.open

    def _live_session(self) -> bool:
        return self.conn is not None and self.conn.session is not None

    def _awaiting(self, kind: str) -> bool:
        conn = self.conn
        return conn is not None and conn.login == kind and not conn.answered

    # -- rules: the network ---------------------------------------------------------------

    @precondition(lambda self: self.pending_connect)
    @rule(
        outcome=st.sampled_from(["accept"] * 6 + ["refuse", "refuse upgrade"]),
        prompt=st.sampled_from([True, True, True, False]),
        hello=hello_intervals,
        rejection=rejections,
        overlap=st.integers(0, 2),
    )
    def answer_connect(
        self, outcome: str, prompt: bool, hello: Any, rejection: str | int, overlap: int
    ) -> None:
        """The pending Connect is accepted (a prompt server sends Hello at
        once and answers logins as they come), refused, or its upgrade is
        refused with HTTP 503."""
        self.pending_connect = False
        if outcome == "refuse":
            self._attempt_ended()
            self.proto.connection_lost(self.now, "connection refused")
            self._settle()
            return
        self.conn = conn = ServerConn(outcome == "accept", prompt, rejection, overlap)
        self.proto.connection_made(self.now)
        self._settle()
        if prompt and self.conn is conn and conn.open:
            self.send_hello(hello)

    @precondition(lambda self: self.conn is not None)
    @rule(eof=st.booleans())
    def drop(self, eof: bool) -> None:
        """The transport dies: an EOF read, or connection_lost."""
        if eof:
            self._push_raw(b"")
            self._settle()
        else:
            self._lose_transport()

    # -- rules: the gateway server ------------------------------------------------------

    @precondition(lambda self: self._open() and not self.conn.hello)
    @rule(interval=hello_intervals)
    def send_hello(self, interval: Any) -> None:
        assert self.conn is not None
        self.conn.hello = True
        self._send([{"op": 10, "d": {"heartbeat_interval": interval}}])

    @precondition(lambda self: self._awaiting("identify"))
    @rule(then=st.integers(0, 2))
    def ready(self, then: int) -> None:
        assert self.conn is not None
        self._ready(self.conn, then)
        self._settle()

    @precondition(lambda self: self._awaiting("identify"))
    @rule(resumable=st.booleans())
    def refuse_identify(self, resumable: bool) -> None:
        """op 9 in answer to Identify: the intents were refused."""
        assert self.conn is not None
        self.conn.answered = True
        self._send([{"op": 9, "d": resumable}], "intents")

    @precondition(lambda self: self._awaiting("resume"))
    @rule(rejection=rejections, overlap=st.integers(0, 2), one_read=st.booleans())
    def answer_resume(self, rejection: str | int, overlap: int, one_read: bool) -> None:
        assert self.conn is not None
        self._answer_resume(self.conn, rejection, overlap, one_read=one_read)
        self._settle()

    @precondition(lambda self: self._live_session())
    @rule(count=st.integers(1, 3), lost=st.integers(0, 3))
    def dispatch(self, count: int, lost: int) -> None:
        """``count`` dispatches in one read; the last ``lost`` of them are lost
        in flight with the transport."""
        conn = self.conn
        assert conn is not None and conn.session is not None
        entries = [self._message(conn.session) for _ in range(count)]
        arrive = entries[: max(0, count - lost)]
        if arrive:
            self._saw(arrive)
            self._send([e.frame() for e in arrive])
        if lost and self.conn is conn:
            self._lose_transport()

    @precondition(lambda self: self._live_session())
    @rule(back=st.integers(0, 5))
    def duplicate(self, back: int) -> None:
        """Send again a dispatch the client already has, with its seq."""
        assert self.conn is not None and self.conn.session is not None
        old = [e for e in self.conn.session.log if e.replayable]
        if old:
            self._send([old[max(0, len(old) - 1 - back)].frame()])

    @precondition(lambda self: self._open())
    @rule()
    def reconnect(self) -> None:
        """op 7: reconnect and resume."""
        self._send([{"op": 7}])

    @precondition(lambda self: self._open())
    @rule(resumable=st.booleans())
    def invalid_session(self, resumable: bool) -> None:
        """op 9 at any moment (in answer to Identify, see refuse_identify)."""
        self._invalid_session(resumable)

    def _invalid_session(self, resumable: bool) -> None:
        if self._awaiting("identify"):
            cause = "intents"
        elif resumable:
            cause = "resume"
        else:
            cause = "invalidate op 9"
            self._invalidate_newest()
        self._send([{"op": 9, "d": resumable}], cause)

    @precondition(lambda self: self._open())
    @rule(code=close_codes)
    def server_close(self, code: int) -> None:
        self._close(code)
        self._settle()

    @precondition(lambda self: self._open())
    @rule(drop=st.booleans())
    def lose_acks(self, drop: bool) -> None:
        """From now on the server loses (or sends) heartbeat ACKs."""
        assert self.conn is not None
        self.conn.drop_acks = drop

    @precondition(lambda self: self._open())
    @rule(ping=st.booleans())
    def request_heartbeat(self, ping: bool) -> None:
        """op 1 (heartbeat now), or a WebSocket ping."""
        assert self.conn is not None
        if ping:
            self.conn.ws.send_ping(b"still there?")
            self._push_raw(self.conn.output())
            self._settle()
        else:
            self._send([{"op": 1}])

    @precondition(lambda self: self._open())
    @rule(kind=st.sampled_from(GARBAGE))
    def garbage(self, kind: str) -> None:
        """A bad payload: the client reports it and keeps the connection."""
        conn = self.conn
        assert conn is not None
        payload: dict[str, Any] | str | bytes
        if kind == "invalid json":
            payload = '{"op": 0, "d": '
        elif kind.startswith("json "):
            payload = {"json array": "[0, 1]", "json number": "11"}.get(kind, "null")
        elif kind == "binary frame":
            payload = b'{"op": 11}'
        elif kind == "unknown opcode":
            payload = {"op": 8, "d": {}}
        elif kind == "string opcode":
            payload = {"op": "11"}
        elif kind == "no opcode":
            payload = {"d": {"heartbeat_interval": 1}}
        elif kind == "second hello" and conn.hello:
            payload = {"op": 10, "d": {"heartbeat_interval": 1000}}
        elif kind.startswith("dispatch without") and conn.session is not None:
            # It takes a seq: the client counts it but cannot deliver it.
            entry = self._log(conn.session, "GROUP_AT_MESSAGE_CREATE", {}, deliverable=False)
            self._saw([entry])
            payload = entry.frame()
            if kind.endswith("t"):
                payload["d"] = {}
                del payload["t"]
        elif kind == "READY out of turn" and self.proto.state is not GatewayState.IDENTIFY:
            payload = {"op": 0, "t": "READY", "d": {"session_id": "forged"}}
        elif kind == "RESUMED out of turn" and not self._awaiting("resume"):
            payload = {"op": 0, "t": "RESUMED", "d": ""}
        else:
            return  # does not apply now
        violations, disconnects, state = self.violations, self.disconnects, self.proto.state
        if isinstance(payload, bytes):
            conn.ws.send_binary(payload)
            self._push_raw(conn.output())
            self._settle()
        else:
            self._send([payload])
        if self.violations == violations:
            self.problems["garbage"].append(f"{kind}: no ProtocolViolation")
        if self.disconnects != disconnects or self.proto.state is not state:
            self.problems["garbage"].append(f"{kind}: the connection did not survive")

    @precondition(lambda self: self._open())
    @rule(too_big=st.booleans())
    def broken_frames(self, too_big: bool) -> None:
        """A message over the size limit, or bytes that are no WebSocket frame:
        the client reports it, closes and resumes."""
        assert self.conn is not None
        if too_big:
            self.conn.ws.send_text(b" " * (MAX_MESSAGE_SIZE + 1))
            data = self.conn.output()
        else:
            data = b"\x8f\x00"  # FIN and a reserved opcode
        violations = self.violations
        self._push_raw(data)
        self._settle()
        if self.violations == violations:
            self.problems["garbage"].append("broken frame: no ProtocolViolation")

    # -- rules: tokens, time, the application ---------------------------------------------

    @precondition(lambda self: self.fetches_outstanding > 0)
    @rule(life=token_lives)
    def give_token(self, life: float) -> None:
        """Answer FetchToken, late (and maybe short-lived)."""
        self._give_token(life)
        self._settle()

    @rule(seconds=time_steps, traffic=st.integers(0, 2))
    def advance(self, seconds: float, traffic: int) -> None:
        """Time passes (after ``traffic`` dispatches, when a session is live)."""
        self._traffic(traffic)
        self._advance_to(self.now + seconds)

    @precondition(lambda self: self.proto.next_deadline() is not None)
    @rule(traffic=st.integers(0, 2))
    def next_timer(self, traffic: int) -> None:
        """Jump to the client's next deadline."""
        self._traffic(traffic)
        deadline = self.proto.next_deadline()
        if deadline is not None:
            self._advance_to(max(self.now, deadline))

    def _traffic(self, count: int) -> None:
        if count and self._live_session():
            self.dispatch(count, 0)

    def _advance_to(self, target: float) -> None:
        """Move the clock, firing the deadlines on the way (at most 20: a long
        jump over a short heartbeat interval stops early)."""
        proto = self.proto
        for _ in range(20):
            deadline = proto.next_deadline()
            if deadline is None or deadline > target:
                break
            self.now = max(self.now, deadline)
            proto.handle_timer(self.now)
            self._settle()
            after = proto.next_deadline()
            if after is not None and after <= self.now:
                self.problems["timer"].append(
                    f"handle_timer({self.now}) left the deadline at {after}"
                )
                return
        else:
            return
        self.now = target

    @precondition(lambda self: self.goods >= 3 and self.proto.state not in TERMINAL)
    @rule(code=st.sampled_from([1000, 4000]))
    def app_close(self, code: int) -> None:
        """The application closes the gateway (1000 ends the session on the
        server; 4000 does not)."""
        self.expect_closed = True
        self.cause = "closed"
        self.proto.close(self.now, code)
        self._settle()

    @precondition(lambda self: self.proto.state in TERMINAL)
    @rule(keep_session=st.booleans())
    def restart(self, keep_session: bool) -> None:
        """After FAILED or CLOSED the application starts a new GatewayProtocol,
        from the session the old one exported (or from scratch)."""
        old = self.proto
        assert not old.actions(), "actions after the end"
        session = old.session if keep_session else None
        if session is None:
            self.cl_session = self.cl_seq = None
        self.state_changes, self.checked_changes, self.failed = [], 0, []
        self.terminal_seen = self.expect_closed = False
        self.expect_failed = None
        self.failures = self.auth_failures = self.failed_resumes = self.fetches_outstanding = 0
        self.short_sessions = self.goods = 0
        self.reconnect_window = None
        self._new_client(session)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def state_follows_the_table(self) -> None:
        state = self.proto.state
        assert isinstance(state, GatewayState), state
        for change in self.state_changes[self.checked_changes :]:
            assert (change.old, change.new) in STATE_PAIRS, f"{change} is no row of TABLE"
            assert change.old == self.last_state, f"{change}, but the state was {self.last_state}"
            self.last_state = change.new
        self.checked_changes = len(self.state_changes)
        assert self.last_state == state.name, (
            f"{state}, the last StateChanged said {self.last_state}"
        )

    @invariant()
    def one_transport_at_a_time(self) -> None:
        assert not self.problems["transport"], self.problems["transport"]
        expected = Link.OPENING if self.pending_connect else Link.OPEN if self.conn else Link.IDLE
        assert self.proto.link is expected, (self.proto.link, expected)

    @invariant()
    def heartbeats_carry_the_last_seq(self) -> None:
        for sent, expected in self.heartbeats[self.checked_heartbeats :]:
            assert sent == expected, f"heartbeat d={sent!r}; the last seq received is {expected}"
        self.checked_heartbeats = len(self.heartbeats)
        assert self.proto.seq == self.cl_seq, f"seq {self.proto.seq}, expected {self.cl_seq}"

    @invariant()
    def resumes_carry_the_session(self) -> None:
        assert not self.problems["login"], self.problems["login"]
        for kind, d, session_id, seq in self.logins[self.checked_logins :]:
            if session_id is None:
                assert kind == "identify", f"Resume {d} but the client holds no session"
            else:
                assert kind == "resume", f"Identify, but session {session_id} was resumable"
                sent = (d.get("session_id"), d.get("seq"))
                assert sent == (session_id, seq), f"Resume {sent}, expected {(session_id, seq)}"
        self.checked_logins = len(self.logins)
        held = self.proto.session
        assert (held and held.session_id) == self.cl_session, (held, self.cl_session)

    @invariant()
    def exactly_once_in_order(self) -> None:
        assert not self.problems["delivery"], self.problems["delivery"]
        for s in self.sessions.values():
            got, expected = s.got, s.expected
            assert got == expected[: len(got)], f"{s.sid}: delivered {got}, sent {expected}"
            assert len(got) >= s.must_have, f"{s.sid}: delivered {got} of {expected}"

    @invariant()
    def fails_only_for_a_reason(self) -> None:
        state = self.proto.state
        why = self.expect_failed
        if state is not GatewayState.FAILED:
            assert why is None, f"{state}, but it should have failed: {why}"
            assert not self.failed, self.failed
        else:
            assert self.failed == [self.proto.failure_reason], self.failed
            reason = self.failed[0]
            assert why is not None, f"FAILED for no good reason: {reason}"
            if why == "fatal":
                assert reason.startswith(f"close {self.cause_code} ("), reason
            elif why == "intents":
                assert "op 9" in reason and "Identify" in reason, reason
            elif why == "auth":
                assert reason.startswith("close 4004 (") and "again" in reason, reason
            else:
                assert reason.startswith(f"gave up after {MAX_ATTEMPTS} failed attempts"), reason
        assert (state is GatewayState.CLOSED) == self.expect_closed, state

    @invariant()
    def reconnects_back_off(self) -> None:
        assert not self.problems["pacing"], self.problems["pacing"]

    @invariant()
    def nothing_after_the_end(self) -> None:
        assert not self.problems["terminal"], self.problems["terminal"]
        if self.proto.state in TERMINAL:
            assert not self.pending_connect, "a Connect outstanding after the end"
            assert self.proto.next_deadline() is None

    @invariant()
    def never_stuck(self) -> None:
        """A live client always has a way on: a deadline, a Connect for the
        driver to answer, or a token it asked for."""
        assert not self.problems["timer"], self.problems["timer"]
        if self.proto.state in TERMINAL or self.pending_connect:
            return
        assert self.proto.next_deadline() is not None, "no deadline and no transport opening"
        conn = self.conn
        if conn is not None and conn.hello and conn.login is None:
            assert self.fetches_outstanding > 0, "Hello came; no login, no token asked for"

    @invariant()
    def bad_frames_are_survived(self) -> None:
        assert not self.problems["garbage"], self.problems["garbage"]


TestGateway = GatewayMachine.TestCase


@pytest.mark.parametrize("resumable", [False, True])
def test_op9_before_identify_is_no_intents_refusal(resumable: bool) -> None:
    """Found by the machine: Hello came, the token is late, so no Identify
    went out; op 9 now cannot be an answer to Identify. The client must lose
    the session (or the link) and reconnect, not fail for good."""
    machine = GatewayMachine()
    machine.start(
        seed=0,
        eager_lost=True,
        prompt_tokens=False,
        lives=[7200.0],
        restart="fresh",
        restored=0,
        seen=0,
    )
    machine.answer_connect("accept", prompt=True, hello=1000, rejection="op 9", overlap=0)
    assert machine.proto.state is GatewayState.IDENTIFY
    assert machine.conn is not None
    assert machine.conn.login is None  # waiting for the token
    machine._invalid_session(resumable)
    machine.fails_only_for_a_reason()
    machine.state_follows_the_table()
    machine.never_stuck()
    machine.teardown()
