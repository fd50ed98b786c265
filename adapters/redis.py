"""One bot across processes and hosts, through Redis (the ``qqproto[redis]`` extra).

The five shared things of :mod:`qqproto.adapters.coordination`, kept in
Redis with the ``redis`` client's asyncio API. Every key starts with
``qqproto:<app id>:``, so several bots share one Redis safely:

- **identify slots** (``identify:<slot>``): one ``SET NX PX`` per window
  slot, slot ``shard % max_concurrency``. The key expires with the window, so
  a process that dies holding one blocks nobody beyond it, and nothing needs
  releasing;
- **sessions** (``session:<i>:<n>``): the resume data of each shard, as JSON,
  kept ``session_ttl`` seconds from its last save;
- **the event stream** (``events``): ``XADD`` from the gateway processes;
  the workers read it through one consumer group (``XREADGROUP``), each
  entry acknowledged (``XACK``) once handled; an entry a worker held too long
  is taken over by another (``XAUTOCLAIM``);
- **handled ids** (``handled:<id>``): a short lease while a worker handles
  an event, then ``done`` for the de-duplication window; taking it and
  taking it over are one Lua script each, so two workers never both win;
- **reply seqs** (``seq:<msg id>``): ``INCR``, with the reply window as the
  key's life from the first reply.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as redis_errors
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from qqproto.qq.session import Session

from .coordination import Coordination, Start, Taken, Unavailable

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
#: The stream keeps about this many entries (older acknowledged ones go).
STREAM_MAX = 100_000


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


class RedisIdentifySlots:
    def __init__(self, client: aioredis.Redis, app_id: str) -> None:
        self._r = client
        self._key = _prefix(app_id) + "identify:"
        self._lock = asyncio.Lock()  # this process's shards ask in their order

    @_reachable
    async def acquire(self, shard: int, max_concurrency: int, window: float) -> None:
        key = f"{self._key}{shard % max_concurrency}"
        async with self._lock:
            while not await self._r.set(key, str(shard), nx=True, px=max(1, int(window * 1000))):
                left = await self._r.pttl(key)
                await asyncio.sleep(max(left, 5) / 1000)


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


class RedisEventStream:
    def __init__(self, client: aioredis.Redis, app_id: str, max_len: int = STREAM_MAX) -> None:
        self._r = client
        self.key = _prefix(app_id) + "events"
        self._max_len = max_len
        self._group_made = False
        self._swept: dict[str, float] = {}  # consumer -> when it last looked for held entries

    async def _group(self, *, again: bool = False) -> None:
        if self._group_made and not again:
            return
        try:
            await self._r.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except aioredis.ResponseError as error:  # BUSYGROUP: another process made it
            if "BUSYGROUP" not in str(error):
                raise
        self._group_made = True

    @_reachable
    async def publish(self, entries: list[dict[str, str]]) -> list[str]:
        await self._group()  # entries before the group exists would be read from "0" anyway
        async with self._r.pipeline(transaction=False) as pipe:
            for fields in entries:
                pipe.xadd(self.key, fields, maxlen=self._max_len, approximate=True)  # type: ignore[arg-type]
            ids = await pipe.execute()
        return [_text(i) for i in ids]

    @_reachable
    async def take(self, consumer: str, count: int, block: float, min_idle: float) -> list[Taken]:
        await self._group()
        now = asyncio.get_running_loop().time()
        if now - self._swept.get(consumer, float("-inf")) < min_idle / 4:
            return await self._read(consumer, count, block)  # held ones were looked for lately
        try:
            _, claimed, _ = await self._r.xautoclaim(
                self.key, GROUP, consumer, int(min_idle * 1000), start_id="0-0", count=count
            )
        except redis_errors.ResponseError as error:  # a Redis that lost its data restarted
            if "NOGROUP" not in str(error):
                raise
            await self._group(again=True)
            return []
        out = [Taken(_text(i), _fields(f), reclaimed=True) for i, f in claimed if f]
        if out:
            return out  # (more may wait: the next call looks again)
        self._swept[consumer] = now
        return await self._read(consumer, count, block)

    async def _read(self, consumer: str, count: int, block: float) -> list[Taken]:
        answer: Any = await self._r.xreadgroup(
            GROUP, consumer, {self.key: ">"}, count=count, block=max(1, int(block * 1000))
        )
        out = []
        for _, entries in answer or []:  # [[stream, [(id, fields), ...]]]
            out += [Taken(_text(i), _fields(f)) for i, f in entries]
        return out

    @_reachable
    async def ack(self, entry_ids: list[str]) -> None:
        if entry_ids:
            await self._r.xack(self.key, GROUP, *entry_ids)

    @_reachable
    async def pending(self) -> int:
        await self._group()
        summary = await self._r.xpending(self.key, GROUP)
        return int(summary["pending"])


#: Take the handled-id key: free, expired, ours, or taken over -> "mine".
_START = """
local v = redis.call('GET', KEYS[1])
if (not v) or v == ARGV[1] or (ARGV[2] == '1' and v ~= '\\0done') then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 'mine'
end
if v == '\\0done' then return 'done' end
return 'busy'
"""


#: :data:`_START` for a batch at once: ARGV[2] holds each key's reclaimed flag.
_START_MANY = """
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  local reclaimed = string.sub(ARGV[2], i, i) == '1'
  if (not v) or v == ARGV[1] or (reclaimed and v ~= '\0done') then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[3])
    out[i] = 'mine'
  elseif v == '\0done' then
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
  redis.call('SET', key, '\0done', 'PX', ARGV[1])
end
return #KEYS
"""


class RedisHandledIds:
    def __init__(self, client: aioredis.Redis, app_id: str) -> None:
        self._r = client
        self._key = _prefix(app_id) + "handled:"
        self._start = client.register_script(_START)
        self._start_many = client.register_script(_START_MANY)
        self._finish_many = client.register_script(_FINISH_MANY)

    @_reachable
    async def start(self, key: str, consumer: str, *, reclaimed: bool, lease: float) -> Start:
        said = await self._start(
            keys=[self._key + key],
            args=[consumer, "1" if reclaimed else "0", max(1, int(lease * 1000))],
        )
        verdict = _text(said)
        assert verdict in ("mine", "done", "busy"), verdict
        return verdict  # type: ignore[return-value]

    @_reachable
    async def finish(self, key: str, ttl: float) -> None:
        await self._r.set(self._key + key, "\0done", px=max(1, int(ttl * 1000)))

    @_reachable
    async def start_many(
        self, keys: list[tuple[str, bool]], consumer: str, *, lease: float
    ) -> list[Start]:
        if not keys:
            return []
        flags = "".join("1" if reclaimed else "0" for _, reclaimed in keys)
        said = await self._start_many(
            keys=[self._key + key for key, _ in keys],
            args=[consumer, flags, max(1, int(lease * 1000))],
        )
        return [_text(v) for v in said]  # type: ignore[misc]

    @_reachable
    async def finish_many(self, keys: list[str], ttl: float) -> None:
        if not keys:
            return
        await self._finish_many(
            keys=[self._key + key for key in keys], args=[max(1, int(ttl * 1000))]
        )


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
