"""A bot running several shards against the sharded simulator, on the fake clock.

The simulator plays the platform's side of spec 11: it routes a guild's
events to ``(guild_id >> 22) % n``, refuses an Identify that comes within 5 s
of ``max_concurrency`` others (op 9), and counts ``remaining`` down.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from qqproto.actions import Connect, HttpRequest
from qqproto.http import HttpResponse
from qqproto.qq import IdentifyWanted, Message
from qqproto.qq.bot import BotProtocol
from qqproto.qq.config import BotConfig
from qqproto.qq.lifecycle import GatewayState
from qqproto.qq.phases import BotPhase
from qqproto.qq.shards import IDENTIFY_WINDOW, shard_of_guild
from qqproto.testing import MemoryNetwork, QQSimulator, SimulatorConfig

ORIGIN = "http://127.0.0.1:1"


def sharded(
    count: int = 8, max_concurrency: int = 1, remaining: int = 1000, **bot: Any
) -> tuple[QQSimulator, BotProtocol, MemoryNetwork]:
    """The platform with ``count`` shards, and a bot that runs them (or ``bot``'s say)."""
    sim = QQSimulator(
        SimulatorConfig(
            shards=count, max_concurrency=max_concurrency, session_start_remaining=remaining
        )
    )
    bot.setdefault("shards", count)
    config = BotConfig(
        "102000000",
        "simulator-secret",
        api_base=ORIGIN,
        token_url=f"{ORIGIN}/app/getAppAccessToken",
        **bot,
    )
    proto = BotProtocol(config)
    return sim, proto, MemoryNetwork(sim, proto)


def all_ready(bot: BotProtocol) -> bool:
    gateways = bot.gateways.values()
    return bool(gateways) and all(g.state is GatewayState.READY for g in gateways)


def identify_times(sim: QQSimulator) -> list[float]:
    return [i.now for i in sim.identifies if i.outcome == "READY"]


def most_in_a_window(times: list[float]) -> int:
    return max(
        (sum(1 for t in times[i:] if t < start + IDENTIFY_WINDOW) for i, start in enumerate(times)),
        default=0,
    )


def guild_of(shard: int, shards: int, n: int = 1) -> str:
    """A guild id the platform routes to ``shard`` of ``shards``."""
    return str(((shard + shards * n) << 22) | 12345)


@pytest.mark.parametrize("max_concurrency", [1, 2])
def test_eight_shards_identify_one_window_slot_after_another(max_concurrency: int) -> None:
    sim, bot, net = sharded(8, max_concurrency)
    assert net.wait_for(lambda: all_ready(bot), within=120)
    ready = [i for i in sim.identifies if i.outcome == "READY"]
    assert sorted(tuple(i.shard) for i in ready) == [(i, 8) for i in range(8)]  # type: ignore[arg-type]
    assert not [i for i in sim.identifies if i.outcome != "READY"]  # none came too soon
    assert most_in_a_window(identify_times(sim)) == max_concurrency
    assert len({g.session.session_id for g in bot.gateways.values() if g.session}) == 8
    assert bot.phase is BotPhase.RUNNING
    assert sim.session_starts_remaining == 1000 - 8


def test_each_guilds_events_come_on_its_shard_and_say_so() -> None:
    sim, bot, net = sharded(4)
    assert net.wait_for(lambda: all_ready(bot), within=60)
    for shard in (3, 0, 2, 1):
        sim.guild_at_message(f"to {shard}", net.now, guild_id=guild_of(shard, 4))
    net.settle()
    messages = [e for e in net.events if isinstance(e, Message)]
    assert [(m.text, m.on_shard) for m in messages] == [
        ("to 3", (3, 4)),
        ("to 0", (0, 4)),
        ("to 2", (2, 4)),
        ("to 1", (1, 4)),
    ]
    assert shard_of_guild(guild_of(3, 4), 4) == 3


def test_a_dropped_shard_resumes_alone_and_the_others_never_notice() -> None:
    sim, bot, net = sharded(4)
    assert net.wait_for(lambda: all_ready(bot), within=60)
    connects, identifies = net.connects, len(sim.identifies)
    sim.drop(net.now, shard=2)
    net.settle()
    assert net.wait_for(lambda: all_ready(bot), within=60)
    assert net.connects == connects + 1  # shard 2 alone dialled again
    assert len(sim.identifies) == identifies  # and resumed: no new session
    assert [r.outcome for r in sim.resumes][-1] == "RESUMED"
    sim.guild_at_message("after", net.now, guild_id=guild_of(2, 4))
    net.settle()
    assert [m.on_shard for m in net.events if isinstance(m, Message)] == [(2, 4)]


def test_a_slice_runs_only_its_shards() -> None:
    sim, bot, net = sharded(8, shard_ids=range(2, 4))
    assert net.wait_for(lambda: all_ready(bot), within=60)
    assert sorted(bot.gateways) == [2, 3]
    assert sorted(tuple(i.shard) for i in sim.identifies) == [(2, 8), (3, 8)]  # type: ignore[arg-type]


def test_auto_takes_the_platforms_count() -> None:
    _, bot, net = sharded(3, shards="auto")
    assert net.wait_for(lambda: all_ready(bot), within=60)
    assert sorted(bot.gateways) == [0, 1, 2]


def test_a_plan_over_the_start_budget_fails_before_any_connection_and_says_when() -> None:
    sim, bot, net = sharded(8, remaining=3)
    assert net.wait_for(lambda: bot.phase is BotPhase.FAILED, within=60)
    assert net.connects == 0 and sim.identifies == []
    assert bot.failure_reason is not None
    assert "3 of 1000" in bot.failure_reason and "resets in" in bot.failure_reason


def test_saved_sessions_resume_without_spending_the_budget() -> None:
    sim, bot, net = sharded(2)
    assert net.wait_for(lambda: all_ready(bot), within=60)
    saved = [g.session for g in bot.gateways.values() if g.session is not None]
    net.refuse_connections = True  # the old process dies: its links drop, it never dials again
    sim.drop(net.now)
    net.settle()
    remaining = sim.session_starts_remaining
    again = BotProtocol(bot.config, sessions=saved)
    restarted = MemoryNetwork(sim, again, now=net.now)
    assert restarted.wait_for(lambda: all_ready(again), within=60)
    assert again.gateway_info is None  # no discovery: every shard had a session
    assert [r.outcome for r in sim.resumes][-2:] == ["RESUMED", "RESUMED"]
    assert sim.session_starts_remaining == remaining


def test_an_outside_gate_is_asked_and_answered() -> None:
    _, bot, net = sharded(2, external_gate=True)
    assert net.wait_for(
        lambda: len([e for e in net.events if isinstance(e, IdentifyWanted)]) == 2, within=60
    )
    assert net.connects == 0  # nothing dials before the gate says so
    bot.identify_allowed(1, net.now)
    net.settle()
    assert net.wait_for(lambda: bot.gateways[1].state is GatewayState.READY, within=60)
    assert bot.gateways[0].state is not GatewayState.READY
    net.advance(IDENTIFY_WINDOW)  # the outside gate's pace is its own
    bot.identify_allowed(0, net.now)
    net.settle()
    assert net.wait_for(lambda: all_ready(bot), within=60)


class ShardedMachine(RuleBasedStateMachine):
    """Any schedule of drops, lost sessions and waits on a sharded bot: no
    window of 5 s ever holds more Identifies than ``max_concurrency``, none
    is refused as too soon, and every shard reaches READY again."""

    def __init__(self) -> None:
        super().__init__()
        self.sim, self.bot, self.net = sharded(4, max_concurrency=1)

    @rule(shard=st.integers(0, 3))
    def drop(self, shard: int) -> None:
        self.sim.drop(self.net.now, shard=shard)
        self.net.settle()

    @rule(shard=st.integers(0, 3))
    def lose_session(self, shard: int) -> None:
        self.sim.invalid_session(False, self.net.now, shard=shard)
        self.net.settle()

    @rule(seconds=st.floats(0.0, 8.0))
    def wait(self, seconds: float) -> None:
        self.net.advance(seconds)

    @invariant()
    def never_too_many_identifies_at_once(self) -> None:
        assert not [i for i in self.sim.identifies if "too soon" in i.outcome]
        assert most_in_a_window(identify_times(self.sim)) <= 1

    @rule()
    def everyone_gets_back(self) -> None:
        assert self.net.wait_for(lambda: all_ready(self.bot), within=300)


TestSharded = ShardedMachine.TestCase
TestSharded.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)


