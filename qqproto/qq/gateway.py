"""GatewayProtocol: one QQ gateway session (one shard) as a sans-IO object.

The object is given bytes, the time and access tokens; it answers with
actions (``qqproto.actions``). Its lifecycle is the table in
``lifecycle.py``; this module decides *when* to fire an input, and what to
send. It owns the session (its id and sequence number) and hands each other
job to one helper: the heartbeat clock (``heartbeat.py``), the login and its
answers (``login.py``), the token (``session.py``), the transport and the
backoff (``qqproto/link.py``).

Every text frame goes through one :class:`~qqproto.qq.decode.EventDecoder`,
which reads the envelope and, for a typed dispatch, builds its event in the
same pass; dispatches are delivered as those typed events, or as a raw
:class:`~qqproto.qq.events.Dispatch` when no class fits (see
``docs/events.md``). The decoder keeps the bot's id from READY, so that
guild messages' ``text`` loses the @bot.

Every way a connection can end (a close frame, a lost transport, op 7,
op 9, a missed heartbeat ACK, a Hello that never came) goes through one
method, :meth:`GatewayProtocol._lose`. It updates the counters the table's
conditions read, the table's row decides between resuming, starting a new
session and giving up, and ``_lose`` arms exactly one reconnect.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import msgspec

from ..actions import Deliver, Failed
from ..contract import Driven
from ..errors import ConfigError, ProtocolViolation, RemoteProtocolError
from ..link import LinkState, ReconnectPolicy, WebSocketLink
from ..ws import (
    BytesReceived,
    Closed,
    TextReceived,
)
from .config import GatewayConfig
from .decode import EventDecodeError, EventDecoder, json_value, untyped_event
from .events import Event
from .heartbeat import Heartbeat, Tick
from .lifecycle import (
    RESUMES_FAILED,
    TABLE,
    Counters,
    GatewayState,
    Input,
    Loss,
    explain,
    loss_of_close,
    loss_of_invalid_session,
)
from .login import Login, login_frame, out_of_turn, read_ready, ready_to_resume
from .payloads import encode_heartbeat
from .session import AccessToken, IdentifyTurnOver, IdentifyWanted, Session

__all__ = ["GatewayProtocol"]

#: The close code we send when we mean to resume. 1000 and 1001 tell a
#: server the session is over; a 3xxx code does not.
RESUMABLE_CLOSE_CODE = 3000
#: The largest ``s`` a dispatch may carry: servers count in int64. A larger
#: (or negative) one is reported and not counted, as a non-integer one is; it
#: would otherwise go back out in every heartbeat and Resume.
MAX_SEQ = 2**63 - 1
#: The pause before a new Identify after the server dropped our session.
NEW_SESSION_PAUSE = (1.0, 5.0)

S = GatewayState
_TERMINAL = (S.FAILED, S.CLOSED)
#: The inputs that end a connection and may be retried: each failed one is an attempt.
_LOSSES = (Input.LINK_LOST, Input.SESSION_LOST, Input.TOKEN_REFUSED)
#: The dispatches that move the lifecycle.
_LIFECYCLE_EVENTS = frozenset({"READY", "RESUMED"})


def _is_lifecycle(t: object) -> bool:
    """Whether ``t`` (the JSON value a frame's ``t`` held: maybe a list) names one."""
    return type(t) is str and t in _LIFECYCLE_EVENTS


class GatewayProtocol(Driven):
    """One gateway session, driven through the driver contract.

    Right after construction, :meth:`actions` holds ``Deliver(TokenWanted)``
    (no token is known yet) and the first ``Connect``. See
    ``docs/gateway.md`` for a walk-through. ``ids`` numbers its connections
    (a bot shares its own counter).
    """

    def __init__(
        self,
        config: GatewayConfig,
        session: Session | None = None,
        *,
        ids: Iterator[int] | None = None,
    ) -> None:
        super().__init__(ids=ids)
        if session is not None and session.shard != config.shard:
            raise ConfigError(
                "session.shard", f"the configured shard {config.shard}", session.shard
            )
        self.config = config
        self._rng = config.rng or random.Random(config.seed)
        #: The attempt budget, the backoff, and the short-session rule (a
        #: server that accepts us and drops us at once, say after a Resume it
        #: honours, must not be hammered; those sessions spend no budget).
        self._policy = ReconnectPolicy(
            self._rng,
            base=config.backoff_base,
            cap=config.backoff_cap,
            max_attempts=config.max_attempts,
            what="gateway",
        )
        #: The one transport at a time, and the WebSocket on it.
        self._link = WebSocketLink(
            lambda action: self._out.append(action),
            self._ids,
            config.entropy or self._rng.randbytes,
            max_message_size=config.max_message_size,
        )
        self._lifecycle = TABLE.lifecycle(S.RESUMING if session else S.CONNECTING)
        #: What the lifecycle's conditions read (resumes and tokens that failed).
        self._counters = Counters()
        self.failure_reason: str | None = None

        # The session (survives connections).
        self._session_id = session.session_id if session else None
        self._seq = session.seq if session else None
        self._gateway_url = session.gateway_url if session else config.gateway_url
        self.bot_user: Any = None
        #: Builds typed events; knows the bot's id (READY's user.id) for guild text.
        self._decoder = EventDecoder(session.bot_id if session else None, config.shard)

        # The access token.
        self._token = AccessToken(lambda wanted: self._out.append(Deliver(wanted)))

        # What belongs to one connection.
        self._beat = Heartbeat()
        self._reset_connection()

        #: Gated: a grant for the next Identify is held, or was asked for.
        self._granted = False
        self._asked_grant = False

        self._token.want("no access token yet")
        self._open_or_ask()

    def _reset_connection(self) -> None:
        self._beat.reset()
        self._login = Login.NONE
        self._good = False  # reached READY or RESUMED on this connection

    # -- what the embedder reads ----------------------------------------------

    @property
    def state(self) -> GatewayState:
        return self._lifecycle.state

    @property
    def link(self) -> LinkState:
        return self._link.state

    @property
    def seq(self) -> int | None:
        """The last sequence number received in this session."""
        return self._seq

    @property
    def session(self) -> Session | None:
        """The resumable session, or None when there is none to resume."""
        if self._session_id is None:
            return None
        return Session(
            self._session_id,
            self._seq,
            self.config.shard,
            self._gateway_url,
            self._decoder.bot_id,
        )

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must be called next, or None."""
        if self.state in _TERMINAL:
            return None
        link = self._link.state
        if link is LinkState.IDLE:
            return None if self._asked_grant else self._link.reconnect_at
        if link is LinkState.OPEN:
            return self._beat.deadline
        return None

    # -- the driver contract --------------------------------------------------

    def connection_made(self, conn: int, now: float) -> None:
        self._link.made(conn)
        self._beat.opened(now, self.config.hello_timeout)

    def receive_data(self, conn: int, data: bytes, now: float) -> None:
        link = self._link
        # A local, not LinkState.OPEN: cheaper per message, and type checkers
        # do not carry a narrowing of `state` across the calls that change it.
        is_open = LinkState.OPEN
        ws = link.ws
        if link.state is is_open and conn == link.conn and ws is not None:
            events = ws.receive_data(data)  # the common case, without a call to check it
        else:
            events = link.receive(conn, data)  # refuses or ignores what is not ours
        for event in events:
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
            if link.state is not is_open:
                # We ended the connection mid-read: what followed is for a
                # later resume to replay.
                return
        link.flush()  # pongs, and a close we answered

    def connection_lost(self, conn: int, now: float, reason: str | None = None) -> None:
        was = self._link.lost(conn)
        if was is LinkState.CLOSING:  # as we asked
            self._maybe_connect(now)
            return
        what = "could not connect" if was is LinkState.OPENING else "transport lost"
        why = f"{what}: {reason}" if reason else what
        self._lose(Loss(Input.LINK_LOST, why), now, transport_gone=True)

    def handle_timer(self, now: float) -> None:
        if self.state in _TERMINAL:
            return
        link = self._link.state
        if link is LinkState.IDLE:
            self._maybe_connect(now)
        elif link is LinkState.OPEN:
            tick = self._beat.tick(now)
            if tick is Tick.BEAT:
                self._link.send_text(encode_heartbeat(self._seq))
            elif tick is Tick.ACK_MISSED:
                self._lose(Loss(Input.LINK_LOST, "heartbeat not acknowledged"), now)
            elif tick is not Tick.NOTHING:  # Hello, or a token after it, came too late
                self._token.ask_again()  # on the next connection
                waited = "Hello" if tick is Tick.HELLO_LATE else "access token"
                why = f"no {waited} within {self.config.hello_timeout} s"
                self._lose(Loss(Input.LINK_LOST, why), now)

    # -- inputs beyond the contract ---------------------------------------------

    def token_received(self, token: str, expires_at: float, now: float) -> None:
        """Hand over an access token valid until ``expires_at`` (driver time)."""
        self._token.give(token, expires_at, now)
        if self._login is Login.PENDING and self._link.state is LinkState.OPEN:
            self._log_in(now)

    def identify_allowed(self, now: float) -> None:
        """The identify gate grants this shard its Identify (a gated gateway
        asked with ``IdentifyWanted``): the connection opens now."""
        self._asked_grant = False
        self._granted = True
        if self.state not in _TERMINAL and self._link.due(now):
            self._open_or_ask()

    @property
    def waiting_for_grant(self) -> bool:
        """Gated, and waiting for ``identify_allowed`` before it connects."""
        return self._asked_grant

    def close(self, now: float, code: int = 1000) -> None:
        """Close the gateway for good (1000 tells the server the session is over;
        ``RESUMABLE_CLOSE_CODE`` keeps it, for a process that will resume it)."""
        self._fire(Input.CLOSE, "closed by the application")
        self._link.close(code)
        self._give_turn_back()
        self._asked_grant = False

    def _give_turn_back(self) -> None:
        """A turn to Identify that this connection did not use goes back to the gate."""
        if self._granted:
            self._granted = False
            self._out.append(Deliver(IdentifyTurnOver(self.config.shard, identified=False)))

    # -- frames -----------------------------------------------------------------

    def _on_text(self, text: str, now: float) -> None:
        try:
            op, s, t, event_id, body = self._decoder.decode_frame(text)
        except RemoteProtocolError as exc:  # not a JSON object
            self._violation(exc)
            return
        if op == 0 and type(op) is int:
            self._on_dispatch(s, t, event_id, body, now)
        elif op == 11 and type(op) is int:
            self._beat.acked()
        else:  # a control frame: its d is never typed, and comes undecoded
            try:
                d = json_value(body) if type(body) is msgspec.Raw and body else None
            except (ValueError, RecursionError):  # a d only json reads, near its depth limit
                self._violation(
                    RemoteProtocolError("unreadable d", expected="JSON d", received=text)
                )
                return
            self._on_control(op, d, now)

    def _on_dispatch(
        self,
        seq: Any,
        t: Any,
        event_id: Any,
        body: Event | EventDecodeError | msgspec.Raw,
        now: float,
    ) -> None:
        """An op 0 frame, as :meth:`EventDecoder.decode_frame` left it.

        The hot path: no trigger fires here but for READY and RESUMED.
        """
        counts = True  # whether the session's seq moves to this one
        if type(seq) is int and 0 <= seq <= MAX_SEQ:
            last = self._seq
            if last is not None and seq <= last:
                if not _is_lifecycle(t):
                    return  # replayed, and delivered before
                # READY and RESUMED take effect whatever their seq; a READY
                # starts a new session, but a RESUMED never moves the seq back.
                counts = t == "READY"
        elif seq is not None:
            self._violation(
                RemoteProtocolError(
                    "bad dispatch seq", expected=f"an integer from 0 to {MAX_SEQ}", received=seq
                )
            )
            seq = None
        if isinstance(body, Event):  # the common case: typed, its fields checked
            if t in _LIFECYCLE_EVENTS and not self._on_lifecycle_event(t, body.raw, now):
                return
            self._out.append(Deliver(body))
        elif not self._on_untyped_dispatch(seq, t, event_id, body, now):
            return
        if seq is not None and counts:
            self._seq = seq

    def _on_untyped_dispatch(
        self,
        seq: int | None,
        t: Any,
        event_id: Any,
        body: EventDecodeError | msgspec.Raw,
        now: float,
    ) -> bool:
        """A dispatch without a good typed event (:func:`untyped_event` says
        which); False when its seq must not count."""
        event, problem = untyped_event(self._decoder, seq, t, event_id, body)
        if event is None:  # no t or no d: said, and its seq counts
            assert problem is not None
            self._violation(problem)
            return True
        if t in _LIFECYCLE_EVENTS:
            data = event.raw if isinstance(event, Event) else event.data
            if not self._on_lifecycle_event(t, data, now):
                return False
        if problem is not None:  # reported, then delivered raw: nothing is lost
            self._violation(problem)
        self._out.append(Deliver(event))
        return True

    def _on_lifecycle_event(self, t: str, data: Any, now: float) -> bool:
        """READY or RESUMED, ``d`` as plain values; False when it does not count."""
        problem = out_of_turn(t, self._login, self.state)
        if problem is not None:
            self._violation(problem)
            return False
        if t == "READY":
            if self._login is Login.RESUME:
                self._violation(ready_to_resume(self._session_id, self._seq))
            ready = read_ready(data)
            if isinstance(ready, RemoteProtocolError):
                self._violation(ready)
                why = "READY without a session id"
                self._lose(Loss(Input.SESSION_LOST, why, pause=self._pause()), now)
                return False
            self._session_id, self.bot_user = ready.session_id, ready.user
            self._decoder.bot_id = ready.bot_id
            self._seq = None  # a new session numbers from the start
        self._fire(Input.READY if t == "READY" else Input.RESUMED, t)
        self._connection_good(now)
        return True

    def _on_control(self, op: Any, d: Any, now: float) -> None:
        """A frame other than a dispatch or an ACK; ``d`` as plain values (None if absent)."""
        if type(op) is not int:
            self._violation(
                RemoteProtocolError("bad opcode", expected="an integer op", received=op)
            )
        elif op == 10:
            self._on_hello(d, now)
        elif op == 1:
            self._link.send_text(encode_heartbeat(self._seq))
        elif op == 7:
            self._lose(Loss(Input.LINK_LOST, "server asked to reconnect (op 7)"), now)
        elif op == 9:
            self._on_invalid_session(d, now)
        else:
            self._violation(
                RemoteProtocolError("unknown opcode", expected="0, 1, 7, 9, 10 or 11", received=op)
            )

    def _on_hello(self, data: Any, now: float) -> None:
        second = self._beat.interval is not None
        problem = self._beat.hello(data)
        if problem is not None:
            self._violation(problem)
        if second:
            return
        self._fire(Input.HELLO, "Hello")
        self._log_in(now)

    def _on_invalid_session(self, resumable: Any, now: float) -> None:
        identifying = self.state is S.IDENTIFY and self._login is Login.IDENTIFY
        intents = int(self.config.intents)
        self._lose(loss_of_invalid_session(resumable, identifying, intents, self._pause), now)

    def _on_ws_closed(self, event: Closed, now: float) -> None:
        if event.error is not None:
            self._violation(event.error)
        loss = loss_of_close(event.code, event.reason, self._pause)
        if loss.input is Input.TOKEN_REFUSED:
            self._counters.refused_tokens += 1
        self._lose(loss, now)

    # -- logging in and heartbeats ---------------------------------------------------

    def _log_in(self, now: float) -> None:
        token = self._token.usable(now)
        if token is None:
            self._login = Login.PENDING
            return
        frame, self._login = login_frame(
            self.state, token, self._session_id, self._seq, self.config
        )
        if self._login is Login.IDENTIFY and self._granted:
            self._granted = False  # spent: the next Identify asks again
            self._out.append(Deliver(IdentifyTurnOver(self.config.shard, identified=True)))
        self._link.send_text(frame)
        self._beat.logged_in(now)

    def _connection_good(self, now: float) -> None:
        self._good = True
        self._policy.connected(now)
        self._counters.failed_resumes = 0
        self._counters.refused_tokens = 0

    # -- the one place a connection ends ---------------------------------------------

    def _lose(self, loss: Loss, now: float, *, transport_gone: bool = False) -> None:
        """Count what the end of this connection means, let the lifecycle table
        decide (resume, new session or give up), and arm one reconnect."""
        if not transport_gone:
            self._link.close(RESUMABLE_CLOSE_CODE)
        self._give_turn_back()

        counters = self._counters
        if self._login is Login.RESUME and not self._good:
            counters.failed_resumes += 1
        counters.has_session = self._session_id is not None
        delay = loss.pause
        failed_attempt = loss.input in _LOSSES and not self._good
        if loss.input in _LOSSES:  # to be tried again, if the budget allows
            delay = self._policy.ended(now, good=self._good, pause=loss.pause)
            counters.attempts_spent = self._policy.spent

        row = TABLE.row(self.state, loss.input, counters)
        reason = explain(row, loss.reason, counters, self._policy.attempts.failures)
        if loss.refresh_token and row.dest not in _TERMINAL:
            self._token.want(reason, stale=True)
        # The server dropped the session, or resuming it keeps failing: it is
        # gone, whether a new one starts or the gateway gives up.
        session_gone = loss.input is Input.SESSION_LOST or RESUMES_FAILED.test(counters)
        if session_gone:
            self._session_id = None
            self._seq = None
        self._reset_connection()
        self._fire(loss.input, reason)  # the counters as the row read them
        if session_gone:
            counters.failed_resumes = 0
        if self.state in _TERMINAL:
            self.failure_reason = reason
            self._out.append(Failed(reason))
            return
        if failed_attempt:  # said, never silent
            self._out.append(Deliver(self._policy.retry(delay, reason)))
        self._link.reconnect_at = now + delay
        self._maybe_connect(now)

    def _maybe_connect(self, now: float) -> None:
        if self.state not in _TERMINAL and self._link.due(now):
            self._token.usable(now)  # fetch it while the socket opens, not after Hello
            self._open_or_ask()

    def _open_or_ask(self) -> None:
        """Open the next connection, unless it will Identify and a gated
        gateway holds no grant: then ask for one (once), and wait."""
        will_identify = not (self.state is S.RESUMING and self._session_id is not None)
        if self.config.gated and will_identify and not self._granted:
            if not self._asked_grant:
                self._asked_grant = True
                self._out.append(Deliver(IdentifyWanted(self.config.shard)))
            return
        self._link.open(self._gateway_url)

    # -- small helpers ------------------------------------------------------------------

    def _fire(self, trigger: Input, why: str) -> None:
        change = self._lifecycle.fire(trigger, why, self._counters)
        if change is not None:
            self._out.append(change)

    def _pause(self) -> float:
        """The pause before a new Identify after the server dropped our session."""
        low, high = NEW_SESSION_PAUSE
        return self._rng.uniform(low, high)

    def _violation(self, error: RemoteProtocolError) -> None:
        self._out.append(Deliver(ProtocolViolation(error)))

    def __repr__(self) -> str:
        return (
            f"GatewayProtocol(app_id={self.config.app_id!r}, shard={self.config.shard}, "
            f"state={self.state.name}, link={self._link.state.value}, seq={self._seq})"
        )
