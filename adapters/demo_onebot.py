"""The OneBot chapter of ``qqproto demo``: a OneBot bot against a NapCat-like simulator.

:class:`~qqproto.testing.OneBotSimulator` plays NapCat (v11, its quirks on:
the stream field, answers with ``message`` and ``wording``, a refused token
as a 1403 frame) on 127.0.0.1, and a :class:`~.onebot_bot.OneBotBot` on the
asyncio driver dials it as it would dial NapCat. The story: the connect
event, messages in a group (an @ of the bot, answered as a quoted reply) and
in private, an answer that comes twice, heartbeats that stop and the
reconnect that follows, and an action never answered, which ends in a
timeout while the bot goes on. It passes only if every message reached the
bot exactly once and every answer was accepted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from qqproto.actions import StateChanged
from qqproto.calls import CallTimeout
from qqproto.errors import ProtocolViolation
from qqproto.link import Retry
from qqproto.onebot import MessageEvent, MetaEvent, to_me
from qqproto.testing import OneBotSimConfig, OneBotSimulator

from ._story import Chapters, Stalled, StoryBase
from .onebot_bot import OneBotBot
from .serve import SimulatorServer

__all__ = ["tell"]

TOKEN = "demo-token"


class Story(StoryBase):
    """The simulator, the bot, and a narrator who waits for what the bot saw."""

    def __init__(self, say: Callable[[str], None], server: SimulatorServer, sim: OneBotSimulator):
        super().__init__(say)
        self.server, self.sim = server, sim
        url = f"ws://{server.host}:{server.port}/"
        self.bot = OneBotBot(
            url, access_token=TOKEN, call_timeout=1.0, backoff_base=0.1, on_state=self.state
        )
        self.violations: list[str] = []
        self.retries: list[Retry] = []
        self.heartbeats = 0

    def state(self, change: StateChanged) -> None:
        self.say(f"   state  {change.old} -> {change.new} ({change.why})")
        self.changed()

    async def listen(self) -> None:
        try:
            async for event in self.bot.events():
                if isinstance(event, MessageEvent):
                    where = "group" if event.detail_type == "group" else "private"
                    self.say(f"   <- {where} message from {event.user_id}: {event.text!r}")
                    self.seen.append(str(event.message_id))
                    self.answer_in_background(self.answer(event))
                elif isinstance(event, ProtocolViolation):
                    self.say(f"   (reported, not crashed on: {event.error})")
                    self.violations.append(str(event.error))
                elif isinstance(event, MetaEvent) and event.detail_type == "heartbeat":
                    self.heartbeats += 1
                elif isinstance(event, Retry):
                    self.say(f"   retry  {event.reason}; next attempt in {event.delay:.1f} s")
                    self.retries.append(event)
                self.changed()
        finally:
            self.changed()  # whoever waits must see that the bot stopped

    async def answer(self, event: MessageEvent) -> None:
        quote = to_me(event, self.bot.self_id) and event.detail_type == "group"
        result = await self.bot.reply(event, f"echo: {event.text}", quote=quote)
        if result.ok:
            how = " (quoting it)" if quote else ""
            self.say(f"   -> answer to {event.message_id} accepted{how}")
            self.replied.append(str(event.message_id))
        else:
            self.say(f"   !! answer failed: {result.error or result.answer}")
        self.changed()

    def push(self, make: Callable[[OneBotSimulator, float], dict[str, Any]]) -> str:
        pushed = self.server.call(lambda now: make(self.sim, now))
        self.pushed.append(str(pushed["message_id"]))
        return self.pushed[-1]


async def tell(say: Callable[[str], None], chapter: Chapters) -> int:
    """The chapters, numbered on from ``chapter``'s; 0 when the story holds, else 1."""
    sim = OneBotSimulator(OneBotSimConfig.napcat_like(access_token=TOKEN, heartbeat_interval=1.0))
    async with SimulatorServer(sim) as server:
        story = Story(say, server, sim)
        say(
            f"\nOneBot: a bot against a NapCat-like implementation at ws://{server.host}:{server.port}/"
        )
        story.listener = asyncio.create_task(story.listen())
        try:
            await chapters(story, say, chapter)
        finally:
            await story.bot.close()
            await story.finish()
        return verdict(story, say)


async def chapters(story: Story, say: Callable[[str], None], chapter: Chapters) -> None:
    sim = story.sim

    chapter("The forward WebSocket, the token, the connect event")
    await story.bot.start()
    await story.until(lambda: story.bot.self_id is not None, "the connect event")
    say(f"   the bot is {story.bot.self_id}, speaking OneBot v{story.bot.version}")

    chapter("A group message that @s the bot, and a private one, each answered")
    ids = [
        story.push(lambda s, now: s.group_message("hello from a group", now, mention_self=True)),
        story.push(lambda s, now: s.private_message("hi in private", now)),
    ]
    await story.messages_arrive(*ids)
    await story.all_answered()

    chapter("The implementation answers an action twice")
    story.server.call(lambda now: sim.answer_twice())
    ids = [story.push(lambda s, now: s.private_message("answer me once", now))]
    await story.messages_arrive(*ids)
    await story.all_answered()
    await story.until(lambda: bool(story.violations), "the second answer reported")
    story.server.call(lambda now: sim.answer_twice(False))

    chapter("Heartbeats stop (1 s apart, so the link is dead after 2.5 s)")
    await story.until(lambda: story.heartbeats > 0, "a heartbeat")  # its interval is known
    retries = len(story.retries)
    story.server.call(lambda now: sim.stop_heartbeats())
    await story.until(lambda: len(story.retries) > retries, "the dead link noticed")
    story.server.call(lambda now: sim.resume_heartbeats())
    await story.until(lambda: sim.live == 1 and sim.connects == 2, "a new connection")
    ids = [story.push(lambda s, now: s.group_message("back again?", now))]
    await story.messages_arrive(*ids)
    await story.all_answered()

    chapter("An action the implementation never answers (a 1 s deadline here)")
    story.server.call(lambda now: sim.hold("get_group_info"))
    result = await story.bot.call("get_group_info", {"group_id": int(sim.group_id)})
    if not isinstance(result.error, CallTimeout):
        raise Stalled(f"the unanswered action ended otherwise: {result}")
    say(f"   {result.error}; the bot goes on")
    ids = [story.push(lambda s, now: s.private_message("still there?", now))]
    await story.messages_arrive(*ids)
    await story.all_answered()


def verdict(story: Story, say: Callable[[str], None]) -> int:
    if not story.told_true("implementation"):
        return 1
    say(
        f"\nDone with OneBot: {len(story.pushed)} messages, each delivered once and "
        f"answered; {story.sim.connects} connections, {len(story.sim.calls)} actions."
    )
    return 0