def test_closing_while_a_shard_dials_starts_no_other_shard() -> None:
    """Shard 0 holds the turn and dials; 1 and 2 wait. Closing gives 0's turn
    back, and the gate must give it to nobody."""
    bot = BotProtocol(
        BotConfig(
            "102000000",
            "simulator-secret",
            shards=3,
            gateway_url="wss://api.sgroup.qq.com/websocket/",
            token_url=f"{ORIGIN}/app/getAppAccessToken",
        )
    )
    [token_request] = [a for a in bot.actions() if isinstance(a, HttpRequest)]
    body = json.dumps({"access_token": "T", "expires_in": "7200"}).encode()
    bot.http_response(token_request.request_id, HttpResponse(200, (), body), 0.0)
    dials = [a for a in bot.actions() if isinstance(a, Connect)]
    assert len(dials) == 1 and bot.shards.gate.turn == 0 and bot.shards.gate.waiting == [1, 2]
    bot.close(1.0)
    assert not [a for a in bot.actions() if isinstance(a, Connect)]
    assert bot.shards.gate.turn is None and bot.shards.gate.waiting == []


def test_a_lost_session_the_budget_cannot_replace_fails_the_bot_saying_so() -> None:
    sim, bot, net = sharded(2, remaining=3)
    assert net.wait_for(lambda: all_ready(bot), within=60)
    sim.invalid_session(False, net.now, shard=0)  # a new session: the third start
    assert net.wait_for(lambda: all_ready(bot) and len(sim.identifies) == 3, within=60)
    sim.invalid_session(False, net.now, shard=1)  # a fourth would be over the budget
    assert net.wait_for(lambda: bot.phase is BotPhase.FAILED, within=60)
    assert bot.failure_reason is not None
    assert "no gateway session starts left" in bot.failure_reason
    assert "resets in" in bot.failure_reason
    assert len(sim.identifies) == 3  # the fourth was never sent
