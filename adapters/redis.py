"""One bot across processes and hosts, through Redis (the ``qqproto[redis]`` extra).

The five shared things of :mod:`qqproto.adapters.coordination`, kept in
Redis with the ``redis`` client's asyncio API. Every key starts with
``qqproto:<app id>:``, so several bots share one Redis safely:

- **the identify turn** (``identify``): one key, taken with ``SET NX PX``
  and kept alive while its holder dials; after the Identify it lives on for
  the spacing (``5.5 s / max_concurrency``), and without one it goes. A
  process that dies holding it blocks nobody beyond its hold (a few seconds);
- **sessions** (``session:<i>:<n>``): the resume data of each shard, as JSON,
  kept ``session_ttl`` seconds from its last save;
- **the event stream** (``events``): ``XADD`` from the gateway processes;
  the workers read it through one consumer group (``XREADGROUP``), each
  entry acknowledged (``XACK``) once handled; an entry a worker held too long
  is taken over by another (``XAUTOCLAIM``);
- **handled ids** (``handled:<id>``): a lease while a worker handles an
  event, then ``done`` for the de-duplication window; a batch's keys are
  taken by one Lua script, so two workers never both win one, and nobody
  takes a key whose lease is alive;
- **reply seqs** (``seq:<msg id>``): ``INCR``, with the reply window as the
  key's life from the first reply.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from qqproto.qq.session import Session

from .coordination import POLL, Coordination, Start, Taken, Unavailable

__all__ = [
    "GROUP",
    "RedisEventStream",
    "RedisHandledIds",
    "RedisIdentifySlots",
    "RedisReplySeqs",
    "RedisSessionStore",
    "connect",
]

#: The consumer group the workers read the stream through.
GROUP = "workers"
#: How long a saved session is kept after its last save (seconds).
SESSION_TTL = 3600.0


log = logging.getLogger("qqproto.redis")


def _prefix(app_id: str) -> str:
    return f"qqproto:{app_id}:"


_P = ParamSpec("_P")
_T = TypeVar("_T")

#: What Redis raises while it cannot answer: down, restarting, loading its data.
_AWAY = (redis_errors.ConnectionError, redis_errors.TimeoutError, redis_errors.BusyLoadingError)


def _reachable(
    method: Callable[_P, Coroutine[Any, Any, _T]],
) -> Callable[_P, Coroutine[Any, Any, _T]]:
    """Turn Redis being away into :class:`Unavailable`, the store's own word for it."""

    @functools.wraps(method)
    async def guarded(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return await method(*args, **kwargs)
        except _AWAY as error:
            raise Unavailable(f"redis: {error}") from error

    return guarded


#: Keep (ARGV[2] > 0) or end the turn, if it is still ARGV[1]'s: PEXPIRE, or
#: the spacing after an Identify (PEXPIRE too), or DEL when no Identify went.
_TURN = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('DEL', KEYS[1])
end
return 1
"""


class RedisIdentifySlots:
    """The app's identify turn is one key: ``SET NX PX`` takes it, the holder
    keeps it alive while it dials, and after its Identify it lives on for the
    spacing, so the next shard, in any process, waits that long."""

    def __init__(self, client: aioredis.Redis, app_id: str) -> None:
        self._r = client
        self._key = _prefix(app_id) + "identify"
        self._turn = client.register_script(_TURN)
        self._lock = asyncio.Lock()  # this process's shards ask in their order

    @_reachable
    async def acquire(self, shard: int, hold: float) -> str:
        token = f"{shard}:{uuid.uuid4().hex}"
        async with self._lock:
            while not await self._r.set(self._key, token, nx=True, px=_ms(hold)):
                left = await self._r.pttl(self._key)  # a release may end it sooner: look again
                await asyncio.sleep(min(max(left, 5) / 1000, POLL))
        return token

    @_reachable
    async def keep(self, token: str, hold: float) -> None:
        await self._turn(keys=[self._key], args=[token, _ms(hold)])

    @_reachable
    async def release(self, token: str, spacing: float) -> None:
        await self._turn(keys=[self._key], args=[token, _ms(spacing) if spacing > 0 else 0])


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisSessionStore:
    def __init__(self, client: aioredis.Redis, app_id: str, ttl: float = SESSION_TTL) -> None:
        self._r = client
        self._key = _prefix(app_id) + "session:"
        self._ttl = ttl

    def _of(self, shard: tuple[int, int]) -> str:
        return f"{self._key}{shard[0]}:{shard[1]}"

    @_reachable
    async def load(self, shard: tuple[int, int]) -> Session | None:
        raw = await self._r.get(self._of(shard))
        if raw is None:
            return None
        try:
            session = Session.from_dict(json.loads(raw))
        except (ValueError, TypeError):  # not what we save: treated as none, and said
            return None
        return session if session.shard == shard else None

    @_reachable
    async def save(self, session: Session) -> None:
        data = json.dumps(session.to_dict(), separators=(",", ":"))
        await self._r.set(self._of(session.shard), data, px=int(self._ttl * 1000))

    @_reachable
    async def forget(self, shard: tuple[int, int]) -> None:
        await self._r.delete(self._of(shard))


#: Trim below the oldest entry the group still holds, or, when it holds none,
#: below the last one it delivered (the rest are acknowledged): never an
#: undelivered or a pending entry, and nothing read between look and trim.
_TRIM = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local below = nil
if pending[1] > 0 then
  below = pending[2]
else
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local fields = {}
    for i = 1, #group, 2 do fields[group[i]] = group[i + 1] end
    if fields['name'] == ARGV[1] then below = fields['last-delivered-id'] end
  end
end
if (not below) or below == '0-0' then return 0 end
return redis.call('XTRIM', KEYS[1], 'MINID', below)
"""

#: Pages of the pending list one look for held entries reads at most.
CLAIM_PAGES = 10


class RedisEventStream:
    """The app's events as a Redis Stream, read through one consumer group.

    Nothing is trimmed on the way in: an entry leaves only once every worker
    is past it (:meth:`trim`, which the workers call now and then), so a
    stream whose workers are all down grows until they come back. A Redis
    that restarted without its data has lost the group too: it is made again,
    and what was in the stream is gone with the rest."""

    def __init__(self, client: aioredis.Redis, app_id: str) -> None:
        self._r = client
        self.key = _prefix(app_id) + "events"
        self._trim = client.register_script(_TRIM)
        self._group_made = False
        self._swept: dict[str, float] = {}  # consumer -> when it last looked for held entries
        self._cursor: dict[str, str] = {}  # consumer -> where its last look stopped

    async def _group(self, *, again: bool = False) -> None:
        if self._group_made and not again:
            return
        try:
            await self._r.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except aioredis.ResponseError as error:  # BUSYGROUP: another process made it
            if "BUSYGROUP" not in str(error):
                raise
        self._group_made = True

    async def _grouped(self, call: Callable[[], Awaitable[_T]], lost: _T) -> _T:
        """``call()``, the group made first; ``lost`` when Redis lost the group
        (it restarted without its data): the group is made again."""
        await self._group()
        try:
            return await call()
        except redis_errors.ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            log.warning("the consumer group of %s was gone: made again", self.key)
            await self._group(again=True)
            return lost

    @_reachable
    async def publish(self, entries: list[dict[str, str]]) -> list[str]:
        await self._group()  # entries before the group exists would be read from "0" anyway
        async with self._r.pipeline(transaction=False) as pipe:
            for fields in entries:
                pipe.xadd(self.key, fields)  # type: ignore[arg-type]
            ids = await pipe.execute()
        return [_text(i) for i in ids]

    @_reachable
    async def take(self, consumer: str, count: int, block: float, min_idle: float) -> list[Taken]:
        now = asyncio.get_running_loop().time()
        if now - self._swept.get(consumer, float("-inf")) >= min_idle / 4:
            nothing: list[Taken] | None = []  # (the group was lost: nothing is held)
            claimed = await self._grouped(lambda: self._claim(consumer, count, min_idle), nothing)
            if claimed:
                return claimed
            if claimed is not None:  # looked through the whole pending list
                self._swept[consumer] = now
        return await self._grouped(lambda: self._read(consumer, count, block), [])

    async def _claim(self, consumer: str, count: int, min_idle: float) -> list[Taken] | None:
        """Entries held ``min_idle`` by anyone, from where the last look stopped,
        a few pages of the pending list at most; None when it did not reach the
        end of the list (the next look goes on from there)."""
        for _ in range(CLAIM_PAGES):
            start = self._cursor.get(consumer, "0-0")
            cursor, claimed, _ = await self._r.xautoclaim(
                self.key, GROUP, consumer, _ms(min_idle), start_id=start, count=count
            )
            self._cursor[consumer] = _text(cursor)
            out = [Taken(_text(i), _fields(f), reclaimed=True) for i, f in claimed if f]
            if out or _text(cursor) == "0-0":
                return out
        return None

    async def _read(self, consumer: str, count: int, block: float) -> list[Taken]:
        answer: Any = await self._r.xreadgroup(
            GROUP, consumer, {self.key: ">"}, count=count, block=_ms(block)
        )
        out = []
        for _, entries in answer or []:  # [[stream, [(id, fields), ...]]]
            out += [Taken(_text(i), _fields(f)) for i, f in entries]
        return out

    @_reachable
    async def ack(self, entry_ids: list[str]) -> None:
        if entry_ids:
            await self._grouped(lambda: self._r.xack(self.key, GROUP, *entry_ids), 0)

    @_reachable
    async def pending(self) -> int:
        summary: Any = await self._grouped(lambda: self._r.xpending(self.key, GROUP), None)
        return int(summary["pending"]) if summary else 0

    @_reachable
    async def trim(self) -> int:
        """Drop the entries every worker is past (delivered and acknowledged); how
        many. One script: nothing can be read between the look and the trim."""
        return int(await self._grouped(lambda: self._trim(keys=[self.key], args=[GROUP]), 0))


#: Take each handled-id key that is free or already ARGV[1]'s, for ARGV[2] ms.
_START_MANY = """
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if (not v) or v == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 'mine'
  elseif v == '\\0done' then
    out[i] = 'done'
  else
    out[i] = 'busy'
  end
end
return out
"""

#: Mark a batch handled: each key ``done`` for ARGV[1] ms.
_FINISH_MANY = """
for _, key in ipairs(KEYS) do
  redis.call('SET', key, '\\0done', 'PX', ARGV[1])
end
return #KEYS
"""


class RedisHandledIds:
    """Each key is a lease (the consumer's name, expiring) or a mark that
    says done; a batch is taken and marked with one script call each (one
    Redis, not a Cluster: a script's keys may lie in any slot)."""

    def __init__(self, client: aioredis.Redis, app_id: str) -> None:
        self._r = client
        self._key = _prefix(app_id) + "handled:"
        self._start_many = client.register_script(_START_MANY)
        self._finish_many = client.register_script(_FINISH_MANY)

    @_reachable
    async def start_many(self, keys: list[str], consumer: str, *, lease: float) -> list[Start]:
        if not keys:
            return []
        said = await self._start_many(
            keys=[self._key + key for key in keys], args=[consumer, _ms(lease)]
        )
        return [_text(v) for v in said]  # type: ignore[misc]

    @_reachable
    async def finish_many(self, keys: list[str], ttl: float) -> None:
        if keys:
            await self._finish_many(keys=[self._key + key for key in keys], args=[_ms(ttl)])


class RedisReplySeqs:
    def __init__(self, client: aioredis.Redis, app_id: str) -> None:
        self._r = client
        self._key = _prefix(app_id) + "seq:"

    @_reachable
    async def next(self, msg_id: str, ttl: float) -> int:
        key = self._key + msg_id
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.pexpire(key, max(1, int(ttl * 1000)), nx=True)  # the window runs from the first
            seq, _ = await pipe.execute()
        return int(seq)


def connect(url: str, app_id: str) -> Coordination:
    """The app's coordination through the Redis at ``url`` (``redis://host:port/db``)."""
    # A command on a pooled connection Redis dropped (a restart) is tried again
    # on a fresh one at once, a few times, before the store says it is away.
    retry = Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3)
    client = aioredis.Redis.from_url(url, retry=retry, retry_on_error=list(_AWAY))
    return Coordination(
        RedisIdentifySlots(client, app_id),
        RedisSessionStore(client, app_id),
        RedisEventStream(client, app_id),
        RedisHandledIds(client, app_id),
        RedisReplySeqs(client, app_id),
        closers=[client],
    )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(raw: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in dict(raw).items()}
