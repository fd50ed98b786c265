"""Feeder: a gateway process's side of running one bot across processes.

It runs beside a :class:`~qqproto.adapters.bot.QQBot` made with
``external_gate=True`` and does the three things the processes share
(:mod:`qqproto.adapters.coordination`):

- each ``IdentifyWanted`` waits for the app's identify turn, shared by
  every process, then the shard may dial and Identify
  (``QQBot.identify_allowed``); the Feeder keeps the turn alive while it
  dials, and ends it when the bot says (``IdentifyTurnOver``): the next
  shard, in any process, goes a spacing after the Identify, or at once when
  none went. A shard that resumes never asks;
- each shard's session is saved every ``save_every`` seconds while it
  changes, and once more at the end, so a restarted process resumes
  (:meth:`Feeder.restore` before the bot starts);
- each event is published on the stream, in order, in batches: the workers
  read it there. ``feed`` queues; a task publishes.

The Feeder does no protocol work of its own: it moves values between the
bot and the shared store.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from qqproto.qq import (
    BotConfig,
    Dispatch,
    Event,
    IdentifyTurnOver,
    IdentifyWanted,
    Ready,
    Resumed,
    Session,
)
from qqproto.qq.reply_rules import DEFAULT_POLICIES

from .bot import QQBot
from .coordination import Coordination, Unavailable
from .feed import entry_of

__all__ = ["HOLD", "SEQ_TTL", "AsyncSide", "Feeder", "GatewaySide", "planned_shards"]

log = logging.getLogger("qqproto.feeder")

_T = TypeVar("_T")

#: Seconds a turn to Identify is held between two keep-alives (a holder that
#: dies blocks the app's other shards no longer than this).
HOLD = 3.0
#: Seconds between saves of a session that did not change (it lives an hour).
REFRESH_EVERY = 600.0
#: How long a message's shared msg_seq counter lives: the longest reply window.
SEQ_TTL = max(policy.window for policy in DEFAULT_POLICIES.values())


async def _retrying(call: Callable[[], Awaitable[_T]], what: str) -> _T:
    """``call()`` until the shared store answers (0.5 s, 1 s, ... 10 s apart)."""
    away = 0
    while True:
        try:
            return await call()
        except Unavailable as error:
            away += 1
            wait = min(10.0, 0.5 * 2 ** (away - 1))
            log.warning("%s: the shared store is away (%s): again in %.1f s", what, error, wait)
            await asyncio.sleep(wait)


def planned_shards(config: BotConfig) -> list[tuple[int, int]]:
    """The shards ``config`` runs, when it says without asking the platform
    (``shards="auto"`` does not: its sessions are not restored)."""
    if config.shards is None:
        return [config.shard]
    if config.shards == "auto":
        return []
    ids = config.shard_ids or range(config.shards)
    return [(i, config.shards) for i in ids]


class GatewaySide(Protocol):
    """What the Feeder needs of the bot it runs beside."""

    def restore(self, sessions: list[Session]) -> None: ...

    def spacing(self) -> float: ...

    async def identify_allowed(self, shard_id: int) -> None: ...

    async def sessions(self) -> dict[int, Session]: ...


class AsyncSide:
    """A :class:`QQBot`, on the Feeder's own loop."""

    def __init__(self, bot: QQBot) -> None:
        self.bot = bot

    def restore(self, sessions: list[Session]) -> None:
        self.bot.protocol.restore(sessions)

    def spacing(self) -> float:
        return self.bot.protocol.shards.gate.spacing  # as /gateway/bot's max_concurrency set it

    async def identify_allowed(self, shard_id: int) -> None:
        await self.bot.identify_allowed(shard_id)

    async def sessions(self) -> dict[int, Session]:
        gateways = self.bot.protocol.gateways.items()
        return {i: g.session for i, g in gateways if g.session is not None}


