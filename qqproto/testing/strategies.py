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

Which schedules a bot must survive:

- ``fault_schedules(resumable_only=True)``: the session survives every one
  of them, so a correct bot keeps running, never identifies again, and gets
  every message exactly once. :func:`resumable_faults` holds no
  :class:`ExpireTokens`; such a schedule carries at most one, which a bot
  survives by fetching a fresh token (one close 4004, then a Resume).
- ``fault_schedules()`` adds faults that end the session (op 9 false, 4006,
  4007, 49xx, garbage frames) and any number of token revocations. Two
  revocations close together can stop a correct bot: a Resume or Identify
  refused with 4004 twice in a row, the second time with a token fetched
  after the first refusal, is fatal by design (:data:`REVOCATION_FAILURE`
  is in its ``failure_reason``). Nothing else may stop it.
- ``fault_schedules(fatal=True)`` adds the close codes that must stop a bot.
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
    "REVOCATION_FAILURE",
    "SESSION_ENDING_CLOSE_CODES",
    "close_codes",
    "disruptive_faults",
    "fault_schedules",
    "faults",
    "message_texts",
    "pushes",
    "resumable_faults",
]

#: Close codes after which a client reconnects and resumes (spec 4.1).
RESUMABLE_CLOSE_CODES = (1000, 1001, 1011, 4000, 4008, 4009)
#: Close codes that end the session: the client identifies again.
SESSION_ENDING_CLOSE_CODES = (4006, 4007, 4900, 4902, 4913)
#: Close codes after which a client must stop for good.
FATAL_CLOSE_CODES = (4001, 4002, 4010, 4011, 4012, 4013, 4014, 4914, 4915)
#: The end of a bot's ``failure_reason`` when a second close 4004 in a row (the
#: token fetched after the first was revoked too) stopped it: the one way
#: ``fault_schedules()`` without ``fatal`` may stop a correct bot.
REVOCATION_FAILURE = "(again, with a fresh token)"


def close_codes(*, fatal: bool = False) -> st.SearchStrategy[int]:
    """Close codes from the spec's table; with ``fatal=True`` also the fatal ones
    and any other code from 3000 to 4999 (which a bot may treat as fatal)."""
    known: tuple[int, ...] = RESUMABLE_CLOSE_CODES + SESSION_ENDING_CLOSE_CODES
    if fatal:
        known += FATAL_CLOSE_CODES
    codes = st.sampled_from(known)
    if not fatal:
        return codes
    return st.one_of(codes, st.integers(3000, 4999))


#: Code point ranges a Chinese platform's users type a lot, drawn on purpose so
#: that short texts meet them often: CJK punctuation, kana, CJK ideographs
#: (and extension A), full-width forms, and emoji (all outside the BMP).
_CHINESE_RANGES = (
    (0x3000, 0x303F),
    (0x3040, 0x30FF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xFF00, 0xFFEF),
    (0x1F300, 0x1FAFF),
    (0x20000, 0x2A6DF),
)


def message_texts(*, max_size: int = 20) -> st.SearchStrategy[str]:
    """Text a user may send: any code point from U+0020 up (astral ones
    included), no surrogates, with CJK, full-width punctuation and emoji
    drawn often; never only whitespace."""
    # (Not one_of(characters(...), ...): Hypothesis merges those into one set of
    # code points, weighted by size, and the small ranges all but vanish.)
    chinese = st.sampled_from(_CHINESE_RANGES).flatmap(
        lambda r: st.characters(min_codepoint=r[0], max_codepoint=r[1])
    )
    chars = st.one_of(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), chinese)
    return st.text(chars, min_size=1, max_size=max_size).filter(lambda text: text.strip() != "")


def pushes() -> st.SearchStrategy[Push]:
    """A user message in any scene (its text from :func:`message_texts`)."""
    return st.builds(Push, st.sampled_from(["group", "c2c", "guild", "dm"]), message_texts())


def resumable_faults() -> st.SearchStrategy[Fault]:
    """Faults after which the session survives, however many and in whatever
    order: every message must arrive, once. (No :class:`ExpireTokens`: see the
    module docstring; ``fault_schedules(resumable_only=True)`` adds at most one.)"""
    return st.one_of(
        st.just(Drop()),
        st.just(Reconnect()),
        st.just(InvalidSession(resumable=True)),
        st.builds(CloseWith, st.sampled_from(RESUMABLE_CLOSE_CODES)),
        st.builds(LoseAcks, st.integers(1, 3)),
        st.just(AskHeartbeat()),
    )


def disruptive_faults(*, fatal: bool = False) -> st.SearchStrategy[Fault]:
    """Every fault that is not a message: session-ending ones and token
    revocations included (fatal close codes only when asked)."""
    return st.one_of(
        resumable_faults(),
        st.just(ExpireTokens()),
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
    time after the previous entry, then the fault. With ``resumable_only``, at
    most one entry is :class:`ExpireTokens` (see the module docstring)."""
    delays = st.one_of(
        st.just(0.0),
        st.floats(0.0, max_delay, allow_nan=False, allow_infinity=False),
    )
    entry = st.tuples(delays, faults(fatal=fatal, resumable_only=resumable_only))
    schedules = st.lists(entry, max_size=max_size)
    if not resumable_only:
        return schedules
    revocation = st.tuples(schedules, st.booleans(), st.integers(0, max_size), delays)
    return revocation.map(_revoke_once)


def _revoke_once(drawn: tuple[FaultSchedule, bool, int, float]) -> FaultSchedule:
    """The schedule, maybe with one entry replaced by a token revocation."""
    schedule, revoke, index, delay = drawn
    if schedule and revoke:
        schedule = list(schedule)
        schedule[index % len(schedule)] = (delay, ExpireTokens())
    return schedule
