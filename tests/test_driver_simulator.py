"""Both bots end to end against the QQ simulator, served on loopback by the drivers' helpers.

The same ``QQSimulator`` that the in-memory tests drive stands behind a real
listening socket here (``qqproto.adapters.serve``): token, discovery, the
gateway and REST on one port. Heartbeats every 100 ms; waits have 10 s deadlines.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from qqproto.adapters.bot import QQBot
from qqproto.adapters.serve import SimulatorServer, ThreadedSimulatorServer
from qqproto.adapters.threaded_bot import ThreadedQQBot
from qqproto.qq import GroupAtMessageCreate, Ready
from qqproto.testing import QQSimulator, SimulatorConfig

from .e2e_servers import WAIT

pytestmark = pytest.mark.filterwarnings("error")
APP_ID, SECRET = "102000000", "simulator-secret"


def simulator() -> QQSimulator:
    return QQSimulator(SimulatorConfig(APP_ID, SECRET, heartbeat_interval_ms=100))


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    gc.collect()
    assert not [t for t in threading.enumerate() if t not in before and t.is_alive()]


def test_qqbot_against_the_simulator() -> None:
    async def main() -> None:
        sim = simulator()
        async with (
            SimulatorServer(sim) as server,
            QQBot(APP_ID, SECRET, **server.bot_options()) as bot,
        ):
            events = bot.events()

            async def next_event(kind: type[Any]) -> Any:
                async with asyncio.timeout(WAIT):
                    while not isinstance(event := await anext(events), kind):
                        pass
                    return event

            await next_event(Ready)
            server.call(lambda now: sim.group_at_message("hello", now))
            message = await next_event(GroupAtMessageCreate)
            assert message.text == "hello"
            result = await bot.reply(message, "hi")
            assert result.ok
            [sent] = sim.sent
            assert sent.content == "hi" and sent.msg_id == message.id and sent.msg_seq == 1

            # A TCP drop; a message while we are away comes with the resume, once.
            server.call(sim.drop)
            server.call(lambda now: sim.group_at_message("while away", now))
            assert (await next_event(GroupAtMessageCreate)).text == "while away"
            server.call(lambda now: sim.group_at_message("after", now))
            assert (await next_event(GroupAtMessageCreate)).text == "after"
            assert len(sim.identifies) == 1 and len(sim.resumes) == 1

            # Tokens expire under a running bot: the reply refetches and goes through.
            server.call(sim.expire_tokens)
            second = await bot.reply(message, "again")
            assert second.ok and [s.msg_seq for s in sim.sent] == [1, 2]

    asyncio.run(main())


def test_threaded_bot_against_the_simulator() -> None:
    sim = simulator()
    with (
        ThreadedSimulatorServer(sim) as server,
        ThreadedQQBot(APP_ID, SECRET, **server.bot_options()) as bot,
    ):
        events = bot.events()

        def next_event(kind: type[Any]) -> Any:
            while not isinstance(event := next(events), kind):
                pass
            return event

        next_event(Ready)
        server.call(lambda now: sim.group_at_message("hello", now))
        message = next_event(GroupAtMessageCreate)
        assert bot.reply(message, "hi", timeout=WAIT).ok
        server.call(sim.drop)
        server.call(lambda now: sim.group_at_message("while away", now))
        assert next_event(GroupAtMessageCreate).text == "while away"
        assert [s.content for s in sim.sent] == ["hi"]
        assert len(sim.resumes) == 1
