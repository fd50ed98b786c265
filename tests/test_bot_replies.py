"""BotProtocol's passive replies: msg_id and msg_seq, redeliveries, refusals, retries."""

from __future__ import annotations

from typing import Any

import pytest

from qqproto.errors import LocalProtocolError
from qqproto.qq.api import Target, send_text
from qqproto.qq.decode import EventDecodeError
from qqproto.qq.events import (
    AtMessageCreate,
    Dispatch,
    FriendDel,
    InteractionCreate,
    MessageCreate,
)
from qqproto.qq.reply_rules import OwnMessageAsReplyTarget, Refusal, ReplyRefused
from qqproto.qq.results import SentMessage
from qqproto.qq.scenes import Scene

from .bot_world import (
    FIRST_SENT,
    GROUP,
    GROUP_MSG,
    INBOUND,
    SENT_AT,
    USER,
    World,
    body,
    broken_group_at,
    c2c,
    dispatch,
    group_at,
    raw_dispatches,
    reply,
    results,
    violations,
)


def test_replies_to_a_group_message_get_msg_seq_1_2_3() -> None:
    w = World()
    w.start()
    event = group_at(w)
    ids = [w.bot.reply(event, f"r{n}", w.now) for n in range(3)]
    w.collect()
    sent = [w.requests.pop(0) for _ in range(3)]
    assert {r.url for r in sent} == {f"https://api.sgroup.qq.com/v2/groups/{GROUP}/messages"}
    assert [(body(r)["msg_id"], body(r)["msg_seq"]) for r in sent] == [
        (GROUP_MSG, 1),
        (GROUP_MSG, 2),
        (GROUP_MSG, 3),
    ]
    for n, request in enumerate(sent):
        w.requests.append(request)
        w.answer(reply({"id": f"ROBOT1.0_out{n}", "timestamp": SENT_AT}))
    assert [(r.request_id, r.ok) for r in results(w)] == [(i, True) for i in ids]


def test_seed_003_replies_carry_the_inbound_id_never_the_returned_one() -> None:
    w = World()
    w.start()
    event = c2c(w, INBOUND)
    w.bot.reply(event, "first", w.now)
    w.collect()
    first = w.answer(reply({"id": FIRST_SENT, "timestamp": SENT_AT}))
    assert first.url == f"https://api.sgroup.qq.com/v2/users/{USER}/messages"
    assert (body(first)["msg_id"], body(first)["msg_seq"]) == (INBOUND, 1)
    [result] = results(w)
    assert result.ok and isinstance(result.result, SentMessage)
    assert result.result.id == FIRST_SENT
    for seq in (2, 3, 4):
        w.now += 10
        w.bot.reply(event, f"again {seq}", w.now)
        w.collect()
        later = w.answer(reply({"id": f"ROBOT1.0_rPi8{seq}", "timestamp": SENT_AT}))
        assert (body(later)["msg_id"], body(later)["msg_seq"]) == (INBOUND, seq)
        assert FIRST_SENT not in later.body.decode()
    # The returned id can never become a reply target, even if it came back inbound.
    with pytest.raises(OwnMessageAsReplyTarget):
        w.bot.conversations.tracker.inbound(Scene.C2C, USER, w.now, msg_id=FIRST_SENT)
    echo = c2c(w, FIRST_SENT, seq=3)
    with pytest.raises(ReplyRefused):
        w.bot.reply(echo, "to my own message", w.now)
    assert w.requests == []


CHANNEL = "635123456"
BOT_USER = "1"  # READY's user.id in World.start()


def guild_at(w: World, msg_id: str, seq: int, *, author: str = "U7", bot: bool = False) -> Any:
    d = {
        "id": msg_id,
        "content": f"<@!{BOT_USER}> hi",
        "author": {"id": author, "bot": bot},
        "channel_id": CHANNEL,
        "guild_id": "187",
    }
    dispatch(w, "AT_MESSAGE_CREATE", d, seq, f"AT_MESSAGE_CREATE:{seq}")
    return w.delivered[-1]


