"""Shard plans and the identify gate (spec 11), on the fake clock."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from qqproto.errors import ConfigError
from qqproto.qq.results import GatewayInfo, SessionLimitExceeded, SessionStartLimit
from qqproto.qq.shards import (
    IDENTIFY_MARGIN,
    IDENTIFY_WINDOW,
    IdentifyGate,
    ShardPlan,
    parse_slice,
    plan_shards,
    shard_of_guild,
)


def info(shards: int = 4, remaining: int = 1000, max_concurrency: int = 1) -> GatewayInfo:
    limit = SessionStartLimit(1000, remaining, 3_600_000, max_concurrency)
    return GatewayInfo("wss://api.sgroup.qq.com/websocket", shards, limit)


# -- plans -------------------------------------------------------------------------------------


def test_the_platforms_count_by_default_and_every_shard() -> None:
    plan = plan_shards(info(shards=4, max_concurrency=2))
    assert plan == ShardPlan(4, (0, 1, 2, 3), 2)
    assert plan.shards == [(0, 4), (1, 4), (2, 4), (3, 4)]


def test_a_slice_of_a_count_the_user_chose() -> None:
    assert plan_shards(info(), count=8, ids=parse_slice("2..5")).ids == (2, 3, 4, 5)


def test_a_plan_the_budget_cannot_pay_for_says_when_it_refills() -> None:
    with pytest.raises(SessionLimitExceeded) as raised:
        plan_shards(info(shards=4, remaining=3))
    assert "3 of 1000" in str(raised.value) and "resets in 3600 s" in str(raised.value)
    assert plan_shards(info(shards=4, remaining=3), ids=range(3)).ids == (0, 1, 2)


@pytest.mark.parametrize(
    ("count", "ids"),
    [(0, None), (4, range(3, 5)), (4, range(2, 2)), (-1, None)],
)
def test_wishes_that_do_not_fit_are_refused(count: int, ids: range | None) -> None:
    with pytest.raises(ConfigError):
        plan_shards(info(), count=count, ids=ids)


@pytest.mark.parametrize("text", ["", "3", "3..1", "a..b", "1...2", "-1..2"])
def test_a_bad_slice_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"I\.\.J"):
        parse_slice(text)


def test_guild_events_route_by_the_platforms_rule() -> None:
    guild = (12345 << 22) | 77  # the low 22 bits never count
    assert shard_of_guild(str(guild), 8) == 12345 % 8
    assert shard_of_guild(guild, 1) == 0


# -- the gate ------------------------------------------------------------------------------------

SPAN = IDENTIFY_WINDOW + IDENTIFY_MARGIN


def test_one_turn_at_a_time_in_order_each_a_span_after_the_last_identify() -> None:
    gate = IdentifyGate(1)
    for shard in (2, 0, 1):
        gate.ask(shard, 0.0)
    assert gate.due(0.0) == [2]
    assert gate.due(9.0) == [] and gate.next_deadline() is None  # 2's turn: nobody else
    gate.spent(2, 3.0)  # its handshake took 3 s: the span runs from the Identify
    assert gate.next_deadline() == 3.0 + SPAN
    assert gate.due(3.0 + SPAN - 0.01) == []
    assert gate.due(3.0 + SPAN) == [0]
    gate.returned(0)  # its connection failed before an Identify: the next goes at once
    assert gate.due(3.0 + SPAN) == [1]
    assert gate.waiting == [] and gate.turn == 1


def test_max_concurrency_spaces_identifies_by_a_fraction_of_the_span() -> None:
    gate = IdentifyGate(2)
    for shard in range(3):
        gate.ask(shard, 0.0)
    assert gate.due(0.0) == [0]
    gate.spent(0, 0.0)
    assert gate.due(0.0) == [] and gate.next_deadline() == SPAN / 2  # never two at once
    assert gate.due(SPAN / 2) == [1]


def test_asking_twice_keeps_one_place_and_cancel_gives_it_up() -> None:
    gate = IdentifyGate(1)
    gate.ask(0, 0.0)
    gate.ask(1, 0.0)
    gate.ask(0, 0.0)
    assert gate.waiting == [0, 1]
    gate.cancel(0)
    assert gate.due(0.0) == [1]
    gate.cancel(1)  # a closed shard gives its turn up too
    assert gate.turn is None


def test_a_bad_concurrency_is_refused() -> None:
    with pytest.raises(ConfigError):
        IdentifyGate(0)


class GateMachine(RuleBasedStateMachine):
    """Any schedule of asks, cancels, waits, Identifies and failed dials: no
    two Identifies closer than the spacing, none more than max_concurrency
    in a span, turns in the order asked, and nothing waits forever (the
    deadline always says when to come back)."""

    def __init__(self) -> None:
        super().__init__()
        self.limit = 1
        self.gate = IdentifyGate(1)
        self.now = 0.0
        self.asked: list[int] = []  # the queue as the model keeps it

    @rule(limit=st.integers(1, 4))
    @precondition(lambda self: not self.gate.history)
    def concurrency(self, limit: int) -> None:
        self.limit = limit
        self.gate.set_concurrency(limit)

    @rule(shard=st.integers(0, 7))
    def ask(self, shard: int) -> None:
        self.gate.ask(shard, self.now)
        if shard not in self.asked and shard != self.gate.turn:
            self.asked.append(shard)
        self._grant()

    @rule(shard=st.integers(0, 7))
    def cancel(self, shard: int) -> None:
        self.gate.cancel(shard)
        if shard in self.asked:
            self.asked.remove(shard)

    @rule(seconds=st.floats(0.0, 12.0))
    def wait(self, seconds: float) -> None:
        self.now += seconds
        self._grant()

    @rule(delay=st.floats(0.0, 3.0), identified=st.booleans())
    @precondition(lambda self: self.gate.turn is not None)
    def turn_ends(self, delay: float, identified: bool) -> None:
        self.now += delay
        turn = self.gate.turn
        assert turn is not None
        if identified:
            self.gate.spent(turn, self.now)
        else:
            self.gate.returned(turn)
        self._grant()

    @rule()
    def until_the_deadline(self) -> None:
        due = self.gate.next_deadline()
        if due is not None:
            self.now = max(self.now, due)
            assert self._grant(), "a deadline came and granted nothing"

    def _grant(self) -> list[int]:
        granted = self.gate.due(self.now)
        assert granted == self.asked[: len(granted)], "granted out of order"
        del self.asked[: len(granted)]
        return granted

    @invariant()
    def identifies_keep_their_distance(self) -> None:
        times = [t for t, _ in self.gate.sent]
        span = IDENTIFY_WINDOW + IDENTIFY_MARGIN
        for earlier, later in itertools.pairwise(times):
            assert later - earlier >= span / self.limit - 1e-9
        for i, start in enumerate(times):
            assert len([t for t in times[i:] if t < start + span]) <= self.limit

    @invariant()
    def waiting_is_what_the_model_waits_for(self) -> None:
        assert self.gate.waiting == self.asked
        stuck = self.asked and self.gate.turn is None
        assert (self.gate.next_deadline() is not None) == bool(stuck)


TestGate = GateMachine.TestCase
