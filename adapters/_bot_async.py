"""The asyncio machinery every bot on the event loop shares.

A task runs the driver; events wait in an ``asyncio.Queue`` for
``events()`` and ``run()``; a call's outcome comes back to the coroutine that
awaits it through a future the :class:`~._bot.Router` resolves. The QQ bot
and the OneBot bot add only their constructors and their ways of talking back.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any, Self, TypeVar

from qqproto.contract import Driven

from ._bot import BotBase, on_sigterm
from ._common import DriverClosed
from .asyncio import AsyncioDriver

__all__ = ["AsyncBotBase"]

log = logging.getLogger("qqproto.adapters.bot")
P = TypeVar("P", bound=Driven)
_END = object()  # the driver ended: no more events


class AsyncBotBase(BotBase[P, AsyncioDriver]):
    """A bot driven by asyncio: ``async with``, ``events()``, ``run()``, ``run_forever()``."""

    def _build(self, **driver_options: Any) -> AsyncioDriver:
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        return AsyncioDriver(self.protocol, on_event=self._on_event, **driver_options)

    # -- starting and stopping ---------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._drive(), name="qqproto-bot")
            await asyncio.sleep(0)  # let the driver take its first step

    async def _drive(self) -> None:
        try:
            await self.driver.run()
        except Exception as exc:
            self._error = exc
        finally:
            self._router.fail_waiters(self._error or DriverClosed("the bot was closed"))
            self._queue.put_nowait(_END)

    async def close(self) -> None:
        """Close the connection (a close frame, then the socket) and wait for the end."""
        self.driver.stop()
        if self._task is not None:
            await self._task

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- events ------------------------------------------------------------------------

    def _on_event(self, value: object) -> None:
        if self._router.route(value):
            if self._queue.qsize() >= self.max_queued_events:
                self._dropped_oldest(self._queue.get_nowait())
            self._queue.put_nowait(value)

    async def events(self) -> AsyncGenerator[object, None]:
        """Every event, in order, until the bot closes; raises DriverFailed if it gave up."""
        await self.start()
        while True:
            event = await self._queue.get()
            if event is _END:
                self._queue.put_nowait(_END)  # for any other reader
                if self._error is not None:
                    raise self._error
                return
            self._taken()
            yield event

    async def run(self) -> None:
        """Feed events to the handlers until the bot closes (or raise DriverFailed)."""
        try:
            async for event in self.events():
                for handler in self._router.handlers_for(event):
                    try:
                        result = handler(event)
                        if inspect.isawaitable(result):
                            await result
                    except Exception:
                        log.exception("handler %s failed on %s", handler, type(event).__name__)
        finally:
            await self.close()

    def run_forever(self) -> None:
        """``run()`` in a new event loop, until Ctrl-C, SIGTERM or the bot gives up.

        Ctrl-C and (in the main thread) SIGTERM close the bot cleanly: the close
        frame goes out, every task ends, and this returns.
        """

        async def main() -> None:
            await self.start()
            with on_sigterm(self._terminated, asyncio.get_running_loop()):
                await self.run()

        try:
            asyncio.run(main())
        except KeyboardInterrupt:
            log.info("interrupted")

    def _terminated(self) -> None:
        log.info("SIGTERM: closing")
        self.driver.stop()  # run() sees the end of events() and closes

    # -- calls ---------------------------------------------------------------------------

    async def _await(self, start: Callable[[float], int]) -> Any:
        """Start a call inside the driver (``start(now)`` gives its id) and await
        the value that ends it."""
        await self.start()
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def begin(now: float) -> None:
            self._router.waiters[start(now)] = waiter  # before any answer can come

        self.driver.call(begin)
        return await waiter