@pytest.mark.parametrize("scene", ["group", "channel"])
def test_a_proactive_sends_id_is_never_a_reply_target(scene: str) -> None:
    """Not only replies: any send's id is the bot's own (seed 003, by another road)."""
    w = World()
    w.start()
    target = Target.group(GROUP) if scene == "group" else Target.channel(CHANNEL)
    w.call(send_text(target, "good morning"))
    w.answer(reply({"id": FIRST_SENT, "timestamp": SENT_AT}))
    assert w.bot.conversations.tracker.sent_ids == 1
    # The platform echoes it back as an inbound message (a guild bot sees its own).
    echo = group_at(w, FIRST_SENT, seq=2) if scene == "group" else guild_at(w, FIRST_SENT, 2)
    with pytest.raises(OwnMessageAsReplyTarget) as refused:
        w.bot.reply(echo, "answering myself", w.now)
    assert refused.value.message_id == FIRST_SENT
    assert w.requests == []


def test_an_echo_written_by_the_bot_is_refused_before_its_send_is_answered() -> None:
    w = World()
    w.start()
    w.call(send_text(Target.channel(CHANNEL), "good morning"))
    # The echo comes first: its author is the bot (READY's user.id).
    echo = guild_at(w, "08e0own", 2, author=BOT_USER, bot=True)
    with pytest.raises(OwnMessageAsReplyTarget):
        w.bot.reply(echo, "answering myself", w.now)
    w.answer(reply({"id": "08e0own"}))  # and now its answer, naming the same id
    with pytest.raises(OwnMessageAsReplyTarget):
        w.bot.reply(echo, "answering myself", w.now)
    # Someone else's message, and another bot's, still take replies.
    other = guild_at(w, "08e0user", 3)
    w.bot.reply(other, "hello", w.now)
    another_bot = guild_at(w, "08e0bot", 4, author="99", bot=True)
    w.bot.reply(another_bot, "hello, bot", w.now)
    w.collect()
    assert [body(r)["msg_id"] for r in w.requests] == ["08e0user", "08e0bot"]


def test_an_echo_whose_author_is_unknown_is_refused_once_the_send_is_answered() -> None:
    w = World()
    w.start()
    w.call(send_text(Target.group(GROUP), "good morning"))
    echo = group_at(w, FIRST_SENT, seq=2)  # a group author is an openid: no match
    w.answer(reply({"id": FIRST_SENT, "timestamp": SENT_AT}))
    with pytest.raises(OwnMessageAsReplyTarget):
        w.bot.reply(echo, "answering myself", w.now)
    assert w.requests == []


def test_a_redelivered_inbound_message_reaches_the_application_once() -> None:
    w = World()
    w.start()
    group_at(w, seq=2)
    before = len(w.delivered)
    group_at(w, seq=3)  # the same message id, in a new envelope (spec 14, quirk 7)
    assert len(w.delivered) == before and w.bot.redeliveries == 1
    group_at(w, "ROBOT1.0_other", seq=4)  # another id still comes through
    assert len(w.delivered) == before + 1 and w.bot.redeliveries == 1


def guild_message(w: World, t: str, msg_id: str, seq: int) -> Any:
    d = {"id": msg_id, "content": "hi", "author": {"id": "U7"}, "channel_id": CHANNEL}
    dispatch(w, t, {**d, "guild_id": "187"}, seq, f"{t}:{seq}")
    return w.delivered[-1]


@pytest.mark.parametrize("first", ["MESSAGE_CREATE", "AT_MESSAGE_CREATE"])
def test_one_message_in_two_dispatch_types_reaches_the_application_in_each(first: str) -> None:
    """A guild bot subscribed to both gets MESSAGE_CREATE and AT_MESSAGE_CREATE (in
    either order: one type's name holds the other's, which must not make it a match)."""
    w = World()
    w.start()
    second = "AT_MESSAGE_CREATE" if first == "MESSAGE_CREATE" else "MESSAGE_CREATE"
    guild_message(w, first, "08e0m1", 2)
    guild_message(w, second, "08e0m1", 3)
    assert w.bot.redeliveries == 0
    guild_message(w, "AT_MESSAGE_CREATE", "08e0m1", 4)  # a redelivery of each of them
    guild_message(w, "MESSAGE_CREATE", "08e0m1", 5)
    assert w.bot.redeliveries == 2
    messages = [e for e in w.delivered if isinstance(e, MessageCreate | AtMessageCreate)]
    assert [type(e).TYPE for e in messages] == [first, second]
    # A raw copy of it in either type is a redelivery too.
    broken = {"id": "08e0m1", "content": "hi", "author": {"id": "U7"}}  # no channel_id
    dispatch(w, first, broken, 6, f"{first}:6")
    assert w.bot.redeliveries == 3


