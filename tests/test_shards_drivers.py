"""Eight shards on one driver, both bot classes, against the sharded simulator on loopback.

One bot object runs every shard: one token, one gate, one event stream, each
event marked with its shard. The identify window is shortened on both sides
(0.3 s for the platform's 5 s) so the test takes a second, not forty.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable

import pytest

from qqproto.adapters.bot import QQBot
from qqproto.adapters.coordination import Coordination
from qqproto.adapters.serve import ThreadedSimulatorServer
from qqproto.adapters.threaded_bot import ThreadedQQBot
from qqproto.adapters.threaded_feeder import ThreadedFeeder
from qqproto.qq import AtMessageCreate
from qqproto.qq.lifecycle import GatewayState
from qqproto.testing import QQSimulator, SimulatorConfig

from .bot_runner import BotRunner
from .e2e_servers import LoopThread

SHARDS, WINDOW, DEADLINE = 8, 0.3, 30.0


def guild_of(shard: int) -> str:
    return str(((shard + SHARDS) << 22) | 777)


def push(sim: QQSimulator, shard: int, now: float) -> object:
    """A message in a guild the platform routes to ``shard``."""
    return sim.guild_at_message(f"to {shard}", now, guild_id=guild_of(shard))


@pytest.mark.parametrize("kind", ["asyncio", "threads"])
def test_eight_shards_on_one_driver(kind: str, loop: LoopThread) -> None:
    sim = QQSimulator(
        SimulatorConfig(
            shards=SHARDS, max_concurrency=2, identify_window=WINDOW, heartbeat_interval_ms=1000
        )
    )
    with ThreadedSimulatorServer(sim) as server:
        bot_class = QQBot if kind == "asyncio" else ThreadedQQBot
        bot = bot_class(
            sim.config.app_id,
            sim.config.secret,
            api_base=server.base_url,
            token_url=server.token_url,
            shards=SHARDS,
            identify_window=WINDOW,
        )
        with BotRunner(bot, loop) as on:
            deadline = time.monotonic() + DEADLINE
            gateways = bot.protocol.gateways
            while not (
                len(gateways) == SHARDS
                and all(g.state is GatewayState.READY for g in gateways.values())
            ):
                assert time.monotonic() < deadline, f"not all READY: {bot.protocol!r}"
                time.sleep(0.05)
                gateways = bot.protocol.gateways
            for shard in reversed(range(SHARDS)):
                server.call(functools.partial(push, sim, shard))
            seen: dict[str, tuple[int, int] | None] = {}
            while len(seen) < SHARDS:
                event = on.next_event()
                if isinstance(event, AtMessageCreate):
                    seen[event.text] = event.on_shard
    assert seen == {f"to {s}": (s, SHARDS) for s in range(SHARDS)}
    ready = [i for i in sim.identifies if i.outcome == "READY"]
    assert len(ready) == SHARDS and not [i for i in sim.identifies if i.outcome != "READY"]
    assert len(sim.token_requests) == 1  # one token for every shard


def test_a_threaded_bot_runs_across_processes_with_a_threaded_feeder(
    store_maker: Callable[[], Coordination],
) -> None:
    """ThreadedQQBot, its identifies through the shared turn, its events on the
    shared stream, its sessions saved: what QQBot and its Feeder do, on threads."""
    sim = QQSimulator(
        SimulatorConfig(
            shards=2, max_concurrency=1, identify_window=WINDOW, heartbeat_interval_ms=1000
        )
    )
    with ThreadedSimulatorServer(sim) as server:
        bot = ThreadedQQBot(
            sim.config.app_id,
            sim.config.secret,
            api_base=server.base_url,
            token_url=server.token_url,
            shards=2,
            external_gate=True,
            identify_window=WINDOW,
        )
        with ThreadedFeeder(bot, store_maker, save_every=0.1) as feeder:
            assert feeder.restore([(0, 2), (1, 2)]) == 0
            with bot:
                pushed = False
                for event in bot.events():
                    feeder.feed(event)
                    gateways = bot.protocol.gateways.values()
                    all_ready = len(gateways) == 2 and all(
                        g.state is GatewayState.READY for g in gateways
                    )
                    if all_ready and not pushed:
                        server.call(functools.partial(push, sim, 1))
                        pushed = True
                    if isinstance(event, AtMessageCreate):
                        break
            taken = feeder._run(feeder.shared.stream.take("test", 10, 1.0, min_idle=60))
            assert [json.loads(t.fields["frame"])["d"]["content"] for t in taken] == [
                f"<@!{sim.config.bot_id}> to 1"
            ]
    ready = [i for i in sim.identifies if i.outcome == "READY"]
    assert len(ready) == 2 and not [i for i in sim.identifies if i.outcome != "READY"]
