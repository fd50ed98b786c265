"""Passive-reply bookkeeping: msg_id origin, msg_seq, windows, budgets, bounded memory."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from qqproto.errors import ConfigError, LocalProtocolError
from qqproto.qq.replies import ReplyContext, ReplyTicket, ReplyTracker
from qqproto.qq.reply_rules import (
    DEAD_CODES,
    DEFAULT_POLICIES,
    DUPLICATE_CODE,
    Outcome,
    OwnMessageAsReplyTarget,
    Refusal,
    ReplyPolicy,
    ReplyRefused,
)
from qqproto.qq.scenes import Scene

GROUP, USER = "B0F4C2E1D3A5968778695A4B3C2D1E0F", "6836D8522EE75AD3732E75C0D3B6F33A"
# Seed 003 (AstrBot #6931): the user's message, and the id the bot's first reply got back.
INBOUND = (
    "ROBOT1.0_BJkd-tCn0-jaN8Z9LqrswYvSio4gBHeEZ4Ll8fWlRBz5mBnCjAPEqFq-p328W.tO3rRho2Cag"
    "BvejX2fLfQ0N2LBnPsOL4m9jxp8NoXJm8s!"
)
FIRST_SENT = (
    "ROBOT1.0_rPi8nvmC5Vd7prorHpcvSx.FVqNgftgITNJlZJEwDOLHhnWCzgZTp23GuJgkfG34mXFVGFiu0y9g"
    "fEfQ4oQHJg!!"
)
SECOND_SENT = (
    "ROBOT1.0_rPi8nvmC5Vd7prorHpcvS0-fh9JLYG.SVBAt79PHlVhXDSoYEQHES9Hf88YVFSOxVLzfr4iOMkm8"
    "WJlNQJhc9A!!"
)


def refused(reason: Refusal) -> pytest.RaisesExc[ReplyRefused]:
    return pytest.raises(ReplyRefused, check=lambda e: e.reason is reason)


def group_msg(tracker: ReplyTracker, now: float = 0.0, msg_id: str = "m1") -> ReplyContext:
    return tracker.inbound(Scene.GROUP, GROUP, now, msg_id=msg_id)


# -- the seed: AstrBot #6931 --------------------------------------------------------------


def test_seed_003_a_reply_never_answers_the_bots_own_message() -> None:
    tracker = ReplyTracker()
    ctx = tracker.inbound(Scene.C2C, USER, 0.0, msg_id=INBOUND)
    first = tracker.begin(ctx, 5.9)
    assert first.body() == {"msg_id": INBOUND, "msg_seq": 1}
    tracker.delivered(first, FIRST_SENT, 6.9)
    second = tracker.begin(ctx, 6.9)
    tracker.delivered(second, SECOND_SENT, 7.2)
    # The adapter kept the returned id as "the session's message id" and replies "to" it.
    # 1. It is a str, and only a ReplyContext names a reply target.
    with pytest.raises(TypeError, match="AstrBot #6931"):
        tracker.begin(SECOND_SENT, 7.8)  # type: ignore[arg-type]
    # 2. An event decoder (or adapter) that registers it as inbound is refused, saying why.
    with pytest.raises(OwnMessageAsReplyTarget) as info:
        tracker.inbound(Scene.C2C, USER, 7.8, msg_id=SECOND_SENT)
    assert isinstance(info.value, LocalProtocolError)
    assert info.value.reason is Refusal.OWN_MESSAGE
    assert info.value.message_id == SECOND_SENT and info.value.sent_at == 7.2
    assert "40034024" in str(info.value) and "own message" in str(info.value)
    # 3. Forging a context with the sent id is refused too.
    forged = dataclasses.replace(ctx, reply_to=SECOND_SENT)
    with pytest.raises(OwnMessageAsReplyTarget):
        tracker.begin(forged, 7.8)
    # Replies to the user's message still go out, with the next seqs.
    bodies = [tracker.begin(ctx, 8.0 + i).body() for i in range(3)]
    assert bodies == [{"msg_id": INBOUND, "msg_seq": n} for n in (3, 4, 5)]


def test_seed_003_msg_seq_counts_from_one_per_message() -> None:
    tracker = ReplyTracker()
    ctx = tracker.inbound(Scene.C2C, USER, 0.0, msg_id=INBOUND)
    other = tracker.inbound(Scene.C2C, USER, 1.0, msg_id="ROBOT1.0_other")
    assert [tracker.begin(ctx, 2.0).msg_seq for _ in range(3)] == [1, 2, 3]
    assert tracker.begin(other, 2.0).msg_seq == 1


# -- contexts and tickets come from the tracker only --------------------------------------


def test_contexts_and_tickets_cannot_be_built_by_hand() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    ticket = tracker.begin(ctx, 1.0)
    with pytest.raises(LocalProtocolError, match="made by ReplyTracker only"):
        ReplyContext(Scene.GROUP, GROUP, "msg_id", "m1", 0.0, 298.0, object())  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="made by ReplyTracker only"):
        ReplyTicket(ctx, 7, 1, object())  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.reply_to = "x"  # type: ignore[misc]
    # An altered context (a fresh window, say) does not match what was registered.
    with refused(Refusal.UNKNOWN):
        tracker.begin(dataclasses.replace(ctx, closes_at=1e9), 1.0)
    # Nor do values of another tracker.
    other = ReplyTracker()
    with refused(Refusal.UNKNOWN):
        other.begin(ctx, 1.0)
    with pytest.raises(LocalProtocolError, match="not a ticket of this tracker"):
        other.delivered(ticket, "s", 1.0)


def test_inbound_takes_exactly_one_non_empty_id() -> None:
    tracker = ReplyTracker()
    for ids in ({}, {"msg_id": "m", "event_id": "e"}, {"msg_id": ""}):
        with pytest.raises(LocalProtocolError, match="exactly one"):
            tracker.inbound(Scene.GROUP, GROUP, 0.0, **ids)


def test_an_event_is_answered_by_event_id() -> None:
    tracker = ReplyTracker()
    ctx = tracker.inbound(Scene.GROUP, GROUP, 0.0, event_id="GROUP_ADD_ROBOT:abc")
    assert (ctx.msg_id, ctx.event_id) == (None, "GROUP_ADD_ROBOT:abc")
    ticket = tracker.begin(ctx, 1.0)
    assert ticket.body() == {"event_id": "GROUP_ADD_ROBOT:abc", "msg_seq": 1}
    assert (ticket.context.scene, ticket.target, ticket.msg_id) == (Scene.GROUP, GROUP, None)


def test_guild_bodies_carry_no_msg_seq() -> None:
    tracker = ReplyTracker()
    ctx = tracker.inbound(Scene.GUILD_CHANNEL, "1234", 0.0, msg_id="g1")
    assert tracker.begin(ctx, 1.0).body() == {"msg_id": "g1"}


def test_a_redelivery_returns_the_same_context_and_resets_nothing() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    for _ in range(5):
        tracker.begin(ctx, 1.0)
    assert group_msg(tracker, now=200.0) is ctx
    assert len(tracker) == 1
    with refused(Refusal.BUDGET_SPENT):
        tracker.begin(ctx, 200.0)
    fresh = group_msg(tracker, msg_id="m2")
    assert group_msg(tracker, now=250.0, msg_id="m2") is fresh
    with refused(Refusal.WINDOW_CLOSED):
        tracker.begin(fresh, 298.0)


def test_the_same_id_for_another_conversation_is_a_local_error() -> None:
    tracker = ReplyTracker()
    group_msg(tracker)
    with pytest.raises(LocalProtocolError, match="already registered"):
        tracker.inbound(Scene.GROUP, "ANOTHER_GROUP", 1.0, msg_id="m1")


# -- windows -------------------------------------------------------------------------------


def test_the_window_closes_a_margin_early_and_says_by_how_much() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker, now=100.0)
    assert tracker.begin(ctx, 397.9).msg_seq == 1
    assert not tracker.can_reply(ctx, 398.0)
    with refused(Refusal.WINDOW_CLOSED) as info:
        tracker.begin(ctx, 410.0)
    assert "the group reply window of 300 s closed 12.0 s ago" in str(info.value)
    assert info.value.scene is Scene.GROUP and info.value.seconds_over == 12.0
    # Long after the entry left memory, the context itself still tells.
    with refused(Refusal.WINDOW_CLOSED) as info:
        tracker.begin(ctx, 10_000.0)
    assert info.value.seconds_over == 10_000.0 - 398.0
    assert len(tracker) == 0


#: Spec 7.3, written out here.
SPEC_WINDOWS = {
    Scene.GROUP: 300.0,
    Scene.C2C: 3600.0,
    Scene.GUILD_CHANNEL: 300.0,
    Scene.GUILD_DM: 300.0,
}


@pytest.mark.parametrize("scene", list(Scene))
def test_every_scene_has_its_window(scene: Scene) -> None:
    tracker = ReplyTracker(margin=0.5)
    window = SPEC_WINDOWS[scene]
    assert DEFAULT_POLICIES[scene].window == window
    ctx = tracker.inbound(scene, "t", 0.0, msg_id="m")
    assert tracker.can_reply(ctx, window - 0.51)
    with refused(Refusal.WINDOW_CLOSED):
        tracker.begin(ctx, window - 0.5)
    with pytest.raises(ReplyRefused, match=f"the {scene.value} reply window of {window:g} s"):
        tracker.begin(ctx, window)


def test_policies_are_checked_and_c2c_budget_is_configurable() -> None:
    assert DEFAULT_POLICIES[Scene.C2C] == ReplyPolicy(3600.0, 5)
    assert DEFAULT_POLICIES[Scene.GUILD_DM].max_replies is None
    tracker = ReplyTracker({Scene.C2C: ReplyPolicy(3600.0, 4)})
    ctx = tracker.inbound(Scene.C2C, USER, 0.0, msg_id="m")
    for _ in range(4):
        tracker.begin(ctx, 1.0)
    with refused(
        Refusal.BUDGET_SPENT,
    ) as info:
        tracker.begin(ctx, 1.0)
    assert (info.value.used, info.value.cap) == (4, 4)
    with pytest.raises(ConfigError):
        ReplyPolicy(0.0, 5)
    with pytest.raises(ConfigError):
        ReplyPolicy(10.0, 0)
    with pytest.raises(ConfigError, match="margin"):
        ReplyTracker({Scene.GROUP: ReplyPolicy(2.0, 5)})
    with pytest.raises(ConfigError, match="margin"):
        ReplyTracker(margin=-1.0)


# -- budgets ------------------------------------------------------------------------------


def test_the_budget_counts_from_begin() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    for _ in range(5):
        tracker.begin(ctx, 1.0)  # none reported yet: all count
    with refused(Refusal.BUDGET_SPENT) as info:
        tracker.begin(ctx, 1.0)
    assert "5 of 5 replies to this message used" in str(info.value)
    event = tracker.inbound(Scene.GROUP, GROUP, 0.0, event_id="e")
    for _ in range(5):
        tracker.begin(event, 1.0)
    with pytest.raises(ReplyRefused, match="5 of 5 replies to this event used"):
        tracker.begin(event, 1.0)


def test_a_shared_msg_seq_is_used_and_counts_against_the_budget() -> None:
    """Two workers answering one message take their msg_seq from one counter
    (qqproto.adapters.redis): each ledger uses the seq it is given, and the
    seq, the count of replies everywhere, is what the budget checks."""
    worker_a, worker_b = ReplyTracker(), ReplyTracker()
    ctx_a, ctx_b = group_msg(worker_a), group_msg(worker_b)
    assert worker_a.begin(ctx_a, 1.0, msg_seq=1).msg_seq == 1
    assert worker_b.begin(ctx_b, 1.0, msg_seq=2).msg_seq == 2
    assert worker_b.begin(ctx_b, 1.0).msg_seq == 3  # counting on from what it was given
    with pytest.raises(LocalProtocolError, match="bad shared msg_seq"):
        worker_a.begin(ctx_a, 1.0, msg_seq=1)  # this ledger used it already
    assert worker_a.begin(ctx_a, 1.0, msg_seq=5).msg_seq == 5
    with refused(Refusal.BUDGET_SPENT) as info:
        worker_a.begin(ctx_a, 1.0, msg_seq=6)  # a sixth reply somewhere
    assert "5 of 5 replies to this message used (shared count)" in str(info.value)


def test_can_reply_is_false_once_the_budget_is_spent() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    for n in range(5):
        assert tracker.can_reply(ctx, 1.0), f"after {n} replies"
        tracker.delivered(tracker.begin(ctx, 1.0), f"ROBOT1.0_out{n}", 1.0)
    assert not tracker.can_reply(ctx, 1.0)  # 5 of 5 used: only a proactive send now
    guild = tracker.inbound(Scene.GUILD_CHANNEL, "635", 0.0, msg_id="g")
    for _ in range(50):
        tracker.begin(guild, 1.0)
    assert tracker.can_reply(guild, 1.0)  # no cap


def test_guild_scenes_have_no_cap() -> None:
    tracker = ReplyTracker()
    ctx = tracker.inbound(Scene.GUILD_DM, "9876", 0.0, msg_id="d")
    assert [tracker.begin(ctx, 1.0).msg_seq for _ in range(100)] == list(range(1, 101))


def test_a_definite_failure_frees_its_budget_but_never_its_seq() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    tickets = [tracker.begin(ctx, 1.0) for _ in range(5)]
    assert tracker.failed(tickets[0], 2.0, code=22009, may_have_landed=False) is Outcome.FAILED
    assert tracker.begin(ctx, 3.0).msg_seq == 6
    with refused(Refusal.BUDGET_SPENT):
        tracker.begin(ctx, 3.0)


def test_a_failure_that_may_have_landed_keeps_its_budget() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    tickets = [tracker.begin(ctx, 1.0) for _ in range(5)]
    tracker.failed(tickets[0], 2.0, code=None, may_have_landed=True)
    with refused(Refusal.BUDGET_SPENT):
        tracker.begin(ctx, 3.0)
    # Nor does a later definite failure of the same seq free it: attempt 1 may be out there.
    retry = tracker.retry(tickets[0], 3.0)
    tracker.failed(retry, 4.0, code=50055001, may_have_landed=False)
    with refused(Refusal.BUDGET_SPENT):
        tracker.begin(ctx, 5.0)


# -- retries ------------------------------------------------------------------------------


def test_a_retry_reuses_the_seq_and_follows_the_rules() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    first = tracker.begin(ctx, 1.0)
    with refused(Refusal.NOT_RETRYABLE) as info:
        tracker.retry(first, 2.0)
    assert "report it with failed() first" in str(info.value)
    tracker.failed(first, 6.0, code=None, may_have_landed=True)
    second = tracker.retry(first, 6.0)
    assert (second.msg_seq, second.attempt, second.body()) == (1, 2, first.body())
    with pytest.raises(ReplyRefused, match="superseded by attempt 2"):
        tracker.retry(first, 7.0)
    tracker.delivered(second, "sent-1", 7.0)
    with pytest.raises(ReplyRefused, match="was delivered; a retry would post it twice"):
        tracker.retry(second, 8.0)
    third = tracker.begin(ctx, 8.0)
    assert third.msg_seq == 2
    tracker.failed(third, 10.0, code=None, may_have_landed=True)
    with refused(Refusal.WINDOW_CLOSED):
        tracker.retry(third, 298.0)


def test_a_retry_after_a_freed_budget_needs_budget_again() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    first = tracker.begin(ctx, 1.0)
    tracker.failed(first, 2.0, code=50055001, may_have_landed=False)
    for _ in range(5):
        tracker.begin(ctx, 3.0)
    with refused(Refusal.BUDGET_SPENT):
        tracker.retry(first, 4.0)


def test_a_duplicate_on_a_retry_of_a_request_that_may_have_landed_is_delivered() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    first = tracker.begin(ctx, 1.0)
    tracker.failed(first, 6.0, code=None, may_have_landed=True)
    retry = tracker.retry(first, 6.0)
    assert tracker.failed(retry, 7.0, code=DUPLICATE_CODE, may_have_landed=False) is (
        Outcome.DELIVERED
    )
    with pytest.raises(ReplyRefused, match="was delivered"):
        tracker.retry(retry, 8.0)


def test_a_duplicate_otherwise_is_a_failure_that_keeps_its_budget() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    first = tracker.begin(ctx, 1.0)  # someone else (another process?) used msg_seq 1
    assert tracker.failed(first, 2.0, code=DUPLICATE_CODE, may_have_landed=False) is (
        Outcome.FAILED
    )
    second = tracker.begin(ctx, 2.0)
    tracker.failed(second, 3.0, code=50055001, may_have_landed=False)
    retry = tracker.retry(second, 3.0)  # the first attempt surely did not land
    assert tracker.failed(retry, 4.0, code=DUPLICATE_CODE, may_have_landed=False) is (
        Outcome.FAILED
    )
    for _ in range(3):
        tracker.begin(ctx, 5.0)
    with refused(Refusal.BUDGET_SPENT):
        tracker.begin(ctx, 5.0)


#: Spec 7.4 and 9, written out here: a code mistyped in the table is caught.
SPEC_DEAD_CODES = (
    *(40034005, 40034031, 304103, 40034024, 40034128, 304026, 304027, 304028, 50045),
    *(40034025, 40034026, 40034027),
)


def test_the_dead_codes_are_the_specs() -> None:
    assert frozenset(SPEC_DEAD_CODES) == DEAD_CODES


@pytest.mark.parametrize("code", SPEC_DEAD_CODES)
def test_a_dead_id_code_refuses_every_later_reply(code: int) -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    pending = tracker.begin(ctx, 1.0)
    ticket = tracker.begin(ctx, 1.0)
    assert tracker.failed(ticket, 2.0, code=code, may_have_landed=False) is Outcome.DEAD
    with refused(Refusal.DEAD) as info:
        tracker.begin(ctx, 3.0)
    assert info.value.code == code and str(code) in str(info.value)
    with refused(Refusal.DEAD):
        tracker.retry(ticket, 3.0)
    assert not tracker.can_reply(ctx, 3.0)
    assert group_msg(tracker, now=4.0) is ctx  # a redelivery does not revive it
    assert tracker.failed(pending, 5.0, code=None, may_have_landed=True) is Outcome.DEAD


def test_late_and_stale_results_are_harmless() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    first = tracker.begin(ctx, 1.0)
    tracker.failed(first, 2.0, code=None, may_have_landed=True)
    second = tracker.retry(first, 2.0)
    # Attempt 1's answer comes in after all: the seq landed.
    tracker.delivered(first, "sent-late", 3.0)
    assert tracker.failed(second, 4.0, code=None, may_have_landed=True) is Outcome.DELIVERED
    third = tracker.begin(ctx, 5.0)
    tracker.failed(third, 6.0, code=50055001, may_have_landed=False)
    assert tracker.failed(third, 6.0, code=50055001, may_have_landed=False) is Outcome.FAILED
    assert tracker.begin(ctx, 7.0).msg_seq == 3
    # A result after the context left memory still remembers the sent id.
    late = tracker.begin(ctx, 290.0)
    tracker.delivered(late, "sent-after-expiry", 400.0)
    assert len(tracker) == 0
    with pytest.raises(OwnMessageAsReplyTarget):
        tracker.inbound(Scene.GROUP, GROUP, 401.0, msg_id="sent-after-expiry")
    assert tracker.failed(late, 401.0, code=40034024, may_have_landed=False) is Outcome.DEAD


# -- memory ---------------------------------------------------------------------------------


def test_a_million_msg_ids_never_outgrow_the_live_ones() -> None:
    tracker = ReplyTracker()
    step = 1 / 128  # exact in binary: no rounding at the window's edge
    live_span = int((DEFAULT_POLICIES[Scene.GROUP].window + tracker.margin) / step)
    inbound = tracker.inbound
    for i in range(1_000_000):
        now = i * step
        ctx = inbound(Scene.GROUP, GROUP, now, msg_id=str(i))
        if i % 97 == 0:
            assert len(tracker) == min(i + 1, live_span)
            tracker.delivered(tracker.begin(ctx, now), f"s{i}", now)
    assert len(tracker) == live_span
    last = 999_999 * step
    sent_ttl = DEFAULT_POLICIES[Scene.C2C].window + tracker.margin  # the longest window
    live_sent = sum(last < i * step + sent_ttl for i in range(0, 1_000_000, 97))
    assert tracker.sent_ids == live_sent
    assert tracker.expire(1e9) == live_span + live_sent
    assert len(tracker) == 0 == tracker.sent_ids


def test_sent_ids_are_forgotten_after_sent_ttl() -> None:
    tracker = ReplyTracker(sent_ttl=10.0)
    tracker.sent("s", 0.0)
    with pytest.raises(OwnMessageAsReplyTarget):
        tracker.inbound(Scene.GROUP, GROUP, 9.9, msg_id="s")
    assert tracker.sent_ids == 1
    group_msg(tracker, now=10.0, msg_id="s")
    assert tracker.sent_ids == 0


def test_max_contexts_bounds_memory_and_evictions_are_reported() -> None:
    tracker = ReplyTracker(max_contexts=2)
    first = group_msg(tracker, msg_id="a")
    group_msg(tracker, msg_id="b")
    group_msg(tracker, msg_id="c")
    assert len(tracker) == 2
    with pytest.raises(ReplyRefused, match="evicted"):
        tracker.begin(first, 1.0)


# -- the state machine ------------------------------------------------------------------------

# Small budgets, so that schedules of 30 steps spend them often.
MACHINE_POLICIES = {
    **DEFAULT_POLICIES,
    Scene.GROUP: ReplyPolicy(300.0, 2),
    Scene.C2C: ReplyPolicy(3600.0, 3),
}
MARGIN = 2.0
SENT_TTL = 3600.0 + MARGIN


@dataclass
class SeqModel:
    ticket: ReplyTicket  # the latest attempt
    request: int
    pending: bool = True
    delivered: bool = False
    maybe_landed: bool = False
    free: bool = False  # definitely never landed: its budget is back


@dataclass
class InboundModel:
    ctx: ReplyContext
    received_at: float
    dead: bool = False
    seqs: dict[int, SeqModel] = field(default_factory=dict)

    @property
    def policy(self) -> ReplyPolicy:
        return MACHINE_POLICIES[self.ctx.scene]


# One draw per choice keeps 2,000 CI schedules fast.
INBOUND_KINDS = st.sampled_from([(s, e, t) for s in Scene for e in (False, True) for t in "AB"])
# (code, may_have_landed): mostly as a driver reports them (a code means the server answered,
# none means a timeout), and a few that contradict themselves.
FAILURES = st.sampled_from(
    [
        (None, True),
        (None, True),
        (None, False),
        (DUPLICATE_CODE, False),
        (22009, False),
        (22009, False),
        (50055001, False),
        (50055001, False),
        (40034024, False),
        (40034128, False),
        (304103, False),
        (40034026, False),
        (50055001, True),
        (DUPLICATE_CODE, True),
    ]
)
PICK = st.sampled_from([0, 0, 0, 1, 2, 3])  # the i-th most recent, mostly the last one


class ReplyMachine(RuleBasedStateMachine):
    """Any interleaving of inbound messages, replies, results, codes and time jumps.

    The model is written from the rules (spec 7.3, 7.4), not from the code. A
    redelivery comes while the id is still in memory (the platform redelivers
    within seconds; an id redelivered after its window is new to the tracker).
    """

    def __init__(self) -> None:
        super().__init__()
        self.tracker = ReplyTracker(MACHINE_POLICIES, margin=MARGIN)
        self.now = 0.0
        self.inbound: list[InboundModel] = []
        self.seqs: list[tuple[InboundModel, SeqModel]] = []
        self.pending = 0
        self.sent: dict[str, float] = {}
        self.pairs: dict[tuple[str, int], int] = {}

    # -- helpers
    def live(self, m: InboundModel) -> bool:  # still in memory
        return self.now < m.received_at + m.policy.window + MARGIN

    def open(self, m: InboundModel) -> bool:
        return self.now < m.received_at + m.policy.window - MARGIN

    def over_budget(self, m: InboundModel) -> bool:
        used = sum(not s.free for s in m.seqs.values())
        return m.policy.max_replies is not None and used >= m.policy.max_replies

    def issued(self, m: InboundModel, ticket: ReplyTicket, request: int) -> None:
        assert self.open(m), "a ticket outside the window"
        assert ticket.context is m.ctx
        assert m.ctx.reply_to not in self.sent, "a bot-sent id became a reply target"
        pair = (m.ctx.reply_to, ticket.msg_seq)
        assert self.pairs.setdefault(pair, request) == request, f"{pair} reused"
        self.pending += 1

    def expect(self, m: InboundModel) -> Refusal | None:
        if not self.open(m):
            return Refusal.WINDOW_CLOSED
        return Refusal.DEAD if m.dead else None

    def a_pending_seq(self, i: int) -> tuple[InboundModel, SeqModel]:
        pending = [(m, s) for m, s in self.seqs if s.pending]
        return pending[~(i % len(pending))]

    # -- inbound
    @initialize(kind=INBOUND_KINDS)
    def first_inbound(self, kind: tuple[Scene, bool, str]) -> None:
        self.new_inbound(kind)

    @rule(kind=INBOUND_KINDS)
    def new_inbound(self, kind: tuple[Scene, bool, str]) -> None:
        scene, event, t = kind
        ident = f"in-{len(self.inbound)}"
        ids = {"event_id": ident} if event else {"msg_id": ident}
        ctx = self.tracker.inbound(scene, f"{scene.name}-{t}", self.now, **ids)
        assert (ctx.received_at, ctx.reply_to) == (self.now, ident)
        self.inbound.append(InboundModel(ctx, self.now))

    @precondition(lambda self: self.inbound)
    @rule(i=PICK)
    def redeliver(self, i: int) -> None:
        m = self.inbound[~(i % len(self.inbound))]
        if self.live(m):
            ids = {m.ctx.kind: m.ctx.reply_to}
            assert self.tracker.inbound(m.ctx.scene, m.ctx.target, self.now, **ids) is m.ctx

    @rule(i=PICK)
    def an_own_id_comes_back(self, i: int) -> None:
        """A proactive send, then some id the bot sent is offered as inbound (seed 003)."""
        ident = f"out-{len(self.sent)}"
        self.tracker.sent(ident, self.now)
        self.sent[ident] = self.now
        own = [s for s, t in self.sent.items() if self.now < t + SENT_TTL]
        with pytest.raises(OwnMessageAsReplyTarget):
            self.tracker.inbound(Scene.C2C, "X", self.now, msg_id=own[~(i % len(own))])

    # -- outbound
    @precondition(lambda self: self.inbound)
    @rule(i=PICK, replies=st.integers(1, 4))
    def begin(self, i: int, replies: int) -> None:
        """A few replies in a row to one message, as an agent answering in parts does."""
        m = self.inbound[~(i % len(self.inbound))]
        for _ in range(replies):
            self.begin_one(m)

    def begin_one(self, m: InboundModel) -> None:
        reason = self.expect(m) or (Refusal.BUDGET_SPENT if self.over_budget(m) else None)
        if reason is not None:
            with refused(reason):
                self.tracker.begin(m.ctx, self.now)
            return
        ticket = self.tracker.begin(m.ctx, self.now)
        assert ticket.msg_seq == max(m.seqs, default=0) + 1 and ticket.attempt == 1
        self.issued(m, ticket, len(self.seqs))
        m.seqs[ticket.msg_seq] = seq = SeqModel(ticket, len(self.seqs))
        self.seqs.append((m, seq))

    @precondition(lambda self: self.seqs)
    @rule(i=PICK)
    def retry(self, i: int) -> None:
        self.retry_seq(*self.seqs[~(i % len(self.seqs))])

    def retry_seq(self, m: InboundModel, s: SeqModel) -> None:
        reason = self.expect(m)
        if reason is None and (s.delivered or s.pending):
            reason = Refusal.NOT_RETRYABLE
        if reason is None and s.free and self.over_budget(m):
            reason = Refusal.BUDGET_SPENT
        if reason is not None:
            with refused(reason):
                self.tracker.retry(s.ticket, self.now)
            return
        ticket = self.tracker.retry(s.ticket, self.now)
        assert (ticket.msg_seq, ticket.attempt) == (s.ticket.msg_seq, s.ticket.attempt + 1)
        self.issued(m, ticket, s.request)
        s.ticket, s.pending, s.free = ticket, True, False

    # -- results
    @precondition(lambda self: self.pending)
    @rule(i=PICK)
    def deliver(self, i: int) -> None:
        _, s = self.a_pending_seq(i)
        sent_id = f"out-{len(self.sent)}"
        self.tracker.delivered(s.ticket, sent_id, self.now)
        self.sent[sent_id] = self.now
        s.pending, s.delivered = False, True
        self.pending -= 1

    @precondition(lambda self: self.pending)
    @rule(i=PICK, failure=FAILURES)
    def fail(self, i: int, failure: tuple[int | None, bool]) -> None:
        self.fail_seq(*self.a_pending_seq(i), *failure)

    def fail_seq(
        self, m: InboundModel, s: SeqModel, code: int | None, may_have_landed: bool
    ) -> None:
        outcome = self.tracker.failed(
            s.ticket, self.now, code=code, may_have_landed=may_have_landed
        )
        dead = code in DEAD_CODES
        self.pending -= 1
        s.pending, earlier = False, s.maybe_landed
        s.maybe_landed = earlier or may_have_landed
        if not self.live(m):  # the window is long closed: only the code matters
            assert outcome is (Outcome.DEAD if dead else Outcome.FAILED)
            return
        m.dead = m.dead or dead
        if code == DUPLICATE_CODE and s.ticket.attempt > 1 and earlier:
            assert outcome is Outcome.DELIVERED
            s.delivered = True
        else:
            assert outcome is (Outcome.DEAD if m.dead else Outcome.FAILED)
            s.free = not m.dead and code != DUPLICATE_CODE and not s.maybe_landed

    @precondition(lambda self: self.pending)
    @rule(i=PICK)
    def time_out_and_retry(self, i: int) -> None:
        """What a driver does most: no answer in time, so the same request again."""
        m, s = self.a_pending_seq(i)
        self.fail_seq(m, s, None, True)
        self.retry_seq(m, s)

    @rule(dt=st.sampled_from([0.0, 0.5, 1.0, 2.0, 30.0, 60.0, 150.0, 296.0, 299.0, 3598.0, 3700.0]))
    def advance(self, dt: float) -> None:
        self.now += dt

    @invariant()
    def memory_is_the_live_entries_and_no_sent_id_is_a_target(self) -> None:
        self.tracker.expire(self.now)
        assert len(self.tracker) == sum(self.live(m) for m in self.inbound)
        assert self.tracker.sent_ids == sum(self.now < t + SENT_TTL for t in self.sent.values())
        assert not {m.ctx.reply_to for m in self.inbound} & self.sent.keys()


TestReplyMachine = ReplyMachine.TestCase
# Every rule above needs at most eight steps to show a bug (a budget of 2 or 3 spent,
# a retry, a time jump), so 30 steps a schedule find them while 2,000 schedules (CI)
# stay well under 30 s; the number of schedules is the profile's.
TestReplyMachine.settings = settings(stateful_step_count=30)


# -- what the mutation pass found untested --------------------------------------------------


@pytest.mark.parametrize(
    ("window", "max_replies"), [(0.5, 1), (1e-9, None), (300.0, 1)], ids=["short", "tiny", "one"]
)
def test_the_smallest_policies_are_taken(window: float, max_replies: int | None) -> None:
    assert ReplyPolicy(window, max_replies).max_replies == max_replies


def test_a_margin_from_zero_to_below_the_shortest_window_is_taken() -> None:
    assert ReplyTracker(margin=0.0).margin == 0.0
    with pytest.raises(ConfigError, match="margin"):
        ReplyTracker(margin=300.0)  # the group window itself


def test_the_values_are_frozen_and_their_reprs_hide_the_owner() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    ticket = tracker.begin(ctx, 1.0)
    for value, name in ((ctx, "reply_to"), (ticket, "msg_seq"), (ReplyPolicy(1.0, 1), "window")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, name, None)
    assert "_owner" not in repr(ctx) + repr(ticket)


def test_a_refusal_names_the_id_it_refused() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker, msg_id="m9")
    with refused(Refusal.WINDOW_CLOSED) as info:
        tracker.begin(ctx, 1000.0)
    assert (info.value.reply_to, info.value.scene) == ("m9", Scene.GROUP)
    tracker.delivered(tracker.begin(group_msg(tracker, 2000.0, "m10"), 2000.0), "OUT", 2000.0)
    with pytest.raises(OwnMessageAsReplyTarget) as own:
        tracker.inbound(Scene.GROUP, GROUP, 2001.0, msg_id="OUT")
    assert own.value.reply_to == "OUT"


def test_another_trackers_context_or_ticket_is_refused_saying_so() -> None:
    mine, theirs = ReplyTracker(), ReplyTracker()
    ctx = group_msg(theirs)
    group_msg(mine)  # the same id, registered here too
    with refused(Refusal.UNKNOWN) as info:
        mine.begin(ctx, 1.0)
    assert "another tracker's" in str(info.value)
    ticket = theirs.begin(ctx, 1.0)
    theirs.failed(ticket, 2.0, code=None, may_have_landed=False)
    with pytest.raises(LocalProtocolError, match="not a ticket of this tracker"):
        mine.retry(ticket, 2.0)


def test_a_retry_after_a_freed_budget_is_charged_once() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    first = tracker.begin(ctx, 1.0)
    assert tracker.failed(first, 1.0, code=None, may_have_landed=False) is Outcome.FAILED
    again = tracker.retry(first, 1.0)  # charged again, once
    tracker.delivered(again, "OUT1", 1.0)
    for _ in range(4):  # 1 + 4 = the group's 5
        tracker.begin(ctx, 1.0)
    with refused(Refusal.BUDGET_SPENT):
        tracker.begin(ctx, 1.0)


def test_a_late_success_of_a_freed_attempt_is_charged_again() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    ticket = tracker.begin(ctx, 1.0)
    tracker.failed(ticket, 1.0, code=None, may_have_landed=False)  # freed...
    tracker.delivered(ticket, "OUT1", 2.0)  # ... but it landed after all
    for _ in range(4):
        tracker.begin(ctx, 2.0)
    with refused(Refusal.BUDGET_SPENT):
        tracker.begin(ctx, 2.0)


def test_a_stale_report_changes_nothing() -> None:
    tracker = ReplyTracker()
    ctx = group_msg(tracker)
    first = tracker.begin(ctx, 1.0)
    tracker.failed(first, 1.0, code=None, may_have_landed=True)
    second = tracker.retry(first, 1.0)  # attempt 2 of msg_seq 1
    # A late report about attempt 1, now superseded: no effect, and it says FAILED.
    assert tracker.failed(first, 2.0, code=None, may_have_landed=False) is Outcome.FAILED
    with pytest.raises(ReplyRefused, match="has no result yet"):
        tracker.retry(second, 2.0)  # attempt 2 is still pending: the report did not end it
    with pytest.raises(ReplyRefused, match="superseded by attempt 2"):
        tracker.retry(first, 2.0)


def test_len_and_sent_ids_count_what_is_live_at_the_latest_now() -> None:
    tracker = ReplyTracker()
    group_msg(tracker, 0.0, "old")
    tracker.sent("OUT-old", 0.0)
    assert (len(tracker), tracker.sent_ids) == (1, 1)
    group_msg(tracker, 400.0, "new")  # the group window (300 s + 2) is over for "old"
    assert len(tracker) == 1
    tracker.sent("OUT-new", 4000.0)  # sent ids live the longest window (3602 s)
    assert tracker.sent_ids == 1
    ticket = tracker.begin(group_msg(tracker, 4000.0, "newest"), 4000.0)
    tracker.failed(ticket, 5000.0, code=None, may_have_landed=False)  # time moves on here too
    assert len(tracker) == 0
