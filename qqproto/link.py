"""One outbound WebSocket link: its transport, its reconnect policy, and the
value each failed attempt becomes.

Anything that keeps one connection up to a server (the QQ gateway, OneBot's
forward WebSocket client) holds a :class:`WebSocketLink`: one transport at a
time, named by its connection id, through the states of :class:`LinkState`,
with the WebSocket client on it. The protocol on top reads the link's
events and decides what they mean; the link checks the driver's calls
against the one transport it asked for.

It loses the connection now and then, and must decide when to try again.
:class:`ReconnectPolicy` holds those rules, apart from any protocol:

- **the attempt budget**: a connection that never reached its goal (READY,
  say) is one failed attempt; after ``max_attempts`` in a row, give up;
- **backoff**: the waits between failed attempts grow exponentially, with
  jitter from the injected RNG, up to a cap, and start over after a good
  connection;
- **short sessions**: a good connection that dies young (a server that
  accepts and drops at once) spends no budget, but after ``tolerated`` of
  them in a row the reconnects back off as failed attempts do, so such a
  server is never hammered in a tight loop.

Every failed attempt that will be retried becomes a :class:`Retry` value, for
the application and the logs: which attempt failed, of how many, why, and
how long until the next.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

from .actions import Action, Connect, Disconnect, SendData
from .backoff import Backoff
from .errors import LocalProtocolError
from .ws import Entropy, WebSocketClient, WsEvent

__all__ = [
    "SHORT_SESSION",
    "SHORT_SESSIONS_TOLERATED",
    "LinkState",
    "ReconnectPolicy",
    "Retry",
    "WebSocketLink",
]

#: A good connection lost sooner than this (seconds) was short-lived ...
SHORT_SESSION = 10.0
#: ... and after this many short-lived ones in a row, reconnects back off.
SHORT_SESSIONS_TOLERATED = 2


@dataclass(frozen=True, slots=True)
class Retry:
    """An attempt failed, and another comes after ``delay`` seconds.

    ``what`` names what was attempted: ``"gateway"`` (a connection), and for
    a bot also ``"discovery"`` (``GET /gateway/bot``) and ``"token"`` (an
    access token). ``attempt`` counts the failed attempts in a row, as
    ``max_attempts`` does; ``of`` is that cap (None when there is none). The
    attempt that spends the budget is no Retry: the object fails instead.
    """

    attempt: int
    of: int | None
    delay: float
    reason: str
    what: str

    def __str__(self) -> str:
        of = f" of {self.of}" if self.of is not None else ""
        return (
            f"{self.what} attempt {self.attempt}{of} failed ({self.reason});"
            f" next in {self.delay:.1f} s"
        )

    @classmethod
    def after(cls, backoff: Backoff, delay: float, reason: str, what: str) -> Retry:
        """The value that reports the failure ``backoff`` just counted."""
        return cls(backoff.failures, backoff.max_attempts, delay, reason, what)


class ReconnectPolicy:
    """When to connect again, for one link. The owner says when a connection
    reached its goal (:meth:`connected`) and when one ended (:meth:`ended`,
    which gives the wait); :meth:`retry` reports a failed attempt."""

    __slots__ = (
        "_good_since",
        "_short",
        "_shorts",
        "attempts",
        "short_session",
        "tolerated",
        "what",
    )

    def __init__(
        self,
        rng: random.Random,
        *,
        base: float = 1.0,
        cap: float = 60.0,
        max_attempts: int | None = 30,
        short_session: float = SHORT_SESSION,
        tolerated: int = SHORT_SESSIONS_TOLERATED,
        what: str = "gateway",
    ) -> None:
        #: What its Retry values say was attempted.
        self.what = what
        #: The failed attempts in a row, and the waits between them.
        self.attempts = Backoff(rng, base=base, cap=cap, max_attempts=max_attempts)
        # Never spent: only its waits are used, never its count.
        self._short = Backoff(rng, base=base, cap=cap, max_attempts=1)
        self.short_session = short_session
        self.tolerated = tolerated
        self._good_since = 0.0
        self._shorts = 0

    @property
    def spent(self) -> bool:
        """Whether the failed attempts reached ``max_attempts``."""
        return self.attempts.exhausted

    def attempt_failed(self) -> float:
        """Count a failed attempt; the wait before the next (see :attr:`spent`)."""
        return self.attempts.next_delay()

    def retry(self, delay: float, reason: str) -> Retry:
        """The value that reports the failed attempt just counted."""
        return Retry.after(self.attempts, delay, reason, self.what)

    def ended(self, now: float, *, good: bool, pause: float = 0.0) -> float:
        """A connection ended and another will be tried: the wait before it.

        One that never reached its goal (not ``good``) is a failed attempt
        (see :attr:`spent`, and :meth:`retry` to report it); a good one waits
        only when connections keep dying young. ``pause`` is the least wait,
        what the peer asked for.
        """
        wait = self.good_one_ended(now) if good else self.attempt_failed()
        return max(pause, wait)

    def connected(self, now: float) -> None:
        """A connection reached its goal: the failed attempts are forgotten."""
        self._good_since = now
        self.attempts.reset()

    def good_one_ended(self, now: float) -> float:
        """A good connection was lost: the wait before the next, none unless
        connections keep dying young."""
        if now - self._good_since >= self.short_session:
            self._shorts = 0
            self._short.reset()
            return 0.0
        self._shorts += 1
        if self._shorts <= self.tolerated:
            return 0.0
        return self._short.next_delay()

    def __repr__(self) -> str:
        return f"ReconnectPolicy({self.attempts!r}, short sessions in a row: {self._shorts})"


class LinkState(Enum):
    """The one transport under a link."""

    IDLE = "idle"  # none; a reconnect may be pending
    OPENING = "opening"  # Connect was asked for
    OPEN = "open"  # connection_made was called
    CLOSING = "closing"  # Disconnect was asked for; waiting for connection_lost


class WebSocketLink:
    """One outbound WebSocket at a time, and when to open the next.

    ``out`` takes the actions the link asks for (``Connect``, ``SendData``,
    ``Disconnect``); ``ids`` numbers its connections (the owner's counter).
    The owner calls :meth:`open` when :meth:`due`, forwards the driver's
    calls to :meth:`made`, :meth:`receive` and :meth:`lost`, and ends a
    connection with :meth:`close`.
    """

    __slots__ = (
        "_entropy",
        "_ids",
        "_max_message_size",
        "_out",
        "conn",
        "reconnect_at",
        "state",
        "ws",
    )

    def __init__(
        self,
        out: Callable[[Action], None],
        ids: Iterator[int],
        entropy: Entropy,
        *,
        max_message_size: int,
    ) -> None:
        self._out, self._ids, self._entropy = out, ids, entropy
        self._max_message_size = max_message_size
        self.state = LinkState.IDLE
        self.conn = 0  # the id of the transport (none while IDLE)
        self.ws: WebSocketClient | None = None
        #: When the next connection may open (None: at once).
        self.reconnect_at: float | None = None

    def due(self, now: float) -> bool:
        """Whether a new connection may open now."""
        at = self.reconnect_at
        return self.state is LinkState.IDLE and (at is None or now >= at)

    def open(self, url: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Ask for a new transport to ``url`` (only while IDLE); ``headers`` go
        with the upgrade request (``Authorization``, say)."""
        assert self.state is LinkState.IDLE, self.state
        self.ws = WebSocketClient(
            url, self._entropy, max_message_size=self._max_message_size, extra_headers=headers
        )
        self.state, self.conn, self.reconnect_at = LinkState.OPENING, next(self._ids), None
        self._out(Connect(self.conn, url))

    def made(self, conn: int) -> None:
        """The driver's ``connection_made``: the upgrade request goes out."""
        if self.state is not LinkState.OPENING or conn != self.conn:
            raise self._misuse("connection_made without an outstanding Connect", conn, "a Connect")
        assert self.ws is not None
        self.state = LinkState.OPEN
        self._out(SendData(conn, self.ws.connect()))

    def receive(self, conn: int, data: bytes) -> list[WsEvent]:
        """The driver's ``receive_data``: what the WebSocket made of ``data``
        (nothing once we let the transport go)."""
        if self.state is not LinkState.OPEN or conn != self.conn:
            if self.state is LinkState.CLOSING and conn == self.conn:
                return []  # we already let this transport go
            raise self._misuse("data received without an open transport", conn, "connection_made")
        assert self.ws is not None
        return self.ws.receive_data(data)

    def lost(self, conn: int) -> LinkState:
        """The driver's ``connection_lost``: the state the transport was in
        (CLOSING when we asked for it). The link is IDLE after."""
        state = self.state
        if state is LinkState.IDLE or conn != self.conn:
            raise self._misuse(
                "connection_lost without a transport", conn, "a Connect or a transport"
            )
        self.state, self.ws = LinkState.IDLE, None
        return state

    def close(self, code: int) -> None:
        """End the transport: the close frame (when open), then ``Disconnect``."""
        if self.state is LinkState.OPEN:
            ws = self.ws
            assert ws is not None
            if data := ws.data_to_send() + ws.close(code):
                self._out(SendData(self.conn, data))
        if self.state in (LinkState.OPEN, LinkState.OPENING):
            self._out(Disconnect(self.conn))
            self.state = LinkState.CLOSING

    def send_text(self, text: str) -> None:
        """A text message, unless the WebSocket is closed already (the peer's
        close can be read in the same chunk as a message asking for an answer:
        its Closed event comes next, and the answer has no place to go)."""
        ws = self.ws
        if ws is not None and ws.is_open:
            self._out(SendData(self.conn, ws.send_text(text)))

    def ping(self) -> None:
        """A ping, when the WebSocket is open (its pong is bytes like any others)."""
        ws = self.ws
        if ws is not None and ws.is_open:
            self._out(SendData(self.conn, ws.ping()))

    def flush(self) -> None:
        """What the WebSocket owes the peer (pongs, a close answered)."""
        if self.ws is not None and (data := self.ws.data_to_send()):
            self._out(SendData(self.conn, data))

    def _misuse(self, what: str, conn: int, expected: str) -> LocalProtocolError:
        ours = f"link {self.state.value}" + (f" on connection {self.conn}" if self.conn else "")
        return LocalProtocolError(
            what, expected=f"{expected} first ({ours})", received=f"connection {conn}"
        )

    def __repr__(self) -> str:
        return f"WebSocketLink({self.state.value}, conn={self.conn})"
