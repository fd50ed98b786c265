"""The REST layer: builders, the request they become, answers and errors.

Bodies are the real-shaped samples of spec/qq-official.md (sections 1.4, 7,
8, 9 and the quirk list of section 14); the code table is checked row by row
against the spec's table, typed out again here on purpose.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qqproto.errors import ConfigError, LocalProtocolError, ProtocolError, RemoteProtocolError
from qqproto.http import HttpResponse
from qqproto.qq import ReplyTracker, Scene, api, results
from qqproto.qq.api import ApiCall, ApiConfig, FileType, InteractionCode, MsgType, ReplyTo, Target
from qqproto.qq.codes import CODES, ApiCode, ApiError, CodeFlag, as_int, lookup
from qqproto.qq.results import (
    GatewayInfo,
    SentMessage,
    SessionLimitExceeded,
    SessionStartLimit,
    UploadedMedia,
)

TOKEN = "tok-Secret-0123"
CONFIG = ApiConfig("102000000")
GROUP = Target.group("C9F778FE6ADF9D1D1DBE395BF744A33A")
USER = Target.c2c("E4F4AEA33253A2797FB897C50B81D7ED")
CHANNEL = Target.channel("635123456")
DM = Target.dm("1234567890")


def body_of(call: ApiCall[Any]) -> Any:
    return json.loads(call.body) if call.body else None


def answer(status: int, body: object = None, *headers: tuple[str, str]) -> HttpResponse:
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return HttpResponse(status, headers, raw)


# -- configuration and the request ----------------------------------------------------------


def test_config_bases() -> None:
    assert CONFIG.base_url == "https://api.sgroup.qq.com" == api.PRODUCTION_BASE_URL
    assert ApiConfig.sandbox("1").base_url == "https://sandbox.api.sgroup.qq.com"
    assert ApiConfig("1", "https://api.bot.qq.com/").base_url == "https://api.bot.qq.com"
    assert (
        ApiConfig("1", "http://127.0.0.1:8080/prefix/").base_url == "http://127.0.0.1:8080/prefix"
    )
    # An IDN host is kept IDNA-encoded: the base goes into every request as it is.
    assert ApiConfig("1", "https://例子.测试/").base_url == "https://xn--fsqu00a.xn--0zwm56d"
    assert ApiConfig("1", "http://[::1]:8080").base_url == "http://[::1]:8080"


@pytest.mark.parametrize(
    ("app_id", "base"),
    [
        ("", api.PRODUCTION_BASE_URL),
        ("1 2", api.PRODUCTION_BASE_URL),
        ("1", "api.sgroup.qq.com"),
        ("1", "wss://api.sgroup.qq.com"),
        ("1", "https://api.sgroup.qq.com/?x=1"),
        ("1", "https://u:p@api.sgroup.qq.com"),
        ("1", "https://bad host"),
        ("1", "https://x:99999"),
    ],
)
def test_bad_config_is_refused(app_id: str, base: str) -> None:
    with pytest.raises(ConfigError):
        ApiConfig(app_id, base)


def test_the_request_carries_token_app_id_and_content_type() -> None:
    call = api.send_text(GROUP, "hi")
    req = call.to_request(7, TOKEN, CONFIG)
    assert (req.request_id, req.method) == (7, "POST")
    assert req.url == f"https://api.sgroup.qq.com/v2/groups/{GROUP.id}/messages"
    assert req.headers == (
        ("Authorization", f"QQBot {TOKEN}"),
        ("X-Union-Appid", "102000000"),
        ("Content-Type", "application/json"),
    )
    assert req.body == call.body == b'{"content":"hi","msg_type":0}'


def test_a_call_without_body_has_no_content_type() -> None:
    req = api.get_gateway().to_request(1, TOKEN, ApiConfig.sandbox("9"))
    assert req.url == "https://sandbox.api.sgroup.qq.com/gateway"
    assert [name for name, _ in req.headers] == ["Authorization", "X-Union-Appid"]
    assert req.body == b""


def test_the_token_never_shows() -> None:
    call = api.send_text(USER, "secret plans")
    req = call.to_request(1, TOKEN, CONFIG)
    for text in (repr(call), str(call), repr(req), repr(CONFIG)):
        assert TOKEN not in text
    for bad in ("", f"QQBot {TOKEN}", f"{TOKEN}\r\nX: y", f"{TOKEN}é"):
        with pytest.raises(LocalProtocolError) as info:
            call.to_request(1, bad, CONFIG)
        assert TOKEN not in str(info.value)


def test_bodies_are_compact_utf8_json() -> None:
    call = api.send_text(GROUP, "你好 <@!1>")
    assert call.body == '{"content":"你好 <@!1>","msg_type":0}'.encode()
    assert repr(call) == f"ApiCall(POST {GROUP.path}/messages, body=<{len(call.body)} bytes>)"


@pytest.mark.parametrize("bad", [float("nan"), "\ud800", object()])
def test_a_body_that_cannot_be_json_is_ours(bad: object) -> None:
    with pytest.raises(LocalProtocolError, match="not JSON"):
        api.send_text(GROUP, "x", extra={"v": bad})


# -- paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "prefix"),
    [(GROUP, "/v2/groups/"), (USER, "/v2/users/"), (CHANNEL, "/channels/"), (DM, "/dms/")],
)
def test_message_endpoints(target: Target, prefix: str) -> None:
    assert api.send_text(target, "x").path == f"{prefix}{target.id}/messages"


@pytest.mark.parametrize("bad", ["", ".", "..", 12])
def test_bad_ids_are_refused(bad: Any) -> None:
    with pytest.raises(LocalProtocolError):
        Target.group(bad)
    with pytest.raises(LocalProtocolError):
        api.recall_message(GROUP, bad)
    with pytest.raises(LocalProtocolError):
        api.acknowledge_interaction(bad)


@given(st.text(min_size=1).filter(lambda s: s not in (".", "..")))
def test_any_id_is_one_safe_segment(raw: str) -> None:
    try:
        raw.encode()
    except UnicodeEncodeError:
        with pytest.raises(LocalProtocolError):
            Target.c2c(raw)
        return
    path = Target.c2c(raw).path
    segment = path.removeprefix("/v2/users/")
    assert not set(segment) & set("/?#") and segment.isascii() and " " not in segment
    assert unquote(segment) == raw


def test_ids_are_percent_encoded() -> None:
    assert Target.group("a/b?c#d%e f").path == "/v2/groups/a%2Fb%3Fc%23d%25e%20f"
    assert Target.channel("频道").path == "/channels/%E9%A2%91%E9%81%93"


# -- send bodies ------------------------------------------------------------------------------


def test_text_to_group_and_c2c() -> None:
    for target in (GROUP, USER):
        assert body_of(api.send_text(target, "hello")) == {"content": "hello", "msg_type": 0}


def test_text_to_guild_has_no_msg_type() -> None:
    for target in (CHANNEL, DM):
        assert body_of(api.send_text(target, "hello")) == {"content": "hello"}


def test_markdown_native_and_template() -> None:
    assert body_of(api.send_markdown(GROUP, "# hi")) == {
        "markdown": {"content": "# hi"},
        "msg_type": 2,
    }
    template = {"custom_template_id": "101_1", "params": [{"key": "title", "values": ["x"]}]}
    assert body_of(api.send_markdown(CHANNEL, template)) == {"markdown": template}


def test_media_content_is_a_space_when_empty() -> None:
    # spec 7.2: with msg_type 7 the content must not be empty
    for content in (None, "", "  "):
        call = api.send_media(USER, "FILEINFO", content=content)
        assert body_of(call) == {"content": " ", "media": {"file_info": "FILEINFO"}, "msg_type": 7}
    uploaded = UploadedMedia("uuid", "INFO", 3600)
    assert body_of(api.send_media(GROUP, uploaded, content="look")) == {
        "content": "look",
        "media": {"file_info": "INFO"},
        "msg_type": 7,
    }


@dataclass(frozen=True)
class Ticket:
    """Shaped like qqproto.qq.replies' tickets: the three attributes, nothing else."""

    msg_id: str | None
    event_id: str | None
    msg_seq: int


