"""Conversations: the bot's redelivery de-dup and the contexts replies answer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qqproto.qq.conversation import Conversations
from qqproto.qq.decode import EventDecoder
from qqproto.qq.events import Dispatch, GroupAtMessageCreate
from qqproto.qq.reply_rules import Refusal, ReplyRefused
from qqproto.qq.scenes import Scene

GROUP, USER = "G" * 32, "U" * 32
DEDUP_TTL = 600.0
decode = EventDecoder("1").decode_frame


def message(scene: Scene, msg_id: str, envelope: str) -> object:
    """A typed group @ or C2C message, as the decoder makes it."""
    if scene is Scene.GROUP:
        t = "GROUP_AT_MESSAGE_CREATE"
        d = {"id": msg_id, "content": "hi", "author": {"member_openid": USER}}
        d["group_openid"] = GROUP
    else:
        t = "C2C_MESSAGE_CREATE"
        d = {"id": msg_id, "content": "hi", "author": {"user_openid": USER}}
    event = decode(json.dumps({"op": 0, "s": 2, "t": t, "id": envelope, "d": d}))[4]
    assert not isinstance(event, Exception), event
    return event


def test_messages_with_an_empty_id_are_each_delivered_and_take_no_reply() -> None:
    conversations = Conversations()
    first, second = message(Scene.GROUP, "", "E:1"), message(Scene.GROUP, "", "E:2")
    assert conversations.inbound(first, 0.0) and conversations.inbound(second, 1.0)
    assert conversations.redeliveries == 0
    with pytest.raises(ReplyRefused):
        conversations.context(second, 2.0)


def test_a_reply_long_after_the_window_is_refused_as_closed() -> None:
    """The tracker forgets a group context after 302 s; the bot still says why."""
    conversations = Conversations()
    event = message(Scene.GROUP, "ROBOT1.0_a", "E:a")
    assert conversations.inbound(event, 0.0)
    assert len(conversations.tracker) == 1
    with pytest.raises(ReplyRefused) as refused:
        conversations.tracker.begin(conversations.context(event, 1000.0), 1000.0)
    assert refused.value.reason is Refusal.WINDOW_CLOSED
    assert refused.value.seconds_over == 1000.0 - 298.0
    assert len(conversations.tracker) == 0


@pytest.mark.parametrize("late", [3598.0, 3601.9])
def test_a_c2c_reply_just_after_its_hour_is_refused_as_closed_not_unknown(late: float) -> None:
    """The longest window (C2C, an hour) plus the margin: contexts are kept that long."""
    conversations = Conversations()
    event = message(Scene.C2C, "ROBOT1.0_c", "E:c")
    assert conversations.inbound(event, 0.0)
    with pytest.raises(ReplyRefused) as refused:
        conversations.begin(event, "late", late)
    assert refused.value.reason is Refusal.WINDOW_CLOSED


def test_the_context_is_made_once_and_is_the_trackers() -> None:
    conversations = Conversations()
    event = message(Scene.C2C, "ROBOT1.0_b", "E:b")
    conversations.inbound(event, 0.0)
    ctx = conversations.context(event, 1.0)
    assert conversations.context(event, 2.0) is ctx
    assert conversations.tracker.inbound(Scene.C2C, USER, 3.0, msg_id="ROBOT1.0_b") is ctx
    assert (ctx.scene, ctx.target, ctx.msg_id, ctx.received_at) == (
        Scene.C2C,
        USER,
        "ROBOT1.0_b",
        0.0,
    )
    assert conversations.tracker.begin(ctx, 4.0).msg_seq == 1


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([Scene.GROUP, Scene.C2C]),
            st.integers(0, 5),  # the message id
            st.integers(0, 3),  # the envelope id (a redelivery may come in a new one)
            st.sampled_from([0.0, 0.5, 60.0, 299.0, 301.0, 599.0, 600.0, 1200.0, 3600.0]),
        ),
        max_size=40,
    )
)
def test_a_message_reaches_the_application_once_per_dedup_ttl(
    deliveries: list[tuple[Scene, int, int, float]],
) -> None:
    """Against a model: a message id is dropped within dedup_ttl of its last delivery,
    and its context stays the tracker's for the message's window."""
    conversations = Conversations(dedup_ttl=DEDUP_TTL)
    windows = {Scene.GROUP: 300.0, Scene.C2C: 3600.0}
    margin = conversations.tracker.margin
    delivered_at: dict[str, float] = {}
    registered_at: dict[str, float] = {}  # the tracker keeps it for its window + margin
    now, dropped = 0.0, 0
    for scene, n, envelope, step in deliveries:
        now += step
        # One id, one conversation: the same id in another scene is another message.
        msg_id = f"ROBOT1.0_{scene.name}_{n}"
        event = message(scene, msg_id, f"E:{envelope}:{n}")
        fresh = msg_id not in delivered_at or now >= delivered_at[msg_id] + DEDUP_TTL
        assert conversations.inbound(event, now) is fresh
        if not fresh:
            dropped += 1
            continue
        delivered_at[msg_id] = now
        if now >= registered_at.get(msg_id, -1e9) + windows[scene] + margin:
            registered_at[msg_id] = now  # a new message to the tracker
        ctx = conversations.context(event, now)
        target = USER if scene is Scene.C2C else GROUP
        assert conversations.tracker.inbound(scene, target, now, msg_id=msg_id) is ctx
        assert (ctx.scene, ctx.target, ctx.reply_to) == (scene, target, msg_id)
        assert ctx.received_at == registered_at[msg_id]  # a redelivery resets nothing
        open_ = now < registered_at[msg_id] + windows[scene] - margin
        assert conversations.tracker.can_reply(ctx, now) is open_
    assert conversations.redeliveries == dropped


#: Every event that takes a passive reply: (t, d), and where the reply goes and what it names.
REPLY_TARGETS: list[tuple[str, dict[str, object], str, dict[str, object]]] = [
    (
        "GROUP_AT_MESSAGE_CREATE",
        {"id": "m1", "content": "hi", "author": {"member_openid": USER}, "group_openid": GROUP},
        f"/v2/groups/{GROUP}/messages",
        {"msg_id": "m1", "msg_seq": 1},
    ),
    (
        "C2C_MESSAGE_CREATE",
        {"id": "m2", "content": "hi", "author": {"user_openid": USER}},
        f"/v2/users/{USER}/messages",
        {"msg_id": "m2", "msg_seq": 1},
    ),
    (
        "AT_MESSAGE_CREATE",
        {"id": "m3", "content": "hi", "author": {"id": "7"}, "channel_id": "635", "guild_id": "18"},
        "/channels/635/messages",
        {"msg_id": "m3"},
    ),
    (
        "DIRECT_MESSAGE_CREATE",
        {"id": "m4", "content": "hi", "author": {"id": "7"}, "channel_id": "9", "guild_id": "dm1"},
        "/dms/dm1/messages",
        {"msg_id": "m4"},
    ),
    (
        "INTERACTION_CREATE",
        {"id": "i0", "type": 11, "chat_type": 0, "channel_id": "635", "guild_id": "18"},
        "/channels/635/messages",
        {"event_id": "E"},
    ),
    (
        "INTERACTION_CREATE",
        {"id": "i1", "type": 11, "chat_type": 1, "group_openid": GROUP},
        f"/v2/groups/{GROUP}/messages",
        {"event_id": "E", "msg_seq": 1},
    ),
    (
        "INTERACTION_CREATE",
        {"id": "i2", "type": 11, "chat_type": 2, "user_openid": USER},
        f"/v2/users/{USER}/messages",
        {"event_id": "E", "msg_seq": 1},
    ),
    (
        "GROUP_ADD_ROBOT",
        {"group_openid": GROUP},
        f"/v2/groups/{GROUP}/messages",
        {"event_id": "E", "msg_seq": 1},
    ),
    (
        "GROUP_MSG_RECEIVE",
        {"group_openid": GROUP},
        f"/v2/groups/{GROUP}/messages",
        {"event_id": "E", "msg_seq": 1},
    ),
    ("FRIEND_ADD", {"openid": USER}, f"/v2/users/{USER}/messages", {"event_id": "E", "msg_seq": 1}),
    (
        "C2C_MSG_RECEIVE",
        {"openid": USER},
        f"/v2/users/{USER}/messages",
        {"event_id": "E", "msg_seq": 1},
    ),
]


@pytest.mark.parametrize(
    ("t", "d", "path", "fields"),
    REPLY_TARGETS,
    ids=[f"{t} {d.get('chat_type', '')}".strip() for t, d, *_ in REPLY_TARGETS],
)
def test_each_event_is_answered_where_it_came_from(
    t: str, d: dict[str, object], path: str, fields: dict[str, object]
) -> None:
    conversations = Conversations()
    event = decode(json.dumps({"op": 0, "s": 2, "t": t, "id": "E", "d": d}))[4]
    assert conversations.inbound(event, 0.0)
    call, _ = conversations.begin(event, "ok", 1.0)
    assert call.path == path
    body = call.json_body or {}
    assert {k: body.get(k) for k in ("msg_id", "event_id", "msg_seq")} == {
        "msg_id": None,
        "event_id": None,
        "msg_seq": None,
        **fields,
    }


@pytest.mark.parametrize(
    ("t", "d"),
    [
        ("INTERACTION_CREATE", {"id": "i", "type": 11, "chat_type": 5}),  # a scene we do not know
        ("INTERACTION_CREATE", {"id": "i", "type": 11, "chat_type": 1}),  # no group_openid
        ("GROUP_DEL_ROBOT", {"group_openid": GROUP}),
        ("FRIEND_DEL", {"openid": USER}),
    ],
)
def test_events_without_a_place_to_answer_take_no_reply(t: str, d: dict[str, object]) -> None:
    conversations = Conversations()
    event = decode(json.dumps({"op": 0, "s": 2, "t": t, "id": "E", "d": d}))[4]
    assert conversations.inbound(event, 0.0)
    with pytest.raises(ReplyRefused, match="takes no passive reply"):
        conversations.context(event, 1.0)


class MyGroupAt(GroupAtMessageCreate, frozen=True, kw_only=True):
    """An application's own subclass of a typed event."""


