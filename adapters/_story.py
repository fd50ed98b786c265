"""What both chapters of ``qqproto demo`` share: a narrator that waits for the bot.

A story pushes messages through a simulator, and waits, never longer than
:data:`STEP_DEADLINE`, for the bot to see and answer them. A bot that stops,
or a step that never comes, ends the story at once with :class:`Stalled`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["STEP_DEADLINE", "Chapters", "Stalled", "StoryBase"]

#: Every wait in the story ends long before this; the demo as a whole takes seconds.
STEP_DEADLINE = 10.0


class Chapters:
    """Says each chapter's title under the next number, across both parts of
    the demo, so a chapter added to one never misnumbers the other's."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.told = 0

    def __call__(self, title: str) -> None:
        self.told += 1
        self.say(f"\n{self.told}. {title}")


class Stalled(Exception):
    """The story cannot go on; the message says at which step."""


class StoryBase:
    """The narrator's books: what was pushed, seen and answered, and the waits."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.seen: list[str] = []  # ids of the messages the bot got, in order
        self.replied: list[str] = []  # ids it answered, as the answers succeeded
        self.pushed: list[str] = []  # ids the simulator sent
        self._changed = asyncio.Event()
        self._replies: set[asyncio.Task[None]] = set()
        self.listener: asyncio.Task[None] | None = None

    def changed(self) -> None:
        """Something the story may be waiting for happened."""
        self._changed.set()

    async def until(self, done: Callable[[], bool], what: str) -> None:
        """Wait for ``done()``; a bot that stopped or a stall ends the story at once."""
        try:
            async with asyncio.timeout(STEP_DEADLINE):
                while not done():
                    if self.listener is not None and self.listener.done():
                        self.listener.result()  # the bot's failure, if that is what ended it
                        raise Stalled(f"the bot stopped while waiting for {what}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise Stalled(f"no {what} after {STEP_DEADLINE:.0f} s") from None

    def answer_in_background(self, answer: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(answer)
        self._replies.add(task)
        task.add_done_callback(self._replies.discard)

    async def finish(self) -> None:
        """Wait for the listener and every answer under way (the bot is closed)."""
        tasks = [t for t in (self.listener, *self._replies) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def messages_arrive(self, *ids: str) -> None:
        await self.until(lambda: all(i in self.seen for i in ids), "messages")

    async def all_answered(self) -> None:
        await self.until(lambda: len(self.replied) == len(self.pushed), "every reply")

    def told_true(self, what: str) -> bool:
        """Whether every pushed message was seen once, in order, and answered."""
        if self.seen != self.pushed or sorted(self.replied) != sorted(self.pushed):
            self.say(f"\nFAILED: the {what} sent {self.pushed}, the bot got {self.seen}")
            return False
        return True
