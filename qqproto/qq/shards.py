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
  see the spec). :class:`IdentifyGate` grants Identifies one after another,
  in the order they were asked for, never more than ``max_concurrency`` in any
  window of 5 s plus a margin. A Resume spends no budget and never waits
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
from .results import GatewayInfo, SessionLimitExceeded, SessionStartLimit

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
    """Grants Identifies in the order asked, at most ``max_concurrency`` in
    any window of ``window + margin`` seconds (see the module docstring).

    :meth:`ask` queues a shard; :meth:`due` grants what may go now, in order,
    and :meth:`next_deadline` says when to call it again. Asking twice keeps
    one place in the queue; :meth:`cancel` gives a place up (the shard no
    longer needs it). A grant is spent even when its Identify never goes
    out: the gate cannot know, and being early costs more than being late.
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
        self._granted: deque[float] = deque()  # grant times within the last span
        #: Every grant: (time, shard), for tests and logs.
        self.history: list[tuple[float, int]] = []

    def set_concurrency(self, max_concurrency: int) -> None:
        """What ``/gateway/bot`` says (``session_start_limit.max_concurrency``)."""
        if type(max_concurrency) is not int or max_concurrency < 1:
            raise ConfigError("max_concurrency", "at least 1", max_concurrency)
        self.max_concurrency = max_concurrency

    @classmethod
    def for_limit(cls, limit: SessionStartLimit | None) -> IdentifyGate:
        """A gate at the pace a ``/gateway/bot`` answer sets (1 without one)."""
        return cls(max(1, limit.max_concurrency) if limit is not None else 1)

    @property
    def waiting(self) -> list[int]:
        """The shards waiting for a grant, first first."""
        return list(self._queue)

    def ask(self, shard: int, now: float) -> None:
        """``shard`` wants to identify; :meth:`due` says when it may."""
        if shard not in self._queue:
            self._queue.append(shard)

    def cancel(self, shard: int) -> None:
        if shard in self._queue:
            self._queue.remove(shard)

    def due(self, now: float) -> list[int]:
        """The shards that may identify now, in order; each grant is counted."""
        self._forget(now)
        granted = []
        while self._queue and len(self._granted) < self.max_concurrency:
            shard = self._queue.popleft()
            self._granted.append(now)
            self.history.append((now, shard))
            granted.append(shard)
        return granted

    def next_deadline(self) -> float | None:
        """When the next grant can be made, if a shard waits (a time already
        past when one could be made now: :meth:`due` was not called since)."""
        if not self._queue:
            return None
        if len(self._granted) < self.max_concurrency:
            return self._granted[-1] if self._granted else 0.0
        return self._granted[0] + self.span

    def _forget(self, now: float) -> None:
        while self._granted and self._granted[0] + self.span <= now:
            self._granted.popleft()

    def __repr__(self) -> str:
        return (
            f"IdentifyGate(max_concurrency={self.max_concurrency}, span={self.span:g}, "
            f"waiting={list(self._queue)}, in_window={len(self._granted)})"
        )
