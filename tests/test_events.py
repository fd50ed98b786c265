"""Typed dispatch events (qqproto.qq.events, .parts), their decoder (qqproto.qq.decode)
and content cleaning (qqproto.qq.text).

Payloads are shaped like the samples of spec section 6; quirks refer to the
checklist in spec section 14 and to user-pain entries 15-17.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from qqproto.errors import RemoteProtocolError
from qqproto.qq.decode import MISSING, EventDecodeError, EventDecoder, json_value
from qqproto.qq.events import (
    EVENT_TYPES,
    MESSAGE_TYPES,
    AtMessageCreate,
    C2CMessageCreate,
    C2CMsgReceive,
    DirectMessageCreate,
    Dispatch,
    Event,
    FriendAdd,
    GroupAddRobot,
    GroupAtMessageCreate,
    GroupMessageCreate,
    InteractionCreate,
    Message,
    MessageCreate,
    Ready,
    Resumed,
)
from qqproto.qq.parts import Attachment, MessageScene
from qqproto.qq.text import (
    _clean,
    _forms,
    clean_content,
    escape,
    mention_id,
    split_markup,
    unescape,
    with_scheme,
)

BOT = "6158788878435714165"  # READY user.id, spec 3.3
MEMBER = "0BA1C3D5E7F90B1D3F5A7C9E1B3D7F13"
GROUP = "82B3C5D7E9FA1B3C5D7E9F0A1B2C6064"
BOT_OPENID = "42F7A0D6B3C1E5F79A8B2C4D6E8F5C57"
USER = "E4F4A1B2C3D4E5F6A7B8C9D0E1F2D7ED"

# -- spec-shaped payloads ------------------------------------------------------------------

GROUP_AT_D = {  # 6.1, the real 2025 sample
    "id": "ROBOT1.0_yiT7pdisg1abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH!",
    "content": " lssv",
    "timestamp": "2025-09-08T23:13:34+08:00",
    "author": {"id": MEMBER, "member_openid": MEMBER, "union_openid": MEMBER},
    "group_id": GROUP,
    "group_openid": GROUP,
    "message_scene": {"source": "default"},
    "message_type": 0,
}
GROUP_MSG_D = {  # 6.1, the real 2026 GROUP_MESSAGE_CREATE shape
    **GROUP_AT_D,
    "content": f"<@{BOT_OPENID}> 签到",
    "author": {**GROUP_AT_D["author"], "bot": False, "username": "某人"},  # type: ignore[dict-item]
    "mentions": [
        {
            "bot": True,
            "id": BOT_OPENID,
            "is_you": True,
            "member_openid": BOT_OPENID,
            "scope": "single",
            "username": "趣测酱",
        }
    ],
    "message_scene": {"ext": ["msg_idx=REFIDX_4GmaQ=="], "source": "default"},
}
C2C_D = {  # 6.2
    "id": "ROBOT1.0_.b6nxABC!",
    "content": "123",
    "timestamp": "2023-11-06T13:37:18+08:00",
    "author": {"user_openid": USER},
}
GUILD_D = {  # 6.3
    "author": {
        "avatar": "http://thirdqq.qlogo.cn/0",
        "bot": False,
        "id": "1234",
        "username": "abc",
    },
    "channel_id": "100010",
    "content": f"<@!{BOT}> hello",
    "guild_id": "18700000000001",
    "id": "0812345677890abcdef",
    "member": {"joined_at": "2021-04-12T16:34:42+08:00", "roles": ["1"]},
    "timestamp": "2021-05-20T15:14:58+08:00",
    "seq": 101,
}
DM_D = {**GUILD_D, "content": "hi", "direct_message": True, "src_guild_id": "18700000000002"}
INTERACTION_D = {  # 6.5, a C2C button press
    "id": "30540ff7-9d8f-4737-83f1-e116ce6afa8b",
    "type": 11,
    "version": 1,
    "chat_type": 2,
    "scene": "c2c",
    "timestamp": "2023-11-06T13:37:18+08:00",
    "application_id": "102000000",
    "user_openid": USER,
    "data": {"type": 11, "resolved": {"button_data": "ok", "button_id": "21"}},
}
GROUP_LIFE_D = {"group_openid": GROUP, "op_member_openid": MEMBER, "timestamp": 1699240248}
FRIEND_LIFE_D = {"openid": USER, "timestamp": 1699240365}
READY_D = {  # 3.3, with the docs' shard [0, 0]
    "version": 1,
    "session_id": "082ee18c-0be3-491b-9d8b-fbd95c51673a",
    "user": {"id": BOT, "username": "群pro测试机器人", "bot": True},
    "shard": [0, 0],
}
SAMPLES: dict[str, Any] = {
    "GROUP_AT_MESSAGE_CREATE": GROUP_AT_D,
    "GROUP_MESSAGE_CREATE": GROUP_MSG_D,
    "C2C_MESSAGE_CREATE": C2C_D,
    "AT_MESSAGE_CREATE": GUILD_D,
    "MESSAGE_CREATE": GUILD_D,
    "DIRECT_MESSAGE_CREATE": DM_D,
    "INTERACTION_CREATE": INTERACTION_D,
    "GROUP_ADD_ROBOT": GROUP_LIFE_D,
    "GROUP_DEL_ROBOT": GROUP_LIFE_D,
    "GROUP_MSG_REJECT": GROUP_LIFE_D,
    "GROUP_MSG_RECEIVE": GROUP_LIFE_D,
    "FRIEND_ADD": FRIEND_LIFE_D,
    "FRIEND_DEL": FRIEND_LIFE_D,
    "C2C_MSG_REJECT": FRIEND_LIFE_D,
    "C2C_MSG_RECEIVE": FRIEND_LIFE_D,
    "READY": READY_D,
    "RESUMED": "",
}


def frame(t: str, d: Any, s: Any = 42, event_id: str | None = None) -> str:
    payload: dict[str, Any] = {"op": 0, "id": event_id or f"{t}:yit7pdisg1", "t": t, "d": d}
    if s is not None:
        payload["s"] = s
    return json.dumps(payload, ensure_ascii=False)


def decode(t: str, d: Any, bot: str | None = BOT, **kw: Any) -> Any:
    """The body decode_frame gives for one dispatch."""
    return body(frame(t, d, **kw), bot)


def body(text: str | bytes, bot: str | None = None) -> Any:
    return EventDecoder(bot).decode_frame(text)[4]


def with_d(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


# -- every typed event, from the spec's samples --------------------------------------------


def test_every_typed_event_has_a_sample_and_decodes_to_its_class() -> None:
    assert set(EVENT_TYPES) == set(SAMPLES)
    for t, cls in EVENT_TYPES.items():
        op, s, got_t, event_id, event = EventDecoder(BOT).decode_frame(frame(t, SAMPLES[t]))
        assert type(event) is cls and cls.TYPE == t == got_t
        assert (op, s, event_id) == (0, 42, f"{t}:yit7pdisg1")
        assert event.event_id == f"{t}:yit7pdisg1" and event.event_seq == 42
        assert event.raw == SAMPLES[t]


def test_message_types_are_the_types_of_user_messages() -> None:
    assert {
        "GROUP_AT_MESSAGE_CREATE",
        "GROUP_MESSAGE_CREATE",
        "C2C_MESSAGE_CREATE",
        "AT_MESSAGE_CREATE",
        "MESSAGE_CREATE",
        "DIRECT_MESSAGE_CREATE",
    } == MESSAGE_TYPES


def test_every_message_type_names_its_sender() -> None:
    for t, cls in EVENT_TYPES.items():
        if issubclass(cls, Message):
            event = decode(t, SAMPLES[t])
            author = event.author
            expected = getattr(author, "member_openid", None) or getattr(
                author, "user_openid", None
            )
            assert event.sender == (expected or author.id), t


def test_the_real_group_at_message() -> None:
    event = decode("GROUP_AT_MESSAGE_CREATE", GROUP_AT_D)
    assert isinstance(event, GroupAtMessageCreate)
    assert event.id.startswith("ROBOT1.0_")  # quirk 6: kept as it came
    assert event.author.member_openid == MEMBER and event.group_openid == GROUP
    assert event.content == " lssv" and event.text == "lssv"  # quirk 4
    assert event.to_me and not event.empty
    assert event.message_scene == MessageScene(source="default")
    assert event.timestamp == "2025-09-08T23:13:34+08:00"


def test_c2c_old_and_new_shapes() -> None:
    old = decode("C2C_MESSAGE_CREATE", C2C_D)
    assert isinstance(old, C2CMessageCreate)
    assert old.author.user_openid == USER and old.text == "123" and old.to_me
    new = decode(
        "C2C_MESSAGE_CREATE",
        with_d(
            C2C_D,
            author={"user_openid": USER, "id": USER, "union_openid": "", "bot": False},
            message_scene={"source": "default", "ext": ["msg_idx=REFIDX_abc"]},
            message_type=0,
        ),
    )
    assert new.author.union_openid == ""
    assert new.message_scene.get("msg_idx") == "REFIDX_abc"
    assert new.message_scene.get("ref_msg_idx") is None


def test_guild_message_fields() -> None:
    event = decode("AT_MESSAGE_CREATE", GUILD_D)
    assert isinstance(event, AtMessageCreate)
    assert event.author.id == "1234" and event.author.avatar == "http://thirdqq.qlogo.cn/0"
    assert event.member is not None and event.member.roles == ("1",)
    assert (event.channel_id, event.guild_id, event.seq) == ("100010", "18700000000001", 101)
    assert event.bot_id == BOT and event.text == "hello" and event.to_me
    assert not event.mention_everyone and event.mentions == ()
    everyone = decode(
        "AT_MESSAGE_CREATE", with_d(GUILD_D, content="@everyone hi", mention_everyone=True)
    )
    assert everyone.mention_everyone and everyone.text == "@everyone hi"


def test_direct_message() -> None:
    event = decode("DIRECT_MESSAGE_CREATE", DM_D)
    assert isinstance(event, DirectMessageCreate)
    assert event.direct_message and event.src_guild_id == "18700000000002"
    assert event.guild_id == "18700000000001" and event.to_me


def test_interaction() -> None:
    event = decode("INTERACTION_CREATE", INTERACTION_D)
    assert isinstance(event, InteractionCreate)
    assert event.id == "30540ff7-9d8f-4737-83f1-e116ce6afa8b" and event.type == 11
    assert event.chat_type == 2 and event.scene == "c2c" and event.user_openid == USER
    assert event.group_openid is None
    assert event.data is not None and event.data.resolved is not None
    assert event.data.resolved.button_id == "21"
    docs_sample = {"chat_type": 1, "data": {"type": 11}, "id": "x", "type": 11, "version": 1}
    assert decode("INTERACTION_CREATE", docs_sample).data.resolved is None


def test_lifecycle_events() -> None:
    added = decode("GROUP_ADD_ROBOT", GROUP_LIFE_D)
    assert isinstance(added, GroupAddRobot)
    assert (added.group_openid, added.op_member_openid, added.timestamp) == (
        GROUP,
        MEMBER,
        1699240248,
    )
    friend = decode("FRIEND_ADD", FRIEND_LIFE_D)
    assert isinstance(friend, FriendAdd) and friend.openid == USER and friend.nick is None
    assert isinstance(decode("C2C_MSG_RECEIVE", FRIEND_LIFE_D), C2CMsgReceive)
    # Lifecycle timestamps are integer seconds; a string is a typed error.
    bad = decode("FRIEND_DEL", {"openid": USER, "timestamp": "1699240365"})
    assert isinstance(bad, EventDecodeError) and bad.path == "d.timestamp"


def test_ready_keeps_the_docs_shard_and_the_bot_user() -> None:
    event = decode("READY", READY_D)
    assert isinstance(event, Ready)
    assert event.session_id == "082ee18c-0be3-491b-9d8b-fbd95c51673a"
    assert event.user.id == BOT and event.user.bot is True
    assert event.shard == (0, 0)  # quirk 11: reported as is; the gateway keeps its own


def test_key_order_does_not_matter() -> None:
    d = json.dumps(GROUP_AT_D)
    for text in (
        '{"d":' + d + ',"s":5,"t":"GROUP_AT_MESSAGE_CREATE","id":"e","op":0}',  # the docs' order
        '{"op":0,"id":"e","t":"GROUP_AT_MESSAGE_CREATE","s":5,"d":' + d + "}",  # the sample's
    ):
        event = body(text)
        assert isinstance(event, GroupAtMessageCreate) and event.event_seq == 5


def test_resumed_with_an_empty_string_d() -> None:  # quirk 3
    op, s, t, _, event = EventDecoder().decode_frame('{"op":0,"s":7,"t":"RESUMED","d":""}')
    assert isinstance(event, Resumed) and (op, s, t) == (0, 7, "RESUMED")
    assert event.event_seq == 7 and event.raw == ""


# -- what stays raw ----------------------------------------------------------------------


def test_unknown_types_stay_a_dispatch() -> None:
    decoder = EventDecoder(BOT)
    d = {"guild_id": "1", "user": {"id": "2"}}
    op, s, t, event_id, body = decoder.decode_frame(frame("GUILD_MEMBER_ADD", d, s=9))
    assert (op, s, t) == (0, 9, "GUILD_MEMBER_ADD") and type(body) is msgspec.Raw
    assert decoder.decode(t, s, event_id, body) == Dispatch("GUILD_MEMBER_ADD", 9, event_id, d)
    assert decoder.decode_dispatch(frame("GUILD_MEMBER_ADD", d, s=9)) == Dispatch(
        "GUILD_MEMBER_ADD", 9, "GUILD_MEMBER_ADD:yit7pdisg1", d
    )


@pytest.mark.parametrize(
    ("text", "op", "d"),
    [
        ('{"op":11}', 11, b""),  # quirk 3: op 11 without d
        ('{"op":9,"d":false}', 9, b"false"),  # quirk 3: op 9 with d false
        ('{"op":10,"d":{"heartbeat_interval":45000}}', 10, b'{"heartbeat_interval":45000}'),
        ('{"op":1,"t":"GROUP_AT_MESSAGE_CREATE","d":{}}', 1, b"{}"),  # a typed t, but op 1
    ],
)
def test_control_frames_come_back_with_d_undecoded(text: str, op: int, d: bytes) -> None:
    got_op, _, _, _, body = EventDecoder().decode_frame(text)
    assert got_op == op and type(body) is msgspec.Raw and bytes(body) == d


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '"op"', "", '{"op": 0', b"\xff\xfe"])
def test_a_frame_that_is_not_a_json_object_is_a_remote_protocol_error(text: str | bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="gateway payload"):
        EventDecoder().decode_frame(text)


def test_a_dispatch_without_d_is_left_to_the_gateway() -> None:
    op, _, t, _, body = EventDecoder().decode_frame('{"op":0,"s":3,"t":"C2C_MESSAGE_CREATE"}')
    assert (op, t) == (0, "C2C_MESSAGE_CREATE") and type(body) is msgspec.Raw and not body


def test_decode_dispatch_refuses_what_is_not_a_dispatch() -> None:
    decoder = EventDecoder()
    for text in ('{"op":11}', '{"op":0,"d":{}}', '{"op":0,"t":"X"}'):
        with pytest.raises(RemoteProtocolError, match="not a dispatch"):
            decoder.decode_dispatch(text)
    with pytest.raises(EventDecodeError):
        decoder.decode_dispatch(frame("C2C_MESSAGE_CREATE", {"id": "1"}))
    assert isinstance(decoder.decode_dispatch(frame("C2C_MESSAGE_CREATE", C2C_D)), C2CMessageCreate)


# -- lenient with extra fields, strict with typed ones ------------------------------------


def test_unknown_fields_are_ignored_and_kept_in_raw() -> None:
    d = with_d(GROUP_AT_D, future_field={"x": [1, 2]}, msg_elements=[], text=5, to_me="no")
    event = decode("GROUP_AT_MESSAGE_CREATE", d)
    assert isinstance(event, GroupAtMessageCreate) and event.text == "lssv"
    assert event.raw["future_field"] == {"x": [1, 2]} and event.raw["text"] == 5


def test_names_the_decoder_sets_cannot_be_injected_by_a_payload() -> None:
    d = with_d(GUILD_D, event_id="forged", event_seq="x", frame=1, bot_id="999")
    event = decode("AT_MESSAGE_CREATE", d, s=5)
    assert (event.event_id, event.event_seq, event.bot_id) == (
        "AT_MESSAGE_CREATE:yit7pdisg1",
        5,
        BOT,
    )


@pytest.mark.parametrize(
    ("t", "d", "path", "expected", "received"),
    [
        ("GROUP_AT_MESSAGE_CREATE", {k: v for k, v in GROUP_AT_D.items() if k != "author"},
         "d.author", "a value", MISSING),
        ("GROUP_AT_MESSAGE_CREATE", with_d(GROUP_AT_D, author={"member_openid": 5}),
         "d.author.member_openid", "str", 5),
        ("GROUP_AT_MESSAGE_CREATE", with_d(GROUP_AT_D, attachments=[{}, {"size": "1"}]),
         "d.attachments[1].size", "int | null", "1"),
        ("C2C_MESSAGE_CREATE", with_d(C2C_D, id=12345678901234567890), "d.id", "str",
         12345678901234567890),
        ("AT_MESSAGE_CREATE", with_d(GUILD_D, author=None), "d.author", "object", None),
        ("AT_MESSAGE_CREATE", with_d(GUILD_D, member={"roles": [1]}), "d.member.roles[0]",
         "str", 1),
        ("READY", with_d(READY_D, user={"username": "x"}), "d.user.id", "a value", MISSING),
        ("INTERACTION_CREATE", with_d(INTERACTION_D, type="11"), "d.type", "int", "11"),
        ("GROUP_ADD_ROBOT", ["not", "an", "object"], "d", "object", ["not", "an", "object"]),
    ],
)  # fmt: skip
def test_a_bad_typed_field_is_a_typed_error(
    t: str, d: Any, path: str, expected: str, received: Any
) -> None:
    decoder = EventDecoder(BOT)
    op, s, got_t, event_id, error = decoder.decode_frame(frame(t, d))
    assert isinstance(error, EventDecodeError) and isinstance(error, RemoteProtocolError)
    assert (op, s, got_t, event_id) == (0, 42, t, f"{t}:yit7pdisg1")  # the gateway still tracks s
    assert (error.event_type, error.path, error.expected) == (t, path, expected)
    assert error.received is received or error.received == received
    assert error.data == d  # for the gateway to deliver Dispatch(t, s, id, error.data)
    assert t in str(error) and path in str(error)
    with pytest.raises(EventDecodeError) as raised:
        decoder.decode(t, 42, None, json.dumps(d))
    assert raised.value.path == path


def test_ids_are_strings_of_any_length_and_seqs_any_integer() -> None:
    long_id = "9" * 40  # no int32 (or int64) limit
    event = decode("AT_MESSAGE_CREATE", with_d(GUILD_D, id=long_id, seq=2**70), s=2**40)
    assert event.id == long_id and event.seq == 2**70 and event.event_seq == 2**40


def test_a_bad_envelope_seq_or_id_is_not_the_decoders_business() -> None:
    op, s, _, event_id, event = EventDecoder().decode_frame(
        frame("C2C_MESSAGE_CREATE", C2C_D, s="7", event_id=None).replace(
            '"C2C_MESSAGE_CREATE:yit7pdisg1"', "17"
        )
    )
    assert (op, s, event_id) == (0, "7", 17)  # returned as they came, for the gateway to judge
    assert isinstance(event, Event) and event.event_seq is None and event.event_id is None


def test_d_that_is_not_json_for_decode() -> None:
    with pytest.raises(EventDecodeError, match="valid JSON"):
        EventDecoder().decode("C2C_MESSAGE_CREATE", 1, None, b"{not json")
    with pytest.raises(EventDecodeError, match="valid JSON"):
        EventDecoder().decode("UNKNOWN", 1, None, b"{not json")


def test_deep_nesting_is_a_typed_error_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    text = '{"op":0,"s":1,"t":"C2C_MESSAGE_CREATE","d":{"id":"1","author":' + deep + "}}"
    try:
        got = body(text)
    except RemoteProtocolError:
        return  # too deep even for the envelope
    assert isinstance(got, EventDecodeError)


# -- the frame, raw, immutability ----------------------------------------------------------


def test_events_keep_their_frame_and_raw_reads_it() -> None:
    text = frame("GROUP_AT_MESSAGE_CREATE", GROUP_AT_D)
    event = body(text)
    assert event.frame == text and event.raw == GROUP_AT_D
    webhook = body(text.encode())  # a webhook body is bytes
    assert webhook == event and webhook.frame == text
    from_d = EventDecoder().decode("GROUP_AT_MESSAGE_CREATE", 42, "x", json.dumps(GROUP_AT_D))
    assert isinstance(from_d, GroupAtMessageCreate) and from_d.raw == GROUP_AT_D


def test_events_are_frozen_slotted_and_hashable() -> None:
    event = decode("GROUP_AT_MESSAGE_CREATE", GROUP_AT_D)
    with pytest.raises(AttributeError):
        event.content = "x"
    with pytest.raises(AttributeError):
        event.author.member_openid = "x"
    assert not hasattr(event, "__dict__")
    assert "frame=" not in repr(event) and "text" not in repr(event)


def test_the_same_message_delivered_twice_decodes_equal() -> None:  # quirk 7
    text = frame("C2C_MESSAGE_CREATE", C2C_D)
    a, b = (body(text) for _ in range(2))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1 and a is not b


def test_lone_surrogates_do_not_cost_the_message() -> None:
    # msgspec refuses a lone surrogate escape; json takes it, and so do we.
    text = frame("GROUP_AT_MESSAGE_CREATE", GROUP_AT_D).replace(" lssv", " ok \\ud83d")
    event = body(text)
    assert isinstance(event, GroupAtMessageCreate)
    assert (
        event.text == "ok \ud83d" and event.frame == text and event.raw["content"] == " ok \ud83d"
    )
    unknown = body(text.replace("GROUP_AT_MESSAGE_CREATE", "OTHER"))
    dispatch = EventDecoder().decode("OTHER", 1, None, unknown)
    assert isinstance(dispatch, Dispatch) and dispatch.data["content"] == " ok \ud83d"
    raw_surrogate = frame("C2C_MESSAGE_CREATE", with_d(C2C_D, content="x\ud800"))
    assert body(raw_surrogate).content == "x\ud800"


def test_numbers_too_long_for_an_int_do_not_cost_the_message() -> None:
    # Past 4300 digits neither msgspec nor json reads an int: it arrives as its digits.
    huge = "9" * 5000
    text = frame("GROUP_AT_MESSAGE_CREATE", GROUP_AT_D).replace(
        '"content"', f'"x": {huge}, "content"'
    )
    event = body(text)
    assert isinstance(event, GroupAtMessageCreate) and event.text == "lssv"
    assert event.raw["x"] == huge and event.as_dispatch().data["x"] == huge
    # In a typed field, it is a value of the wrong type, reported with its path.
    typed = frame("GROUP_ADD_ROBOT", {"group_openid": "G", "timestamp": 0}).replace(
        "0}", huge + "}"
    )
    problem = body(typed)
    assert isinstance(problem, EventDecodeError) and problem.path == "d.timestamp"
    assert problem.data == {"group_openid": "G", "timestamp": huge}
    assert json_value(b"[" + huge.encode() + b"]") == [huge]


def test_as_dispatch_gives_the_untyped_view() -> None:
    event = decode("C2C_MESSAGE_CREATE", C2C_D, s=8)
    assert event.as_dispatch() == Dispatch(
        "C2C_MESSAGE_CREATE", 8, "C2C_MESSAGE_CREATE:yit7pdisg1", C2C_D
    )


def test_json_value_falls_back_to_json() -> None:
    assert json_value(b'{"a":[1,"x"]}') == {"a": [1, "x"]}
    assert json_value('"\\ud800"') == "\ud800"  # msgspec refuses it
    with pytest.raises(ValueError, match="Expecting"):
        json_value(b"{")
    op, _, _, _, d = EventDecoder().decode_frame('{"op":10,"d":{"note":"\\udc00"}}')
    assert op == 10 and isinstance(d, msgspec.Raw) and json_value(d) == {"note": "\udc00"}


def test_an_op_that_is_not_an_integer_is_left_to_the_gateway() -> None:
    op, _, t, _, d = EventDecoder().decode_frame(
        frame("C2C_MESSAGE_CREATE", C2C_D).replace('"op": 0', '"op": true')
    )
    assert op is True and t == "C2C_MESSAGE_CREATE" and isinstance(d, msgspec.Raw)


# -- text: group messages ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (" lssv", "lssv"),  # mobile: a space after the removed @bot
        ("\xa0echo hi", "echo hi"),  # PC: a non-breaking space (user-pain 15)
        ("\u3000\u2003 echo  hi ", "echo  hi "),  # only the lead goes
        ("echo &lt;b&gt; &amp; &amp;lt;", "echo <b> & &lt;"),
        (" ", ""),
    ],
)
def test_group_text_loses_leading_whitespace(content: str, text: str) -> None:
    event = decode("GROUP_AT_MESSAGE_CREATE", with_d(GROUP_AT_D, content=content))
    assert event.content == content and event.text == text


def test_group_message_is_you_mentions() -> None:
    event = decode("GROUP_MESSAGE_CREATE", GROUP_MSG_D)
    assert isinstance(event, GroupMessageCreate)
    assert event.to_me and event.text == "签到" and event.content == GROUP_MSG_D["content"]
    other = "<@AAAA0000AAAA0000AAAA0000AAAA0000>"
    d = with_d(GROUP_MSG_D, content=f"hi <@!{BOT_OPENID}> {other}\xa0and <@{BOT_OPENID}>")
    assert decode("GROUP_MESSAGE_CREATE", d).text == f"hi {other}\xa0and"
    chain = with_d(
        GROUP_MSG_D, content=f" <@{BOT_OPENID}> <@{BOT_OPENID}> x <@{BOT_OPENID}>\t<@{BOT_OPENID}> "
    )
    assert decode("GROUP_MESSAGE_CREATE", chain).text == "x"
    not_me = with_d(GROUP_MSG_D, content=f"{other} hi", mentions=[{"id": "AAAA", "is_you": False}])
    event = decode("GROUP_MESSAGE_CREATE", not_me)
    assert not event.to_me and event.text == f"{other} hi"
    assert not decode("GROUP_MESSAGE_CREATE", with_d(GROUP_MSG_D, mentions=[])).to_me


def test_the_bare_at_bot_is_empty() -> None:
    assert decode("GROUP_AT_MESSAGE_CREATE", with_d(GROUP_AT_D, content=" ")).empty
    assert decode("GROUP_MESSAGE_CREATE", with_d(GROUP_MSG_D, content=f"<@{BOT_OPENID}>")).empty
    assert decode("AT_MESSAGE_CREATE", with_d(GUILD_D, content=f"<@!{BOT}>\xa0")).empty
    image = [{"content_type": "image/png", "url": "gchat.qpic.cn/x"}]
    with_image = decode(
        "GROUP_AT_MESSAGE_CREATE", with_d(GROUP_AT_D, content=" ", attachments=image)
    )
    assert not with_image.empty and with_image.text == ""
    assert not decode("GROUP_AT_MESSAGE_CREATE", GROUP_AT_D).empty


# -- text: guild messages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "text"),
    [
        (f"<@!{BOT}> hello", "hello"),  # quirk 4
        (f"<@{BOT}> hello", "hello"),
        (f" \t<@!{BOT}>\xa0\xa0hello there ", "hello there "),
        (f"hello <@!{BOT}>", "hello"),  # trailing, with the whitespace before it
        (f"<@!{BOT}> hello <@!{BOT}> ", "hello"),
        (f"hi <@!{BOT}> there", f"hi <@!{BOT}> there"),  # in mid-sentence: what was said
        ("<@!1234> hello", "<@!1234> hello"),  # someone else
        (f"<@!1234> <@!{BOT}> hi", f"<@!1234> <@!{BOT}> hi"),  # not leading
        (f"&lt;@!{BOT}&gt; hi", f"<@!{BOT}> hi"),  # escaped: literal text, no mention
        (f"<@!{BOT}> a &amp;lt; b &gt; <#123> <emoji:4>", "a &lt; b > <#123> <emoji:4>"),
        (f"<@!{BOT}> <@!{BOT}>", ""),  # one leads, one trails
        (f"a <@!{BOT}> <@!{BOT}>", f"a <@!{BOT}>"),  # only one trails
    ],
)
def test_guild_text_strips_the_bot_mention_where_it_leads_or_trails(
    content: str, text: str
) -> None:
    event = decode("AT_MESSAGE_CREATE", with_d(GUILD_D, content=content))
    assert event.content == content and event.text == text


def test_guild_text_without_a_known_bot_id_is_only_unescaped() -> None:
    event = decode("AT_MESSAGE_CREATE", with_d(GUILD_D, content=f"<@!{BOT}> a &amp; b"), bot=None)
    assert event.bot_id is None and event.text == f"<@!{BOT}> a & b"
    decoder = EventDecoder()
    decoder.bot_id = BOT  # what the gateway does when READY arrives
    event = decoder.decode_frame(frame("AT_MESSAGE_CREATE", GUILD_D))[4]
    assert isinstance(event, AtMessageCreate) and event.text == "hello"


def test_message_create_to_me() -> None:
    mid = with_d(GUILD_D, content=f"hey <@!{BOT}> look")
    assert isinstance(decode("MESSAGE_CREATE", mid), MessageCreate)
    assert decode("MESSAGE_CREATE", mid).to_me
    assert not decode("MESSAGE_CREATE", with_d(GUILD_D, content="just chat")).to_me
    listed = with_d(GUILD_D, content="x", mentions=[{"id": BOT, "bot": True}])
    assert decode("MESSAGE_CREATE", listed).to_me
    assert not decode("MESSAGE_CREATE", GUILD_D, bot=None).to_me


# -- attachments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fixed"),
    [
        ("gchat.qpic.cn/gchatpic_new/0/0-0-ABC/0", "https://gchat.qpic.cn/gchatpic_new/0/0-0-ABC/0"),
        ("//multimedia.nt.qq.com.cn/download?appid=1402", "https://multimedia.nt.qq.com.cn/download?appid=1402"),
        ("https://multimedia.nt.qq.com.cn/x", "https://multimedia.nt.qq.com.cn/x"),
        ("http://thirdqq.qlogo.cn/0", "http://thirdqq.qlogo.cn/0"),
        ("HTTPS://X/y", "HTTPS://X/y"),
        ("localhost:8080/a", "https://localhost:8080/a"),
        ("", ""),
    ],
)  # fmt: skip
def test_attachment_urls_always_name_a_scheme(url: str, fixed: str) -> None:  # quirk 5
    d = with_d(GUILD_D, attachments=[{"content_type": "image/png", "url": url}])
    (attachment,) = decode("AT_MESSAGE_CREATE", d).attachments
    assert attachment.url == fixed and attachment.url_as_sent == url


def test_voice_and_file_attachments() -> None:  # quirk 5: voice_wav_url scheme-relative
    voice = {
        "content_type": "voice",
        "filename": "a.amr",
        "size": 4567,
        "url": "https://multimedia.nt.qq.com.cn/download?appid=1402",
        "voice_wav_url": "//multimedia.nt.qq.com.cn/a.wav",
        "asr_refer_text": "你好",
    }
    image = {"content_type": "image/jpeg", "filename": "x.jpg", "height": 1280, "width": 960,
             "size": 123456, "url": "multimedia.nt.qq.com.cn/download?appid=1407"}  # fmt: skip
    d = with_d(C2C_D, attachments=[voice, {"content_type": "file", "url": "x/y"}, image])
    a, f, i = decode("C2C_MESSAGE_CREATE", d).attachments
    assert a.voice_wav_url == "https://multimedia.nt.qq.com.cn/a.wav" and a.asr_refer_text == "你好"
    assert not a.is_image and not f.is_image and i.is_image
    assert (i.width, i.height, i.size, i.filename) == (960, 1280, 123456, "x.jpg")
    assert f.voice_wav_url is None and f.url == "https://x/y"
    assert Attachment(content_type="image/gif").is_image


# -- quotes (6.7) ---------------------------------------------------------------------------


def test_the_quoted_message_of_a_reply() -> None:
    elements = [
        {"msg_idx": "REFIDX_other", "content": "no"},
        {"msg_idx": "REFIDX_q", "message_type": 0, "content": "原文",
         "attachments": [{"content_type": "image/png", "url": "x/y.png"}]},
    ]  # fmt: skip
    scene = {"source": "default", "ext": ["msg_idx=REFIDX_me", "ref_msg_idx=REFIDX_q"]}
    d = with_d(GROUP_AT_D, message_type=103, msg_elements=elements, message_scene=scene)
    quote = decode("GROUP_AT_MESSAGE_CREATE", d).quote
    assert quote is not None and quote.content == "原文" and quote.author is None
    assert quote.attachments[0].url == "https://x/y.png"
    unnamed = with_d(d, message_scene={"source": "default"})
    assert decode("GROUP_AT_MESSAGE_CREATE", unnamed).quote.content == "no"
    plain = with_d(unnamed, message_type=0)
    assert decode("GROUP_AT_MESSAGE_CREATE", plain).quote is None
    assert decode("GROUP_AT_MESSAGE_CREATE", GROUP_AT_D).quote is None


# -- the content functions -----------------------------------------------------------------


def test_mention_id() -> None:
    assert mention_id("<@123>") == mention_id("<@!123>") == "123"
    assert mention_id('<qqbot-at-user id="AB12" />') == "AB12"
    for markup in ("<@>", "<@!>", "<@ 1>", "<#1>", "<emoji:4>", "<@!!1>", "<qqbot-at-everyone />"):
        assert mention_id(markup) is None, markup


def test_clean_content_handles_the_newer_mention_spelling() -> None:
    content = f'<qqbot-at-user id="{BOT_OPENID}" /> 签到'
    assert clean_content(content, [BOT_OPENID], anywhere=True, lstrip=True) == ("签到", True)


def test_malformed_ids_never_match() -> None:
    assert clean_content("<@a b> x", ["a b"]) == ("<@a b> x", False)
    assert clean_content("<@!1> x", [None, "", "<1>", "!1"]) == ("<@!1> x", False)


WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
ws = st.text(st.sampled_from(WHITESPACE), max_size=4)
ids = st.text("0123456789ABCDEF", min_size=1, max_size=32)


@given(bot=ids, bang=st.booleans(), ws=ws, lead=ws, text=st.text())
def test_strip_of_mention_and_whitespace_gives_the_text(
    bot: str, bang: bool, ws: str, lead: str, text: str
) -> None:
    """user-pain 15: strip(mention + ws + text) == text, for any whitespace and text."""
    assume(not text[:1].isspace())
    mention = f"<@!{bot}>" if bang else f"<@{bot}>"
    content = lead + mention + ws + escape(text)
    assert clean_content(content, [bot]) == (text, True)
    assert clean_content(content, [bot], anywhere=True, lstrip=True) == (text, True)
    event = decode("AT_MESSAGE_CREATE", with_d(GUILD_D, content=content), bot=bot)
    assert event.text == text and event.content == content


@given(bot=ids, ws=ws, text=st.text())
def test_a_trailing_mention_goes_with_the_whitespace_before_it(
    bot: str, ws: str, text: str
) -> None:
    assume(not text[-1:].isspace())
    assert clean_content(escape(text) + ws + f"<@!{bot}>" + ws, [bot]) == (text, True)


@given(text=st.text())
def test_escapes_round_trip(text: str) -> None:
    assert unescape(escape(text)) == text
    assert "<" not in escape(text) and ">" not in escape(text)
    # Escaped text holds no markup, so no mention, whatever it spells.
    assert clean_content(escape(text), ["1"]) == (text, False)
    assert split_markup(escape(text)) == [escape(text)]


@given(st.lists(st.sampled_from(["&", "amp;", "lt;", "gt;", "<", ">", "a", "@!1"])).map("".join))
def test_unescape_is_one_left_to_right_pass(text: str) -> None:
    entities = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}
    expected = re.sub("&lt;|&gt;|&amp;", lambda m: entities[m.group(0)], text)
    assert unescape(text) == expected


PIECES = st.one_of(
    st.text(max_size=5),
    ws,
    st.sampled_from(
        [f"<@!{BOT}>", f"<@{BOT}>", "<@!77>", "<#1>", "&lt;@!1&gt;", "&amp;", "<", ">"]
    ),
)


@given(parts=st.lists(PIECES, max_size=8), anywhere=st.booleans(), lstrip=st.booleans())
def test_the_fast_paths_agree_with_the_general_one(
    parts: list[str], anywhere: bool, lstrip: bool
) -> None:
    content = "".join(parts)
    assert "".join(split_markup(content)) == content
    for bot_ids in ((), (BOT,)):
        general = _clean(split_markup(content), _forms(bot_ids), anywhere, lstrip)
        assert clean_content(content, bot_ids, anywhere=anywhere, lstrip=lstrip) == general


@given(parts=st.lists(PIECES, max_size=8))
def test_removing_mentions_never_invents_one(parts: list[str]) -> None:
    content = "".join(parts)
    text, mentioned = clean_content(content, [BOT], anywhere=True)
    assert mentioned == any(p in (f"<@!{BOT}>", f"<@{BOT}>") for p in split_markup(content)[1::2])
    assert text.count(f"@!{BOT}") <= content.count(f"@!{BOT}")


urls = st.one_of(
    st.text(),
    st.builds(lambda s, rest: s + rest, st.sampled_from(["https://", "http://", "//", "ftp://"]),
              st.text()),
)  # fmt: skip


@given(url=urls)
def test_with_scheme_adds_https_only_when_missing(url: str) -> None:
    fixed = with_scheme(url)
    assert with_scheme(fixed) == fixed  # never doubled
    if url.startswith(("https://", "http://", "ftp://")):
        assert fixed == url
    elif url:
        assert "://" in fixed and fixed.endswith(url.removeprefix("//"))


# -- fuzz: any d gives a typed event or the typed error --------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with parts dropped, replaced by any JSON, or left; extra keys added."""
    choice = draw(st.integers(0, 19))
    if choice == 0:
        return draw(json_values)
    if isinstance(value, str) and choice == 1:  # markup, escapes, mentions of the bot
        return "".join(draw(st.lists(PIECES, max_size=6)))
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if draw(st.integers(0, 11)) > 0:
                out[key] = draw(mutated(item))
        out.update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=2)))
        return out
    if isinstance(value, list):
        return [draw(mutated(item)) for item in value]
    return value


