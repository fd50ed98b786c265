"""OneBot events, both versions, in one model: the shapes of the reference's
sections 3, 7 and 10, and the quirks real implementations show."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qqproto.errors import RemoteProtocolError
from qqproto.onebot.events import (
    Event,
    MessageEvent,
    MetaEvent,
    NoticeEvent,
    RequestEvent,
    decode_event,
    event_version,
)
from qqproto.onebot.segments import Segment

SELF = 2_000_000_001


def v11_group(**fields: Any) -> dict[str, Any]:
    """A NapCat group message, array format, with NapCat's extra fields."""
    event = {
        "time": 1_765_000_000,
        "self_id": SELF,
        "post_type": "message",
        "message_type": "group",
        "sub_type": "normal",
        "message_id": 1_234_567,
        "message_seq": 1_234_567,
        "real_id": 1_234_567,
        "real_seq": "8899",
        "user_id": 10001,
        "group_id": 20002,
        "message": [
            {"type": "at", "data": {"qq": str(SELF), "name": "bot"}},
            {"type": "text", "data": {"text": " hello"}},
        ],
        "message_format": "array",
        "raw_message": f"[CQ:at,qq={SELF},name=bot] hello",
        "font": 14,
        "sender": {"user_id": 10001, "nickname": "Alice", "card": "", "role": "member"},
        "group_name": "test group",
    }
    return {**event, **fields}


def test_a_napcat_group_message() -> None:
    event = decode_event(v11_group())
    assert isinstance(event, MessageEvent)
    assert (event.version, event.kind, event.sub_type) == (11, "message.group", "normal")
    assert (event.message_id, event.user_id, event.group_id, event.self_id) == (
        1_234_567,
        10001,
        20002,
        SELF,
    )
    assert event.segments == (
        Segment("mention", {"user_id": str(SELF), "name": "bot"}),
        Segment.text(" hello"),
    )
    assert event.text == f"@{SELF} hello"
    assert event.time == 1_765_000_000.0 and event.sender["nickname"] == "Alice"
    assert event.raw["real_seq"] == "8899"  # the extra ids stay, untouched
    assert not event.private and event.problem is None


def test_a_string_message_is_read_as_cq_codes() -> None:
    event = decode_event(v11_group(message="hi [CQ:face,id=178] a&#44;b", message_format="string"))
    assert isinstance(event, MessageEvent)
    assert event.segments == (
        Segment.text("hi "),
        Segment("face", {"id": "178"}),
        Segment.text(" a,b"),
    )


def test_an_array_with_a_bad_element_keeps_the_good_ones_and_says_so() -> None:
    good = {"type": "text", "data": {"text": "kept"}}
    event = decode_event(v11_group(message=[good, 7, {"type": 1}], raw_message="lossy"))
    assert isinstance(event, MessageEvent)
    assert event.segments == (Segment.text("kept"),)
    assert event.problem is not None and "7" in event.problem  # the first bad one, named


def test_a_message_whose_array_is_broken_falls_back_to_raw_message_and_says_so() -> None:
    event = decode_event(v11_group(message=[{"data": {}}], raw_message="from raw"))
    assert isinstance(event, MessageEvent)
    assert event.segments == (Segment.text("from raw"),)
    assert event.problem is not None and "bad segment" in event.problem


@pytest.mark.parametrize("message_id", [-2_147_483_648, 0, "ABC-1", 2**40])
def test_message_ids_are_opaque_whatever_their_form(message_id: int | str) -> None:
    """LLOneBot and Lagrange send negative ids; v12 strings; none is computed with."""
    event = decode_event(v11_group(message_id=message_id))
    assert isinstance(event, MessageEvent) and event.message_id == message_id


def test_a_private_message_and_its_sub_types() -> None:
    event = decode_event(
        {
            "post_type": "message",
            "message_type": "private",
            "sub_type": "friend",
            "message_id": 5,
            "user_id": 10001,
            "message": [],
            "self_id": SELF,
            "time": 1,
        }
    )
    assert isinstance(event, MessageEvent)
    assert event.private and event.group_id is None and event.segments == ()


def test_message_sent_is_a_message_event_of_its_own_type() -> None:
    event = decode_event(v11_group(post_type="message_sent", message_sent_type="self"))
    assert isinstance(event, MessageEvent) and event.kind == "message_sent.group"


def test_a_time_in_milliseconds_is_taken_as_such() -> None:
    event = decode_event(v11_group(time=1_765_000_000_123))  # NapCat's fallback
    assert event.time == pytest.approx(1_765_000_000.123)


