"""OneBotProtocol: a forward WebSocket to a OneBot implementation, sans-IO.

The object dials the implementation (NapCat, Lagrange.OneBot, LLOneBot, a v12
one), hands its events to the application as the model's values
(:mod:`qqproto.onebot.events`), and carries the application's actions,
each matched to its answer by echo. It runs on the shared layer: its
lifecycle is a table (:mod:`qqproto.onebot.lifecycle`), its transport a
:class:`~qqproto.link.WebSocketLink` with a :class:`~qqproto.link.ReconnectPolicy`
(1 s to 30 s with jitter, forever unless bounded), and its actions
:class:`~qqproto.calls.Calls` with deadlines.

What reaches the application, as ``Deliver`` actions: every event; for each
action, one :class:`ActionResult` (its answer, or why none came) and, for an
answer in several frames (NapCat's stream actions), a :class:`StreamFrame` per
frame before it; a :class:`~qqproto.link.Retry` after each failed attempt to
connect; a :class:`~qqproto.errors.ProtocolViolation` for anything the
implementation got wrong that the connection survived (a frame that is no
JSON, an answer to no call). Nothing the implementation sends ends the
connection but a refused token, a close, or silence past a deadline.

Rules where implementations differ (the reference's sections 1.6, 2, 9, 10):

- Echoes we make are strings; an answer matches by its exact echo, or by a
  number whose decimal form is one.
- An action that got no answer by its deadline ends with
  :class:`~qqproto.calls.CallTimeout`, and one whose connection went ends with
  a :class:`~qqproto.errors.RemoteProtocolError` saying so. In both cases its
  outcome is unknown: a send may have been delivered. Nothing is retried.
- A refused token is final: HTTP 401 or 403 at the upgrade, or an answer with
  ``retcode: 1403`` to no action before any event (NapCat and LLOneBot accept
  the upgrade, send one, then close). A 1403 answering an action, or later,
  is that action's answer.
- Every loss is retried after a growing wait (1 s, 2 s, 4 s ... 30 s, with
  jitter), each said as a ``Retry``; an upgrade accepted forgets the count.
- Deadlines: the upgrade must be answered within ``open_timeout``; once a
  heartbeat said its interval (taken within 1 s and an hour), a connection
  that brings nothing for ``heartbeat_factor`` intervals is dead. Until then
  (heartbeats are off by default in v11, and NapCat's first may come a whole
  interval late), liveness falls back on the transport: after
  ``ping_interval`` seconds without a byte a WebSocket ping goes out, and a
  connection that brings nothing within ``ping_timeout`` after it is dead.
- The version is told by the first event (``protocol="auto"``), or fixed.
- An action asked for between connections waits, unsent, for the next one;
  with ``send_rate``, sends (``send_*`` actions) past the limit wait in order
  (:mod:`qqproto.onebot.pacing`). One that waits ``call_timeout`` out, or is
  still waiting when the connection is over, ends as
  :class:`~qqproto.errors.NotSent`: an outcome that is known.
- v12 with ``api_url``: actions go as ``POST`` requests there (``HttpRequest``
  actions, answered with ``http_response`` or ``http_failed``); events stay
  on the socket. A 401 or 403 from the API is a refused token.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Final

from ..actions import Deliver, Failed
from ..calls import Call
from ..contract import Driven
from ..errors import (
    LocalProtocolError,
    NotSent,
    ProtocolViolation,
    RemoteProtocolError,
    WebSocketHandshakeError,
)
from ..http import HttpResponse
from ..link import LinkState, ReconnectPolicy, WebSocketLink
from ..ratelimit import RateLimiter
from ..ws import BytesReceived, Closed, Opened, TextReceived
from .actions import Action, Answer
from .config import OneBotConfig
from .events import Event, MetaEvent
from .frames import read_frame
from .http_api import HttpApi, TokenRefused
from .lifecycle import TABLE, Attempts, OneBotInput, OneBotState
from .liveness import PING, Liveness
from .pacing import Outbox
from .pending import PendingActions

__all__ = ["OneBotProtocol"]

#: NapCat and LLOneBot answer a refused token with this retcode, then close.
TOKEN_REFUSED_RETCODE: Final = 1403
_TERMINAL: Final = (OneBotState.FAILED, OneBotState.CLOSED)


class OneBotProtocol(Driven):
    """One forward WebSocket connection to a OneBot implementation."""

    def __init__(self, config: OneBotConfig, *, ids: Iterator[int] | None = None) -> None:
        super().__init__(ids=ids)
        self.config = config
        rng = config.rng or random.Random(config.seed)
        self._policy = ReconnectPolicy(
            rng,
            base=config.backoff_base,
            cap=config.backoff_cap,
            max_attempts=config.max_attempts,
            what="onebot",
        )
        self._link = WebSocketLink(
            lambda action: self._out.append(action),  # late: actions() swaps the list
            self._ids,
            config.entropy or rng.randbytes,
            max_message_size=config.max_message_size,
        )
        self._lifecycle = TABLE.lifecycle(OneBotState.CONNECTING)
        self._pending = PendingActions(
            rng, config.call_timeout, lambda action: self._out.append(action)
        )
        limiter = RateLimiter(config.send_rate, config.send_burst) if config.send_rate else None
        self._outbox: Outbox[tuple[Call[Action], str]] = Outbox(limiter)
        api_url, token = config.api_url, config.access_token
        self._api = HttpApi(api_url, 12, token) if api_url is not None else None
        self.version: int | None = {"v11": 11, "v12": 12}.get(config.protocol)
        #: The bot's own id, from the first event that carries one.
        self.self_id: int | str | None = None
        self.failure_reason: str | None = None
        self._opened = False  # this connection's upgrade was accepted
        self._open_deadline: float | None = None  # the upgrade must be answered by then
        self._events_here = 0  # events on this connection (a 1403 refuses only before one)
        self._liveness = Liveness(
            config.heartbeat_factor, config.ping_interval, config.ping_timeout
        )
        token = config.access_token
        self._headers = (("Authorization", f"Bearer {token}"),) if token else ()
        self._link.open(config.url, self._headers)

    # -- what the embedder reads ----------------------------------------------------------

    @property
    def state(self) -> OneBotState:
        return self._lifecycle.state

    def next_deadline(self) -> float | None:
        if self.state in _TERMINAL:
            return None
        times = [self._pending.next_deadline(), self._outbox.next_deadline(open_=self._can_send)]
        if self._link.state is LinkState.IDLE:
            times.append(self._link.reconnect_at)
        elif self._link.state is LinkState.OPEN:
            times.append(self._open_deadline)
            if self._opened:
                times.append(self._liveness.deadline())
        return min((t for t in times if t is not None), default=None)

    # -- the application's calls ---------------------------------------------------------

    def call(self, action: Action, now: float) -> int:
        """Send ``action``; its outcome comes back as ``Deliver(ActionResult)``
        under the id returned. Between connections it waits, unsent, for the
        next one, and with ``send_rate`` a send past the limit waits for room
        (:mod:`qqproto.onebot.pacing`); one that waited ``call_timeout`` out ends
        as :class:`~qqproto.errors.NotSent`. Once out, it has ``call_timeout``
        for its answer, and is never sent twice. After FAILED or CLOSED it
        raises :class:`LocalProtocolError`: the connection is over."""
        if self.state in _TERMINAL:
            raise LocalProtocolError(
                "the connection is over",
                expected="CONNECTING or CONNECTED",
                received=self.state.name,
            )
        pending = self._pending.new(action)
        frame = action.frame(str(pending.id))  # before the call is registered: it may raise
        give_up_at = now + self.config.call_timeout
        if self._outbox.add((pending, frame), action, give_up_at, now, open_=self._can_send):
            self._send(pending, frame, now)
        return pending.id

    @property
    def _can_send(self) -> bool:
        """The connection takes actions now: CONNECTED, and for v12 over HTTP
        the version known (``protocol="auto"`` learns it from the first event)."""
        if self.state is not OneBotState.CONNECTED:
            return False
        return self.config.api_url is None or self.version is not None

    def _release(self, now: float) -> None:
        """Send what waited and may go now."""
        if self._can_send:
            for pending, frame in self._outbox.ready(now):
                self._send(pending, frame, now)

    def _send(self, pending: Call[Action], frame: str, now: float) -> None:
        if self._api is not None and self.version == 12:
            self._pending.over_http(pending, self._api, now)
        else:
            self._pending.on_socket(pending, now)
            self._link.send_text(frame)

    def close(self, now: float) -> None:
        """Close for good: pending actions end, and nothing dials again."""
        if self.state in _TERMINAL:
            return
        self._fire(OneBotInput.CLOSE, "closed by the application")
        self._link.close(1000)
        self._end_calls("the connection was closed by the application")

    # -- the driver contract -------------------------------------------------------------

    def connection_made(self, conn: int, now: float) -> None:
        self._link.made(conn)
        self._open_deadline = now + self.config.open_timeout

    def receive_data(self, conn: int, data: bytes, now: float) -> None:
        for event in self._link.receive(conn, data):
            if self.state in _TERMINAL:
                return
            if type(event) is TextReceived:
                self._on_text(event.text, now)
            elif type(event) is Opened:
                self._on_opened(now)
            elif type(event) is Closed:
                self._on_closed(event, now)
            elif type(event) is BytesReceived:  # v12 may send MessagePack; we asked for JSON
                why = "a binary frame (MessagePack is not spoken here)"
                self._violation(RemoteProtocolError(why, expected="a text frame", received=event))
        if self._opened:  # any byte is a sign of life: a pong, a frame, a part of one
            self._liveness.heard(now)
        self._link.flush()

    def connection_lost(self, conn: int, now: float, reason: str | None = None) -> None:
        was = self._link.lost(conn)
        if was is LinkState.CLOSING:  # as we asked
            self._maybe_connect(now)
            return
        what = "could not connect" if was is LinkState.OPENING else "connection lost"
        self._lose(f"{what}: {reason}" if reason else what, now)

    def http_response(self, request_id: int, response: HttpResponse, now: float) -> None:
        """The answer to an action sent over HTTP (v12 with ``api_url``)."""
        assert self._api is not None  # a request went: there is an API
        error = self._pending.http_answered(request_id, response, self._api)
        if isinstance(error, TokenRefused) and self.state not in _TERMINAL:
            self._refused(str(error))

    def http_failed(self, request_id: int, now: float, reason: str) -> None:
        """An action sent over HTTP got no answer: its outcome is unknown."""
        self._pending.http_failed(request_id, reason)

    def handle_timer(self, now: float) -> None:
        if self.state in _TERMINAL:
            return
        self._pending.expire(now)
        for call, _ in self._outbox.expired(now):
            why = f"waited {self.config.call_timeout:g} s and never went out"
            self._pending.settle(call, error=_not_sent(call, why))
        link = self._link.state
        if link is LinkState.IDLE:
            self._maybe_connect(now)
        elif link is LinkState.OPEN:
            if self._open_deadline is not None and now >= self._open_deadline:
                self._link.close(1000)
                self._lose(f"no answer to the upgrade within {self.config.open_timeout:g} s", now)
            elif self._opened and (verdict := self._liveness.due(now)) is not None:
                if verdict == PING:
                    self._link.ping()
                else:
                    self._link.close(1000)
                    self._lose(verdict, now)
        self._release(now)  # after the checks: nothing goes out on a link judged dead

    # -- frames --------------------------------------------------------------------------

    def _on_opened(self, now: float) -> None:
        self._opened, self._open_deadline = True, None
        self._liveness.opened(now)
        self._policy.connected(now)
        self._fire(OneBotInput.OPENED, "upgrade accepted")
        self._release(now)

    def _on_text(self, text: str, now: float) -> None:
        try:
            frame = read_frame(text)
        except RemoteProtocolError as error:
            self._violation(error)
            return
        if isinstance(frame, Answer):
            self._on_answer(frame, now)
        else:
            self._on_event(frame, now)

    def _on_event(self, event: Event, now: float) -> None:
        if self.version is None:
            self.version = event.version
            self._release(now)  # v12 over HTTP waited to know
        if self.self_id is None and event.self_id is not None:
            self.self_id = event.self_id
        if isinstance(event, MetaEvent) and event.interval is not None:
            self._liveness.heartbeat(event.interval, now)
        self._events_here += 1
        self._out.append(Deliver(event))

    def _on_answer(self, answer: Answer, now: float) -> None:
        echo = answer.echo
        nobodys = echo is None or echo == ""
        if answer.retcode == TOKEN_REFUSED_RETCODE and nobodys and not self._events_here:
            # NapCat and LLOneBot's refusal: the first frame, an answer to no
            # action, then a close. Later, or to an action, it is an answer.
            self._refused(f"access token refused (retcode {TOKEN_REFUSED_RETCODE})")
            return
        self._pending.answered(answer, now)

    def _on_closed(self, event: Closed, now: float) -> None:
        error = event.error
        if isinstance(error, WebSocketHandshakeError) and error.status in (401, 403):
            self._refused(f"access token refused (HTTP {error.status} at the upgrade)")
            return
        if isinstance(error, WebSocketHandshakeError):
            why = f"upgrade refused with HTTP {error.status}"
        else:
            if error is not None:
                self._violation(error)
            why = f"closed with {event.code}" + (f" ({event.reason})" if event.reason else "")
        self._link.close(1000)
        self._lose(why, now)

    # -- ends and new beginnings ----------------------------------------------------------

    def _lose(self, reason: str, now: float) -> None:
        """The connection ended (or never opened): end its actions, count the
        attempt, and arm the next one, or give up when the budget is spent."""
        self._end_calls(
            f"the connection ended before an answer ({reason}): outcome unknown", socket_only=True
        )
        self._opened, self._open_deadline, self._events_here = False, None, 0
        # Every loss is retried after a growing wait (1 s, 2 s, 4 s ... the cap),
        # a dropped connection as well as a refused one; an opened upgrade
        # forgets the count (ReconnectPolicy.connected).
        delay = self._policy.ended(now, good=False)
        attempts = Attempts(spent=self._policy.spent)
        row_failed = TABLE.row(self.state, OneBotInput.LOST, attempts).dest is OneBotState.FAILED
        if row_failed:
            failures = self._policy.attempts.failures
            reason = f"gave up after {failures} failed attempts; last: {reason}"
        self._fire(OneBotInput.LOST, reason, attempts)
        if self.state is OneBotState.FAILED:
            self._give_up(reason)
            return
        self._out.append(Deliver(self._policy.retry(delay, reason)))
        self._link.reconnect_at = now + delay
        self._maybe_connect(now)

    def _refused(self, reason: str) -> None:
        self._fire(OneBotInput.REFUSED, reason)
        self._link.close(1000)
        self._end_calls(f"the connection ended before an answer came ({reason})")
        self._give_up(reason)

    def _give_up(self, reason: str) -> None:
        self.failure_reason = reason
        self._out.append(Failed(reason))

    def _maybe_connect(self, now: float) -> None:
        if self.state not in _TERMINAL and self._link.due(now):
            self._link.open(self.config.url, self._headers)

    def _end_calls(self, why: str, *, socket_only: bool = False) -> None:
        """End the pending actions (only those on the socket, when it alone went:
        an action over HTTP does not need it); when the connection is over for
        good, the waiting ones too, which never went out."""
        if socket_only:  # what waits goes out on the next connection
            self._pending.socket_gone(why)
            return
        self._pending.drop_all(why)
        for call, _ in self._outbox.drop_all():  # unless there is none
            self._pending.settle(call, error=_not_sent(call, f"the connection is over ({why})"))

    def _fire(self, trigger: OneBotInput, why: str, attempts: Attempts | None = None) -> None:
        change = self._lifecycle.fire(trigger, why, attempts or Attempts())
        if change is not None:
            self._out.append(change)

    def _violation(self, error: RemoteProtocolError) -> None:
        self._out.append(Deliver(ProtocolViolation(error)))

    def __repr__(self) -> str:
        return (
            f"OneBotProtocol(url={self.config.url!r}, state={self.state.name}, "
            f"version={self.version}, link={self._link.state.value})"
        )


def _not_sent(call: Call[Action], why: str) -> NotSent:
    return NotSent(f"{call.what.name} (call #{call.id}) not sent: {why}")
