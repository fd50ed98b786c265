"""Hypothesis strategies for simulator faults and fault schedules.

Import this module only where Hypothesis is installed (it is a test
dependency; ``qqproto.testing`` itself does not import it)::

    from hypothesis import given
    from qqproto.testing.strategies import fault_schedules

    @given(fault_schedules())
    def test_my_bot_survives(schedule): ...

A schedule is a list of ``(delay, fault)``: wait ``delay`` seconds of fake
time after the previous entry, then ``sim.apply(fault, now)``. The fault
values are :mod:`qqproto.testing.faults`.
"""

from __future__ import annotations

from hypothesis import strategies as st

from .faults import (
    AskHeartbeat,
    CloseWith,
    Drop,
    ExpireTokens,
    Fault,
    FaultSchedule,
    GarbageFrame,
    InvalidSession,
    LoseAcks,
    Push,
    Reconnect,
)

__all__ = [
    "FATAL_CLOSE_CODES",
    "RESUMABLE_CLOSE_CODES",
    "SESSION_ENDING_CLOSE_CODES",
    "close_codes",
    "disruptive_faults",
    "fault_schedules",
    "faults",
    "pushes",
    "resumable_faults",
]

#: Close codes after which a client reconnects and resumes (spec 4.1).
RESUMABLE_CLOSE_CODES = (1000, 1001, 1011, 4000, 4008, 4009)
#: Close codes that end the session: the client identifies again.
SESSION_ENDING_CLOSE_CODES = (4006, 4007, 4900, 4902, 4913)
#: Close codes after which a client must stop for good.
FATAL_CLOSE_CODES = (4001, 4002, 4010, 4011, 4012, 4013, 4014, 4914, 4915)


def close_codes(*, fatal: bool = False) -> st.SearchStrategy[int]:
    """Close codes from the spec's table (fatal ones only when asked), plus any 4xxx."""
    known: tuple[int, ...] = RESUMABLE_CLOSE_CODES + SESSION_ENDING_CLOSE_CODES
    if fatal:
        known += FATAL_CLOSE_CODES
    codes = st.sampled_from(known)
    if not fatal:
        return codes
    return st.one_of(codes, st.integers(3000, 4999))


def pushes() -> st.SearchStrategy[Push]:
    """A user message in any scene."""
    content = st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x2FFF, exclude_categories=["Cs"]),
        min_size=1,
        max_size=20,
    ).filter(lambda text: text.strip() != "")
    return st.builds(Push, st.sampled_from(["group", "c2c", "guild", "dm"]), content)


def resumable_faults() -> st.SearchStrategy[Fault]:
    """Faults after which the session survives: every message must arrive, once."""
    return st.one_of(
        st.just(Drop()),
        st.just(Reconnect()),
        st.just(InvalidSession(resumable=True)),
        st.builds(CloseWith, st.sampled_from(RESUMABLE_CLOSE_CODES)),
        st.builds(LoseAcks, st.integers(1, 3)),
        st.just(ExpireTokens()),
        st.just(AskHeartbeat()),
    )


def disruptive_faults(*, fatal: bool = False) -> st.SearchStrategy[Fault]:
    """Every fault that is not a message, session-ending ones included
    (fatal close codes only when asked)."""
    return st.one_of(
        resumable_faults(),
        st.just(InvalidSession(resumable=False)),
        st.builds(CloseWith, close_codes(fatal=fatal)),
        st.builds(GarbageFrame, st.sampled_from(["not JSON", "[]", '{"op":"x"}', '{"op":99}'])),
    )


def faults(*, fatal: bool = False, resumable_only: bool = False) -> st.SearchStrategy[Fault]:
    """A message or a fault, messages weighted so that most schedules carry several."""
    trouble = resumable_faults() if resumable_only else disruptive_faults(fatal=fatal)
    return st.one_of(pushes(), pushes(), trouble)


def fault_schedules(
    *,
    max_size: int = 20,
    max_delay: float = 120.0,
    fatal: bool = False,
    resumable_only: bool = False,
) -> st.SearchStrategy[FaultSchedule]:
    """Lists of ``(delay, fault)``: ``delay`` seconds (0 to ``max_delay``) of fake
    time after the previous entry, then the fault."""
    delays = st.one_of(
        st.just(0.0),
        st.floats(0.0, max_delay, allow_nan=False, allow_infinity=False),
    )
    entry = st.tuples(delays, faults(fatal=fatal, resumable_only=resumable_only))
    return st.lists(entry, max_size=max_size)
