"""Either bot class of a protocol, run and read from the test's thread.

The asyncio bot runs on a loop thread, and each call waits there for its
coroutine; the threaded bot is called as it is. A test reads the same for
both: ``with BotRunner(bot, loop) as on: on.next_event(); on.run(...)``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import Any, Generic, Self, TypeVar

from qqproto.adapters._bot_async import AsyncBotBase
from qqproto.adapters._bot_threaded import ThreadedBotBase

from .e2e_servers import LoopThread

__all__ = ["BotRunner"]

B = TypeVar("B", bound=AsyncBotBase[Any] | ThreadedBotBase[Any])
T = TypeVar("T")


class BotRunner(Generic[B]):
    def __init__(self, bot: B, loop: LoopThread) -> None:
        self.bot = bot
        self.loop = loop
        self._events: Iterator[object] | AsyncGenerator[object, None] | None = None

    def __enter__(self) -> Self:
        if isinstance(self.bot, AsyncBotBase):
            self.loop.run(self.bot.__aenter__())
        else:
            self.bot.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if isinstance(self.bot, AsyncBotBase):
            if isinstance(self._events, AsyncGenerator):
                self.loop.run(self._events.aclose())
            self.loop.run(self.bot.__aexit__(None, None, None))
        else:
            self.bot.__exit__(None, None, None)

    def next_event(self) -> object:
        """The next event ``events()`` gives (it raises as ``events()`` does)."""
        if self._events is None:
            self._events = self.bot.events()
        if isinstance(self._events, AsyncGenerator):
            return self.loop.run(anext(self._events))
        return next(self._events)

    def read_to_the_end(self) -> None:
        """Read ``events()`` until it ends, or raises (as it does when the bot fails)."""
        try:
            while True:
                self.next_event()
        except (StopIteration, StopAsyncIteration):
            return

    def run(self, call: Callable[[], Awaitable[T] | T]) -> T:
        """``call()`` on the bot: awaited on the loop for the asyncio bot."""
        result = call()
        if isinstance(self.bot, AsyncBotBase):
            return self.loop.run(result)  # type: ignore[arg-type]
        return result  # type: ignore[return-value]