def test_one_message_in_two_types_has_one_reply_budget() -> None:
    w = World()
    w.start()
    d = {"id": GROUP_MSG, "content": " hi", "author": {"member_openid": "M1"}}
    dispatch(w, "GROUP_AT_MESSAGE_CREATE", {**d, "group_openid": GROUP}, 2, "GROUP_AT:2")
    at_me = w.delivered[-1]
    dispatch(w, "GROUP_MESSAGE_CREATE", {**d, "group_openid": GROUP}, 3, "GROUP_MSG:3")
    everything = w.delivered[-1]
    assert type(at_me) is not type(everything)
    for n, event in enumerate([at_me, everything, at_me, everything, at_me]):
        w.bot.reply(event, f"r{n}", w.now)
        w.collect()
        w.answer(reply({"id": f"ROBOT1.0_out{n}", "timestamp": SENT_AT}))
    with pytest.raises(ReplyRefused, match="5 of 5 replies") as refused:
        w.bot.reply(everything, "one too many", w.now)
    assert refused.value.reason is Refusal.BUDGET_SPENT


@pytest.mark.parametrize("msg_id", ["", 7, None])
def test_raw_messages_whose_id_names_nothing_are_each_delivered(msg_id: object) -> None:
    w = World()
    w.start()
    broken = {"id": msg_id, "content": "hi", "author": {"id": "U7"}}
    dispatch(w, "MESSAGE_CREATE", broken, 2, "MESSAGE_CREATE:a")
    dispatch(w, "MESSAGE_CREATE", broken, 3, "MESSAGE_CREATE:b")  # another envelope
    assert len(raw_dispatches(w)) == 2 and w.bot.redeliveries == 0


def test_events_whose_envelope_id_names_nothing_are_each_delivered() -> None:
    w = World()
    w.start()
    for seq in (2, 3):
        w.gateway_send({"op": 0, "s": seq, "t": "FRIEND_DEL", "id": "", "d": {"openid": USER}})
    assert len([e for e in w.delivered if isinstance(e, FriendDel)]) == 2
    assert w.bot.redeliveries == 0


def test_a_raw_copy_in_one_type_hides_no_typed_copy_in_another() -> None:
    w = World()
    w.start()
    broken = {"id": "08e0m2", "content": "hi", "author": {"id": "U7"}}  # no channel_id
    dispatch(w, "MESSAGE_CREATE", broken, 2, "MESSAGE_CREATE:2")
    assert isinstance(w.delivered[-1], Dispatch)
    at_me = guild_message(w, "AT_MESSAGE_CREATE", "08e0m2", 3)
    assert isinstance(at_me, AtMessageCreate) and w.bot.redeliveries == 0
    dispatch(w, "MESSAGE_CREATE", broken, 4, "MESSAGE_CREATE:4")  # the raw one again
    assert w.bot.redeliveries == 1


def test_a_redelivered_undecodable_dispatch_reaches_the_application_once() -> None:
    w = World()
    w.start()
    broken_group_at(w, "GROUP_AT_MESSAGE_CREATE:a", seq=2)
    [raw] = raw_dispatches(w)
    assert (raw.type, raw.id, raw.data["id"]) == (
        "GROUP_AT_MESSAGE_CREATE",
        "GROUP_AT_MESSAGE_CREATE:a",
        GROUP_MSG,
    )
    broken_group_at(w, "GROUP_AT_MESSAGE_CREATE:a", seq=3)  # the same envelope again
    broken_group_at(w, "GROUP_AT_MESSAGE_CREATE:b", seq=4)  # the same message, a new envelope
    assert raw_dispatches(w) == [raw] and w.bot.redeliveries == 2
    # Each bad payload that came is still reported: the server did send it three times.
    assert len(violations(w)) == 3
    assert all(isinstance(v.error, EventDecodeError) for v in violations(w))
    broken_group_at(w, "GROUP_AT_MESSAGE_CREATE:c", "ROBOT1.0_other", seq=5)
    assert len(raw_dispatches(w)) == 2 and w.bot.redeliveries == 2


