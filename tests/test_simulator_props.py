"""Random fault schedules against the real BotProtocol (Hypothesis, fake clock only).

Whatever the schedule, the bot never crashes and never repeats a
``(msg_id, msg_seq)``; the simulator never sends a message twice; and when
every fault leaves the session resumable, every message reaches the
application exactly once, in the order users sent it.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings

from qqproto.qq import BotPhase
from qqproto.testing import ExpireTokens, Fault, Push
from qqproto.testing.strategies import fault_schedules
from tests.test_simulator import World

#: A schedule is a whole bot life: a quarter of the profile's examples keeps it quick.
EXAMPLES = max(10, settings().max_examples // 4)


def play(schedule: list[tuple[float, Fault]]) -> World:
    w = World()
    w.login()
    for delay, fault in schedule:
        w.net.advance(delay)
        w.sim.apply(fault, w.net.now)
    w.net.advance(900)  # time to come back from whatever happened last
    return w


def check_common(w: World, schedule: list[tuple[float, Fault]]) -> tuple[list[str], list[str]]:
    sim = w.sim
    pairs = [(s.msg_id, s.msg_seq) for s in sim.sent if s.msg_id is not None]
    assert len(pairs) == len(set(pairs)), "a (msg_id, msg_seq) repeated"
    per_message = Counter(s.msg_id for s in sim.sent)
    assert all(n == 1 for n in per_message.values()), "one echo per message"
    delivered = [d.d["id"] for d in sim.delivered if isinstance(d.d, dict) and "id" in d.d]
    assert len(delivered) == len(set(delivered)), "the simulator sent a message twice"
    received = [m.id for m in w.messages()]
    assert len(received) == len(set(received)), "the application got a message twice"
    pushed = [d["id"] for _, t, d, _ in sim.scripted if t.endswith("MESSAGE_CREATE")]
    it = iter(pushed)
    assert all(any(r == p for p in it) for r in received), "out of order"
    if w.bot.phase is BotPhase.FAILED:
        # The client's own rule: a second 4004 in a row, with a freshly fetched
        # token, is fatal. Only a schedule that revoked tokens twice gets there.
        assert "4004" in (w.bot.failure_reason or "")
        assert sum(isinstance(f, ExpireTokens) for _, f in schedule) >= 2
    else:
        assert w.bot.phase is BotPhase.RUNNING
        assert w.sim.live
    return pushed, received


@settings(max_examples=EXAMPLES)
@given(fault_schedules(resumable_only=True))
def test_resumable_faults_deliver_every_message_exactly_once(
    schedule: list[tuple[float, Fault]],
) -> None:
    w = play(schedule)
    pushed, received = check_common(w, schedule)
    if w.bot.phase is BotPhase.FAILED:
        return
    assert received == pushed
    assert len(w.sim.identifies) == 1  # one session all along
    assert len(pushed) == sum(isinstance(f, Push) for _, f in schedule)


@settings(max_examples=EXAMPLES)
@given(fault_schedules())
def test_any_non_fatal_schedule_keeps_the_bot_running(schedule: list[tuple[float, Fault]]) -> None:
    w = play(schedule)
    check_common(w, schedule)


@settings(max_examples=EXAMPLES)
@given(fault_schedules(fatal=True, max_size=10))
def test_fatal_codes_stop_the_bot_cleanly(schedule: list[tuple[float, Fault]]) -> None:
    w = play(schedule)
    sent = [(s.msg_id, s.msg_seq) for s in w.sim.sent if s.msg_id is not None]
    assert len(sent) == len(set(sent))
    received = [m.id for m in w.messages()]
    assert len(received) == len(set(received))
    if w.bot.phase is BotPhase.FAILED:
        assert w.net.failure == w.bot.failure_reason
        assert not w.sim.live
    else:
        assert w.bot.phase is BotPhase.RUNNING and w.sim.live
