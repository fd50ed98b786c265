"""A bounded map whose entries expire by the ``now`` it is given.

It never reads a clock: every call that can expire entries takes ``now``.
Entries keep their insertion order, and because each entry's lifetime is the
same ``ttl``, the oldest entry is always the first to expire; expiry is a walk
from the front that stops at the first live entry, so it costs O(expired).
The map also keeps the time the front entry expires (or a lower bound of it):
until ``now`` reaches it, nothing can be due, and every call skips the walk
with one comparison. Reads and writes sit on hot paths (a bot does several
per inbound message), so that comparison is most of what expiry costs them.

Two bounds hold at all times: no entry older than ``ttl`` is ever returned,
and the map never holds more than ``max_size`` entries (the oldest go first).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from typing import Generic, TypeVar, overload

from .errors import ConfigError

__all__ = ["TTLMap"]

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")


class TTLMap(Generic[K, V]):
    """Map keys to values for ``ttl`` seconds, holding at most ``max_size``.

    >>> seen = TTLMap[str, int](ttl=60.0, max_size=2)
    >>> seen.set("a", 1, now=0.0); seen.set("b", 2, now=10.0)
    >>> seen.get("a", now=59.0), seen.get("a", now=60.0)
    (1, None)
    """

    __slots__ = ("_due", "_entries", "max_size", "ttl")

    def __init__(self, ttl: float, max_size: int = 100_000) -> None:
        if not ttl > 0:
            raise ConfigError("ttl", "a positive number of seconds", ttl)
        if max_size < 1:
            raise ConfigError("max_size", "an integer >= 1", max_size)
        self.ttl = ttl
        self.max_size = max_size
        # key -> (expires_at, value)
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        # The front entry expires at `_due` or later (inf: the map is empty), so
        # while `now < _due` expire() has nothing to drop. Only the walk in
        # expire() raises it; an insert into an empty map sets it, and any other
        # change of the front lowers it to -inf: the next call walks once and
        # finds the exact time again.
        self._due = math.inf

    def expire(self, now: float) -> int:
        """Drop every entry whose time is up; return how many went."""
        if now < self._due:
            return 0
        entries = self._entries
        dropped = 0
        while entries:
            key = next(iter(entries))  # measured: cheaper than items(), values() or popitem()
            expires_at = entries[key][0]
            if expires_at > now:
                self._due = expires_at
                return dropped
            del entries[key]
            dropped += 1
        self._due = math.inf
        return dropped

    def set(self, key: K, value: V, now: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds from ``now``."""
        if now >= self._due:  # expire() inlined up to its first test: the hot path
            self.expire(now)
        entries = self._entries
        if key in entries:
            # A refreshed entry lives a full ttl again, so it moves to the back
            # and the front stays the oldest. It may have been the front.
            del entries[key]
            self._due = -math.inf
        elif len(entries) >= self.max_size:
            entries.popitem(last=False)
            self._due = -math.inf
        elif not entries:
            self._due = now + self.ttl
        entries[key] = (now + self.ttl, value)

    def add(self, key: K, value: V, now: float) -> bool:
        """Store ``value`` under ``key`` unless a live entry is there; whether it was stored.

        ``contains`` then ``set`` in one call, for de-duplication: a live entry
        is left as it was, its time included.
        """
        if now >= self._due:
            self.expire(now)
        entries = self._entries
        if key in entries:  # not entries.get(): a miss is the common case, `in` the cheaper
            if entries[key][0] > now:
                return False
            # Expired but still held (`now` went back, see get()): replace it.
            del entries[key]
            self._due = -math.inf
        elif len(entries) >= self.max_size:
            entries.popitem(last=False)
            self._due = -math.inf
        elif not entries:
            self._due = now + self.ttl
        entries[key] = (now + self.ttl, value)
        return True

    @overload
    def get(self, key: K, now: float) -> V | None: ...
    @overload
    def get(self, key: K, now: float, default: D) -> V | D: ...
    def get(self, key: K, now: float, default: object = None) -> object:
        """The live value under ``key``, or ``default``."""
        if now >= self._due:
            self.expire(now)
        entry = self._entries.get(key)
        # Check the entry itself too: expiry walks from the front and stops at
        # the first live entry, which only suffices while `now` never goes back.
        return default if entry is None or entry[0] <= now else entry[1]

    def contains(self, key: K, now: float) -> bool:
        """Whether ``key`` holds a live entry at ``now``."""
        if now >= self._due:
            self.expire(now)
        entry = self._entries.get(key)
        return entry is not None and entry[0] > now

    def pop(self, key: K, now: float) -> V | None:
        """Remove ``key`` and return its live value, or None."""
        self.expire(now)
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._due = -math.inf  # it may have been the front
        return None if entry is None or entry[0] <= now else entry[1]

    def __len__(self) -> int:
        """Entries held, expired or not (call ``expire`` first for live ones)."""
        return len(self._entries)

    def keys(self, now: float) -> Iterator[K]:
        """The live keys at ``now``, oldest first."""
        self.expire(now)
        return iter([key for key, (expires_at, _) in self._entries.items() if expires_at > now])

    def __repr__(self) -> str:
        return f"TTLMap(ttl={self.ttl}, max_size={self.max_size}, held={len(self._entries)})"