def test_a_raw_dispatch_of_an_untyped_event_is_de_duplicated_by_its_envelope_id() -> None:
    w = World()
    w.start()
    for seq in (2, 3):
        dispatch(w, "SOME_FUTURE_EVENT", {"id": "x"}, seq, "SOME_FUTURE_EVENT:1")
    dispatch(w, "SOME_FUTURE_EVENT", {"id": "x"}, 4, "SOME_FUTURE_EVENT:2")
    # Not a message type: its d.id is nothing to the de-dup, the envelope id is.
    assert [e.id for e in raw_dispatches(w)] == ["SOME_FUTURE_EVENT:1", "SOME_FUTURE_EVENT:2"]
    assert w.bot.redeliveries == 1 and violations(w) == []


def test_a_raw_dispatch_of_a_message_takes_no_reply() -> None:
    w = World()
    w.start()
    broken_group_at(w, "GROUP_AT_MESSAGE_CREATE:a")
    [raw] = raw_dispatches(w)
    with pytest.raises(ReplyRefused, match="raw GROUP_AT_MESSAGE_CREATE") as refused:
        w.bot.reply(raw, "hello", w.now)
    assert refused.value.reason is Refusal.UNKNOWN
    assert w.requests == [] and len(w.bot.conversations.tracker) == 0
    # The same message typed, later, is the form that takes replies: it comes through.
    typed = group_at(w, seq=3)
    assert typed.id == raw.data["id"] and w.bot.redeliveries == 0
    w.bot.reply(typed, "hello", w.now)
    w.collect()
    assert body(w.requests[-1])["msg_id"] == typed.id
    # And the raw form after it is dropped, by d.id or by the typed one's envelope.
    broken_group_at(w, "GROUP_AT_MESSAGE_CREATE:z", seq=4)
    dispatch(w, "GROUP_AT_MESSAGE_CREATE", {"content": 5}, 5, "GROUP_AT_MESSAGE_CREATE:3")
    assert raw_dispatches(w) == [raw] and w.bot.redeliveries == 2


def test_a_5xx_reply_is_retried_with_its_msg_seq_and_a_duplicate_means_delivered() -> None:
    w = World()
    w.start()
    event = group_at(w)
    call_id = w.bot.reply(event, "hello", w.now)
    w.collect()
    first = w.answer(reply({"message": "internal error", "code": 500}, status=503))
    assert results(w) == []
    w.advance(3)
    [retry] = w.requests
    assert body(retry) == body(first) and body(retry)["msg_seq"] == 1
    w.answer(reply({"message": "duplicate", "code": 40054005, "err_code": 40054005}, 400))
    [result] = results(w)
    assert (result.request_id, result.ok, result.error) == (call_id, True, None)
    # Delivered by the first attempt: no message came back, and the result says so.
    assert result.delivered_earlier and result.result is None
    w.bot.reply(event, "next", w.now)
    w.collect()
    assert body(w.requests[-1])["msg_seq"] == 2  # never 1 again


@pytest.mark.parametrize(
    "answer",
    [
        {"message": "duplicate", "code": 400, "err_code": 40054005},
        {"message": "duplicate", "code": 40054005, "err_code": 11255},
        {"message": "duplicate", "code": 40054005},
        {"message": "duplicate", "err_code": "40054005"},
    ],
    ids=["in err_code", "in code", "code alone", "err_code as a string"],
)
def test_a_duplicate_is_read_from_code_or_err_code(answer: dict[str, Any]) -> None:
    w = World()
    w.start()
    event = group_at(w)
    w.bot.reply(event, "hello", w.now)
    w.collect()
    w.answer(reply({"message": "internal error", "code": 500}, status=503))
    w.advance(3)
    w.answer(reply(answer, 400))
    [result] = results(w)
    assert result.ok and result.delivered_earlier


