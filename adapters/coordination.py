"""What the processes of one bot share, as interfaces, and their in-process implementations.

A bot at scale runs its shards in several processes, on several hosts, and
its work in others (docs/scaling.md). They share five things:

- :class:`IdentifySlots`: the identify pace, ``max_concurrency`` Identifies
  per window for the whole app, whichever process sends them;
- :class:`SessionStore`: each shard's session, so a restarted process
  resumes instead of identifying again;
- :class:`EventStream`: the events, from the gateway processes to the
  workers, each taken by one worker, acknowledged when handled, and taken
  over from a worker that died with it;
- :class:`HandledIds`: which events were handled, or are being handled
  under a lease, so an event that comes twice (a platform redelivery, or
  one taken over from a worker that is slow, not dead) reaches the
  application once;
- :class:`ReplySeqs`: each message's next ``msg_seq``, so two workers
  answering one message never use the same one.

``qqproto.adapters.redis`` keeps them in Redis. The ``Memory*`` classes here
keep them in one process, with the same behaviour: they are what runs
without Redis, and the same test suite runs against both. All are asyncio;
every time is seconds.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, Protocol

from qqproto.qq.session import Session

__all__ = [
    "Coordination",
    "EventStream",
    "HandledIds",
    "IdentifySlots",
    "MemoryEventStream",
    "MemoryHandledIds",
    "MemoryIdentifySlots",
    "MemoryReplySeqs",
    "MemorySessionStore",
    "ReplySeqs",
    "SessionStore",
    "Start",
    "Taken",
    "Unavailable",
]


class Unavailable(ConnectionError):
    """The shared store cannot be reached now (Redis restarting, the network):
    the caller waits and tries again; nothing it had acknowledged is lost."""


#: Seconds between two looks at a turn another holds (a release ends it early).
POLL = 0.05

#: What :meth:`HandledIds.start_many` says: handle it, it was handled, or another
#: worker is handling it now.
Start = Literal["mine", "done", "busy"]


@dataclass(frozen=True, slots=True)
class Taken:
    """One stream entry a worker took: its id, its fields, and whether it was
    taken over from another worker (which held it too long: it died, or hangs)."""

    entry_id: str
    fields: dict[str, str]
    reclaimed: bool = False


class IdentifySlots(Protocol):
    """The app's identify turn, across processes: one shard at a time."""

    async def acquire(self, shard: int, hold: float) -> str:
        """Wait for the turn, then take it for ``hold`` seconds; a token that
        names this holding. A holder that dies blocks no one for longer than
        ``hold``, so it keeps the turn with :meth:`keep` while it dials."""

    async def keep(self, token: str, hold: float) -> None:
        """Hold the turn ``hold`` seconds more (if it is still this token's)."""

    async def release(self, token: str, spacing: float) -> None:
        """The turn ends: the next starts ``spacing`` seconds from now (the
        Identify went out), or at once (``spacing`` 0: it did not)."""


class SessionStore(Protocol):
    async def load(self, shard: tuple[int, int]) -> Session | None:
        """The session saved for ``shard`` (``[i, n]``), if any."""

    async def save(self, session: Session) -> None: ...

    async def forget(self, shard: tuple[int, int]) -> None: ...


class EventStream(Protocol):
    async def publish(self, entries: list[dict[str, str]]) -> list[str]:
        """Append entries, in order; their ids."""

    async def take(self, consumer: str, count: int, block: float, min_idle: float) -> list[Taken]:
        """Up to ``count`` entries for ``consumer``: first those another
        consumer has held unacknowledged for ``min_idle`` seconds (taken over),
        then new ones, waiting up to ``block`` seconds for any."""

    async def ack(self, entry_ids: list[str]) -> None:
        """These entries are handled: no consumer gets them again."""

    async def pending(self) -> int:
        """Entries taken and not acknowledged, all consumers together."""

    async def trim(self) -> int:
        """Let go of the entries every consumer is past; how many went."""


class HandledIds(Protocol):
    """Which events were handled, or are being handled now, by whom."""

    async def start_many(self, keys: list[str], consumer: str, *, lease: float) -> list[Start]:
        """For each event key, in order: ``"mine"`` (free, or already this
        consumer's: it now holds it for ``lease`` seconds), ``"done"`` (handled),
        or ``"busy"`` (another consumer holds a live lease on it)."""

    async def finish_many(self, keys: list[str], ttl: float) -> None:
        """These events were handled; remembered as such ``ttl`` seconds."""


class ReplySeqs(Protocol):
    async def next(self, msg_id: str, ttl: float) -> int:
        """The next ``msg_seq`` for a reply to ``msg_id`` (1, 2, ...), counted
        for ``ttl`` seconds (the reply window) from the first."""