def test_passive_reply_fields_come_from_any_ticket() -> None:
    for ticket in (
        Ticket("ROBOT1.0_in", None, 3),
        SimpleNamespace(msg_id="ROBOT1.0_in", event_id=None, msg_seq=3),
        ReplyTo(msg_id="ROBOT1.0_in", msg_seq=3),
    ):
        assert body_of(api.send_text(GROUP, "ok", reply=ticket)) == {
            "content": "ok",
            "msg_type": 0,
            "msg_id": "ROBOT1.0_in",
            "msg_seq": 3,
        }


def test_an_event_reply_and_a_proactive_ticket() -> None:
    event = Ticket(None, "INTERACTION_CREATE:abc", 1)
    assert body_of(api.send_text(USER, "ok", reply=event)) == {
        "content": "ok",
        "msg_type": 0,
        "event_id": "INTERACTION_CREATE:abc",
        "msg_seq": 1,
    }
    proactive = ReplyTo(msg_seq=None)
    assert body_of(api.send_text(USER, "ok", reply=proactive)) == {"content": "ok", "msg_type": 0}


def test_a_ticket_for_another_conversation_is_refused() -> None:
    # Kloping/qqpd-bot-java #42: group B's msg_id on group A's URL is 40034024
    ticket = SimpleNamespace(msg_id="m", event_id=None, msg_seq=1, target="OTHER_GROUP")
    with pytest.raises(LocalProtocolError, match="another conversation"):
        api.send_text(GROUP, "x", reply=ticket)
    same = SimpleNamespace(msg_id="m", event_id=None, msg_seq=1, target=GROUP.id)
    assert body_of(api.send_text(GROUP, "x", reply=same))["msg_id"] == "m"


