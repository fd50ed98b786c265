"""What a OneBot bot needs beside the protocol: addressing, long text, a rate limiter."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qqproto.errors import ConfigError
from qqproto.onebot.actions import Action
from qqproto.onebot.addressing import mentions, to_me, triggers, without_mention
from qqproto.onebot.cq import parse
from qqproto.onebot.events import MessageEvent, decode_event
from qqproto.onebot.pacing import Outbox
from qqproto.onebot.segments import Segment
from qqproto.onebot.split import split_text
from qqproto.ratelimit import RateLimiter

SELF = 2000000001


def group(message: str, **fields: Any) -> MessageEvent:
    event = decode_event(
        {
            "post_type": "message",
            "message_type": fields.pop("message_type", "group"),
            "self_id": SELF,
            "user_id": 1,
            "group_id": 2,
            "message_id": 3,
            "message": message,
            **fields,
        }
    )
    assert isinstance(event, MessageEvent)
    return event


# -- addressing -----------------------------------------------------------------------------------


def test_ids_are_compared_as_text() -> None:
    assert mentions([Segment.mention("123")], 123) and mentions([Segment.mention(123)], "123")
    assert not mentions([Segment.mention("123")], None)
    assert not mentions([Segment.mention_all()], 123)


@pytest.mark.parametrize(
    ("message", "mode", "expected"),
    [
        (f"[CQ:at,qq={SELF}] hi", "mention", True),
        ("[CQ:at,qq=all] hi", "mention", True),
        ("[CQ:at,qq=999] hi", "mention", False),
        ("/help", "mention", False),
        ("/help", "command", True),
        ("  /help", "command", True),
        (f"[CQ:at,qq={SELF}] /help", "command", True),
        (f"[CQ:reply,id=5][CQ:at,qq={SELF}] /help", "command", True),
        ("help /me", "command", False),
        ("[CQ:at,qq=all] hi", "command", False),
        ("anything", "always", True),
    ],
)
def test_trigger_modes_in_a_group(message: str, mode: Any, expected: bool) -> None:
    assert triggers(group(message), mode) is expected


def test_a_private_message_always_triggers_and_is_to_me() -> None:
    event = group("hi", message_type="private")
    assert to_me(event) and triggers(event, "mention")


def test_to_me_is_a_mention_of_the_bots_own_id() -> None:
    assert to_me(group(f"[CQ:at,qq={SELF}]")) and not to_me(group("[CQ:at,qq=all]"))
    assert to_me(group("[CQ:at,qq=7]"), self_id=7)  # another account's id, given


def test_a_command_prefix_can_be_anything_or_nothing() -> None:
    assert triggers(group("!ping"), "command", prefix="!")
    assert not triggers(group("ping"), "command", prefix="")


def test_without_mention_leaves_the_rest() -> None:
    segments = parse(f"[CQ:reply,id=9][CQ:at,qq={SELF}] /roll [CQ:at,qq={SELF}]")
    assert without_mention(segments, SELF) == [
        Segment.reply("9"),
        Segment.text(" /roll "),
        Segment.mention(str(SELF)),
    ]


# -- long text -------------------------------------------------------------------------------------


def test_short_text_is_one_piece_and_empty_text_none() -> None:
    assert split_text("hi", 10) == ["hi"] and split_text("", 10) == []


def test_it_prefers_a_line_break_then_a_space() -> None:
    assert split_text("aaa bbb\nccc ddd", 10) == ["aaa bbb\n", "ccc ddd"]
    assert split_text("aaaa bbbb cccc", 10) == ["aaaa bbbb ", "cccc"]
    assert split_text("abcdefghij" * 2, 10) == ["abcdefghij", "abcdefghij"]


@pytest.mark.parametrize(
    "grapheme",
    [
        "e\u0301",  # e and a combining acute
        "👩\u200d💻",  # a ZWJ sequence
        "👍🏽",  # a skin tone
        "🇨🇳",  # a flag
        "❤\ufe0f",  # a variation selector
        "\r\n",
    ],
)
def test_a_grapheme_is_never_cut(grapheme: str) -> None:
    text = "x" * 9 + grapheme + "y"
    pieces = split_text(text, 10)
    assert "".join(pieces) == text
    assert any(grapheme in piece for piece in pieces)


def test_two_flags_in_a_row_stay_two_flags() -> None:
    assert split_text("🇨🇳🇯🇵", 2) == ["🇨🇳", "🇯🇵"]


def test_a_cq_code_or_escape_is_never_cut_and_a_long_one_is_a_piece_alone() -> None:
    code = "[CQ:image,file=https://example.com/a-long-name.jpg]"
    assert split_text("ab" + code + "cd", 10, cq=True) == ["ab", code, "cd"]
    assert split_text("aaaaaaaa&amp;b", 10, cq=True) == ["aaaaaaaa", "&amp;b"]
    assert split_text("aaaaaaaa&amp;b", 10) == ["aaaaaaaa&a", "mp;b"]  # plain text: no units


def test_a_bad_limit_is_refused() -> None:
    with pytest.raises(ConfigError, match="limit"):
        split_text("x", 0)


@given(st.text(max_size=200), st.integers(1, 30), st.booleans())
def test_pieces_join_back_and_keep_to_the_limit(text: str, limit: int, cq: bool) -> None:
    pieces = split_text(text, limit, cq=cq)
    assert "".join(pieces) == text
    assert all(piece for piece in pieces)
    longest_unit = max((len(u) for u in _all_units(text, cq)), default=0)
    assert all(len(piece) <= max(limit, longest_unit) for piece in pieces)


def _all_units(text: str, cq: bool) -> list[str]:
    from qqproto.onebot.split import _units

    return list(_units(text, cq))


# -- the rate limiter ------------------------------------------------------------------------------


def test_a_burst_goes_at_once_then_the_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.next_free(0.0) == pytest.approx(0.5)
    assert not limiter.take(0.4) and limiter.take(0.5)
    assert limiter.next_free(0.5) == pytest.approx(1.0)


def test_it_refills_to_the_burst_and_no_more() -> None:
    limiter = RateLimiter(rate=1.0, burst=2)
    assert limiter.take(0.0) and limiter.take(0.0)
    assert limiter.next_free(100.0) == 100.0
    assert limiter.take(100.0) and limiter.take(100.0) and not limiter.take(100.0)


def test_a_clock_that_goes_back_gives_nothing_away() -> None:
    limiter = RateLimiter(rate=1.0, burst=1)
    assert limiter.take(10.0) and not limiter.take(5.0) and not limiter.take(10.5)
    assert limiter.take(11.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (1, 0), (1, 1.5)])
def test_bad_settings_are_refused(rate: float, burst: Any) -> None:
    with pytest.raises(ConfigError):
        RateLimiter(rate, burst)


@given(st.lists(st.floats(0, 5, allow_nan=False), max_size=40), st.integers(1, 4))
def test_never_more_than_the_burst_plus_the_rate_allows(gaps: list[float], burst: int) -> None:
    limiter, now, taken = RateLimiter(rate=2.0, burst=burst), 0.0, 0
    for gap in gaps:
        now += gap
        taken += limiter.take(now)
        assert taken <= burst + 2.0 * now + 1e-9
        assert limiter.next_free(now) >= now


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1.0, 3.0]),
    burst=st.integers(1, 4),
    gaps=st.lists(st.floats(0.0, 2.0), min_size=1, max_size=30),
)
def test_paced_sends_go_in_order_and_never_past_the_limit(
    rate: float, burst: int, gaps: list[float]
) -> None:
    outbox: Outbox[int] = Outbox(RateLimiter(rate, burst))
    send = Action("send_msg")
    never = float("inf")  # no give-up time: only the limiter decides here
    now, went = 0.0, []  # (when, which)
    for n, gap in enumerate(gaps):
        now += gap
        while (free := outbox.next_deadline(open_=True)) is not None and free <= now:
            went += [(free, k) for k in outbox.ready(free)]
        if outbox.add(n, send, never, now, open_=True):
            went.append((now, n))
    while (free := outbox.next_deadline(open_=True)) is not None and free < never:
        went += [(free, k) for k in outbox.ready(free)]
    assert [k for _, k in went] == list(range(len(gaps)))  # all of them, in order
    times = [t for t, _ in went]
    for i, start in enumerate(times):  # any window holds at most burst + rate x its length
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - start) + 1e-9
    assert outbox.add(-1, Action("get_status"), never, now, open_=True)  # a read never waits


@given(
    rate=st.floats(0.01, 1000.0),
    burst=st.integers(1, 5),
    start=st.floats(0.0, 1e9),
    steps=st.lists(st.floats(0.0, 10.0), max_size=10),
)
def test_the_limiter_lets_a_send_go_at_the_time_it_names(
    rate: float, burst: int, start: float, steps: list[float]
) -> None:
    """Whatever floating point does, next_free names a time take() accepts."""
    limiter, now = RateLimiter(rate, burst), start
    for step in steps:
        now += step
        limiter.take(now)
    for _ in range(burst + 2):
        free = limiter.next_free(now)
        assert free >= now and limiter.take(free)
        now = free


@pytest.mark.parametrize("start", [0.0, 1e9, 1.8e12])  # 1.8e12: milliseconds since 1970
def test_the_limiter_allows_its_burst_and_no_more_at_any_clock_value(start: float) -> None:
    limiter = RateLimiter(rate=10.0, burst=1)
    assert [limiter.take(start) for _ in range(3)] == [True, False, False]
    assert limiter.take(limiter.next_free(start))