@pytest.mark.parametrize(
    "missing",
    ["time", "self_id", "sub_type", "message_id", "user_id", "sender", "message", "raw_message"],
)
def test_a_missing_field_never_costs_the_event(missing: str) -> None:
    fields = v11_group()
    del fields[missing]
    event = decode_event(fields)
    assert isinstance(event, MessageEvent) and event.kind == "message.group"
    assert (event.message_id, event.user_id, event.group_id) == (
        None if missing == "message_id" else 1_234_567,
        None if missing == "user_id" else 10001,
        20002,
    )
    if missing not in ("message", "raw_message"):
        assert event.text == f"@{SELF} hello"


@pytest.mark.parametrize("value", [None, True, [], {}, "", 1.5, 10**400])
def test_a_field_of_another_type_is_none_not_a_crash(value: object) -> None:
    event = decode_event(v11_group(message_id=value, user_id=value, time=value, self_id=value))
    assert isinstance(event, MessageEvent)
    assert event.message_id is None and event.user_id is None and event.self_id is None
    assert event.time in (None, 1.5)


def test_notices_keep_their_ids_and_the_rest_in_raw() -> None:
    recall = decode_event(
        {
            "post_type": "notice",
            "notice_type": "group_recall",
            "group_id": 20002,
            "user_id": 10001,
            "operator_id": 10001,
            "message_id": -77,
            "time": 1,
            "self_id": SELF,
        }
    )
    assert isinstance(recall, NoticeEvent) and recall.kind == "notice.group_recall"
    assert (recall.group_id, recall.message_id, recall.sub_type) == (20002, -77, "")
    assert recall.raw["operator_id"] == 10001


def test_a_private_poke_has_no_group_and_bot_offline_is_no_message() -> None:
    poke = decode_event(
        {
            "post_type": "notice",
            "notice_type": "notify",
            "sub_type": "poke",
            "user_id": 1,
            "target_id": SELF,
            "sender_id": 1,
        }
    )
    assert isinstance(poke, NoticeEvent) and poke.group_id is None
    assert (poke.kind, poke.sub_type, poke.user_id) == ("notice.notify", "poke", 1)
    offline = decode_event(
        {"post_type": "notice", "notice_type": "bot_offline", "message": "kicked", "tag": "x"}
    )
    assert isinstance(offline, NoticeEvent)  # its "message" is a string, not a message


def test_requests_carry_flag_and_comment_even_when_null() -> None:
    event = decode_event(
        {
            "post_type": "request",
            "request_type": "group",
            "sub_type": "invite",
            "group_id": 20002,
            "user_id": 10001,
            "comment": None,  # Lagrange
            "flag": "f-1",
        }
    )
    assert isinstance(event, RequestEvent)
    assert (event.kind, event.sub_type, event.flag, event.comment) == (
        "request.group",
        "invite",
        "f-1",
        None,
    )


def test_meta_events_lifecycle_and_heartbeat() -> None:
    connect = decode_event(
        {
            "post_type": "meta_event",
            "meta_event_type": "lifecycle",
            "sub_type": "connect",
            "self_id": SELF,
            "time": 1,
            "_post_method": 2,
        }
    )
    assert isinstance(connect, MetaEvent) and connect.kind == "meta.lifecycle"
    assert (connect.sub_type, connect.self_id, connect.time) == ("connect", SELF, 1.0)
    beat = decode_event(
        {
            "post_type": "meta_event",
            "meta_event_type": "heartbeat",
            "status": {"online": None, "good": True},  # LLOneBot's online may be null
            "interval": 30000,
        }
    )
    assert isinstance(beat, MetaEvent)
    assert (beat.interval, beat.online, beat.status) == (30.0, None, {"online": None, "good": True})


def test_an_unknown_post_type_is_an_event_all_the_same() -> None:
    event = decode_event({"post_type": "x_custom", "time": 1})
    assert type(event) is Event  # no notice, no message: an event, nothing more
    assert event.kind == "x_custom" and event.raw == {"post_type": "x_custom", "time": 1}
    v12 = decode_event({"type": "weird", "detail_type": "thing"})
    assert type(v12) is Event and v12.kind == "weird.thing"


@pytest.mark.parametrize("time", [1e400, float("nan"), float("-inf")])
def test_a_time_that_is_no_finite_number_is_none(time: float) -> None:
    assert decode_event(v11_group(time=time)).time is None


@pytest.mark.parametrize(
    ("interval", "seconds"), [(5000, 5.0), (0, None), (-5, None), (1e400, None)]
)
def test_only_a_positive_heartbeat_interval_is_one(interval: float, seconds: float | None) -> None:
    beat = decode_event(
        {"post_type": "meta_event", "meta_event_type": "heartbeat", "interval": interval}
    )
    assert isinstance(beat, MetaEvent) and beat.interval == seconds


