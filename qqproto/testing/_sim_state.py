"""The simulated platform's one state object, which all its parts share.

:class:`SimState` holds what the platform knows (tokens, sessions and their
dispatch logs, the ids it delivered and the ids the bot's sends got back,
uploaded media, the session start budget), what tests read (the records
``QQSimulator`` shows), and the wakeup bookkeeping. The parts take it as
their one argument: the gateway (``_sim_gateway``), the REST rules
(``_sim_rest``), the HTTP connection (``_sim_http``), and the scripting
front, :class:`~qqproto.testing.simulator.QQSimulator`. None of them reaches
into another's attributes, and none imports the simulator: the imports run
one way, from ``_sim_common`` through this module to ``simulator.py``.

A part that wrote bytes on a connection calls :meth:`SimState.output_pending`;
every entry point runs inside :meth:`SimState.entered`. Together they decide
when a server helper's ``wakeup`` is called: once, at the end of any call that
left output pending on a connection other than the one being read.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..qq.scenes import Scene
from ._sim_common import (
    Heartbeat,
    SimDelivered,
    SimIdentify,
    SimLost,
    SimRejected,
    SimResume,
    SimSent,
    SimulatorConfig,
    dumps,
    pick,
)

__all__ = ["Carrier", "Entry", "Inbound", "Own", "Session", "SimState", "Stream"]

#: How many dispatches a session keeps for replay.
REPLAY_LOG = 10_000
_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class Carrier(Protocol):
    """What the platform does to a gateway connection (``_sim_gateway.GatewayLink``)."""

    @property
    def ready(self) -> bool: ...  # it carries a READY (or resumed) session

    @property
    def shard_id(self) -> int | None: ...  # its session's shard, once it has one

    def send_entry(self, entry: Entry, now: float) -> None: ...

    def send_raw(self, text: str) -> None: ...

    def dismiss(self, op: int, d: Any, now: float, *, kill: bool = False) -> None: ...

    def close(self, code: int, reason: str, now: float) -> None: ...

    def drop(self, now: float) -> None: ...

    def next_deadline(self) -> float | None: ...

    def handle_timer(self, now: float) -> None: ...


@dataclass(slots=True, eq=False)
class Entry:
    """One dispatch in a session's log."""

    seq: int
    t: str
    d: Any
    id: str | None
    session: Session
    written: bool = False  # in some connection's output (a drop takes that back)
    flushed: bool = False  # left the simulator at least once
    written_at: float = 0.0

    def frame(self) -> str:
        envelope: dict[str, Any] = {"op": 0, "s": self.seq, "t": self.t, "d": self.d}
        if self.id is not None:
            envelope["id"] = self.id
        return dumps(envelope)


@dataclass(slots=True, eq=False)
class Session:
    """A gateway session: it outlives connections, numbers its dispatches and
    keeps them for a Resume to replay."""

    id: str
    shard: tuple[int, int]
    intents: int
    seq: int = 0
    log: list[Entry] = field(default_factory=list)
    link: Carrier | None = None
    detached_at: float | None = None
    dead: bool = False
    #: The lowest seq a Resume may name: older dispatches left the log.
    floor: int = 0

    def append(self, t: str, d: Any, event_id: str | None) -> Entry:
        self.seq += 1
        entry = Entry(self.seq, t, d, event_id, self)
        self.log.append(entry)
        if len(self.log) > REPLAY_LOG:
            del self.log[: len(self.log) - REPLAY_LOG]
            self.floor = self.log[0].seq - 1
        return entry

    def resumable(self, now: float, window: float) -> bool:
        if self.dead:
            return False
        return self.detached_at is None or now - self.detached_at <= window


@dataclass(slots=True, eq=False)
class Stream:
    """One shard's delivery point: its session, and what waits for the next one."""

    session: Session | None = None
    #: (t, d, envelope id) waiting for a session, oldest first.
    pending: list[tuple[str, Any, str | None]] = field(default_factory=list)


@dataclass(slots=True)
class Inbound:
    """An id the platform delivered: a user message (``msg_id``) or an event (``event_id``)."""

    scene: Scene | None
    target: str | None
    at: float
    kind: str  # "msg_id" or "event_id"
    replyable: bool = True
    replies: int = 0
    seqs: set[int] = field(default_factory=set)


@dataclass(slots=True)
class Own:
    """An id one of the bot's sends got back."""

    scene: Scene
    target: str
    at: float
    recalled: bool = False


