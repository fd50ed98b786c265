"""``qqproto demo``: a bot against the QQ platform simulator, on loopback, then OneBot.

No network and no credentials: :class:`~qqproto.testing.QQSimulator` plays
the platform (token endpoint, ``/gateway/bot``, the WebSocket gateway, the
message endpoints with their passive-reply rules) on 127.0.0.1, and a
:class:`~qqproto.adapters.bot.QQBot` on the asyncio driver connects to it as
it would to QQ. The story: READY, messages in a group, a C2C chat and a guild
channel answered with echo replies, a redelivered message, a dropped link and
the resume that replays what was missed, a reconnect the server asks for
(op 7) and a session timeout (close 4009). Then the OneBot chapter
(``demo_onebot``): a OneBot bot against a NapCat-like implementation. It
exits 0 only if every message of both reached its bot exactly once and every
reply was accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from qqproto.actions import StateChanged
from qqproto.errors import ProtocolError
from qqproto.qq import Message
from qqproto.testing import QQSimulator, SimulatorConfig

from . import demo_onebot
from ._common import DriverError
from ._story import Chapters, Stalled, StoryBase
from .bot import QQBot
from .serve import SimulatorServer

__all__ = ["run"]

APP_ID = "102000000"
SECRET = "demo-secret"


class Story(StoryBase):
    """The simulator, the bot, and a narrator who waits for what the bot saw."""

    def __init__(self, say: Callable[[str], None], server: SimulatorServer, sim: QQSimulator):
        super().__init__(say)
        self.server = server
        self.sim = sim
        self.bot = QQBot(APP_ID, SECRET, on_state=self.state_changed, **server.bot_options())
        self.states: list[str] = []  # the gateway's, in order

    def state_changed(self, change: StateChanged) -> None:
        if change.machine == "gateway":  # the story is told in the gateway's states
            self.say(f"   state  {change.old} -> {change.new} ({change.why})")
            self.states.append(change.new)
        self.changed()

    async def listen(self) -> None:
        """The bot: print each message and answer it with its text."""
        try:
            await self._listen()
        finally:
            self.changed()  # whoever waits must see that the bot stopped

    async def _listen(self) -> None:
        async for event in self.bot.events():
            if isinstance(event, Message):
                self.seen.append(event.id)
                self.say(f"   <- {event.TYPE}: {event.text!r}")
                self.answer_in_background(self.echo(event))
                self.changed()

    async def echo(self, message: Message) -> None:
        try:
            result = await self.bot.reply(message, message.text)
        except ProtocolError as refused:  # refused before it was sent
            self.say(f"   !! reply refused: {refused}")
            return
        except DriverError:
            return  # the bot stopped first; the story says why
        finally:
            self.changed()
        if not result.ok:
            self.say(f"   !! reply failed: {result.error}")
            return
        seqs = [s.msg_seq for s in self.sim.sent if s.msg_id == message.id]
        seq = f", msg_seq {seqs[-1]}" if seqs and seqs[-1] is not None else ""
        self.say(f"   -> reply to {message.id[:18]}... accepted{seq}")
        self.replied.append(message.id)

    def push(self, make: Callable[[QQSimulator, float], dict[str, Any]]) -> str:
        d = self.server.call(lambda now: make(self.sim, now))
        self.pushed.append(d["id"])
        return str(d["id"])

    async def resumed(self, after: int) -> None:
        await self.until(lambda: "READY" in self.states[after:], "a resumed session")


async def tell(say: Callable[[str], None], chapter: Chapters) -> int:
    sim = QQSimulator(SimulatorConfig(app_id=APP_ID, secret=SECRET, heartbeat_interval_ms=1000))
    async with SimulatorServer(sim) as server:
        story = Story(say, server, sim)
        say(f"qqproto demo: a bot against the QQ platform simulator at {server.base_url}")
        story.listener = asyncio.create_task(story.listen())
        try:
            await chapters(story, say, chapter)
        finally:
            await story.bot.close()
            await story.finish()
        return verdict(story, say)


async def chapters(story: Story, say: Callable[[str], None], chapter: Chapters) -> None:
    sim = story.sim

    chapter("Token, gateway discovery, Hello, Identify, READY")
    await story.bot.start()
    await story.until(lambda: "READY" in story.states, "READY")

    chapter("Messages in a group, a C2C chat and a guild channel, each answered")
    ids = [
        story.push(lambda s, now: s.group_at_message("hello from a group", now)),
        story.push(lambda s, now: s.c2c_message("hi in private", now)),
        story.push(lambda s, now: s.guild_at_message("ping in a channel", now)),
    ]
    await story.messages_arrive(*ids)
    await story.all_answered()

    chapter("The platform delivers a message twice (a new envelope, the same id)")
    [again] = [d for _, _, d, _ in sim.scripted if d["id"] == ids[0]]
    story.server.call(lambda now: sim.dispatch("GROUP_AT_MESSAGE_CREATE", again, now))
    after = story.push(lambda s, now: s.c2c_message("the next message", now))
    await story.messages_arrive(after)  # so the copy before it has been dealt with
    say(f"   (the copy was dropped: redeliveries = {story.bot.protocol.redeliveries})")
    await story.all_answered()

    chapter("The TCP link drops; two messages are sent while the bot is away")
    mark = len(story.states)
    story.server.call(sim.drop)
    away = [
        story.push(lambda s, now: s.c2c_message("sent while you were away", now)),
        story.push(lambda s, now: s.group_at_message("me too", now)),
    ]
    await story.resumed(mark)
    await story.messages_arrive(*away)
    await story.all_answered()

    chapter("The server asks the bot to reconnect (op 7)")
    mark = len(story.states)
    story.server.call(sim.reconnect)
    await story.resumed(mark)

    chapter("The session times out (close 4009): resume, not a new session")
    mark = len(story.states)
    story.server.call(lambda now: sim.close(4009, now))
    await story.resumed(mark)
    last = story.push(lambda s, now: s.group_at_message("still here?", now))
    await story.messages_arrive(last)
    await story.all_answered()


def verdict(story: Story, say: Callable[[str], None]) -> int:
    identifies, resumes = len(story.sim.identifies), len(story.sim.resumes)
    if not story.told_true("platform"):
        return 1
    say(
        f"\nDone: {len(story.pushed)} messages, each delivered once and answered; "
        f"{identifies} Identify, {resumes} Resumes, {len(story.sim.rejected)} replies refused."
    )
    return 0


def run(say: Callable[[str], None] = print) -> int:
    # The story is the output: the drivers' INFO lines would repeat it.
    logger = logging.getLogger("qqproto")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        chapter = Chapters(say)
        status = asyncio.run(tell(say, chapter))
        return status or asyncio.run(demo_onebot.tell(say, chapter))
    except (Stalled, DriverError) as error:
        say(f"\nFAILED: {error}")
        return 1
    finally:
        logger.setLevel(level)
