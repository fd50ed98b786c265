"""Shards: which ones this process runs, and when each may identify, sans-IO.

A bot whose events outgrow one gateway connection runs several, each a
shard ``[i, n]`` with a session of its own; the platform sends a guild's
events to shard ``(guild_id >> 22) % n`` (spec 11). Two rules govern them:

- **The start budget.** Each new session spends one of
  ``session_start_limit.remaining``, which refills ``reset_after`` ms later.
  :func:`plan_shards` turns what ``GET /gateway/bot`` says and what the user
  wants (every shard, or a slice of them for this process) into a
  :class:`ShardPlan`, and refuses a plan the budget cannot pay for, saying
  when it refills.
- **The identify pace.** At most ``max_concurrency`` Identifies per 5 s,
  and never several at once (spec 11; peers get this wrong in three ways,
  see the spec). :class:`IdentifyGate` lets them go one after another, in
  the order they were asked for, each ``(5 s + a margin) / max_concurrency``
  after the one before went out. A Resume spends no budget and never waits
  here.

Both are pure values and arithmetic on the time they are given: the
gateway asks (``IdentifyWanted``), its owner asks the gate, and hands the
grant back (``GatewayProtocol.identify_allowed``). The same gate across
processes lives in Redis (:mod:`qqproto.adapters.redis`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass

from ..errors import ConfigError
from .results import GatewayInfo, SessionLimitExceeded

__all__ = [
    "IDENTIFY_MARGIN",
    "IDENTIFY_WINDOW",
    "IdentifyGate",
    "ShardPlan",
    "parse_slice",
    "plan_shards",
    "shard_of_guild",
]

#: The platform's window: ``max_concurrency`` Identifies per this many seconds.
IDENTIFY_WINDOW = 5.0
#: Added to the window: clocks and networks are not exact, and an Identify
#: that comes a little early is refused.
IDENTIFY_MARGIN = 0.5


#: How many grants and Identifies a gate remembers.
KEPT = 1000


def shard_of_guild(guild_id: str | int, shards: int) -> int:
    """The shard a guild's events come to: ``(guild_id >> 22) % shards`` (spec 11)."""
    return (int(guild_id) >> 22) % shards


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """The shards this process runs (``ids``) out of ``count``, and the pace
    their Identifies keep (``max_concurrency`` per :data:`IDENTIFY_WINDOW`)."""

    count: int
    ids: tuple[int, ...]
    max_concurrency: int = 1

    def __post_init__(self) -> None:
        if type(self.count) is not int or self.count < 1:
            raise ConfigError("shards", "a whole number of shards, at least 1", self.count)
        if not self.ids or any(not 0 <= i < self.count for i in self.ids):
            raise ConfigError("shard ids", f"some of 0..{self.count - 1}", self.ids)
        if len(set(self.ids)) != len(self.ids):
            raise ConfigError("shard ids", "each shard once", self.ids)
        if type(self.max_concurrency) is not int or self.max_concurrency < 1:
            raise ConfigError("max_concurrency", "at least 1", self.max_concurrency)

    @property
    def shards(self) -> list[tuple[int, int]]:
        """Each shard as the ``[i, n]`` its Identify sends."""
        return [(i, self.count) for i in self.ids]


def plan_shards(
    info: GatewayInfo,
    count: int | None = None,
    ids: range | None = None,
    *,
    resuming: Collection[int] = (),
) -> ShardPlan:
    """The plan for this process: ``count`` shards (None: the platform's
    recommendation), of which it runs ``ids`` (None: all of them).

    Raises :class:`SessionLimitExceeded` when ``remaining`` cannot start them
    (the error says when the budget refills; the shards ``resuming`` a saved
    session spend none of it), :class:`ConfigError` when the wishes do not
    fit together."""
    limit = info.session_start_limit
    if limit is None:
        raise ConfigError("gateway info", "a GET /gateway/bot answer", info)
    total = info.shards if count is None else count
    if total is None:
        raise ConfigError("shards", "a count, or a /gateway/bot answer that recommends one", None)
    if type(total) is not int or total < 1:
        raise ConfigError("shards", "a whole number of shards, at least 1", total)
    chosen = range(total) if ids is None else ids
    if len(chosen) == 0 or chosen.start < 0 or chosen.stop > total:
        raise ConfigError("shard slice", f"a part of 0..{total - 1}", _show(chosen))
    starting = sum(1 for i in chosen if i not in resuming)
    if starting > limit.remaining:
        raise SessionLimitExceeded(starting, limit)
    return ShardPlan(total, tuple(chosen), max(1, limit.max_concurrency))


