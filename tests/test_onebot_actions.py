"""OneBot actions in both dialects, and answers in all their real shapes (spec 2, 6, 7.3, 10.12)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qqproto.errors import LocalProtocolError, RemoteProtocolError
from qqproto.onebot.actions import (
    Action,
    ActionFailed,
    Chat,
    delete_message,
    describe_retcode,
    get_file,
    get_group_member_info,
    get_message,
    get_self_info,
    is_answer,
    read_answer,
    send_message,
)
from qqproto.onebot.segments import Segment

MESSAGE = [Segment.mention(10001), Segment.text(" hi"), Segment.reply(-5)]


def test_send_message_in_v11_is_send_msg_with_v11_segments() -> None:
    action = send_message(Chat.group(20002), MESSAGE, 11)
    assert action == Action(
        "send_msg",
        {
            "message_type": "group",
            "group_id": 20002,
            "message": [
                {"type": "at", "data": {"qq": "10001"}},
                {"type": "text", "data": {"text": " hi"}},
                {"type": "reply", "data": {"id": "-5"}},
            ],
        },
    )


def test_send_message_in_v12_has_string_ids_and_v12_segments() -> None:
    action = send_message(Chat.private(10001), [Segment.mention_all(), Segment.text("x")], 12)
    assert action == Action(
        "send_message",
        {
            "detail_type": "private",
            "user_id": "10001",
            "message": [
                {"type": "mention_all", "data": {}},
                {"type": "text", "data": {"text": "x"}},
            ],
        },
    )


def test_a_str_message_is_text_never_cq_codes() -> None:
    action = send_message(Chat.private(1), "[CQ:face,id=1] &", 11)
    assert action.params["message"] == [{"type": "text", "data": {"text": "[CQ:face,id=1] &"}}]


def test_the_minimal_set_in_both_dialects() -> None:
    assert delete_message(-7, 11) == Action("delete_msg", {"message_id": -7})
    assert delete_message(-7, 12) == Action("delete_message", {"message_id": "-7"})
    assert get_self_info(11).name == "get_login_info" and get_self_info(12).name == "get_self_info"
    assert get_group_member_info(2, 1, 12).params == {"group_id": "2", "user_id": "1"}
    assert get_message(5, 11) == Action("get_msg", {"message_id": 5})
    with pytest.raises(LocalProtocolError, match="v12 has no get_message"):
        get_message(5, 12)


def test_get_file_in_each_dialect() -> None:
    assert get_file("f1", 12, form="path") == Action("get_file", {"file_id": "f1", "type": "path"})
    assert get_file("a.jpg", 11, kind="image") == Action("get_image", {"file": "a.jpg"})
    voice = get_file("a.amr", 11, kind="voice")
    assert voice == Action("get_record", {"file": "a.amr", "out_format": "mp3"})
    assert get_file("/f/x", 11) == Action("get_file", {"file_id": "/f/x"})


def test_a_frame_carries_the_echo_as_a_string_and_self_when_asked() -> None:
    frame = json.loads(Action("get_status").frame("7", self_id="123"))
    assert frame == {
        "action": "get_status",
        "params": {},
        "echo": "7",
        "self": {"platform": "qq", "user_id": "123"},
    }
    assert "self" not in json.loads(Action("x", {"a": 1}).frame("8"))


# -- answers ----------------------------------------------------------------------------------


def answer(**fields: Any) -> dict[str, Any]:
    return {"status": "ok", "retcode": 0, "data": {"message_id": 5}, "echo": "1", **fields}


def test_an_ok_answer_gives_its_data() -> None:
    got = read_answer(answer(stream="normal-action", message="", wording=""))  # NapCat's extras
    assert got.ok and got.result() == {"message_id": 5} and got.echo == "1"


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "async", "retcode": 1, "data": None},  # accepted, outcome unknown
        {"status": "", "retcode": 0},  # Lagrange
        {"retcode": 0},  # no status
        {"status": "ok", "retcode": None},  # no retcode: the status says it
    ],
)
def test_what_counts_as_success(fields: dict[str, Any]) -> None:
    assert read_answer(answer(**fields)).ok


@pytest.mark.parametrize(
    ("fields", "retcode", "words"),
    [
        ({"status": "failed", "retcode": 1404, "message": "不支持的Api"}, 1404, "不支持的Api"),
        ({"status": "failed", "retcode": 100, "wording": "消息为空", "msg": "X"}, 100, "消息为空"),
        ({"status": "failed", "retcode": 1, "msg": "generic"}, 1, "generic"),  # Lagrange
        ({"status": "ok", "retcode": 1200}, 1200, ""),  # a retcode but 0 fails whatever the status
        ({"status": "failed", "retcode": 0}, 0, ""),  # failed whatever the retcode
        ({"status": "Upload failed: disk full", "retcode": 200}, 200, ""),  # Lagrange's free text
    ],
)
def test_failures_raise_with_the_retcode_and_the_implementations_words(
    fields: dict[str, Any], retcode: int, words: str
) -> None:
    got = read_answer(answer(**fields))
    assert not got.ok
    with pytest.raises(ActionFailed) as failed:
        got.result()
    assert failed.value.retcode == retcode and failed.value.wording == words
    assert f"retcode {retcode}" in str(failed.value) and words in str(failed.value)


@pytest.mark.parametrize("echo", ["1", 1, {"seq": 1}, "", None])
def test_any_echo_comes_back_as_it_came(echo: object) -> None:
    assert read_answer(answer(echo=echo)).echo == echo


def test_an_answer_without_echo_is_still_an_answer() -> None:
    obj = answer()
    del obj["echo"]  # LLOneBot's 1400 over WS
    assert read_answer(obj).echo is None


@pytest.mark.parametrize(
    "obj",
    [[], "x", {}, {"post_type": "message", "status": "ok"}, {"type": "a", "detail_type": "b"}],
)
def test_what_is_no_answer_is_a_typed_error(obj: object) -> None:
    assert not (isinstance(obj, dict) and is_answer(obj))
    with pytest.raises(RemoteProtocolError, match="not an action answer"):
        read_answer(obj)


@pytest.mark.parametrize(
    ("retcode", "meaning"),
    [
        (1403, "access token wrong"),
        (10002, "unsupported action"),
        (34001, "platform error"),
        (61525, "an implementation's own code"),
        (None, "no retcode"),
    ],
)
def test_retcodes_are_described(retcode: int | None, meaning: str) -> None:
    assert describe_retcode(retcode) == meaning
