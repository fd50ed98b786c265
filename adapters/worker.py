"""Workers: handle the events the gateway processes put on the shared stream.

Each worker takes entries through the stream's consumer group, so an entry
goes to one worker, and acknowledges it once handled. Delivery is at least
once, and the application sees each event once:

1. an entry held unacknowledged for ``min_idle`` seconds (its worker died, or
   is slow) is taken over by another worker;
2. before handling, the worker takes the event's key (its message id) in
   :class:`~qqproto.adapters.coordination.HandledIds`, a lease of ``lease``
   seconds: an event handled already is acknowledged and skipped (the
   platform sent it twice, or its first worker finished it meanwhile); a copy
   another worker holds a live lease on is skipped too, and an entry taken
   over from such a worker stays pending until its lease ends (the worker
   was slow, not dead: it finishes, or its lease runs out and the event is
   handled here);
3. after the handlers of a batch return, their keys say ``done`` for
   ``dedup_ttl`` seconds, and the entries are acknowledged.

So an event is handled twice only when a handler outlives its lease: keep
``lease`` above the longest a batch's handlers take.

A handler that raises leaves its entry unacknowledged, and said in the log:
after ``min_idle`` another worker tries it; a worker that saw it fail
``max_tries`` times gives it up (acknowledged, and an error line with the
event). An entry that holds no event is
acknowledged and said (it would fail every worker alike). While the shared
store is away (Redis restarting), :meth:`Worker.run` waits and tries again;
what a handler did before is not undone, and its event is not handled twice
once the store is back, unless its lease ran out meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from qqproto.errors import RemoteProtocolError
from qqproto.qq.events import Dispatch, Event

from .coordination import Coordination, Taken, Unavailable
from .feed import event_of

__all__ = ["Worker", "WorkerStats"]

log = logging.getLogger("qqproto.worker")

Handler = Callable[[Event | Dispatch], Awaitable[None]]

#: Seconds between two trims of the stream (the entries every worker is past go).
TRIM_EVERY = 30.0


@dataclass(slots=True)
class WorkerStats:
    """What one worker did, for its log and its tests."""

    handled: int = 0
    duplicates: int = 0  # handled already, or by another worker now
    taken_over: int = 0  # entries another worker had held too long
    waiting: int = 0  # taken over, but their first worker still holds the lease
    failed: int = 0  # handlers that raised (their entries wait to be tried again)
    given_up: int = 0  # events whose handler raised max_tries times (acknowledged, logged)
    unreadable: int = 0


class Worker:
    """One consumer of the stream (see the module docstring)."""

    def __init__(
        self,
        shared: Coordination,
        consumer: str,
        handler: Handler,
        *,
        batch: int = 64,
        block: float = 1.0,
        min_idle: float = 30.0,
        lease: float = 60.0,
        dedup_ttl: float = 600.0,
        fatal: tuple[type[BaseException], ...] = (),
        max_tries: int = 5,
    ) -> None:
        self.shared = shared
        self.consumer = consumer
        self.handler = handler
        self.batch, self.block = batch, block
        self.min_idle, self.lease, self.dedup_ttl = min_idle, lease, dedup_ttl
        self.stats = WorkerStats()
        #: Handler exceptions that stop the worker instead of waiting for a retry.
        self.fatal = fatal
        #: A handler that raised this many times on one event gives it up (an
        #: event that always fails must not stay pending, and the stream untrimmed).
        self.max_tries = max_tries
        self._tries: dict[str, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Take and handle entries until ``stop`` is set. While the shared store
        is away, it waits (0.5 s, 1 s, ... 10 s) and tries again, saying so."""
        away, trimmed = 0, asyncio.get_running_loop().time()
        while not stop.is_set():
            try:
                await self.run_once()
                away = 0
                if asyncio.get_running_loop().time() - trimmed >= TRIM_EVERY:
                    trimmed = asyncio.get_running_loop().time()
                    gone = await self.shared.stream.trim()
                    log.debug("%d handled entries let go", gone)
            except Unavailable as error:
                away += 1
                wait = min(10.0, 0.5 * 2.0 ** (away - 1))
                log.warning("the shared store is away (%s): trying again in %.1f s", error, wait)
                await asyncio.sleep(wait)

    async def run_once(self) -> int:
        """Take one batch (waiting up to ``block`` for it) and handle it; how many came.
        The handled ids of a batch are taken and marked at one go each."""
        taken = await self.shared.stream.take(self.consumer, self.batch, self.block, self.min_idle)
        if not taken:
            return 0
        stats, done = self.stats, []
        readable: list[tuple[Taken, Event | Dispatch, str]] = []
        for entry in taken:
            if entry.reclaimed:
                stats.taken_over += 1
            try:
                event = event_of(entry.fields)
            except RemoteProtocolError as error:
                stats.unreadable += 1
                log.error("stream entry %s holds no event, dropped: %s", entry.entry_id, error)
                done.append(entry.entry_id)
                continue
            readable.append((entry, event, entry.fields.get("key") or entry.entry_id))
        verdicts = await self.shared.handled.start_many(
            [key for _, _, key in readable], self.consumer, lease=self.lease
        )
        handled = []
        for (entry, event, key), verdict in zip(readable, verdicts, strict=True):
            if verdict == "busy" and entry.reclaimed:
                # Its first worker is slow, not dead (its lease lives): the entry
                # stays pending, and is looked at again once that worker is done.
                stats.waiting += 1
                continue
            if verdict != "mine":
                stats.duplicates += 1
                log.debug("%s %s: %s", entry.entry_id, key, verdict)
                done.append(entry.entry_id)
            elif await self._handle(event, key, entry.entry_id):
                handled.append(key)
                done.append(entry.entry_id)
            elif self._tries.get(key, 0) >= self.max_tries:
                self._tries.pop(key, None)
                stats.given_up += 1
                log.error(
                    "gave %s (%s) up after %d failed tries: %s",
                    key,
                    entry.entry_id,
                    self.max_tries,
                    entry.fields.get("frame", "")[:500],
                )
                done.append(entry.entry_id)
        await self.shared.handled.finish_many(handled, self.dedup_ttl)
        await self.shared.stream.ack(done)
        return len(taken)

    async def _handle(self, event: Event | Dispatch, key: str, entry_id: str) -> bool:
        """Run the handler; whether it succeeded (its entry may then be acknowledged)."""
        try:
            await self.handler(event)
        except self.fatal:
            raise
        except Exception:
            self.stats.failed += 1
            tries = self._tries[key] = self._tries.get(key, 0) + 1
            log.exception("handler failed on %s (%s), try %d", key, entry_id, tries)
            return False
        self._tries.pop(key, None)
        self.stats.handled += 1
        return True