def touch(event: Event) -> None:
    """Read everything an application may read; none of it may raise."""
    repr(event)
    hash(event)
    event.raw  # noqa: B018
    if isinstance(event, Message):
        event.text, event.to_me, event.empty  # noqa: B018
        for attachment in event.attachments:
            attachment.url, attachment.voice_wav_url, attachment.is_image  # noqa: B018
    quote = getattr(event, "quote", None)
    if quote is not None:
        [a.url for a in quote.attachments]


@pytest.mark.parametrize("t", sorted(EVENT_TYPES))
@given(data=st.data())
def test_any_d_gives_a_typed_event_or_the_typed_error(t: str, data: st.DataObject) -> None:
    sample = SAMPLES[t] if isinstance(SAMPLES[t], dict) else {}
    d = data.draw(st.one_of(mutated(sample), json_values), label="d")
    seq = data.draw(st.none() | st.integers(0, 2**40), label="s")
    decoder = EventDecoder(data.draw(st.none() | ids, label="bot"))
    text = json.dumps({"op": 0, "s": seq, "t": t, "id": "e", "d": d})
    for body in (decoder.decode_frame(text)[4], decoder.decode_frame(text.encode())[4]):
        if isinstance(body, EventDecodeError):
            assert body.event_type == t and body.path.startswith("d") and body.data == d
        else:
            assert type(body) is EVENT_TYPES[t] and body.raw == d
            touch(body)
    try:
        event = decoder.decode(t, seq, "e", json.dumps(d))
    except EventDecodeError as error:
        assert error.event_type == t  # noqa: PT017
    else:
        assert type(event) is EVENT_TYPES[t]
        assert isinstance(event, Event)
        touch(event)