def test_tickets_from_the_reply_tracker_fit() -> None:
    tracker = ReplyTracker()
    ctx = tracker.inbound(Scene.GROUP, GROUP.id, 0.0, msg_id="ROBOT1.0_in")
    first, second = tracker.begin(ctx, 1.0), tracker.begin(ctx, 2.0)
    assert body_of(api.send_text(GROUP, "a", reply=first))["msg_seq"] == first.msg_seq
    body = body_of(api.send_text(GROUP, "b", reply=second))
    assert (body["msg_id"], body["msg_seq"]) == ("ROBOT1.0_in", second.msg_seq)
    assert second.msg_seq != first.msg_seq
    with pytest.raises(LocalProtocolError):
        api.send_text(Target.group("ELSEWHERE"), "c", reply=second)


def test_guild_replies_have_no_msg_seq() -> None:
    body = body_of(api.send_text(CHANNEL, "ok", reply=Ticket("08e092", None, 2)))
    assert body == {"content": "ok", "msg_id": "08e092"}


@pytest.mark.parametrize(
    "ticket",
    [
        Ticket("", None, 1),
        Ticket("m", None, 0),
        SimpleNamespace(msg_id="m", event_id=None, msg_seq=True),
    ],
)
def test_bad_tickets_are_refused(ticket: Any) -> None:
    with pytest.raises(LocalProtocolError):
        api.send_text(GROUP, "x", reply=ticket)


def test_a_quote_goes_in_message_reference() -> None:
    body = body_of(api.send_text(GROUP, "see", reference="REFIDX_abc"))
    assert body["message_reference"] == {"message_id": "REFIDX_abc"}


def test_extra_fields_and_other_msg_types() -> None:
    keyboard = {"id": "123_keyboard"}
    body = body_of(api.send_markdown(GROUP, "x", extra={"keyboard": keyboard}))
    assert body["keyboard"] == keyboard
    ark = {"template_id": 23, "kv": [{"key": "#DESC#", "value": "d"}]}
    call = api.send_message(USER, msg_type=MsgType.ARK, extra={"ark": ark})
    assert body_of(call) == {"msg_type": 3, "ark": ark}
    assert body_of(api.send_message(CHANNEL, extra={"image": "https://x/a.png"})) == {
        "image": "https://x/a.png"
    }


@pytest.mark.parametrize(
    "build",
    [
        lambda: api.send_text(GROUP, ""),
        lambda: api.send_text(CHANNEL, ""),
        lambda: api.send_message(DM),
        lambda: api.send_media(CHANNEL, "INFO"),
        lambda: api.send_media(GROUP, ""),
        lambda: api.send_message(GROUP, msg_type=MsgType.MEDIA),
        lambda: api.send_message(GROUP, content="x", msg_type=MsgType.TEXT, media="I"),
        lambda: api.send_message(CHANNEL, content="x", msg_type=MsgType.TEXT),
        lambda: api.send_markdown(GROUP, ""),
        lambda: api.send_text(GROUP, "x", extra={"msg_type": 3}),
        lambda: api.send_text(GROUP, "x", reference=""),
        lambda: api.send_message(GROUP, content=b"bytes"),  # type: ignore[arg-type]
    ],
)
def test_bad_sends_are_refused(build: Any) -> None:
    with pytest.raises(LocalProtocolError):
        build()


# -- upload, recall, interactions, reads ------------------------------------------------------


