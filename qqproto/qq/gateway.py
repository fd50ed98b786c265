"""GatewayProtocol: one QQ gateway session (one shard) as a sans-IO object.

The object is given bytes, the time and access tokens; it answers with
actions (``qqproto.actions``). Its lifecycle is the table in
``lifecycle.py``; this module decides *when* to fire an input, and what to
send, and owns everything per connection that the table does not need:
heartbeats, the sequence number, the token, the backoff.

Every way a connection can end (a close frame, a lost transport, op 7,
op 9, a missed heartbeat ACK, a Hello that never came) goes through one
method, :meth:`GatewayProtocol._lose`, which decides between resuming,
starting a new session, and giving up, and arms exactly one reconnect.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    FetchToken,
    SendData,
    StateChanged,
)
from ..backoff import Backoff
from ..errors import ConfigError, LocalProtocolError, RemoteProtocolError
from ..ws import (
    DEFAULT_MAX_MESSAGE_SIZE,
    BytesReceived,
    Closed,
    Entropy,
    TextReceived,
    WebSocketClient,
)
from .events import Dispatch, ProtocolViolation
from .lifecycle import GatewayState, Input, Lifecycle, allowed
from .payloads import (
    CloseAction,
    Intents,
    close_policy,
    decode_envelope,
    encode_heartbeat,
    encode_identify,
    encode_resume,
)

__all__ = ["DEFAULT_GATEWAY_URL", "GatewayConfig", "GatewayProtocol", "Session"]

DEFAULT_GATEWAY_URL = "wss://api.sgroup.qq.com/websocket/"

#: The close code we send when we mean to resume. 1000 and 1001 tell a
#: server the session is over; a 3xxx code does not.
RESUMABLE_CLOSE_CODE = 3000
#: Heartbeat interval (ms) to use when Hello does not carry a usable one.
FALLBACK_HEARTBEAT_MS = 41_250
#: Consecutive resumes that may fail before we start a new session instead.
MAX_FAILED_RESUMES = 3
#: The pause after close 4008 ("sending payloads too fast").
RATE_LIMITED_PAUSE = 60.0
#: The pause before a new Identify after the server dropped our session.
NEW_SESSION_PAUSE = (1.0, 5.0)
#: A token is refreshed this long before it expires (at most half its life).
TOKEN_MARGIN = 10.0

S = GatewayState
_TERMINAL = (S.FAILED, S.CLOSED)


class Link(Enum):
    """The transport under the session, one at a time."""

    IDLE = "idle"  # none; a reconnect may be pending
    OPENING = "opening"  # Connect was asked for
    OPEN = "open"  # connection_made was called
    CLOSING = "closing"  # Disconnect was asked for; waiting for connection_lost


class _Login(Enum):
    NONE = "none"
    PENDING = "waiting for a token"
    IDENTIFY = "identify sent"
    RESUME = "resume sent"


@dataclass(frozen=True, slots=True)
class Session:
    """What it takes to resume a session, as a plain value.

    Export it with ``GatewayProtocol.session`` (``to_dict`` gives JSON-ready
    data), store it, and pass it to a new ``GatewayProtocol`` to resume after
    a restart.
    """

    session_id: str
    seq: int | None
    shard: tuple[int, int]
    gateway_url: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "seq": self.seq,
            "shard": [self.shard[0], self.shard[1]],
            "gateway_url": self.gateway_url,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        session_id = data.get("session_id")
        if type(session_id) is not str or not session_id:
            raise ConfigError("session.session_id", "a non-empty string", session_id)
        seq = data.get("seq")
        if seq is not None and (type(seq) is not int or seq < 0):
            raise ConfigError("session.seq", "null or an integer >= 0", seq)
        shard = data.get("shard")
        if (
            not isinstance(shard, list | tuple)
            or len(shard) != 2
            or not all(type(n) is int for n in shard)
        ):
            raise ConfigError("session.shard", "[shard_id, shard_count]", shard)
        url = data.get("gateway_url")
        if type(url) is not str or not url:
            raise ConfigError("session.gateway_url", "a ws:// or wss:// URL", url)
        return cls(session_id, seq, (shard[0], shard[1]), url)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """How to run one gateway session. Validated on construction."""

    app_id: str
    intents: Intents | int = field(default_factory=Intents.default)
    shard: tuple[int, int] = (0, 1)
    gateway_url: str = DEFAULT_GATEWAY_URL
    #: Consecutive connection attempts that may fail to reach READY/RESUMED.
    max_attempts: int = 30
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    #: Seconds from connection_made until Hello and a login must have happened.
    hello_timeout: float = 30.0
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Sent as Identify's ``properties`` when given (the server ignores them).
    properties: Mapping[str, str] | None = None
    #: Jitter comes from ``rng`` when given, else from ``random.Random(seed)``.
    #: Drivers pass an OS-seeded ``random.Random()``; tests pass a seed.
    seed: int = 0
    rng: random.Random | None = field(default=None, compare=False, repr=False)
    #: WebSocket masking keys and handshake nonces: ``os.urandom`` in drivers;
    #: when None, bytes from the jitter RNG, so runs are reproducible.
    entropy: Entropy | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if type(self.app_id) is not str or not self.app_id:
            raise ConfigError("app_id", "a non-empty string", self.app_id)
        intents = int(self.intents)
        if not 0 <= intents < 1 << 31:
            raise ConfigError("intents", "a bit mask from 0 to 2**31 - 1", self.intents)
        shard = self.shard
        if not (
            isinstance(shard, tuple)
            and len(shard) == 2
            and all(type(n) is int for n in shard)
            and 0 <= shard[0] < shard[1]
        ):
            raise ConfigError("shard", "(shard_id, shard_count) with 0 <= id < count", shard)
        if not self.gateway_url.startswith(("ws://", "wss://")):
            raise ConfigError("gateway_url", "a ws:// or wss:// URL", self.gateway_url)
        if self.max_attempts < 1:
            raise ConfigError("max_attempts", "an integer >= 1", self.max_attempts)
        if not self.hello_timeout > 0:
            raise ConfigError("hello_timeout", "a positive number of seconds", self.hello_timeout)


@dataclass(frozen=True, slots=True)
class _Loss:
    """Why a connection ended, and what that asks for."""

    input: Input
    reason: str
    pause: float = 0.0  # the least wait before the next connection
    refresh_token: bool = False


class GatewayProtocol:
    """One gateway session, driven through the driver contract.

    Right after construction, :meth:`actions` holds the first ``Connect`` (and
    a ``FetchToken``, since no token is known yet). See
    ``docs/gateway.md`` for a walk-through.
    """

    def __init__(self, config: GatewayConfig, session: Session | None = None) -> None:
        if session is not None and session.shard != config.shard:
            raise ConfigError(
                "session.shard", f"the configured shard {config.shard}", session.shard
            )
        self.config = config
        self._rng = config.rng or random.Random(config.seed)
        self._entropy = config.entropy or self._rng.randbytes
        self._backoff = Backoff(
            self._rng,
            base=config.backoff_base,
            cap=config.backoff_cap,
            max_attempts=config.max_attempts,
        )
        self._lifecycle = Lifecycle(S.RESUMING if session else S.CONNECTING)
        self._out: list[Action] = []
        self.failure_reason: str | None = None

        # The session (survives connections).
        self._session_id = session.session_id if session else None
        self._seq = session.seq if session else None
        self._gateway_url = session.gateway_url if session else config.gateway_url
        self.bot_user: Any = None
        self._failed_resumes = 0
        self._failed_auths = 0

        # The access token.
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_margin = 0.0
        self._token_requested = False

        # The transport and what belongs to one connection.
        self._link = Link.IDLE
        self._ws: WebSocketClient | None = None
        self._reconnect_at: float | None = None
        self._reset_connection()

        self._request_token("no access token yet")
        self._open_link()

    def _reset_connection(self) -> None:
        self._hello_deadline: float | None = None
        self._heartbeat_interval: float | None = None
        self._heartbeat_at: float | None = None
        self._ack_pending = False
        self._login = _Login.NONE
        self._good = False  # reached READY or RESUMED on this connection

    # -- what the embedder reads ----------------------------------------------

    @property
    def state(self) -> GatewayState:
        return self._lifecycle.state

    @property
    def link(self) -> Link:
        return self._link

    @property
    def seq(self) -> int | None:
        """The last sequence number received in this session."""
        return self._seq

    @property
    def session(self) -> Session | None:
        """The resumable session, or None when there is none to resume."""
        if self._session_id is None:
            return None
        return Session(self._session_id, self._seq, self.config.shard, self._gateway_url)

    def actions(self) -> list[Action]:
        """Drain the actions to carry out now, in order."""
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next, or None."""
        if self.state in _TERMINAL:
            return None
        if self._link is Link.IDLE:
            return self._reconnect_at
        if self._link is Link.OPEN:
            if self._hello_deadline is not None:
                return self._hello_deadline
            return self._heartbeat_at
        return None

    # -- the driver contract --------------------------------------------------

    def connection_made(self, now: float) -> None:
        if self._link is not Link.OPENING:
            raise LocalProtocolError(
                "connection_made without an outstanding Connect",
                expected="a Connect action to answer",
                received=f"link {self._link.value}",
            )
        assert self._ws is not None
        self._link = Link.OPEN
        self._hello_deadline = now + self.config.hello_timeout
        self._send(self._ws.connect())

    def receive_data(self, data: bytes, now: float) -> None:
        if self._link is not Link.OPEN:
            if self._link is Link.CLOSING:
                return  # we already let this transport go
            raise LocalProtocolError(
                "data received without an open transport",
                expected="connection_made before receive_data",
                received=f"link {self._link.value}",
            )
        ws = self._ws
        assert ws is not None
        for event in ws.receive_data(data):
            if type(event) is TextReceived:
                self._on_text(event.text, now)
            elif type(event) is Closed:
                self._on_ws_closed(event, now)
            elif type(event) is BytesReceived:
                self._violation(
                    RemoteProtocolError(
                        "binary WebSocket message", expected="a text message", received=event
                    )
                )
            if not self._is_open():
                # We ended the connection mid-read: what followed is for a
                # later resume to replay.
                return
        reply = ws.data_to_send()
        if reply:
            self._send(reply)

    def connection_lost(self, now: float, reason: str | None = None) -> None:
        link = self._link
        if link is Link.IDLE:
            raise LocalProtocolError(
                "connection_lost without a transport",
                expected="a Connect action outstanding or a transport open",
                received="no transport",
            )
        if link is Link.CLOSING:
            self._link = Link.IDLE
            self._ws = None
            self._maybe_connect(now)
            return
        what = "could not connect" if link is Link.OPENING else "transport lost"
        why = f"{what}: {reason}" if reason else what
        self._lose(_Loss(Input.LINK_LOST, why), now, transport_gone=True)

    def handle_timer(self, now: float) -> None:
        if self.state in _TERMINAL:
            return
        link = self._link
        if link is Link.IDLE:
            self._maybe_connect(now)
        elif link is Link.OPEN:
            deadline = self._hello_deadline
            if deadline is not None:
                if now >= deadline:
                    waited = "Hello" if self._heartbeat_interval is None else "access token"
                    self._token_requested = False  # ask again on the next connection
                    self._lose(
                        _Loss(Input.LINK_LOST, f"no {waited} within {self.config.hello_timeout} s"),
                        now,
                    )
                return
            if self._heartbeat_at is not None and now >= self._heartbeat_at:
                if self._ack_pending:
                    self._lose(_Loss(Input.LINK_LOST, "heartbeat not acknowledged"), now)
                    return
                self._send_text(encode_heartbeat(self._seq))
                self._ack_pending = True
                assert self._heartbeat_interval is not None
                self._heartbeat_at = now + self._heartbeat_interval

    def http_response(self, request_id: int, response: object, now: float) -> None:
        raise LocalProtocolError(
            "the gateway made no HTTP request",
            expected="no call to http_response",
            received=f"request id {request_id}",
        )

    # -- inputs beyond the contract ---------------------------------------------

    def token_received(self, token: str, expires_at: float, now: float) -> None:
        """Hand over an access token valid until ``expires_at`` (driver time)."""
        if type(token) is not str or not token:
            raise LocalProtocolError(
                "bad access token", expected="a non-empty string", received=token
            )
        if not expires_at > now:
            raise LocalProtocolError(
                "access token already expired",
                expected=f"expires_at after now ({now})",
                received=expires_at,
            )
        self._token = token
        self._token_expires_at = expires_at
        self._token_margin = min(TOKEN_MARGIN, (expires_at - now) / 2)
        self._token_requested = False
        if self._login is _Login.PENDING and self._link is Link.OPEN:
            self._log_in(now)

    def close(self, now: float, code: int = 1000) -> None:
        """Close the gateway for good (1000 tells the server the session is over)."""
        self._fire(Input.CLOSE, "closed by the application")
        self._tear_down(code)

    # -- frames -----------------------------------------------------------------

    def _on_text(self, text: str, now: float) -> None:
        try:
            payload = decode_envelope(text)
        except RemoteProtocolError as exc:
            self._violation(exc)
            return
        op = payload.get("op")
        if op == 0 and type(op) is int:
            self._on_dispatch(payload, now)
        elif op == 11 and type(op) is int:
            self._ack_pending = False
        else:
            self._on_control(op, payload, now)

    def _on_dispatch(self, payload: dict[str, Any], now: float) -> None:
        seq = payload.get("s")
        if type(seq) is int:
            last = self._seq
            if last is not None and seq <= last:
                return  # replayed, and delivered before
        elif seq is not None:
            self._violation(
                RemoteProtocolError("bad dispatch seq", expected="an integer", received=seq)
            )
            seq = None
        kind = payload.get("t")
        if type(kind) is not str or "d" not in payload:
            problem = (
                "dispatch without an event type" if type(kind) is not str else "dispatch without d"
            )
            expected = "a string t" if type(kind) is not str else "a d field"
            self._violation(RemoteProtocolError(problem, expected=expected, received=payload))
        else:
            data = payload["d"]
            if kind == "READY":
                if not self._on_ready(data, now):
                    return
            elif kind == "RESUMED" and not self._on_resumed(now):
                return
            self._out.append(Deliver(Dispatch(kind, seq, payload.get("id"), data)))
        if seq is not None:
            self._seq = seq

    def _on_ready(self, data: Any, now: float) -> bool:
        if not allowed(self.state, Input.READY) or self._login is not _Login.IDENTIFY:
            self._violation(
                RemoteProtocolError(
                    "READY out of turn", expected="READY after Identify", received=self.state.name
                )
            )
            return False
        session_id = data.get("session_id") if type(data) is dict else None
        if type(session_id) is not str or not session_id:
            self._violation(
                RemoteProtocolError(
                    "READY without a session id", expected="d.session_id", received=data
                )
            )
            self._lose(
                _Loss(
                    Input.SESSION_LOST,
                    "READY without a session id",
                    pause=self._new_session_pause(),
                ),
                now,
            )
            return False
        self._session_id = session_id
        self._seq = None  # a new session numbers from the start
        self.bot_user = data.get("user")
        self._fire(Input.READY, "READY")
        self._connection_good()
        return True

    def _on_resumed(self, now: float) -> bool:
        if not allowed(self.state, Input.RESUMED) or self._login is not _Login.RESUME:
            self._violation(
                RemoteProtocolError(
                    "RESUMED out of turn", expected="RESUMED after Resume", received=self.state.name
                )
            )
            return False
        self._fire(Input.RESUMED, "RESUMED")
        self._connection_good()
        return True

    def _on_control(self, op: Any, payload: dict[str, Any], now: float) -> None:
        if type(op) is not int:
            self._violation(
                RemoteProtocolError("bad opcode", expected="an integer op", received=op)
            )
        elif op == 10:
            self._on_hello(payload.get("d"), now)
        elif op == 1:
            self._send_text(encode_heartbeat(self._seq))
        elif op == 7:
            self._lose(_Loss(Input.LINK_LOST, "server asked to reconnect (op 7)"), now)
        elif op == 9:
            self._on_invalid_session(payload.get("d"), now)
        else:
            self._violation(
                RemoteProtocolError("unknown opcode", expected="0, 1, 7, 9, 10 or 11", received=op)
            )

    def _on_hello(self, data: Any, now: float) -> None:
        if self._heartbeat_interval is not None:
            self._violation(
                RemoteProtocolError(
                    "second Hello", expected="one Hello per connection", received=data
                )
            )
            return
        interval = data.get("heartbeat_interval") if type(data) is dict else None
        if type(interval) is not int or interval <= 0:
            self._violation(
                RemoteProtocolError(
                    "Hello without a heartbeat interval",
                    expected="d.heartbeat_interval in ms",
                    received=data,
                )
            )
            interval = FALLBACK_HEARTBEAT_MS
        self._heartbeat_interval = interval / 1000
        self._fire(Input.HELLO, "Hello")
        self._log_in(now)

    def _on_invalid_session(self, resumable: Any, now: float) -> None:
        if self.state is S.IDENTIFY and self._login is _Login.IDENTIFY:
            # Our Identify is out and the server refuses it: real servers
            # say so for intents the bot may not use (spec 4.2).
            self._lose(
                _Loss(
                    Input.INTENTS_REFUSED,
                    "invalid session (op 9) in answer to Identify: "
                    f"intents {int(self.config.intents)} refused",
                ),
                now,
            )
        elif resumable is True:
            self._lose(_Loss(Input.LINK_LOST, "invalid session (op 9), resumable"), now)
        else:
            self._lose(
                _Loss(
                    Input.SESSION_LOST,
                    "invalid session (op 9)",
                    pause=self._new_session_pause(),
                    refresh_token=True,
                ),
                now,
            )

    def _on_ws_closed(self, event: Closed, now: float) -> None:
        if event.error is not None:
            self._violation(event.error)
        policy = close_policy(event.code)
        reason = policy.describe() + (f": {event.reason}" if event.reason else "")
        action = policy.action
        if action is CloseAction.RESUME:
            loss = _Loss(Input.LINK_LOST, reason)
        elif action is CloseAction.RESUME_LATER:
            loss = _Loss(Input.LINK_LOST, reason, pause=RATE_LIMITED_PAUSE)
        elif action is CloseAction.REFRESH_TOKEN:
            self._failed_auths += 1
            if self._failed_auths > 1:
                loss = _Loss(Input.FATAL, reason + " (again, with a fresh token)")
            else:
                loss = _Loss(Input.LINK_LOST, reason, refresh_token=True)
        elif action is CloseAction.IDENTIFY:
            loss = _Loss(Input.SESSION_LOST, reason, pause=self._new_session_pause())
        else:
            loss = _Loss(Input.FATAL, reason)
        self._lose(loss, now)

    # -- logging in and heartbeats ---------------------------------------------------

    def _log_in(self, now: float) -> None:
        token = self._token
        if token is None or now >= self._token_expires_at - self._token_margin:
            self._token = None
            self._request_token("access token missing or about to expire")
            self._login = _Login.PENDING
            return
        if self.state is S.RESUMING and self._session_id is not None:
            self._send_text(encode_resume(token, self._session_id, self._seq))
            self._login = _Login.RESUME
        else:
            config = self.config
            self._send_text(
                encode_identify(token, config.intents, config.shard, dict(config.properties or {}))
            )
            self._login = _Login.IDENTIFY
        self._hello_deadline = None
        assert self._heartbeat_interval is not None
        self._heartbeat_at = now + self._heartbeat_interval
        self._ack_pending = False

    def _connection_good(self) -> None:
        self._good = True
        self._backoff.reset()
        self._failed_resumes = 0
        self._failed_auths = 0

    # -- the one place a connection ends ---------------------------------------------

    def _lose(self, loss: _Loss, now: float, *, transport_gone: bool = False) -> None:
        """Decide what the end of this connection means, and arm one reconnect."""
        if transport_gone:
            self._link = Link.IDLE
            self._ws = None
        else:
            self._tear_down(RESUMABLE_CLOSE_CODE)

        trigger, reason = loss.input, loss.reason
        if self._login is _Login.RESUME and not self._good:
            self._failed_resumes += 1
        if (
            trigger is Input.LINK_LOST
            and self._session_id is not None
            and self._failed_resumes >= MAX_FAILED_RESUMES
        ):
            trigger = Input.SESSION_LOST
            reason += f"; {self._failed_resumes} resumes failed, starting a new session"
        if loss.refresh_token:
            self._token = None
            self._request_token(reason)
        if trigger is Input.SESSION_LOST:
            self._session_id = None
            self._seq = None
            self._failed_resumes = 0

        delay = loss.pause
        if trigger in (Input.LINK_LOST, Input.SESSION_LOST) and not self._good:
            delay = max(delay, self._backoff.next_delay())
            if self._backoff.exhausted:
                trigger = Input.GAVE_UP
                reason = f"gave up after {self._backoff.failures} failed attempts; last: {reason}"
        self._reset_connection()
        self._fire(trigger, reason)
        if self.state in _TERMINAL:
            self.failure_reason = reason
            self._out.append(Failed(reason))
            return
        self._reconnect_at = now + delay
        self._maybe_connect(now)

    def _tear_down(self, code: int) -> None:
        """Close our side of the link, if there is one."""
        if self._link is Link.OPEN:
            ws = self._ws
            assert ws is not None
            data = ws.data_to_send() + ws.close(code)
            if data:
                self._send(data)
        if self._link in (Link.OPEN, Link.OPENING):
            self._out.append(Disconnect())
            self._link = Link.CLOSING

    def _maybe_connect(self, now: float) -> None:
        if self._link is Link.IDLE and self.state not in _TERMINAL:
            at = self._reconnect_at
            if at is None or now >= at:
                # Fetch the token while the socket opens, not after Hello.
                if self._token is None or now >= self._token_expires_at - self._token_margin:
                    self._token = None
                    self._request_token("access token missing or about to expire")
                self._open_link()

    def _open_link(self) -> None:
        self._ws = WebSocketClient(
            self._gateway_url, self._entropy, max_message_size=self.config.max_message_size
        )
        self._link = Link.OPENING
        self._reconnect_at = None
        self._out.append(Connect(self._gateway_url))

    # -- small helpers ------------------------------------------------------------------

    def _fire(self, trigger: Input, why: str) -> None:
        old = self._lifecycle.state
        new = self._lifecycle.fire(trigger)
        if new is not old:
            self._out.append(StateChanged(old.name, new.name, why))

    def _request_token(self, reason: str) -> None:
        if not self._token_requested:
            self._token_requested = True
            self._out.append(FetchToken(reason))

    def _new_session_pause(self) -> float:
        low, high = NEW_SESSION_PAUSE
        return self._rng.uniform(low, high)

    def _send_text(self, text: str) -> None:
        ws = self._ws
        assert ws is not None
        # The peer's close can be parsed in the same read as a message that
        # asks for an answer: the WebSocket is then closed, its Closed event
        # comes next and ends the connection, and the answer has no place to go.
        if ws.is_open:
            self._out.append(SendData(ws.send_text(text)))

    def _is_open(self) -> bool:
        # A method, not an inline test, so that type checkers do not carry a
        # narrowing of `_link` across the calls that change it.
        return self._link is Link.OPEN

    def _send(self, data: bytes) -> None:
        self._out.append(SendData(data))

    def _violation(self, error: RemoteProtocolError) -> None:
        self._out.append(Deliver(ProtocolViolation(error)))

    def __repr__(self) -> str:
        return (
            f"GatewayProtocol(app_id={self.config.app_id!r}, shard={self.config.shard}, "
            f"state={self.state.name}, link={self._link.value}, seq={self._seq})"
        )
