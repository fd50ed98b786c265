"""BotProtocol: token, discovery, gateway and REST as one object, on a fake clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qqproto.actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    HttpRequest,
    SendData,
    StateChanged,
)
from qqproto.errors import ConfigError, LocalProtocolError
from qqproto.http import HttpResponse
from qqproto.qq.api import SentMessage, Target, get_me, send_text
from qqproto.qq.bot import ApiResult, BotConfig, BotPhase, BotProtocol
from qqproto.qq.decode import EventDecodeError
from qqproto.qq.events import (
    C2CMessageCreate,
    Dispatch,
    FriendDel,
    GroupAtMessageCreate,
    InteractionCreate,
    ProtocolViolation,
)
from qqproto.qq.replies import OwnMessageAsReplyTarget, Refusal, ReplyRefused
from qqproto.qq.scenes import Scene
from qqproto.testing import FakeServer

from .timers import fire_deadlines

SECRET = "s3cret-s3cret"
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


def reply(payload: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, (), json.dumps(payload).encode())


def token_reply(token: str = "T1", expires_in: str = "7200") -> HttpResponse:
    return reply({"access_token": token, "expires_in": expires_in})


class World:
    """Drives a BotProtocol: answers HTTP from a script, plays the gateway."""

    def __init__(self, **config: Any) -> None:
        self.bot = BotProtocol(BotConfig("102000000", SECRET, **config))
        self.now = 0.0
        self.requests: list[HttpRequest] = []
        self.connects: list[str] = []
        self.delivered: list[object] = []
        self.failed: list[str] = []
        self.log: list[Action] = []  # state changes and failures, in order
        self.server: FakeServer | None = None
        self.collect()

    def collect(self) -> None:
        for action in self.bot.actions():
            self.handle(action)

    def handle(self, action: Action) -> None:
        if isinstance(action, HttpRequest):
            self.requests.append(action)
        elif isinstance(action, Connect):
            self.connects.append(action.url)
            self.server = FakeServer()
            self.bot.connection_made(self.now)
            self.collect()
        elif isinstance(action, SendData) and self.server is not None:
            if answer := self.server.receive(action.data):
                self.bot.receive_data(answer, self.now)
                self.collect()
        elif isinstance(action, Disconnect):
            self.server = None
            self.bot.connection_lost(self.now, None)
            self.collect()
        elif isinstance(action, Deliver):
            self.delivered.append(action.event)
        elif isinstance(action, Failed):
            self.failed.append(action.reason)
        if isinstance(action, StateChanged | Failed):
            self.log.append(action)

    def answer(self, response: HttpResponse, index: int = -1) -> HttpRequest:
        request = self.requests.pop(index)
        self.bot.http_response(request.request_id, response, self.now)
        self.collect()
        return request

    def call(self, api_call: Any) -> int:
        call_id = self.bot.call(api_call, self.now)
        self.collect()
        return call_id

    def gateway_send(self, payload: dict[str, Any]) -> None:
        assert self.server is not None
        self.bot.receive_data(self.server.send(payload), self.now)
        self.collect()

    def start(self) -> None:
        self.answer(token_reply())
        self.answer(reply(GATEWAY_BOT))
        self.gateway_send({"op": 10, "d": {"heartbeat_interval": 45000}})
        self.gateway_send(
            {"op": 0, "s": 1, "t": "READY", "d": {"session_id": "s-1", "user": {"id": "1"}}}
        )

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        fire_deadlines(self.bot, self.now, target, self._fire)
        self.now = target

    def _fire(self, now: float) -> None:
        self.now = now
        self.bot.handle_timer(now)
        self.collect()


def test_token_then_discovery_then_the_gateway() -> None:
    w = World()
    [token_request] = w.requests
    assert token_request.url == "https://bots.qq.com/app/getAppAccessToken"
    w.answer(token_reply())
    [discovery] = w.requests
    assert (discovery.method, discovery.url) == ("GET", "https://api.sgroup.qq.com/gateway/bot")
    assert dict(discovery.headers)["Authorization"] == "QQBot T1"
    assert dict(discovery.headers)["X-Union-Appid"] == "102000000"
    assert w.connects == []
    w.answer(reply(GATEWAY_BOT))
    assert w.connects == ["wss://api.sgroup.qq.com/websocket/"]
    assert w.bot.phase is BotPhase.RUNNING
    w.gateway_send({"op": 10, "d": {"heartbeat_interval": 45000}})
    assert w.server is not None
    identify = w.server.payloads()[0]
    assert identify["d"]["token"] == "QQBot T1"


def test_wrong_credentials_fail_the_bot_and_never_open_the_gateway() -> None:
    w = World()
    w.answer(reply({"code": 100016, "message": "invalid appid or secret"}))
    assert w.bot.phase is BotPhase.FAILED
    assert w.failed == ["access token refused: invalid appid or secret (code 100016)"]
    w.advance(3600)
    assert w.connects == [] and w.requests == []
    assert SECRET not in repr(w.bot) + repr(w.bot.config) + "".join(w.failed)


def test_a_5xx_from_the_token_endpoint_is_retried() -> None:
    w = World()
    w.answer(HttpResponse(503, (), b"busy"))
    assert w.requests == [] and w.bot.phase is BotPhase.AUTHENTICATING
    w.advance(2)
    assert len(w.requests) == 1
    w.answer(token_reply())
    assert w.bot.phase is BotPhase.DISCOVERING


def test_a_token_life_out_of_range_is_reported_and_the_bot_goes_on() -> None:
    w = World()
    w.answer(HttpResponse(200, (), b'{"access_token": "T1", "expires_in": 1' + b"0" * 400 + b"}"))
    [violation] = [e for e in w.delivered if isinstance(e, ProtocolViolation)]
    assert "token life out of range, taken as 7200 s" in str(violation.error)
    assert w.bot.phase is BotPhase.DISCOVERING
    w.answer(reply(GATEWAY_BOT))
    assert w.bot.phase is BotPhase.RUNNING and w.connects


def test_a_gateway_that_gives_up_moves_the_bot_to_failed_before_it_reports() -> None:
    w = World()
    w.start()
    assert w.server is not None
    w.bot.receive_data(w.server.close(4914, "offline"), w.now)
    w.collect()
    *_, gateway_moved, bot_moved, failed = w.log
    assert isinstance(gateway_moved, StateChanged) and isinstance(bot_moved, StateChanged)
    assert (gateway_moved.old, gateway_moved.new) == ("READY", "FAILED")
    assert (bot_moved.old, bot_moved.new) == ("BOT_RUNNING", "BOT_FAILED")
    assert isinstance(failed, Failed) and failed.reason.startswith("close 4914")
    assert w.bot.phase is BotPhase.FAILED and w.bot.failure_reason == failed.reason


def test_a_bot_that_failed_on_its_token_reports_one_failed_when_the_gateway_ends() -> None:
    w = World()
    w.start()
    w.now = 7200 - 60  # the refresh time of a 7200 s token, in one jump
    w.bot.handle_timer(w.now)
    w.collect()
    [refresh] = [r for r in w.requests if r.url.endswith("getAppAccessToken")]
    w.answer(
        reply({"code": 100016, "message": "invalid appid or secret"}), w.requests.index(refresh)
    )
    assert w.bot.phase is BotPhase.FAILED and len(w.failed) == 1
    assert w.server is not None
    w.bot.receive_data(w.server.close(4914, "offline"), w.now)
    w.collect()
    assert len(w.failed) == 1 and "100016" in (w.bot.failure_reason or "")


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"backoff_base": 0.0}, "backoff_base"),
        ({"backoff_base": 10.0, "backoff_cap": 5.0}, "backoff_cap"),
    ],
)
def test_a_bad_backoff_fails_when_the_config_is_made(options: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=f"bad {name}"):
        BotConfig("102000000", SECRET, **options)


def test_no_session_starts_left_is_a_clear_failure() -> None:
    w = World()
    w.answer(token_reply())
    exhausted = json.loads(json.dumps(GATEWAY_BOT))
    exhausted["session_start_limit"]["remaining"] = 0
    w.answer(reply(exhausted))
    assert w.bot.phase is BotPhase.FAILED
    assert "not enough gateway session starts left (0 of 1000" in w.failed[0]
    assert w.connects == []


def test_discovery_errors_back_off_and_retry() -> None:
    w = World()
    w.answer(token_reply())
    request = w.requests.pop()
    w.bot.http_failed(request.request_id, "DNS lookup failed", w.now)
    w.collect()
    assert w.requests == []
    w.advance(2)
    assert [r.url for r in w.requests] == ["https://api.sgroup.qq.com/gateway/bot"]
    w.answer(reply(GATEWAY_BOT))
    assert w.connects


def test_rest_calls_carry_the_token_and_deliver_results() -> None:
    w = World()
    w.start()
    call_id = w.call(send_text(Target.group("G1"), "hi"))
    [request] = w.requests
    assert request.url == "https://api.sgroup.qq.com/v2/groups/G1/messages"
    w.answer(reply({"id": "ROBOT1.0_out", "timestamp": "2026-03-25T15:03:20+08:00"}))
    [result] = [e for e in w.delivered if isinstance(e, ApiResult)]
    assert result.request_id == call_id and result.ok
    assert isinstance(result.result, SentMessage) and result.result.id == "ROBOT1.0_out"


def test_a_401_refetches_the_token_and_retries_once() -> None:
    w = World()
    w.start()
    w.call(get_me())
    w.answer(reply({"message": "token expired", "code": 11244}, status=401))
    [token_request] = w.requests
    assert token_request.url.endswith("getAppAccessToken")
    w.answer(token_reply("T2"))
    [retry] = w.requests
    assert dict(retry.headers)["Authorization"] == "QQBot T2"
    w.answer(reply({"message": "token expired", "code": 11244}, status=401))
    [result] = [e for e in w.delivered if isinstance(e, ApiResult)]
    assert not result.ok and "11244" in str(result.error)
    assert w.requests == []  # once, not forever


def test_429_is_retried_with_backoff_then_reported() -> None:
    w = World()
    w.start()
    w.call(get_me())
    for _ in range(3):
        w.answer(reply({"message": "slow down", "code": 22009}, status=429))
        w.advance(10)
    [result] = [e for e in w.delivered if isinstance(e, ApiResult)]
    assert not result.ok and result.error is not None
    assert w.requests == []


def test_a_4xx_is_not_retried() -> None:
    w = World()
    w.start()
    w.call(get_me())
    w.answer(reply({"message": "msg_id invalid", "code": 40034024, "err_code": 40034024}, 400))
    [result] = [e for e in w.delivered if isinstance(e, ApiResult)]
    assert not result.ok and w.requests == []


def test_a_refreshed_token_reaches_the_gateway() -> None:
    w = World()
    w.start()
    w.now = 7200 - 60  # the refresh time of a 7200 s token, in one jump
    w.bot.handle_timer(w.now)
    w.collect()
    [refresh] = [r for r in w.requests if r.url.endswith("getAppAccessToken")]
    w.answer(token_reply("T2"), w.requests.index(refresh))
    gateway = w.bot.gateway
    assert gateway is not None
    assert gateway._token == "T2"


def test_close_4004_gets_the_gateway_a_new_token() -> None:
    w = World()
    w.start()
    assert w.server is not None
    w.bot.receive_data(w.server.close(4004), w.now)
    w.collect()
    [token_request] = [r for r in w.requests if r.url.endswith("getAppAccessToken")]
    w.answer(token_reply("T-new"), w.requests.index(token_request))
    w.gateway_send({"op": 10, "d": {"heartbeat_interval": 45000}})
    assert w.server is not None
    assert w.server.payloads()[0]["d"]["token"] == "QQBot T-new"


def test_a_configured_gateway_url_skips_discovery() -> None:
    w = World(gateway_url="ws://127.0.0.1:9/ws")
    w.answer(token_reply())
    assert w.connects == ["ws://127.0.0.1:9/ws"]


def test_the_reconnect_backoff_is_configured_on_the_bot() -> None:
    w = World(gateway_url="ws://127.0.0.1:9/ws", backoff_base=0.01, backoff_cap=0.02)
    w.answer(token_reply())
    w.server = None
    w.bot.connection_lost(w.now, "connection reset before Hello")
    w.collect()
    deadline = w.bot.next_deadline()
    assert deadline is not None and 0 < deadline <= 0.0125  # base 0.01, jitter +-25 %
    w.advance(0.0125)
    assert len(w.connects) == 2


def test_misuse_is_a_local_protocol_error() -> None:
    w = World()
    with pytest.raises(LocalProtocolError, match="no gateway connection was asked for"):
        w.bot.connection_made(0.0)
    with pytest.raises(LocalProtocolError, match="HTTP answer to no request"):
        w.bot.http_response(999, token_reply(), 0.0)


# -- passive replies -----------------------------------------------------------------------

GROUP, USER = "B0F4C2E1D3A5968778695A4B3C2D1E0F", "6836D8522EE75AD3732E75C0D3B6F33A"
# Seed 003 (AstrBot #6931): the user's message, and the id the bot's first reply got back.
INBOUND = (
    "ROBOT1.0_BJkd-tCn0-jaN8Z9LqrswYvSio4gBHeEZ4Ll8fWlRBz5mBnCjAPEqFq-p328W.tO3rRho2Cag"
    "BvejX2fLfQ0N2LBnPsOL4m9jxp8NoXJm8s!"
)
FIRST_SENT = (
    "ROBOT1.0_rPi8nvmC5Vd7prorHpcvSx.FVqNgftgITNJlZJEwDOLHhnWCzgZTp23GuJgkfG34mXFVGFiu0y9g"
    "fEfQ4oQHJg!!"
)
GROUP_MSG = "ROBOT1.0_yiT7pdisg1abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH!"
SENT_AT = "2026-03-25T15:03:20+08:00"


def dispatch(w: World, t: str, d: dict[str, Any], seq: int, event_id: str) -> None:
    w.gateway_send({"op": 0, "s": seq, "t": t, "id": event_id, "d": d})


def group_at(w: World, msg_id: str = GROUP_MSG, seq: int = 2) -> GroupAtMessageCreate:
    d = {
        "id": msg_id,
        "content": " hi",
        "timestamp": "2025-09-08T23:13:34+08:00",
        "author": {"id": "M1", "member_openid": "M1"},
        "group_openid": GROUP,
    }
    dispatch(w, "GROUP_AT_MESSAGE_CREATE", d, seq, f"GROUP_AT_MESSAGE_CREATE:{seq}")
    return [e for e in w.delivered if isinstance(e, GroupAtMessageCreate)][-1]


def c2c(w: World, msg_id: str, seq: int = 2) -> C2CMessageCreate:
    d = {"id": msg_id, "content": "hi", "author": {"user_openid": USER}}
    dispatch(w, "C2C_MESSAGE_CREATE", d, seq, f"C2C_MESSAGE_CREATE:{seq}")
    event = w.delivered[-1]
    assert isinstance(event, C2CMessageCreate)
    return event


def body(request: HttpRequest) -> Any:
    return json.loads(request.body)


def results(w: World) -> list[ApiResult[Any]]:
    return [e for e in w.delivered if isinstance(e, ApiResult)]


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


def test_a_redelivered_inbound_message_reaches_the_application_once() -> None:
    w = World()
    w.start()
    group_at(w, seq=2)
    before = len(w.delivered)
    group_at(w, seq=3)  # the same message id, in a new envelope (spec 14, quirk 7)
    assert len(w.delivered) == before and w.bot.redeliveries == 1
    group_at(w, "ROBOT1.0_other", seq=4)  # another id still comes through
    assert len(w.delivered) == before + 1 and w.bot.redeliveries == 1


def broken_group_at(w: World, event_id: str, msg_id: str = GROUP_MSG, seq: int = 2) -> None:
    """A group message without ``group_openid``: it fails its type and comes raw."""
    d = {"id": msg_id, "content": " hi", "author": {"member_openid": "M1"}}
    dispatch(w, "GROUP_AT_MESSAGE_CREATE", d, seq, event_id)


def raw_dispatches(w: World) -> list[Dispatch]:
    return [e for e in w.delivered if isinstance(e, Dispatch)]


def violations(w: World) -> list[ProtocolViolation]:
    return [e for e in w.delivered if isinstance(e, ProtocolViolation)]


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