def test_upload_from_a_url() -> None:
    call = api.upload_media(GROUP, FileType.IMAGE, url="https://example.com/a.png")
    assert call.method == "POST" and call.path == f"/v2/groups/{GROUP.id}/files"
    assert body_of(call) == {
        "file_type": 1,
        "url": "https://example.com/a.png",
        "srv_send_msg": False,
    }


def test_upload_inline_bytes() -> None:
    call = api.upload_media(
        USER, FileType.FILE, data=b"\x00\x01PK", file_name="a.zip", srv_send_msg=True
    )
    assert call.path == f"/v2/users/{USER.id}/files"
    assert body_of(call) == {
        "file_type": 4,
        "file_data": base64.b64encode(b"\x00\x01PK").decode(),
        "srv_send_msg": True,
        "file_name": "a.zip",
    }


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"url": "https://a/b", "data": b"x"},
        {"url": "file:///etc/passwd"},
        {"data": "not bytes"},
    ],
)
def test_bad_uploads_are_refused(kwargs: Any) -> None:
    with pytest.raises(LocalProtocolError):
        api.upload_media(GROUP, FileType.IMAGE, **kwargs)


def test_upload_needs_a_group_or_user_and_a_known_type() -> None:
    with pytest.raises(LocalProtocolError):
        api.upload_media(CHANNEL, FileType.IMAGE, url="https://a/b")
    with pytest.raises(LocalProtocolError, match="IMAGE=1"):
        api.upload_media(GROUP, 9, url="https://a/b")  # type: ignore[arg-type]
    assert body_of(api.upload_media(GROUP, 3, url="https://a/b"))["file_type"] == 3  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (GROUP, f"/v2/groups/{GROUP.id}/messages/ROBOT1.0_x"),
        (USER, f"/v2/users/{USER.id}/messages/ROBOT1.0_x"),
        (CHANNEL, f"/channels/{CHANNEL.id}/messages/ROBOT1.0_x?hidetip=false"),
        (DM, f"/dms/{DM.id}/messages/ROBOT1.0_x"),
    ],
)
def test_recall(target: Target, path: str) -> None:
    call = api.recall_message(target, "ROBOT1.0_x")
    assert (call.method, call.path, call.json_body) == ("DELETE", path, None)
    assert call.parse(answer(204)) is None
    assert call.parse(answer(200, {})) is None


def test_recall_can_hide_the_tip() -> None:
    assert api.recall_message(CHANNEL, "m", hidetip=True).path.endswith("?hidetip=true")


def test_interaction_acknowledgement() -> None:
    call = api.acknowledge_interaction("30540ff7-9d8f-4737-83f1-e116ce6afa8b")
    assert (call.method, call.path) == ("PUT", "/interactions/30540ff7-9d8f-4737-83f1-e116ce6afa8b")
    assert body_of(call) == {"code": 0}
    assert body_of(api.acknowledge_interaction("i", InteractionCode.ADMIN_ONLY)) == {"code": 5}
    with pytest.raises(LocalProtocolError):
        api.acknowledge_interaction("i", 6)  # type: ignore[arg-type]
    assert call.parse(answer(200, b"")) is None


def test_get_me() -> None:
    call = api.get_me()
    assert (call.method, call.path) == ("GET", "/users/@me")
    me = call.parse(
        answer(200, {"id": "1234", "username": "bot", "avatar": "https://a/b", "union_openid": ""})
    )
    assert me == results.BotUser("1234", "bot", "https://a/b", "", None)


# -- answers --------------------------------------------------------------------------------


def test_sent_message_with_a_string_timestamp_and_ref_idx() -> None:
    # spec 14 quirk 9
    sample = {
        "id": "ROBOT1.0_rPi8ahvNE8BBRcC3d5n4wQ",
        "timestamp": "2026-03-25T15:03:20+08:00",
        "ext_info": {"ref_idx": "REFIDX_CMrRhLsGEJi6t7AE"},
    }
    sent = api.send_text(USER, "x").parse(answer(200, sample))
    assert sent == SentMessage(
        "ROBOT1.0_rPi8ahvNE8BBRcC3d5n4wQ", "2026-03-25T15:03:20+08:00", "REFIDX_CMrRhLsGEJi6t7AE"
    )
    assert sent.raw == sample