def test_a_subclass_of_a_message_is_answered_as_its_base() -> None:
    conversations = Conversations()
    base = message(Scene.GROUP, "ROBOT1.0_s", "E:s")
    assert isinstance(base, GroupAtMessageCreate)
    mine = MyGroupAt(**{f: getattr(base, f) for f in base.__struct_fields__})
    assert conversations.inbound(mine, 0.0)
    call, _ = conversations.begin(mine, "ok", 1.0)
    assert call.path == f"/v2/groups/{GROUP}/messages"
    assert (call.json_body or {}).get("msg_id") == "ROBOT1.0_s"


def test_a_media_reply_keeps_its_text_beside_the_media() -> None:
    conversations = Conversations()
    event = message(Scene.GROUP, "m1", "E:1")
    assert conversations.inbound(event, 0.0)
    call, _ = conversations.begin(event, "look at this", 1.0, media_file_info="FILEINFO")
    body = call.json_body or {}
    assert body["content"] == "look at this" and body["media"] == {"file_info": "FILEINFO"}


def test_a_raw_id_that_came_as_two_types_drops_each_types_redelivery() -> None:
    conversations = Conversations()
    first, other = Dispatch("X_EVENT", 2, "E1", {}), Dispatch("Y_EVENT", 3, "E1", {})
    assert conversations.inbound(first, 0.0)
    assert conversations.inbound(other, 1.0)  # the same id in another type: news
    assert not conversations.inbound(Dispatch("Y_EVENT", 4, "E1", {}), 2.0)
    assert not conversations.inbound(Dispatch("X_EVENT", 5, "E1", {}), 3.0)
    assert conversations.redeliveries == 2


def test_an_envelope_that_came_as_two_typed_messages_drops_their_raw_copies() -> None:
    conversations = Conversations()
    at = message(Scene.GROUP, "m1", "ENV")  # GROUP_AT_MESSAGE_CREATE, envelope ENV
    plain = decode(
        json.dumps(
            {
                "op": 0,
                "s": 3,
                "t": "GROUP_MESSAGE_CREATE",
                "id": "ENV",
                "d": {
                    "id": "m2",
                    "content": "hi",
                    "author": {"member_openid": USER},
                    "group_openid": GROUP,
                },
            }
        )
    )[4]
    assert conversations.inbound(at, 0.0) and conversations.inbound(plain, 1.0)
    # A raw copy of the second, without d.id, known by its envelope and type.
    raw = Dispatch("GROUP_MESSAGE_CREATE", 4, "ENV", {"content": "hi"})
    assert not conversations.inbound(raw, 2.0)
