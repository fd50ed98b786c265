"""Random fault schedules against the real BotProtocol (Hypothesis, fake clock only).

Whatever the schedule, the bot never crashes and never repeats a
``(msg_id, msg_seq)``; the simulator never sends a message twice; every
message reaches the application or is lost with its session (``sim.lost``);
and when every fault leaves the session resumable, the bot keeps running and
every message reaches the application exactly once, in the order users sent it.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import find, given, settings
from hypothesis import strategies as st

from qqproto.qq import BotPhase
from qqproto.testing import Drop, ExpireTokens, Fault, Push
from qqproto.testing.strategies import (
    REVOCATION_FAILURE,
    fault_schedules,
    message_texts,
    pushes,
)
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
    lost = [x.d["id"] for x in sim.lost if isinstance(x.d, dict)]
    assert not set(lost) & set(received), "a message both lost and received"
    if w.bot.phase is BotPhase.FAILED:
        # The client's own rule: a second 4004 in a row, with a freshly fetched
        # token, is fatal. Only a schedule that revoked tokens twice gets there.
        assert (w.bot.failure_reason or "").endswith(REVOCATION_FAILURE), w.bot.failure_reason
        assert sum(isinstance(f, ExpireTokens) for _, f in schedule) >= 2
    else:
        assert w.bot.phase is BotPhase.RUNNING
        assert w.sim.live
        assert sorted(received + lost) == sorted(pushed), "a message neither arrived nor lost"
    return pushed, received


@settings(max_examples=EXAMPLES)
@given(fault_schedules(resumable_only=True))
def test_resumable_faults_deliver_every_message_exactly_once(
    schedule: list[tuple[float, Fault]],
) -> None:
    w = play(schedule)
    pushed, received = check_common(w, schedule)
    assert w.bot.failure_reason is None
    assert received == pushed and w.sim.lost == []
    assert len(w.sim.identifies) == 1  # one session all along
    assert len(pushed) == sum(isinstance(f, Push) for _, f in schedule)


@settings(max_examples=EXAMPLES)
@given(fault_schedules(resumable_only=True))
def test_resumable_schedules_revoke_tokens_at_most_once(
    schedule: list[tuple[float, Fault]],
) -> None:
    assert sum(isinstance(f, ExpireTokens) for _, f in schedule) <= 1


def test_resumable_schedules_do_revoke_tokens_sometimes() -> None:
    find(
        fault_schedules(resumable_only=True),
        lambda schedule: any(isinstance(f, ExpireTokens) for _, f in schedule),
    )


#: Token revocations and drops close together: the schedules most likely to
#: make a bot give up (two 4004 in a row), to check it does so only that way.
revocation_storms = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.5, 1.0, 5.0, 60.0]),
        st.one_of(st.just(ExpireTokens()), st.just(Drop()), pushes()),
    ),
    max_size=12,
)


@settings(max_examples=EXAMPLES)
@given(revocation_storms)
def test_token_revocations_stop_the_bot_only_by_the_documented_rule(
    schedule: list[tuple[float, Fault]],
) -> None:
    w = play(schedule)
    check_common(w, schedule)  # FAILED only with REVOCATION_FAILURE, after two revocations
    if w.bot.failure_reason is None:
        assert w.sim.lost == []  # nothing here ends a session


def test_two_revocations_around_a_reconnect_stop_the_bot_for_the_documented_reason() -> None:
    schedule: list[tuple[float, Fault]] = [
        (0.0, ExpireTokens()),
        (0.0, Drop()),
        (0.0, ExpireTokens()),
    ]
    w = play(schedule)
    assert w.bot.phase is BotPhase.FAILED
    assert (w.bot.failure_reason or "").endswith(REVOCATION_FAILURE)
    assert [r.outcome for r in w.sim.resumes] == ["4004 authentication failed"] * 2


@given(message_texts())
def test_message_texts_have_no_surrogates_and_are_not_blank(text: str) -> None:
    assert text.strip() and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    text.encode("utf-8")  # sendable as JSON over the wire


def test_message_texts_reach_cjk_full_width_and_astral_characters() -> None:
    ranges = {
        "CJK ideographs": (0x4E00, 0x9FFF),
        "CJK punctuation": (0x3000, 0x303F),
        "full-width forms": (0xFF01, 0xFF5E),
        "emoji": (0x1F300, 0x1FAFF),
        "astral": (0x10000, 0x10FFFF),
    }
    for lo, hi in ranges.values():

        def meets(text: str, lo: int = lo, hi: int = hi) -> bool:
            return any(lo <= ord(c) <= hi for c in text)

        find(message_texts(), meets)


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
