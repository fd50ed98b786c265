"""A bounded map whose entries expire by the ``now`` it is given.

It never reads a clock: every call that can expire entries takes ``now``.
Entries keep their insertion order, and because each entry's lifetime is the
same ``ttl``, the oldest entry is always the first to expire; expiry is a walk
from the front that stops at the first live entry, so it costs O(expired).

Two bounds hold at all times: no entry older than ``ttl`` is ever returned,
and the map never holds more than ``max_size`` entries (the oldest go first).
"""

from __future__ import annotations

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

    __slots__ = ("_entries", "max_size", "ttl")

    def __init__(self, ttl: float, max_size: int = 100_000) -> None:
        if not ttl > 0:
            raise ConfigError("ttl", "a positive number of seconds", ttl)
        if max_size < 1:
            raise ConfigError("max_size", "an integer >= 1", max_size)
        self.ttl = ttl
        self.max_size = max_size
        # key -> (expires_at, value)
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def expire(self, now: float) -> int:
        """Drop every entry whose time is up; return how many went."""
        entries = self._entries
        dropped = 0
        while entries:
            key, (expires_at, _) = next(iter(entries.items()))
            if expires_at > now:
                break
            del entries[key]
            dropped += 1
        return dropped

    def set(self, key: K, value: V, now: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds from ``now``."""
        self.expire(now)
        entries = self._entries
        if key in entries:
            # A refreshed entry lives a full ttl again, so it moves to the back
            # and the front stays the oldest.
            del entries[key]
        elif len(entries) >= self.max_size:
            entries.popitem(last=False)
        entries[key] = (now + self.ttl, value)

    @overload
    def get(self, key: K, now: float) -> V | None: ...
    @overload
    def get(self, key: K, now: float, default: D) -> V | D: ...
    def get(self, key: K, now: float, default: object = None) -> object:
        """The live value under ``key``, or ``default``."""
        self.expire(now)
        entry = self._entries.get(key)
        # Check the entry itself too: expiry walks from the front and stops at
        # the first live entry, which only suffices while `now` never goes back.
        return default if entry is None or entry[0] <= now else entry[1]

    def contains(self, key: K, now: float) -> bool:
        """Whether ``key`` holds a live entry at ``now``."""
        self.expire(now)
        entry = self._entries.get(key)
        return entry is not None and entry[0] > now

    def pop(self, key: K, now: float) -> V | None:
        """Remove ``key`` and return its live value, or None."""
        self.expire(now)
        entry = self._entries.pop(key, None)
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
