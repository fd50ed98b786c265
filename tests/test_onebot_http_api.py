"""Actions over an implementation's HTTP API: the requests each version wants,
the answers read back, and a server whose accounts POST events and take their
actions by HTTP (against the OneBot simulator's HTTP API, in memory)."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from qqproto.actions import Deliver, HttpRequest, Listen
from qqproto.contract import Peer
from qqproto.errors import ConfigError, LocalProtocolError, NotSent, ProtocolViolation
from qqproto.http import HttpConnection, HttpResponse
from qqproto.onebot import ActionResult, Chat, send_message
from qqproto.onebot.actions import Action
from qqproto.onebot.http_api import HttpApi, TokenRefused
from qqproto.onebot.reverse import OneBotServer
from qqproto.onebot.serving import ServeConfig
from qqproto.testing import MemoryNetwork, OneBotSimConfig, OneBotSimulator

TOKEN = "s3cret"


def test_v11_posts_each_action_to_its_own_path_with_its_params() -> None:
    api = HttpApi("http://127.0.0.1:5700/", 11, TOKEN)
    request = api.request(
        3, Action("send_private_msg", {"user_id": 1, "message": "hi \ud800"}), "9"
    )
    assert (request.method, request.url) == ("POST", "http://127.0.0.1:5700/send_private_msg")
    assert ("Authorization", f"Bearer {TOKEN}") in request.headers
    assert json.loads(request.body) == {"user_id": 1, "message": "hi \ud800"}  # escaped, intact


def test_v12_posts_the_whole_request_to_the_api_itself() -> None:
    api = HttpApi("http://127.0.0.1:5700/v12", 12)
    request = api.request(3, Action("get_self_info"), "9")
    assert request.url == "http://127.0.0.1:5700/v12"
    assert json.loads(request.body) == {"action": "get_self_info", "params": {}, "echo": "9"}
    assert not any(name == "Authorization" for name, _ in request.headers)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_its_own_error(status: int) -> None:
    with pytest.raises(TokenRefused) as refused:
        HttpApi("http://a/", 11).read(HttpResponse(status, (), b""))
    assert refused.value.status == status


def test_an_answer_is_read_and_anything_else_is_a_typed_error() -> None:
    api = HttpApi("http://a/", 11)
    answer = api.read(HttpResponse(200, (), b'{"status":"ok","retcode":0,"data":{"x":1}}'))
    assert answer.ok and answer.result() == {"x": 1}
    with pytest.raises(Exception, match="bad HTTP answer"):
        api.read(HttpResponse(404, (), b"not found"))
    with pytest.raises(ConfigError, match="api_url"):
        HttpApi("ws://a/", 11)


def world(version: Literal[11, 12] = 11) -> tuple[OneBotSimulator, OneBotServer, MemoryNetwork]:
    sim = OneBotSimulator(OneBotSimConfig(version=version, access_token=TOKEN))
    api = "http://127.0.0.1:5700/"
    server = OneBotServer(ServeConfig(port=0, access_token=TOKEN, api_url=api, api_version=version))
    return sim, server, MemoryNetwork(sim, server)


def results(net: MemoryNetwork) -> list[ActionResult]:
    return [e for e in net.events if isinstance(e, ActionResult)]


@pytest.mark.parametrize("version", [11, 12])
def test_an_account_with_no_websocket_gets_its_actions_over_http(version: Literal[11, 12]) -> None:
    sim, server, net = world(version)
    message = send_message(Chat.group(sim.group_id), "by http", version)
    call = server.call(sim.self_id, message, net.now)
    net.settle()
    [result] = results(net)
    assert result.call_id == call and result.ok, result
    assert [(c.action, c.via) for c in sim.calls][-1][1] == "http"
    assert [m.text for m in sim.sent] == ["by http"]


def test_without_an_api_url_such_an_action_is_not_sent() -> None:
    server = OneBotServer(ServeConfig(port=0))
    server.actions()
    call = server.call("1", Action("get_status"), 0.0)
    [action] = server.actions()
    assert action.event.call_id == call and isinstance(action.event.error, NotSent)  # type: ignore[attr-defined]


def test_http_answers_that_come_late_or_to_nothing() -> None:
    server = OneBotServer(ServeConfig(port=0, api_url="http://a/", call_timeout=1.0))
    server.actions()
    server.call("1", Action("get_status"), 0.0)
    [request] = [a for a in server.actions() if isinstance(a, HttpRequest)]
    server.handle_timer(1.5)  # timed out
    server.http_response(request.request_id, HttpResponse(200, (), b"{}"), 2.0)
    assert any(isinstance(getattr(a, "event", None), ProtocolViolation) for a in server.actions())
    with pytest.raises(LocalProtocolError, match="HTTP answer to no request"):
        server.http_response(999, HttpResponse(200, (), b"{}"), 2.0)


def test_the_http_api_takes_only_the_accounts_that_post_here() -> None:
    """One ``api_url`` is one implementation's: once accounts POST events, an
    action for another account is not sent to it."""
    server = OneBotServer(ServeConfig(port=0, api_url="http://127.0.0.1:5700/"))
    [listen] = server.actions()
    assert isinstance(listen, Listen)
    server.listening(listen.listener, "127.0.0.1", 8080, 0.0)
    before = server.call("999", Action("get_status"), 0.0)  # no account POSTed yet: any goes
    assert any(isinstance(a, HttpRequest) for a in server.actions())
    server.connection_accepted(listen.listener, -1, Peer("127.0.0.1", 6000), 0.0)
    event = {"post_type": "meta_event", "meta_event_type": "heartbeat", "self_id": 42,
             "time": 1, "interval": 5000, "status": {}}  # fmt: skip
    url = "http://127.0.0.1:8080/onebot/event"
    post = HttpRequest(1, "POST", url, (), json.dumps(event).encode())
    server.receive_data(-1, HttpConnection().send(post), 0.0)
    server.actions()
    other = server.call("999", Action("get_status"), 0.0)
    [said] = [a.event for a in server.actions() if isinstance(a, Deliver)]
    assert isinstance(said, ActionResult) and said.call_id == other
    assert isinstance(said.error, NotSent)
    assert "POST events here" in str(said.error) and before != other
    server.call(42, Action("get_status"), 0.0)
    assert any(isinstance(a, HttpRequest) for a in server.actions())