@dataclass(slots=True)
class Coordination:
    """The five shared things of one app (see the module docstring)."""

    slots: IdentifySlots
    sessions: SessionStore
    stream: EventStream
    handled: HandledIds
    seqs: ReplySeqs
    #: Closes what the implementations hold (a Redis connection pool).
    closers: list[object] = field(default_factory=list)

    @classmethod
    def in_memory(cls) -> Coordination:
        """Everything in this process: what runs without Redis."""
        return cls(
            MemoryIdentifySlots(),
            MemorySessionStore(),
            MemoryEventStream(),
            MemoryHandledIds(),
            MemoryReplySeqs(),
        )

    async def aclose(self) -> None:
        for closer in self.closers:
            close = getattr(closer, "aclose", None)
            if close is not None:
                await close()


def _now() -> float:
    return asyncio.get_running_loop().time()


class MemoryIdentifySlots:
    """One process's identify turn."""

    def __init__(self) -> None:
        self._holder: str | None = None
        self._until = 0.0  # the holding (or the spacing after it) ends then
        self._tokens = itertools.count(1)
        self._lock = asyncio.Lock()  # first come, first served

    async def acquire(self, shard: int, hold: float) -> str:
        async with self._lock:
            while (until := self._until) > _now():  # a release may end the wait early
                await asyncio.sleep(min(until - _now(), POLL))
            token = f"{shard}:{next(self._tokens)}"
            self._holder, self._until = token, _now() + hold
            return token

    async def keep(self, token: str, hold: float) -> None:
        if self._holder == token:
            self._until = _now() + hold

    async def release(self, token: str, spacing: float) -> None:
        if self._holder == token:
            self._holder, self._until = None, _now() + spacing


class MemorySessionStore:
    def __init__(self) -> None:
        self._sessions: dict[tuple[int, int], Session] = {}

    async def load(self, shard: tuple[int, int]) -> Session | None:
        return self._sessions.get(shard)

    async def save(self, session: Session) -> None:
        self._sessions[session.shard] = session

    async def forget(self, shard: tuple[int, int]) -> None:
        self._sessions.pop(shard, None)


@dataclass(slots=True)
class _Held:
    consumer: str
    since: float
    fields: dict[str, str]


class MemoryEventStream:
    """A stream with one consumer group, in this process."""

    def __init__(self) -> None:
        self._entries: OrderedDict[str, dict[str, str]] = OrderedDict()  # not yet taken
        self._held: dict[str, _Held] = {}  # taken, not acknowledged
        self._ids = itertools.count(1)
        self._arrived = asyncio.Event()

    async def publish(self, entries: list[dict[str, str]]) -> list[str]:
        ids = []
        for fields in entries:
            entry_id = f"{next(self._ids)}-0"
            self._entries[entry_id] = dict(fields)
            ids.append(entry_id)
        self._arrived.set()
        return ids

    async def take(self, consumer: str, count: int, block: float, min_idle: float) -> list[Taken]:
        out = self._take_over(consumer, count, min_idle)
        if not out and not self._entries and block > 0:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), block)
            except TimeoutError:
                return []
        while self._entries and len(out) < count:
            entry_id, fields = self._entries.popitem(last=False)
            self._held[entry_id] = _Held(consumer, _now(), fields)
            out.append(Taken(entry_id, fields))
        return out

    def _take_over(self, consumer: str, count: int, min_idle: float) -> list[Taken]:
        now, out = _now(), list[Taken]()
        for entry_id, held in list(self._held.items()):
            if len(out) >= count:
                break
            if now - held.since >= min_idle:  # its own too: a handler that failed
                held.consumer, held.since = consumer, now
                out.append(Taken(entry_id, held.fields, reclaimed=True))
        return out

    async def ack(self, entry_ids: list[str]) -> None:
        for entry_id in entry_ids:
            self._held.pop(entry_id, None)

    async def pending(self) -> int:
        return len(self._held)

    async def trim(self) -> int:
        return 0  # an acknowledged entry is gone at once here


class MemoryHandledIds:
    def __init__(self) -> None:
        self._keys: dict[str, tuple[str, float]] = {}  # key -> (holder or "\0done", until)

    async def start_many(self, keys: list[str], consumer: str, *, lease: float) -> list[Start]:
        now, out = _now(), list[Start]()
        for key in keys:
            holder, until = self._keys.get(key, ("", 0.0))
            if until <= now or holder == consumer:
                self._keys[key] = (consumer, now + lease)
                out.append("mine")
            else:
                out.append("done" if holder == _DONE else "busy")
        return out

    async def finish_many(self, keys: list[str], ttl: float) -> None:
        for key in keys:
            self._keys[key] = (_DONE, _now() + ttl)


_DONE = "\0done"


class MemoryReplySeqs:
    def __init__(self) -> None:
        self._seqs: dict[str, tuple[int, float]] = {}

    async def next(self, msg_id: str, ttl: float) -> int:
        now = _now()
        seq, until = self._seqs.get(msg_id, (0, 0.0))
        if until <= now:
            seq, until = 0, now + ttl
        self._seqs[msg_id] = (seq + 1, until)
        return seq + 1