def test_sent_message_with_an_int_timestamp_and_a_guild_message() -> None:
    assert api.send_text(GROUP, "x").parse(
        answer(200, {"id": "m", "timestamp": 1700000000})
    ) == SentMessage("m", 1700000000)
    guild = {
        "id": "08e0",
        "channel_id": "1",
        "content": "x",
        "timestamp": "2026-01-01T00:00:00+08:00",
    }
    sent = api.send_text(CHANNEL, "x").parse(answer(200, guild))
    assert (sent.id, sent.ref_idx, sent.raw["channel_id"]) == ("08e0", None, "1")


@pytest.mark.parametrize("bad", [None, [], {"timestamp": 1}, {"id": 5}])
def test_a_send_answer_of_the_wrong_shape(bad: object) -> None:
    with pytest.raises(RemoteProtocolError, match="send response") as info:
        api.send_text(GROUP, "x").parse(answer(200, bad if bad is not None else b"null"))
    assert not isinstance(info.value, ApiError)


def test_uploaded_media() -> None:
    call = api.upload_media(GROUP, FileType.IMAGE, url="https://a/b.png")
    sample = {"file_uuid": "abc", "file_info": "Cgl...==", "ttl": 3600}
    assert call.parse(answer(200, sample)) == UploadedMedia("abc", "Cgl...==", 3600)
    sent = call.parse(answer(200, {**sample, "ttl": "0", "id": "ROBOT1.0_m"}))
    assert (sent.ttl, sent.id) == (0, "ROBOT1.0_m")
    with pytest.raises(RemoteProtocolError, match="'file_info'"):
        call.parse(answer(200, {"file_uuid": "abc", "ttl": 1}))


GATEWAY_BOT = {
    "url": "wss://api.sgroup.qq.com/websocket/",
    "shards": 1,
    "session_start_limit": {
        "total": 1000,
        "remaining": 999,
        "reset_after": 14400000,
        "max_concurrency": 1,
    },
}


def test_gateway_answers() -> None:
    plain = api.get_gateway().parse(answer(200, {"url": "wss://api.sgroup.qq.com/websocket/"}))
    assert plain == GatewayInfo("wss://api.sgroup.qq.com/websocket/")
    info = api.get_gateway_bot().parse(answer(200, GATEWAY_BOT))
    assert info == GatewayInfo(
        "wss://api.sgroup.qq.com/websocket/", 1, SessionStartLimit(1000, 999, 14400000, 1)
    )
    assert api.get_gateway_bot().path == "/gateway/bot"


def test_the_docs_broken_gateway_example_is_an_error() -> None:
    # spec 14 quirk 11: the docs' sample omits the "url": key
    broken = b'{"wss://api.sgroup.qq.com/websocket/", "shards": 9}'
    with pytest.raises(RemoteProtocolError, match="not JSON"):
        api.get_gateway_bot().parse(answer(200, broken))
    with pytest.raises(RemoteProtocolError, match="'remaining'"):
        api.get_gateway_bot().parse(
            answer(200, {**GATEWAY_BOT, "session_start_limit": {"total": 1}})
        )


def test_session_budget() -> None:
    info = api.get_gateway_bot().parse(answer(200, GATEWAY_BOT))
    results.check_session_budget(info)
    results.check_session_budget(info, 999)
    with pytest.raises(SessionLimitExceeded) as exc:
        results.check_session_budget(info, 1000)
    assert isinstance(exc.value, ProtocolError)
    assert (exc.value.shards, exc.value.limit.remaining) == (1000, 999)
    assert "at most 999 shards" in str(exc.value) and "resets in 14400 s" in str(exc.value)


def test_no_session_start_left_refuses_even_one_shard() -> None:
    empty = GatewayInfo("wss://x/", 1, SessionStartLimit(1000, 0, 5000, 1))
    with pytest.raises(SessionLimitExceeded):
        results.check_session_budget(empty)
    with pytest.raises(SessionLimitExceeded):
        results.check_session_budget(GatewayInfo("wss://x/", 4, SessionStartLimit(1000, 3, 1, 1)))


@pytest.mark.parametrize("number", ["1" + "0" * 400, str(2**63), "9" * 5000])
@pytest.mark.parametrize("key", ["total", "remaining", "reset_after", "max_concurrency"])
def test_a_session_budget_number_out_of_range_is_a_bad_answer(key: str, number: str) -> None:
    limit = json.dumps(GATEWAY_BOT["session_start_limit"]).replace(
        f'"{key}": ', f'"{key}": {number}, "was": '
    )
    body = json.dumps({**GATEWAY_BOT, "session_start_limit": "LIMIT"}).replace('"LIMIT"', limit)
    with pytest.raises(RemoteProtocolError, match=f"expected an integer '{key}'") as info:
        api.get_gateway_bot().parse(answer(200, body.encode()))
    assert len(str(info.value)) < 400