def parse_slice(text: str) -> range:
    """``"I..J"`` (both ends included) as a range; :class:`ConfigError` otherwise."""
    start, sep, end = text.partition("..")
    if not sep or not start.isdigit() or not end.isdigit() or int(start) > int(end):
        raise ConfigError("shard slice", "I..J with 0 <= I <= J, say 0..3", text)
    return range(int(start), int(end) + 1)


def _show(ids: range) -> str:
    return f"{ids.start}..{ids.stop - 1}" if len(ids) else "nothing"


class IdentifyGate:
    """Lets shards Identify one at a time, in the order they asked, each
    ``span / max_concurrency`` seconds after the one before went out, so
    that no window of ``span`` (5 s plus a margin) holds more than
    ``max_concurrency`` and no two ever go at once (spec 11).

    :meth:`ask` queues a shard; :meth:`due` grants the next turn when it may
    start, and :meth:`next_deadline` says when to call it again. A turn lasts
    until its Identify goes out (:meth:`spent`, which starts the spacing then,
    not at the grant: a slow handshake must not bring two Identifies
    together) or its connection ends without one (:meth:`returned`, and the
    next shard may go at once). Asking twice keeps one place in the queue;
    :meth:`cancel` gives a place up.
    """

    def __init__(
        self,
        max_concurrency: int = 1,
        *,
        window: float = IDENTIFY_WINDOW,
        margin: float = IDENTIFY_MARGIN,
    ) -> None:
        if window <= 0 or margin < 0:
            raise ConfigError("identify window", "window > 0 and margin >= 0", (window, margin))
        self.span = window + margin
        self.max_concurrency = 1
        self.set_concurrency(max_concurrency)
        self._queue: deque[int] = deque()
        self.turn: int | None = None  # the shard whose Identify may go now
        self._next_at = float("-inf")  # no turn starts before this
        #: The latest grants, (time, shard), and Identifies that went out, for tests and logs.
        self.history: deque[tuple[float, int]] = deque(maxlen=KEPT)
        self.sent: deque[tuple[float, int]] = deque(maxlen=KEPT)

    @property
    def spacing(self) -> float:
        """Seconds between one Identify and the next: ``span / max_concurrency``."""
        return self.span / self.max_concurrency

    def set_concurrency(self, max_concurrency: int) -> None:
        """What ``/gateway/bot`` says (``session_start_limit.max_concurrency``)."""
        if type(max_concurrency) is not int or max_concurrency < 1:
            raise ConfigError("max_concurrency", "at least 1", max_concurrency)
        self.max_concurrency = max_concurrency

    @property
    def waiting(self) -> list[int]:
        """The shards waiting for their turn, first first."""
        return list(self._queue)

    def ask(self, shard: int, now: float) -> None:
        """``shard`` wants to identify; :meth:`due` says when it may."""
        if shard not in self._queue and shard != self.turn:
            self._queue.append(shard)

    def cancel(self, shard: int) -> None:
        if shard in self._queue:
            self._queue.remove(shard)
        if self.turn == shard:
            self.turn = None

    def due(self, now: float) -> list[int]:
        """The shard whose turn starts now, if one's does (a list of at most one)."""
        if self.turn is not None or not self._queue or now < self._next_at:
            return []
        self.turn = self._queue.popleft()
        self.history.append((now, self.turn))
        return [self.turn]

    def spent(self, shard: int, now: float) -> None:
        """``shard``'s Identify went out at ``now``: the next turn starts a spacing later."""
        if self.turn == shard:
            self.turn = None
            self._next_at = now + self.spacing
            self.sent.append((now, shard))

    def returned(self, shard: int) -> None:
        """``shard``'s connection ended before its Identify: the next turn may start."""
        if self.turn == shard:
            self.turn = None

    def next_deadline(self) -> float | None:
        """When the next turn can start, if a shard waits and none has the turn
        (a time already past when it could start now)."""
        if self.turn is not None or not self._queue:
            return None
        return self._next_at if self._next_at > float("-inf") else 0.0

    def __repr__(self) -> str:
        return (
            f"IdentifyGate(max_concurrency={self.max_concurrency}, span={self.span:g}, "
            f"turn={self.turn}, waiting={list(self._queue)})"
        )