@pytest.mark.parametrize(
    ("text", "options"),
    [("", {}), (5, {}), ("hi", {"markdown": 5}), ("hi", {"media_file_info": ""})],
    ids=["empty", "not text", "markdown of the wrong type", "empty file_info"],
)
def test_a_reply_that_cannot_be_built_spends_none_of_the_budget(
    text: Any, options: dict[str, Any]
) -> None:
    w = World()
    w.start()
    event = group_at(w)
    with pytest.raises(LocalProtocolError):
        w.bot.reply(event, text, w.now, **options)
    assert w.requests == []
    for n in range(5):  # the whole budget is still there, with msg_seq 1 to 5
        w.bot.reply(event, f"r{n}", w.now)
        w.collect()
        w.answer(reply({"id": f"ROBOT1.0_out{n}", "timestamp": SENT_AT}))
    assert [r.ok for r in results(w)] == [True] * 5


def test_a_reply_retried_after_a_5xx_that_lands_now_was_not_delivered_earlier() -> None:
    w = World()
    w.start()
    event = group_at(w)
    w.bot.reply(event, "hello", w.now)
    w.collect()
    w.answer(reply({"message": "internal error", "code": 500}, status=503))
    w.advance(3)
    w.answer(reply({"id": "ROBOT1.0_out", "timestamp": SENT_AT}))
    [result] = results(w)
    assert result.ok and not result.delivered_earlier
    assert isinstance(result.result, SentMessage) and result.result.id == "ROBOT1.0_out"


def test_a_duplicate_on_the_first_attempt_is_an_error_not_delivered_earlier() -> None:
    w = World()
    w.start()
    event = group_at(w)
    w.bot.reply(event, "hello", w.now)
    w.collect()
    w.answer(reply({"message": "duplicate", "code": 40054005, "err_code": 40054005}, 400))
    [result] = results(w)
    assert not result.ok and not result.delivered_earlier and result.result is None


def test_a_spent_budget_is_refused_locally_with_the_reason() -> None:
    w = World()
    w.start()
    event = group_at(w)
    for n in range(5):
        w.bot.reply(event, f"r{n}", w.now)
        w.collect()
        w.answer(reply({"id": f"ROBOT1.0_out{n}", "timestamp": SENT_AT}))
    with pytest.raises(ReplyRefused, match="5 of 5 replies") as refused:
        w.bot.reply(event, "one too many", w.now)
    assert refused.value.reason is Refusal.BUDGET_SPENT
    assert (refused.value.used, refused.value.cap) == (5, 5)
    assert w.requests == []


def test_a_closed_window_is_refused_locally() -> None:
    w = World()
    w.start()
    event = group_at(w)
    w.now += 300.0
    with pytest.raises(ReplyRefused, match="window") as refused:
        w.bot.reply(event, "too late", w.now)
    assert refused.value.reason is Refusal.WINDOW_CLOSED
    assert w.requests == []


def test_a_dead_msg_id_refuses_later_replies_locally() -> None:
    w = World()
    w.start()
    event = group_at(w)
    w.bot.reply(event, "hello", w.now)
    w.collect()
    w.answer(reply({"message": "msg_id expired", "code": 40034005, "err_code": 40034005}, 400))
    [result] = results(w)
    assert not result.ok
    with pytest.raises(ReplyRefused) as refused:
        w.bot.reply(event, "again", w.now)
    assert refused.value.reason is Refusal.DEAD and refused.value.code == 40034005


def test_a_button_press_is_answered_by_its_event_id_and_a_friend_del_takes_no_reply() -> None:
    w = World()
    w.start()
    press = {"id": "30540ff7", "type": 11, "chat_type": 2, "user_openid": USER}
    dispatch(w, "INTERACTION_CREATE", press, 2, "INTERACTION_CREATE:abc")
    event = w.delivered[-1]
    assert isinstance(event, InteractionCreate)
    w.bot.reply(event, "pressed", w.now)
    w.collect()
    [request] = w.requests
    assert request.url.endswith(f"/v2/users/{USER}/messages")
    assert body(request)["event_id"] == "INTERACTION_CREATE:abc" and body(request)["msg_seq"] == 1
    dispatch(w, "FRIEND_DEL", {"openid": USER}, 3, "FRIEND_DEL:1")
    gone = w.delivered[-1]
    assert isinstance(gone, FriendDel)
    with pytest.raises(ReplyRefused, match="takes no passive reply"):
        w.bot.reply(gone, "bye", w.now)