def test_the_largest_numbers_of_a_session_budget_are_taken() -> None:
    big = dict.fromkeys(("total", "remaining", "reset_after", "max_concurrency"), 2**63 - 1)
    info = api.get_gateway_bot().parse(answer(200, {**GATEWAY_BOT, "session_start_limit": big}))
    with pytest.raises(SessionLimitExceeded, match="resets in 9223372036854776 s"):
        results.check_session_budget(info, 2**63)


@pytest.mark.parametrize("number", ["1" + "0" * 400, str(2**63), "9" * 5000])
def test_an_error_code_out_of_range_is_no_code(number: str) -> None:
    body = '{"message": "odd", "code": ' + number + ', "err_code": ' + number + "}"
    with pytest.raises(ApiError) as info:
        api.get_me().parse(answer(400, body.encode()))
    error = info.value
    assert (error.status, error.code, error.err_code, error.message) == (400, None, None, "odd")
    assert "odd" in str(error)


def test_the_budget_needs_gateway_bot_and_a_shard_count() -> None:
    with pytest.raises(LocalProtocolError, match="/gateway/bot"):
        results.check_session_budget(GatewayInfo("wss://x/"), 1)
    with pytest.raises(LocalProtocolError, match="shard count"):
        results.check_session_budget(GatewayInfo("wss://x/", 1, SessionStartLimit(1, 1, 1, 1)), 0)


# -- errors ----------------------------------------------------------------------------------

#: Every error body in the spec, with what the error must say.
SPEC_ERRORS = [
    # section 9, BOTGO's errBody sample
    (
        403,
        {
            "message": "主动消息失败, 无权限",
            "code": 40034105,
            "err_code": 40034105,
            "trace_id": "a1975437383a4e77",
        },
        (40034105, 40034105, "PROACTIVE_NO_PERMISSION", "a1975437383a4e77", None, False),
    ),
    # section 7.3, the real 2026 error
    (
        400,
        {"message": "主动消息失败, 无权限", "code": 40034105, "err_code": 40034105},
        (40034105, 40034105, "PROACTIVE_NO_PERMISSION", None, None, False),
    ),
    # section 8: code != err_code (spec 14 quirk 10)
    (
        400,
        {"message": "富媒体文件下载失败", "code": 850026, "err_code": 40034001},
        (850026, 40034001, "MEDIA_DOWNLOAD_FAILED", None, None, False),
    ),
    (
        400,
        {"message": "富媒体文件格式不支持", "code": 850019, "err_code": 40034002},
        (850019, 40034002, "MEDIA_FORMAT_UNSUPPORTED", None, None, False),
    ),
    # section 9: audit pending, as a 202 "async success"
    (
        202,
        {
            "code": 304023,
            "message": "push message is waiting for audit",
            "data": {"message_audit": {"audit_id": "a-1"}},
        },
        (304023, None, "PUSH_MSG_ASYNC_OK", None, "a-1", False),
    ),
    (
        201,
        {
            "code": 304024,
            "message": "reply is waiting for audit",
            "data": {"message_audit": {"audit_id": "a-2"}},
        },
        (304024, None, "REPLY_MSG_ASYNC_OK", None, "a-2", False),
    ),
    # section 7.4, AstrBot #6931
    (
        400,
        {"message": "请求参数msg_id无效或越权", "code": 40034024, "err_code": 40034024},
        (40034024, 40034024, "MSG_ID_INVALID", None, None, False),
    ),
    # section 7.3: a repeated (msg_id, msg_seq)
    (
        400,
        {"message": "消息被去重，请检查请求msgseq", "code": 40054005, "err_code": 40054005},
        (40054005, 40054005, "DUPLICATE_MSG_SEQ", None, None, False),
    ),
    # section 1.2: the token endpoint's failure, with HTTP 200
    (
        200,
        {"code": 100016, "message": "invalid appid or secret"},
        (100016, None, "INVALID_APPID_OR_SECRET", None, None, False),
    ),
    # section 9: an err_code in a 2xx body is a failure
    (
        200,
        {"message": "msg limit exceed", "code": 22009, "err_code": 22009},
        (22009, 22009, "MSG_LIMIT_EXCEED", None, None, True),
    ),
    # section 1.3: token expired
    (
        401,
        {"message": "token expired or does not exist", "code": 11244},
        (11244, None, "TOKEN_EXPIRED", None, None, False),
    ),
]


