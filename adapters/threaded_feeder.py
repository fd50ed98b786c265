"""ThreadedFeeder: the Feeder for a ThreadedQQBot, on a loop thread of its own.

The shared store's client is asyncio (``redis.asyncio``), and so is the
:class:`~qqproto.adapters.feeder.Feeder`. A threaded bot runs them on one
event loop in a thread of this object's: :meth:`feed` hands values over from
any thread, and the bot's side is reached through its own thread-safe calls
(sessions are read under the driver's lock, never half-way through a change)::

    bot = ThreadedQQBot(app_id, secret, shards=4, external_gate=True)
    with ThreadedFeeder(bot, lambda: qqproto.adapters.redis.connect(url, app_id)) as feeder:
        feeder.restore([(i, 4) for i in range(4)])
        with bot:
            for event in bot.events():
                feeder.feed(event)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Self, TypeVar

from qqproto.qq import Session

from ._common import DriverError
from .coordination import Coordination
from .feeder import Feeder
from .threaded_bot import ThreadedQQBot

__all__ = ["ThreadedFeeder"]

_T = TypeVar("_T")

#: Seconds the last publish and save may take when the feeder stops.
STOP_GRACE = 5.0


class _ThreadedSide:
    """A ThreadedQQBot seen from the feeder's loop."""

    def __init__(self, bot: ThreadedQQBot) -> None:
        self.bot = bot

    def restore(self, sessions: list[Session]) -> None:
        self.bot.protocol.restore(sessions)  # before the bot starts: no other thread is in it

    def spacing(self) -> float:
        return self.bot.protocol.shards.gate.spacing  # a float, written once at discovery

    async def identify_allowed(self, shard_id: int) -> None:
        await asyncio.to_thread(self.bot.identify_allowed, shard_id)

    async def sessions(self) -> dict[int, Session]:
        def read(now: float = 0.0) -> dict[int, Session]:
            gateways = self.bot.protocol.gateways.items()
            return {i: g.session for i, g in gateways if g.session is not None}

        try:  # under the driver's lock, while it runs
            return await asyncio.to_thread(self.bot.driver.call, read)
        except DriverError:  # it ended: no thread is in the bot any more
            return read()


class ThreadedFeeder:
    """A :class:`Feeder` on its own loop thread, for a :class:`ThreadedQQBot`."""

    def __init__(
        self, bot: ThreadedQQBot, connect: Callable[[], Coordination], **options: Any
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.shared: Coordination = self._run(self._make(connect))
        self.feeder = Feeder(_ThreadedSide(bot), self.shared, **options)
        self._running = asyncio.run_coroutine_threadsafe(self.feeder.run(), self._loop)

    async def _make(self, connect: Callable[[], Coordination]) -> Coordination:
        return connect()  # made on the loop that will use it

    def _run(self, work: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        future: Future[_T] = asyncio.run_coroutine_threadsafe(work, self._loop)
        return future.result(timeout)

    def restore(self, shards: list[tuple[int, int]]) -> int:
        """Resume the sessions the store holds for ``shards`` (before the bot starts)."""
        return self._run(self.feeder.restore(shards))

    def feed(self, value: object) -> bool:
        """What the bot delivered, from any thread: True when it was the
        feeder's own (an identify turn), else False (and events go on the stream)."""
        done: Future[bool] = Future()

        def take() -> None:
            done.set_result(self.feeder.feed(value))

        self._loop.call_soon_threadsafe(take)
        return done.result()

    def stop(self) -> None:
        """Publish what waits, save the sessions, and end the loop thread."""
        if not self._thread.is_alive():
            return
        self._loop.call_soon_threadsafe(self.feeder.stop)
        try:
            self._running.result(STOP_GRACE)
            self._run(self.feeder.flush(), STOP_GRACE)
        finally:
            self._run(self.shared.aclose(), STOP_GRACE)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_GRACE)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