class Feeder:
    """Moves a gateway bot's identifies, sessions and events to the shared store."""

    def __init__(
        self,
        bot: QQBot | GatewaySide,
        shared: Coordination,
        *,
        save_every: float = 5.0,
        batch: int = 256,
    ) -> None:
        self.bot: GatewaySide = AsyncSide(bot) if isinstance(bot, QQBot) else bot
        self.shared = shared
        self.save_every = save_every
        self.batch = batch
        self._queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._saved: dict[int, Session] = {}
        self._turns: dict[int, asyncio.Future[bool]] = {}  # shard -> how its turn ended
        #: shard -> the last seq published: a saved session says no more, so a
        #: restart resumes from there and the platform replays what was not.
        self._fed_seq: dict[int, int] = {}
        self._stopping = asyncio.Event()
        self._refreshed = time.monotonic()
        self.published = 0

    async def restore(self, shards: list[tuple[int, int]]) -> int:
        """Resume the sessions the store holds for ``shards`` (waiting out a
        store that is away: this process cannot coordinate without it); how
        many it held."""
        loaded = [
            await _retrying(functools.partial(self.shared.sessions.load, shard), "saved sessions")
            for shard in shards
        ]
        found = [session for session in loaded if session is not None]
        for session in found:
            if session.seq is not None:
                self._fed_seq[session.shard[0]] = session.seq
        self.bot.restore(found)
        return len(found)

    async def next_seq(self, message: object) -> int:
        """The shared ``msg_seq`` for the next reply to ``message``."""
        return await self.shared.seqs.next(str(getattr(message, "id", "")), SEQ_TTL)

    def feed(self, value: object) -> bool:
        """Take what the bot delivered: True when it was the Feeder's to handle
        (an ``IdentifyWanted``), else False; events are queued for the stream too."""
        if isinstance(value, IdentifyWanted):
            ended = asyncio.get_running_loop().create_future()
            self._turns[value.shard[0]] = ended
            self._spawn(self._identify(value.shard[0], ended))
            return True
        if isinstance(value, IdentifyTurnOver):
            turn = self._turns.pop(value.shard[0], None)
            if turn is not None and not turn.done():
                turn.set_result(value.identified)
            return True
        if isinstance(value, Ready) and value.on_shard and value.event_seq is not None:
            self._fed_seq[value.on_shard[0]] = value.event_seq  # a new session counts anew
        if isinstance(value, Event | Dispatch) and not isinstance(value, Ready | Resumed):
            self._queue.put_nowait(entry_of(value))  # (a session's own news stays here)
        return False

    def stop(self) -> None:
        """Let :meth:`run` return once the batch under way is published (a
        cancel could be lost inside the client's own timeouts)."""
        self._stopping.set()

    async def run(self) -> None:
        """Publish what is fed and save sessions, until :meth:`stop`. While the
        shared store is away, a batch waits and goes again (a batch cut short
        may come twice: the workers' de-duplication takes the copies)."""
        saver = asyncio.create_task(self._save_loop())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            while not self._stopping.is_set():
                getting = asyncio.create_task(self._queue.get())
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()  # (a queue's get: nothing of Redis's in it)
                    break
                entries = [getting.result()]
                while not self._queue.empty() and len(entries) < self.batch:
                    entries.append(self._queue.get_nowait())
                await self._publish(entries)
        finally:
            stopping.cancel()
            saver.cancel()
            await asyncio.wait({saver}, timeout=1.0)

    async def _publish(self, entries: list[dict[str, str]]) -> None:
        await _retrying(lambda: self.shared.stream.publish(entries), f"{len(entries)} events")
        self.published += len(entries)
        for fields in entries:  # what a restart may resume from: published, no further
            shard, seq = fields.get("shard"), fields.get("seq")
            if shard and seq:
                shard_id, new = int(shard.partition("/")[0]), int(seq)
                self._fed_seq[shard_id] = max(self._fed_seq.get(shard_id, 0), new)

    async def flush(self) -> None:
        """Publish what waits, and save every session now (at the end)."""
        entries = []
        while not self._queue.empty():
            entries.append(self._queue.get_nowait())
        if entries:
            await self._publish(entries)
        await self._save()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:  # bounded: a cancel may be lost inside the client's timeouts
            await asyncio.wait(set(self._tasks), timeout=1.0)

    # -- inside ------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _identify(self, shard_id: int, ended: asyncio.Future[bool]) -> None:
        """Take the app's turn for ``shard_id``, let it dial, keep the turn while
        it does, and end the turn as the bot says it ended."""
        slots, hold = self.shared.slots, HOLD
        started = time.monotonic()
        token = await _retrying(lambda: slots.acquire(shard_id, hold), "identify turn")
        log.info("shard %d may identify (waited %.1f s)", shard_id, time.monotonic() - started)
        await self.bot.identify_allowed(shard_id)
        while True:
            try:
                identified = await asyncio.wait_for(asyncio.shield(ended), hold / 3)
                break
            except TimeoutError:  # still dialling: the turn must not lapse meanwhile
                with contextlib.suppress(Unavailable):
                    await slots.keep(token, hold)
        spacing = self.bot.spacing() if identified else 0.0
        await _retrying(lambda: slots.release(token, spacing), "identify turn's end")

    async def _save_loop(self) -> None:
        while True:
            await asyncio.sleep(self.save_every)
            try:
                await self._save()
            except Unavailable as error:  # the next round saves what changed
                log.warning("sessions not saved: the shared store is away (%s)", error)

    async def _save(self) -> None:
        """Save what changed, and now and then what did not (the store keeps a
        session an hour from its last save: a quiet shard's must not lapse)."""
        now = time.monotonic()
        refresh = now - self._refreshed >= REFRESH_EVERY
        for shard_id, session in (await self.bot.sessions()).items():
            fed = self._fed_seq.get(shard_id)
            if fed is None:
                continue  # nothing published of it yet: nothing to resume from
            if session.seq is not None and session.seq > fed:  # some not on the stream yet
                session = dataclasses.replace(session, seq=fed)
            if refresh or session != self._saved.get(shard_id):
                await self.shared.sessions.save(session)
                self._saved[shard_id] = session
        if refresh:
            self._refreshed = now
