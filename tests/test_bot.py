"""BotProtocol: token, discovery, gateway and REST as one object, on a fake clock."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qqproto.actions import (
    Failed,
    StateChanged,
)
from qqproto.errors import ConfigError, LocalProtocolError, ProtocolViolation
from qqproto.http import HttpResponse
from qqproto.link import Retry
from qqproto.qq.api import ApiResult, Target, get_me, send_text
from qqproto.qq.config import BotConfig
from qqproto.qq.phases import BotPhase
from qqproto.qq.results import SentMessage

from .bot_world import GATEWAY_BOT, SECRET, World, reply, token_reply


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
    [retry] = retries(w)  # said, never silent
    assert (retry.what, retry.attempt, retry.of) == ("token", 1, 30)
    assert 0.5 <= retry.delay <= 1.5 and "503" in retry.reason
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
    w.bot.receive_data(w.conn, w.server.close(4914, "offline"), w.now)
    w.collect()
    *_, gateway_moved, bot_moved, failed = w.log
    assert isinstance(gateway_moved, StateChanged) and isinstance(bot_moved, StateChanged)
    assert (gateway_moved.machine, gateway_moved.old, gateway_moved.new) == (
        "gateway",
        "READY",
        "FAILED",
    )
    assert (bot_moved.machine, bot_moved.old, bot_moved.new) == ("bot", "RUNNING", "FAILED")
    assert isinstance(failed, Failed) and failed.reason.startswith("close 4914")
    assert w.bot.phase is BotPhase.FAILED and w.bot.failure_reason == failed.reason


def test_a_bot_that_failed_on_its_token_closes_its_gateway_and_reports_one_failed() -> None:
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
    # The bot closed its gateway (a dead bot must not reconnect): one Failed, the bot's.
    assert w.bot.gateway is not None and w.bot.gateway.state.name == "CLOSED"
    assert w.server is None and w.log[-1] == Failed(w.failed[0])
    assert "100016" in (w.bot.failure_reason or "")


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
    w.bot.http_failed(request.request_id, w.now, "DNS lookup failed")
    w.collect()
    assert w.requests == []
    [retry] = retries(w)  # said, never silent
    assert (retry.what, retry.attempt, retry.of) == ("discovery", 1, 30)
    assert 0.5 <= retry.delay <= 1.5 and "DNS lookup failed" in retry.reason
    w.advance(2)
    assert [r.url for r in w.requests] == ["https://api.sgroup.qq.com/gateway/bot"]
    w.answer(reply(GATEWAY_BOT))
    assert w.connects
    assert len(retries(w)) == 1


def test_token_transport_failures_are_retried_each_said_until_the_cap() -> None:
    w = World(max_attempts=3)
    for attempt in (1, 2):
        request = w.requests.pop()
        w.bot.http_failed(request.request_id, w.now, "connection refused")
        w.collect()
        assert [(r.what, r.attempt) for r in retries(w)][-1] == ("token", attempt)
        w.advance(retries(w)[-1].delay + 0.01)
    request = w.requests.pop()
    w.bot.http_failed(request.request_id, w.now, "connection refused")
    w.collect()
    assert len(retries(w)) == 2  # the third failure spends the budget: Failed instead
    assert "gave up after 3 attempts" in w.failed[0]


def retries(w: World) -> list[Retry]:
    return [e for e in w.delivered if isinstance(e, Retry)]


@pytest.mark.parametrize("url", ["https://x/", "wss://bad host/", 7])
def test_a_gateway_url_the_platform_gets_wrong_fails_the_bot_saying_so(url: object) -> None:
    w = World()
    w.answer(token_reply())
    w.answer(reply({**GATEWAY_BOT, "url": url}))  # no crash: a typed failure
    assert w.bot.phase is BotPhase.FAILED and w.connects == []
    assert w.failed[0].startswith("gateway discovery failed: bad gateway response")


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
    assert gateway._token.usable(w.now) == "T2"


def test_close_4004_gets_the_gateway_a_new_token() -> None:
    w = World()
    w.start()
    assert w.server is not None
    w.bot.receive_data(w.conn, w.server.close(4004), w.now)
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
    w.bot.connection_lost(w.conn, w.now, "connection reset before Hello")
    w.collect()
    deadline = w.bot.next_deadline()
    assert deadline is not None and 0 < deadline <= 0.0125  # base 0.01, jitter +-25 %
    w.advance(0.0125)
    assert len(w.connects) == 2


def test_misuse_is_a_local_protocol_error() -> None:
    w = World()
    with pytest.raises(LocalProtocolError, match="a connection no shard asked for"):
        w.bot.connection_made(w.conn, 0.0)
    with pytest.raises(LocalProtocolError, match="HTTP answer to no request"):
        w.bot.http_response(999, token_reply(), 0.0)