# -- v12 ------------------------------------------------------------------------------------------


def v12_private(**fields: Any) -> dict[str, Any]:
    event = {
        "id": "b6e65187-5ac0-489c-b431-53078e9d2bbb",
        "time": 1632847927.599013,
        "type": "message",
        "detail_type": "private",
        "sub_type": "",
        "self": {"platform": "qq", "user_id": "123234"},
        "message_id": "6283",
        "message": [
            {"type": "text", "data": {"text": "hi "}},
            {"type": "mention", "data": {"user_id": "1"}},
        ],
        "alt_message": "hi @1",
        "user_id": "123456788",
        "qq.nickname": "x",
    }
    return {**event, **fields}


def test_a_v12_private_message() -> None:
    event = decode_event(v12_private())
    assert isinstance(event, MessageEvent)
    assert (event.version, event.kind, event.self_id, event.message_id) == (
        12,
        "message.private",
        "123234",
        "6283",
    )
    assert event.segments == (Segment.text("hi "), Segment.mention("1"))
    assert event.time == pytest.approx(1632847927.599013)
    assert event.raw["qq.nickname"] == "x"


def test_a_v12_legacy_draft_has_self_id_at_the_top() -> None:
    fields = v12_private(self_id="99")
    del fields["self"]
    assert decode_event(fields).self_id == "99"


def test_a_v12_message_whose_segments_are_broken_keeps_its_alt_message() -> None:
    event = decode_event(v12_private(message="not an array"))
    assert isinstance(event, MessageEvent)
    assert event.segments == (Segment.text("hi @1"),) and event.problem is not None


#: The first event on every v12 WebSocket connection (spec 7.2).
V12_CONNECT: dict[str, Any] = {
    "id": "1",
    "time": 1.0,
    "type": "meta",
    "detail_type": "connect",
    "sub_type": "",
    "version": {"impl": "walle-q", "version": "0.1", "onebot_version": "12"},
}


def test_v12_meta_connect_and_heartbeat() -> None:
    connect = decode_event(V12_CONNECT)
    assert isinstance(connect, MetaEvent) and connect.kind == "meta.connect"
    beat = decode_event(
        {"id": "2", "time": 2.0, "type": "meta", "detail_type": "heartbeat", "interval": 5000}
    )
    assert isinstance(beat, MetaEvent) and beat.interval == 5.0


def test_v12_notices_are_notices() -> None:
    event = decode_event(
        {
            "type": "notice",
            "detail_type": "group_message_delete",
            "sub_type": "recall",
            "group_id": "g",
            "message_id": "m",
            "user_id": "u",
            "operator_id": "u",
            "self": {"platform": "qq", "user_id": "s"},
        }
    )
    assert isinstance(event, NoticeEvent)
    assert (event.group_id, event.message_id, event.sub_type) == ("g", "m", "recall")


# -- telling them apart ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "version"),
    [
        ({"post_type": "message"}, 11),
        ({"type": "message", "detail_type": "private"}, 12),
        ({"status": "ok", "retcode": 0, "echo": "1"}, None),  # an answer, not an event
        ({"type": "text", "data": {}}, None),  # a segment, not an event
        ({}, None),
    ],
)
def test_event_version_follows_the_classifier(obj: dict[str, Any], version: int | None) -> None:
    assert event_version(obj) == version


@pytest.mark.parametrize("obj", [[], "x", 1, None, {"status": "ok"}, {"message": []}])
def test_what_is_no_event_is_a_typed_error(obj: object) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_event(obj)


def test_the_repr_leaves_raw_out() -> None:
    text = repr(decode_event(v11_group()))
    assert text.startswith("MessageEvent(version=11") and "real_seq" not in text


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_KEYS = st.sampled_from(
    [
        "post_type",
        "message_type",
        "notice_type",
        "request_type",
        "meta_event_type",
        "type",
        "detail_type",
        "sub_type",
        "time",
        "self_id",
        "self",
        "message_id",
        "user_id",
        "group_id",
        "message",
        "raw_message",
        "alt_message",
        "sender",
        "status",
        "interval",
        "flag",
        "comment",
    ]
)


@given(st.dictionaries(_KEYS, _JSON, max_size=10))
def test_any_object_is_an_event_or_a_typed_error(obj: dict[str, Any]) -> None:
    try:
        event = decode_event(obj)
    except RemoteProtocolError:
        assert event_version(obj) is None
        return
    assert event.raw is obj and event.version == event_version(obj)
    repr(event)
    if isinstance(event, MessageEvent):
        assert isinstance(event.text, str)
