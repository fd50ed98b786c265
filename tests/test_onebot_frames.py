"""event_from_json: the fast path gives what the general path gives, field for field."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qqproto._json import loads
from qqproto.errors import RemoteProtocolError
from qqproto.onebot.events import MessageEvent, decode_event
from qqproto.onebot.frames import LazyJson, event_from_json
from qqproto.onebot.segments import Segment

from .test_onebot_events import v11_group, v12_private


def same(text: bytes) -> MessageEvent | Any:
    """The fast path's event, checked against the general path's."""
    fast = event_from_json(text)
    general = decode_event(loads(text))
    assert type(fast) is type(general) and fast == general
    assert dict(fast.raw) == general.raw  # raw: the whole object, read when asked
    return fast


def test_a_napcat_group_message_takes_the_fast_path_and_reads_raw_lazily() -> None:
    event = same(msgspec.json.encode(v11_group()))
    assert isinstance(event, MessageEvent) and isinstance(event.raw, LazyJson)
    assert event.segments[0] == Segment("mention", {"user_id": "2000000001", "name": "bot"})
    assert event.raw["real_seq"] == "8899" and "group_name" in event.raw and len(event.raw) > 10


@pytest.mark.parametrize(
    "fields",
    [
        {"message": "hi [CQ:face,id=1]"},  # string format: CQ, still fast
        {"message": [{"type": "text", "data": None}]},  # data null: the general path
        {"message_id": ""},  # an empty id is no id
        {"message_id": True, "user_id": 1.5, "time": "x", "sub_type": 3},  # other types
        {"message_id": 2**64, "self_id": -(2**63) - 1},  # past 64 bits
        # The fast path takes int64 ids as they come (no opaque_id); uint64
        # past it is the general path's, and kept all the same.
        {"message_id": 2**63 - 1, "user_id": -(2**63), "group_id": 2**63, "self_id": 2**64 - 1},
        {"time": 1_765_000_000_123},  # milliseconds
        {"post_type": "message_sent"},
        {"sender": "not an object"},
        {
            "message": [
                {"type": "at", "data": {"qq": "all"}},
                {"type": "reply", "data": {"id": "-1"}},
            ]
        },
        {  # renamed in place: every rule of renamed_from_v11, a taken new name kept
            "message": [
                {"type": "at", "data": {"qq": "all", "user_id": "1"}},
                {"type": "at", "data": {"qq": "2", "user_id": "1"}},
                {"type": "record", "data": {"file": "a.amr"}},
                {"type": "video", "data": {"file": "a.mp4", "file_id": "x"}},
                {"type": "location", "data": {"lat": "1.5", "lon": 2, "latitude": 3}},
                {"type": "image", "data": {}},
            ]
        },
    ],
)
def test_every_variant_reads_as_the_general_path_reads_it(fields: dict[str, Any]) -> None:
    same(msgspec.json.encode(v11_group(**fields)))


def test_other_events_take_the_general_path() -> None:
    same(msgspec.json.encode(v12_private()))
    same(b'{"post_type":"meta_event","meta_event_type":"heartbeat","interval":5000}')
    same(b'{"post_type":"notice","notice_type":"group_recall","message_id":5}')


def test_a_huge_integer_in_the_text_is_read_as_its_digits() -> None:
    """Past 4300 digits no JSON reader makes an int: the digits are kept, as a
    string id (opaque), and the event still comes."""
    digits = "9" * 5000
    text = f'{{"post_type":"message","message_type":"private","message_id":{digits}}}'
    assert same(text.encode()).message_id == digits


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"{",
        b"[]",
        b'"x"',
        b"1",
        b'{"status":"ok"}',
        b"\xff",
        b'{"post_type":"notice","d":' + b"[" * 5000 + b"]" * 5000 + b"}",  # past any depth
    ],
)
def test_text_that_is_no_event_is_a_typed_error(text: bytes) -> None:
    with pytest.raises(RemoteProtocolError):
        event_from_json(text)


def test_a_lone_surrogate_is_read_the_general_way_in_a_str_or_bytes_frame() -> None:
    event = event_from_json('{"post_type":"notice","notice_type":"\ud800"}')
    assert event.detail_type == "\ud800"
    encoded = event_from_json(b'{"post_type":"message","message":"\xed\xa0\x80"}')  # surrogatepass
    assert isinstance(encoded, MessageEvent) and encoded.text == "\ud800"


#: Every key a v11 type renames and its new name (taken already, it stops the
#: renaming), and two others.
_RENAMED = ["qq", "user_id", "file", "file_id", "id", "message_id", "lat", "lon", "latitude"]
_KEYS = [*_RENAMED, "text", "name"]
_SEGMENTS = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["text", "at", "image", "reply", "face", "location", "record", "video", "x"]
            )
        },
        optional={
            "data": st.none()
            | st.dictionaries(
                st.sampled_from(_KEYS),
                st.sampled_from(["all", "1", "", "a&amp;b"]) | st.integers(-3, 3),
                max_size=3,
            )
        },
    ),
    max_size=4,
)
_VALUES = (
    st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.text(max_size=4) | st.floats()
)


@given(
    st.fixed_dictionaries(
        {"post_type": st.sampled_from(["message", "message_sent", "notice", "x"])},
        optional={
            "message_type": st.sampled_from(["group", "private"]) | _VALUES,
            "sub_type": _VALUES,
            "time": _VALUES,
            "self_id": _VALUES,
            "message_id": _VALUES,
            "user_id": _VALUES,
            "group_id": _VALUES,
            "message": _SEGMENTS | st.text(max_size=20) | _VALUES,
            "raw_message": st.text(max_size=10),
            "sender": st.dictionaries(st.text(max_size=3), _VALUES, max_size=2) | _VALUES,
        },
    )
)
def test_the_fast_path_is_the_general_path(obj: dict[str, Any]) -> None:
    try:
        text = msgspec.json.encode(obj)
    except (OverflowError, msgspec.EncodeError):  # NaN, or an int msgspec cannot write
        return
    same(text)