@given(frame_text=st.one_of(st.text(), json_values.map(json.dumps)))
def test_any_frame_text_gives_a_result_or_a_remote_protocol_error(frame_text: str) -> None:
    try:
        body = EventDecoder(BOT).decode_frame(frame_text)[4]
    except RemoteProtocolError:
        return
    assert isinstance(body, Event | EventDecodeError | msgspec.Raw)


# -- the docs list every typed event -----------------------------------------------------------


def test_the_docs_table_lists_every_typed_event() -> None:
    page = (Path(__file__).parent.parent / "docs" / "events.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| `(\w+)` \|", page, re.M))
    assert rows == {t: cls.__name__ for t, cls in EVENT_TYPES.items()}


def test_the_package_exports_every_public_name() -> None:
    import qqproto.qq
    from qqproto.qq import decode, events, parts

    public = {*events.__all__, *parts.__all__, "EventDecodeError"}
    assert public <= set(qqproto.qq.__all__)
    # The decoder is the gateway's own: its pieces stay in qqproto.qq.decode.
    internal = set(decode.__all__) - {"EventDecodeError"}
    assert internal == {"MISSING", "Decoded", "EventDecoder", "json_value", "untyped_event"}
    assert not internal & set(qqproto.qq.__all__)
    assert all(getattr(qqproto.qq, name) is not None for name in qqproto.qq.__all__)
