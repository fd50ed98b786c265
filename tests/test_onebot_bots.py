"""OneBotBot (asyncio) and ThreadedOneBotBot on loopback, against the OneBot simulator.

Each test runs once per bot class. The simulator is served by
``ThreadedSimulatorServer`` on threads of its own; :class:`BotOn` drives
either bot from the test's thread (the asyncio one on a loop thread), so a
test reads the same for both. Waits are generous deadlines, never timings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from qqproto.adapters import DriverFailed, OneBotBot, ThreadedOneBotBot
from qqproto.adapters.serve import ThreadedSimulatorServer
from qqproto.calls import CallTimeout
from qqproto.link import Retry
from qqproto.onebot import ActionResult, Chat, MessageEvent, MetaEvent, OneBotState, to_me
from qqproto.testing import OneBotSimConfig, OneBotSimulator

from .bot_runner import BotRunner
from .e2e_servers import LoopThread

pytestmark = pytest.mark.filterwarnings("error")

BOTS = ["asyncio", "threads"]
TOKEN = "s3cret"


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as running:
        yield running


class BotOn(BotRunner[OneBotBot | ThreadedOneBotBot]):
    """A OneBot bot of either class (see tests/bot_runner.py)."""

    def __init__(self, kind: str, loop: LoopThread, port: int, **options: Any) -> None:
        options.setdefault("access_token", TOKEN)
        options.setdefault("backoff_base", 0.05)
        options.setdefault("backoff_cap", 0.2)
        bot_class = OneBotBot if kind == "asyncio" else ThreadedOneBotBot
        super().__init__(bot_class(f"ws://127.0.0.1:{port}/", **options), loop)

    def next_message(self) -> MessageEvent:
        while True:
            event = self.next_event()
            if isinstance(event, MessageEvent):
                return event

    def wait_connected(self) -> list[object]:
        """Until a connect event came (the version is known); what came before it."""
        before = []
        while not isinstance(event := self.next_event(), MetaEvent):
            before.append(event)
        return before

    def reply(self, event: MessageEvent, text: str, *, quote: bool = False) -> ActionResult:
        return self.run(lambda: self.bot.reply(event, text, quote=quote))

    def send(self, chat: Chat, text: str) -> ActionResult:
        return self.run(lambda: self.bot.send(chat, text))

    def call(self, name: str, params: dict[str, Any] | None = None) -> ActionResult:
        return self.run(lambda: self.bot.call(name, params))


def serve(config: OneBotSimConfig) -> tuple[OneBotSimulator, ThreadedSimulatorServer]:
    sim = OneBotSimulator(config)
    return sim, ThreadedSimulatorServer(sim)


@pytest.mark.parametrize("version", [11, 12])
@pytest.mark.parametrize("kind", BOTS)
def test_a_bot_reads_a_message_to_it_and_replies_in_its_chat(
    kind: str, version: int, loop: LoopThread
) -> None:
    sim, server = serve(OneBotSimConfig(version=version, access_token=TOKEN))  # type: ignore[arg-type]
    with server, BotOn(kind, loop, server.port) as on:
        on.wait_connected()
        pushed = server.call(lambda now: sim.group_message("ping", now, mention_self=True))
        event = on.next_message()
        assert str(event.message_id) == str(pushed["message_id"])
        assert to_me(event, on.bot.self_id) and on.bot.version == version

        result = on.reply(event, "pong", quote=True)
        assert result.ok, result
        (sent,) = sim.sent
        assert (sent.group_id, sent.text) == (sim.group_id, "pong")
        assert sent.segments[0].type == "reply"
        assert str(sent.segments[0].data["message_id"]) == str(event.message_id)


@pytest.mark.parametrize("kind", BOTS)
def test_send_and_call_by_name_reach_any_chat_and_any_action(kind: str, loop: LoopThread) -> None:
    sim, server = serve(OneBotSimConfig.napcat_like(access_token=TOKEN))
    with server, BotOn(kind, loop, server.port) as on:
        on.wait_connected()
        assert on.send(Chat.private(sim.user_id), "hello").ok
        assert sim.sent[0].user_id == sim.user_id
        status = on.call("get_status")
        assert status.answer is not None and status.answer.result()["online"] is True
        unknown = on.call("no_such_action", {"x": 1})
        assert unknown.answer is not None and unknown.answer.retcode == 1404
        assert [c.action for c in sim.calls] == ["send_msg", "get_status", "no_such_action"]


@pytest.mark.parametrize("kind", BOTS)
def test_allow_from_keeps_strangers_messages_away(kind: str, loop: LoopThread) -> None:
    sim, server = serve(OneBotSimConfig(access_token=TOKEN))
    with server, BotOn(kind, loop, server.port, allow_from=["42"]) as on:
        on.wait_connected()
        server.call(lambda now: sim.group_message("stranger", now))
        server.call(lambda now: sim.group_message("friend", now, user_id="42"))
        assert on.next_message().text == "friend"


@pytest.mark.parametrize("kind", BOTS)
def test_a_refused_token_ends_events_with_the_reason(kind: str, loop: LoopThread) -> None:
    sim, server = serve(OneBotSimConfig(access_token=TOKEN))
    with server, BotOn(kind, loop, server.port, access_token="wrong") as on:
        with pytest.raises(DriverFailed, match="403"):
            on.read_to_the_end()
        assert on.bot.state is OneBotState.FAILED and sim.refused == [403]


@pytest.mark.parametrize("kind", BOTS)
def test_after_a_drop_the_bot_dials_again_and_events_go_on(kind: str, loop: LoopThread) -> None:
    sim, server = serve(OneBotSimConfig(access_token=TOKEN))
    with server, BotOn(kind, loop, server.port) as on:
        on.wait_connected()
        server.call(lambda now: sim.drop())
        (retry,) = on.wait_connected()  # the new connection's connect event
        assert isinstance(retry, Retry) and "1006" in retry.reason
        server.call(lambda now: sim.private_message("again", now))
        assert on.next_message().text == "again"
        assert sim.connects == 2


@pytest.mark.parametrize("kind", BOTS)
def test_an_unanswered_action_ends_in_a_timeout_and_the_bot_goes_on(
    kind: str, loop: LoopThread
) -> None:
    sim, server = serve(OneBotSimConfig(access_token=TOKEN))
    with server, BotOn(kind, loop, server.port, call_timeout=0.2) as on:
        on.wait_connected()
        server.call(lambda now: sim.hold("send_msg"))
        held = on.send(Chat.group(sim.group_id), "into the void")
        assert isinstance(held.error, CallTimeout)
        server.call(lambda now: sim.release("send_msg"))
        assert on.send(Chat.group(sim.group_id), "heard").ok


@pytest.mark.parametrize("kind", BOTS)
def test_handlers_answer_messages(kind: str, loop: LoopThread) -> None:
    """The connect event's handler has the user write; the message's handler answers."""
    sim, server = serve(OneBotSimConfig(access_token=TOKEN))
    with server:
        url = f"ws://127.0.0.1:{server.port}/"
        if kind == "asyncio":
            bot = OneBotBot(url, access_token=TOKEN)

            @bot.on(MetaEvent)
            def connected(event: MetaEvent) -> None:
                if event.detail_type == "lifecycle":
                    server.call(lambda now: sim.group_message("loud", now))

            @bot.on(MessageEvent)
            async def shout(event: MessageEvent) -> None:
                await bot.reply(event, event.text.upper())
                await bot.close()

            loop.run(bot.run())
        else:
            tbot = ThreadedOneBotBot(url, access_token=TOKEN)

            @tbot.on(MetaEvent)
            def connected_sync(event: MetaEvent) -> None:
                if event.detail_type == "lifecycle":
                    server.call(lambda now: sim.group_message("loud", now))

            @tbot.on(MessageEvent)
            def shout_sync(event: MessageEvent) -> None:
                tbot.reply(event, event.text.upper())
                tbot.stop()

            tbot.run_forever()
        assert [m.text for m in sim.sent] == ["LOUD"]


def test_a_bare_mention_reaches_no_handler_but_a_message_does() -> None:
    from qqproto.adapters.onebot_bot import ONEBOT_ROUTING
    from qqproto.onebot import Segment

    def message(*segments: Segment) -> MessageEvent:
        return MessageEvent(version=11, type="message", detail_type="group", segments=segments)

    empty = ONEBOT_ROUTING.empty
    assert empty(message(Segment.mention(1), Segment.text("  ")))
    assert empty(message())
    assert not empty(message(Segment.mention(1), Segment.text(" hi")))
    assert not empty(message(Segment("face", {"id": "1"})))
    assert not empty(MetaEvent(version=11, type="meta", detail_type="heartbeat"))