@pytest.mark.parametrize(("status", "body", "expected"), SPEC_ERRORS)
def test_every_spec_error_body(
    status: int, body: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    code, err_code, name, trace, audit_id, retryable = expected
    with pytest.raises(ApiError) as info:
        api.send_text(GROUP, "x").parse(answer(status, body))
    error = info.value
    assert isinstance(error, RemoteProtocolError)
    assert (error.status, error.code, error.err_code, error.name) == (status, code, err_code, name)
    assert (error.trace_id, error.audit_id, error.retryable) == (trace, audit_id, retryable)
    assert error.message == body["message"]
    assert error.data == body
    assert error.matches(code) and (err_code is None or error.matches(err_code))
    assert name in str(error) and body["message"] in str(error)


def test_code_and_err_code_differ() -> None:
    response = answer(400, {"message": "富媒体文件下载失败", "code": 850026, "err_code": 40034001})
    error = ApiError.from_response(response, response.json())
    assert error.matches(850026) and error.matches(40034001) and not error.matches(40034002)
    assert error.matches(ApiCode.RICH_MEDIA_DOWNLOAD_FAILED)
    assert error.known is ApiCode.MEDIA_DOWNLOAD_FAILED  # err_code first
    assert (
        "code 40034001 MEDIA_DOWNLOAD_FAILED (old code 850026 RICH_MEDIA_DOWNLOAD_FAILED)"
        in str(error)
    )


@pytest.mark.parametrize("name", ["X-Tps-trace-ID", "x-tps-trace-id", "X-TPS-TRACE-ID"])
def test_the_trace_header_wins_in_any_case(name: str) -> None:
    body = {"message": "m", "code": 50006, "err_code": 50006, "trace_id": "from-body"}
    with pytest.raises(ApiError) as info:
        api.send_text(GROUP, "x").parse(answer(400, body, (name, "from-header")))
    assert info.value.trace_id == "from-header"
    assert "[trace from-header]" in str(info.value)


@pytest.mark.parametrize(
    ("status", "body", "retryable", "token"),
    [
        (429, {"message": "too many", "code": 0}, True, False),
        (500, b"<html>Internal Server Error</html>", True, False),
        (504, b"", True, False),
        (401, {"message": "unauthorized"}, False, True),
        (400, {"message": "bad", "code": 11243, "err_code": 11243}, False, True),
        (404, {"message": "not found", "code": 404}, False, False),
        (405, b"", False, False),
        (400, {"message": "send failed", "code": 50055001, "err_code": 50055001}, True, False),
        (400, {"message": "rate", "code": 20028}, True, False),
        (403, {"message": "m", "code": 40034100, "err_code": 40034100}, True, False),
        (400, {"message": "m", "code": 40034128, "err_code": 40034128}, False, False),
    ],
)
def test_retryable_and_token_rejected(
    status: int, body: object, retryable: bool, token: bool
) -> None:
    with pytest.raises(ApiError) as info:
        api.get_me().parse(answer(status, body))
    assert (info.value.retryable, info.value.token_rejected) == (retryable, token)


def test_error_bodies_that_are_not_json() -> None:
    with pytest.raises(ApiError) as info:
        api.get_me().parse(answer(502, b"<html>Bad Gateway</html>", ("X-Tps-Trace-Id", "t")))
    error = info.value
    assert (error.status, error.code, error.err_code, error.name) == (502, None, None, None)
    assert error.message == "<html>Bad Gateway</html>" and error.trace_id == "t"


@pytest.mark.parametrize(
    "body",
    [
        {"id": "m", "err_code": 0},
        {"id": "m", "code": 0, "message": "ok"},
        {"id": "m", "code": 1},  # a code without a message is not an error body
    ],
)
def test_2xx_bodies_that_are_not_errors(body: dict[str, Any]) -> None:
    assert api.send_text(GROUP, "x").parse(answer(200, body)).id == "m"


def test_2xx_with_nonzero_err_code_is_a_failure_even_as_a_string() -> None:
    with pytest.raises(ApiError) as info:
        api.send_text(GROUP, "x").parse(answer(200, {"id": "m", "err_code": "40034024"}))
    assert info.value.name == "MSG_ID_INVALID"


def test_201_202_are_failures_even_when_empty() -> None:
    for status in (201, 202):
        with pytest.raises(ApiError) as info:
            api.recall_message(GROUP, "m").parse(answer(status))
        assert info.value.status == status and info.value.code is None


def test_an_unknown_code_has_no_name() -> None:
    with pytest.raises(ApiError) as info:
        api.get_me().parse(answer(400, {"message": "new", "code": 99999999, "err_code": 99999999}))
    assert info.value.name is None and info.value.flags == CodeFlag.NONE
    assert "code 99999999: new" in str(info.value)


# -- the code table -------------------------------------------------------------------------

#: The spec's tables (sections 1.2, 7.3, 7.4, 8, 9), code by code, with the flags each needs.
SPEC_CODES: dict[int, CodeFlag] = {
    11241: CodeFlag.AUTH,
    11242: CodeFlag.RETRYABLE,
    11243: CodeFlag.AUTH,
    11244: CodeFlag.AUTH,
    **dict.fromkeys([11251, 11261, 11275, 11253, 11254, 11265, 100016], CodeFlag.NONE),
    **dict.fromkeys([20028, 22009, 40034100], CodeFlag.RATE_LIMITED),
    **dict.fromkeys([304018, 304022, 50006, 40034006, 40034101, 40054003], CodeFlag.NONE),
    **dict.fromkeys([304023, 304024], CodeFlag.AUDIT_PENDING),
    **dict.fromkeys([304026, 304027, 304028, 50045], CodeFlag.DEAD_MSG_ID),
    **dict.fromkeys([304036, 40034127, 40034124, 50055, 50056, 50057], CodeFlag.NONE),
    **dict.fromkeys([40034005, 40034031, 304103, 40034024], CodeFlag.DEAD_MSG_ID),
    **dict.fromkeys([40034025, 40034026, 40034027, 40034128], CodeFlag.DEAD_MSG_ID),
    **dict.fromkeys([40034105, 40054002, 40054007, 40054018, 40054010, 40054016], CodeFlag.NONE),
    40054005: CodeFlag.DUPLICATE,
    **dict.fromkeys([50055001, 50055002], CodeFlag.RETRYABLE),
    **dict.fromkeys(range(1100100, 1100105), CodeFlag.NONE),
    **dict.fromkeys([850026, 850019, 850031, 304082, 304083, 40034001, 40034002], CodeFlag.NONE),
}


def test_the_table_is_the_spec_table() -> None:
    assert set(CODES) == set(SPEC_CODES)
    assert {code: CODES[code].flags for code in CODES} == SPEC_CODES


def test_the_table_has_no_aliases_and_reads_only() -> None:
    assert len(ApiCode.__members__) == len(list(ApiCode)) == len(CODES)
    with pytest.raises(TypeError):
        CODES[1] = ApiCode.BOT_BANNED  # type: ignore[index]


@pytest.mark.parametrize("member", list(ApiCode), ids=lambda m: m.name)
def test_every_code(member: ApiCode) -> None:
    assert lookup(member.value) is member is CODES[int(member)] is ApiCode(int(member))
    assert member.name.isupper() and member.meaning and member.meaning == member.meaning.strip()
    with pytest.raises(ApiError) as info:
        api.get_me().parse(
            answer(400, {"message": "m", "code": int(member), "err_code": int(member)})
        )
    error = info.value
    assert error.name == member.name and error.known is member and error.flags == member.flags
    assert error.retryable == bool(member.flags & (CodeFlag.RETRYABLE | CodeFlag.RATE_LIMITED))
    assert error.token_rejected == bool(member.flags & CodeFlag.AUTH)
    assert f"{int(member)} {member.name}" in str(error)


def test_lookup_and_as_int() -> None:
    assert lookup(None) is None and lookup(1) is None
    assert [as_int(v) for v in (5, "5", " -7 ", True, "5.0", "²", "--5", "9" * 30, None)] == [
        5,
        5,
        -7,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
    edges = (2**63 - 1, -(2**63), 2**63, -(2**63) - 1, str(2**63 - 1), str(2**63), 10**400)
    assert [as_int(v) for v in edges] == [2**63 - 1, -(2**63), None, None, 2**63 - 1, None, None]


def test_the_code_table_in_the_docs_matches_the_code() -> None:
    page = (Path(__file__).parent.parent / "docs" / "rest.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| ([A-Z_, ]*?) ?\| (.+) \|$", page, re.M)
    documented = [(int(code), name, flags, meaning) for code, name, flags, meaning in rows]
    expected = [
        (int(m), m.name, ", ".join(str(f.name) for f in m.flags), m.meaning) for m in ApiCode
    ]
    assert documented == expected