class SimState:
    """The platform as its parts see it (see the module docstring)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        #: Every id, token and jitter: the same seed gives the same bytes.
        self.rng = random.Random(config.seed)
        #: Set by a server helper; see the module docstring.
        self.wakeup: Callable[[], None] | None = None
        # -- what tests read (QQSimulator shows these very lists) ------------------------
        self.identifies: list[SimIdentify] = []
        self.resumes: list[SimResume] = []
        self.heartbeats: list[Heartbeat] = []
        self.unacked: list[Heartbeat] = []
        self.sent: list[SimSent] = []
        self.rejected: list[SimRejected] = []
        self.delivered: list[SimDelivered] = []
        self.lost: list[SimLost] = []
        self.scripted: list[tuple[float, str, Any, str]] = []
        self.token_requests: list[tuple[float, bool]] = []
        self.recalled: list[tuple[float, Scene, str, str]] = []
        self.interaction_acks: list[tuple[float, str, int]] = []
        # -- what the platform knows ------------------------------------------------------
        self.tokens: dict[str, float] = {}  # token -> expires_at
        self.current_token: str | None = None
        self.session_starts = config.session_start_remaining
        self.sessions: dict[str, Session] = {}
        self.streams: dict[int, Stream] = {}
        self.links: list[Carrier] = []
        #: Heartbeats still to go without an ACK.
        self.lost_acks = 0
        self.inbound: dict[str, Inbound] = {}
        self.own: dict[str, Own] = {}
        self.media: dict[str, tuple[Scene, float]] = {}  # file_info -> (scene, expires_at)
        self.interactions: set[str] = set()
        # -- wakeup bookkeeping -----------------------------------------------------------
        self._depth = 0
        self._receiving: object = None
        self._dirty = False

    # -- wakeups ------------------------------------------------------------------------------

    @contextmanager
    def entered(self, receiving: object) -> Iterator[None]:
        """Wrap every entry point: ``wakeup`` fires once, at the end of the outermost one.

        ``receiving`` is the connection being read (None for scripts and timers).
        """
        outer = self._depth == 0
        if outer:
            self._receiving = receiving
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if outer:
                self._receiving = None
                if self._dirty:
                    self._dirty = False
                    if self.wakeup is not None:
                        self.wakeup()

    def output_pending(self, connection: object) -> None:
        """``connection`` has bytes to write (or wants closing): the one place that
        decides whether a helper must be woken up."""
        if connection is not self._receiving:
            self._dirty = True
            if self._depth == 0 and self.wakeup is not None:  # pragma: no cover - defensive
                self._dirty = False
                self.wakeup()

    def link_ended(self, link: Carrier, connection: object) -> None:
        if link in self.links:
            self.links.remove(link)
        self.output_pending(connection)  # it wants closing

    # -- tokens -------------------------------------------------------------------------------

    def issue_token(self, now: float) -> tuple[str, float]:
        """An access token and when it expires, as the token endpoint hands them out:
        the current token until it is within 60 s of expiry, then a new one (spec 1.2)."""
        token = self.current_token
        if token is not None and self.tokens[token] - now > 60:
            return token, self.tokens[token]
        token = pick(self.rng, _TOKEN_ALPHABET, 48)
        self.tokens[token] = now + self.config.token_ttl
        self.current_token = token
        return token, self.tokens[token]

    def token_ok(self, value: object, now: float) -> bool:
        """``value`` is ``QQBot <token>`` with a live token: REST, Identify and Resume
        alike (spec 1.3; a bare token on Resume is one SDK's bug, not the platform's)."""
        if type(value) is not str or not value.startswith("QQBot "):
            return False
        expires_at = self.tokens.get(value[len("QQBot ") :])
        return expires_at is not None and now < expires_at

    def expire_tokens(self, now: float) -> None:
        for token in self.tokens:
            self.tokens[token] = min(self.tokens[token], now)
        self.current_token = None

    # -- heartbeats and sessions ----------------------------------------------------------------

    def take_ack(self) -> bool:
        """Whether the heartbeat that just came gets its ACK."""
        if self.lost_acks > 0:
            self.lost_acks -= 1
            return False
        return True

    def stream(self, shard: int) -> Stream:
        stream = self.streams.get(shard)
        if stream is None:
            stream = self.streams[shard] = Stream()
        return stream

    def current(self, stream: Stream, now: float) -> Session | None:
        """The stream's session, unless it has been detached too long (then it ends)."""
        session = stream.session
        if session is not None and not session.resumable(now, self.config.resume_window):
            self.retire(session, now)
            return None
        return session

    def retire(self, session: Session, now: float) -> None:
        """End ``session``. Its dispatches that never left the simulator are lost
        (recorded in :attr:`lost`), or, with ``config.carry_over_undelivered``,
        go to the next session. (Those already written to a connection that is
        still open leave with it, before its close frame.)"""
        if session.dead:
            return
        session.dead = True
        stream = self.stream(session.shard[0])
        unsent = [e for e in session.log if not (e.written or e.flushed)]
        if stream.session is session:
            stream.session = None
        if self.config.carry_over_undelivered:
            stream.pending[:0] = [(e.t, e.d, e.id) for e in unsent]
        else:
            self.lost.extend(SimLost(now, e.seq, e.t, e.d, e.id, session.id) for e in unsent)
        session.log.clear()
