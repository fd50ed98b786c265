"""The OneBot simulator, and OneBotProtocol against it in memory on the fake clock.

Each quirk the simulator can switch on is shown to reach the protocol object
in the shape the spec describes, and the object to live with it.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qqproto.actions import HttpRequest
from qqproto.calls import CallTimeout
from qqproto.errors import NotSent
from qqproto.http import HttpConnection
from qqproto.link import Retry
from qqproto.onebot import (
    ActionFailed,
    ActionResult,
    Chat,
    MessageEvent,
    MetaEvent,
    OneBotConfig,
    OneBotProtocol,
    OneBotState,
    Segment,
    StreamFrame,
    send_message,
)
from qqproto.onebot.actions import Action, get_file
from qqproto.testing import NO_ECHO, MemoryNetwork, OneBotSimConfig, OneBotSimulator
from qqproto.ws import TextReceived, WebSocketClient

URL = "ws://127.0.0.1:3001/"
TOKEN = "s3cret"

CONFIGS = {
    "plain v11": OneBotSimConfig(access_token=TOKEN),
    "napcat": OneBotSimConfig.napcat_like(access_token=TOKEN),
    "lagrange": OneBotSimConfig.lagrange_like(access_token=TOKEN),
    "string messages": OneBotSimConfig(access_token=TOKEN, message_format="string"),
    "numeric echoes": OneBotSimConfig(access_token=TOKEN, numeric_echo=True),
    "v12": OneBotSimConfig(version=12, access_token=TOKEN),
}


def world(
    sim_config: OneBotSimConfig, **config: Any
) -> tuple[OneBotSimulator, OneBotProtocol, MemoryNetwork]:
    config.setdefault("access_token", TOKEN)
    config.setdefault("url", URL)
    sim = OneBotSimulator(sim_config)
    proto = OneBotProtocol(OneBotConfig(**config))
    net = MemoryNetwork(sim, proto)
    net.advance(0.1)
    return sim, proto, net


def messages(net: MemoryNetwork) -> list[MessageEvent]:
    return [e for e in net.events if isinstance(e, MessageEvent)]


def results(net: MemoryNetwork) -> list[ActionResult]:
    return [e for e in net.events if isinstance(e, ActionResult)]


def reply(proto: OneBotProtocol, net: MemoryNetwork, chat: Chat, text: str) -> int:
    assert proto.version is not None
    call = proto.call(send_message(chat, text, proto.version), net.now)  # type: ignore[arg-type]
    net.advance(0.01)
    return call


@pytest.mark.parametrize("name", CONFIGS)
def test_a_bot_reads_messages_and_replies_in_every_flavour(name: str) -> None:
    sim, proto, net = world(CONFIGS[name])
    assert proto.state is OneBotState.CONNECTED and sim.live == 1
    assert proto.version == sim.config.version
    assert sim.authorizations == [f"Bearer {TOKEN}"]

    pushed = sim.group_message("hi [there] &you", net.now, mention_self=True)
    net.advance(0.01)
    (event,) = messages(net)
    assert event.kind == "message.group"
    assert str(event.message_id) == str(pushed["message_id"])
    assert event.text == f"@{sim.self_id} hi [there] &you"
    assert str(event.group_id) == sim.group_id and str(event.user_id) == sim.user_id

    reply(proto, net, Chat.group(sim.group_id), "hello back")
    (result,) = results(net)
    assert result.ok, result
    (sent,) = sim.sent
    assert (sent.detail_type, sent.group_id, sent.text) == ("group", sim.group_id, "hello back")
    data = result.answer.result() if result.answer else None
    assert isinstance(data, dict) and str(data["message_id"]) == sent.message_id


def test_the_connect_event_comes_first_then_heartbeats_on_the_configured_interval() -> None:
    _sim, _proto, net = world(OneBotSimConfig(access_token=TOKEN, heartbeat_interval=5))
    net.advance(16)
    meta = [e for e in net.events if isinstance(e, MetaEvent)]
    assert [m.detail_type for m in meta] == ["lifecycle", "heartbeat", "heartbeat", "heartbeat"]
    assert all(m.interval == 5 for m in meta[1:])


def test_v12_sends_connect_then_status_update() -> None:
    _sim, _proto, net = world(
        OneBotSimConfig(version=12, access_token=TOKEN, heartbeat_interval=None)
    )
    net.advance(100)
    meta = [e for e in net.events if isinstance(e, MetaEvent)]
    assert [m.detail_type for m in meta] == ["connect", "status_update"]


@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong", 403)])
def test_a_refused_token_at_the_upgrade_fails_the_bot_for_good(
    token: str | None, status: int
) -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN), access_token=token)
    net.advance(600)
    assert proto.state is OneBotState.FAILED
    assert sim.refused == [status] and sim.connects == 1
    assert str(status) in (proto.failure_reason or "")


def test_napcats_1403_frame_then_close_fails_the_bot_for_good() -> None:
    sim, proto, net = world(OneBotSimConfig.napcat_like(access_token=TOKEN), access_token="wrong")
    net.advance(600)
    assert proto.state is OneBotState.FAILED
    assert sim.refused == [403] and sim.connects == 1
    assert "1403" in (proto.failure_reason or "")


def test_the_access_token_query_is_read_when_there_is_no_header() -> None:
    sim, proto, _net = world(
        OneBotSimConfig(access_token=TOKEN), url=f"{URL}?access_token={TOKEN}", access_token=None
    )
    assert proto.state is OneBotState.CONNECTED
    assert sim.authorizations == [None]


def test_numeric_echoes_are_matched_to_their_calls() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN, numeric_echo=True))
    reply(proto, net, Chat.private(sim.user_id), "x")
    (result,) = results(net)
    assert result.ok and result.answer is not None
    assert isinstance(result.answer.echo, int)  # it came back as a number, and matched
    assert isinstance(sim.calls[-1].echo, str)  # we send strings; it answered with a number


def test_napcat_answers_a_missing_echo_with_an_empty_string() -> None:
    state = OneBotSimulator(OneBotSimConfig.napcat_like()).state
    (answer,) = state.answers({"action": "get_status"}, "ws", 0.0)
    assert answer["echo"] == "" and answer["stream"] == "normal-action"
    assert state.calls[-1].echo is NO_ECHO


def test_a_stream_answer_comes_as_frames_then_one_result() -> None:
    _sim, proto, net = world(OneBotSimConfig.napcat_like(access_token=TOKEN))
    action = Action("upload_file_stream", {"file_name": "a.bin", "total_chunks": 3})
    call = proto.call(action, net.now)
    net.advance(0.01)
    frames = [e for e in net.events if isinstance(e, StreamFrame)]
    assert [f.call_id for f in frames] == [call] * 3
    (result,) = results(net)
    assert result.ok and result.answer is not None
    assert result.answer.result()["type"] == "response"


def test_heartbeats_that_stop_end_the_link_and_the_bot_dials_again() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN, heartbeat_interval=5))
    net.advance(6)
    sim.stop_heartbeats()
    net.advance(5 * 2.5 + 1)
    assert any(isinstance(e, Retry) for e in net.events)
    sim.resume_heartbeats()
    net.advance(10)
    assert proto.state is OneBotState.CONNECTED and net.connects == 2
    sim.group_message("after", net.now)
    net.advance(0.01)
    assert [m.text for m in messages(net)] == ["after"]


def test_a_drop_fails_pending_calls_and_events_after_the_reconnect_arrive() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN))
    sim.hold("send_msg")
    reply(proto, net, Chat.group(sim.group_id), "lost?")
    sim.drop()
    net.advance(0.01)
    (result,) = results(net)
    assert not result.ok and result.error is not None
    net.advance(60)
    assert proto.state is OneBotState.CONNECTED and net.connects == 2
    sim.private_message("back", net.now)
    net.advance(0.01)
    assert [m.text for m in messages(net)] == ["back"]


def test_a_held_action_times_out_and_the_connection_goes_on() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN), call_timeout=5)
    sim.hold("send_msg")
    reply(proto, net, Chat.group(sim.group_id), "slow")
    net.advance(4.9)
    assert results(net) == []
    net.advance(0.2)
    (result,) = results(net)
    assert isinstance(result.error, CallTimeout)
    assert proto.state is OneBotState.CONNECTED and sim.sent == []


@pytest.mark.parametrize("version", [11, 12])
def test_a_failed_action_comes_back_as_its_retcode(version: int) -> None:
    sim, proto, net = world(OneBotSimConfig(version=version, access_token=TOKEN))  # type: ignore[arg-type]
    sim.fail("send_msg" if version == 11 else "send_message", 34002)
    reply(proto, net, Chat.group(sim.group_id), "no")
    (result,) = results(net)
    assert result.answer is not None and not result.ok
    with pytest.raises(ActionFailed) as caught:
        result.answer.result()
    assert caught.value.retcode == 34002


def test_duplicate_answers_are_reported_and_the_first_one_counts() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN))
    sim.answer_twice()
    reply(proto, net, Chat.group(sim.group_id), "twice")
    assert len(results(net)) == 1 and results(net)[0].ok
    assert proto.state is OneBotState.CONNECTED
    assert len(sim.sent) == 1


def test_hostile_frames_from_the_implementation_never_end_the_link() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN))
    for garbage in ["{", "[]", '{"post_type": "message"}', '{"echo": "999", "status": "ok"}']:
        sim.push(garbage)
    sim.group_message("still here", net.now)
    net.advance(0.01)
    assert proto.state is OneBotState.CONNECTED
    # the message without fields is read leniently: an event with no text
    assert [m.text for m in messages(net)] == ["", "still here"]


def test_v12_actions_go_over_the_simulators_http_api() -> None:
    sim, proto, net = world(
        OneBotSimConfig(version=12, access_token=TOKEN), api_url="http://127.0.0.1:3001/"
    )
    reply(proto, net, Chat.private(sim.user_id), "by http")
    (result,) = results(net)
    assert result.ok
    assert [(c.action, c.via) for c in sim.calls] == [("send_message", "http")]


def http(sim: OneBotSimulator, request: HttpRequest) -> tuple[int, Any]:
    client, server = HttpConnection(), sim.accept(0.0)
    server.receive_data(client.send(request), 0.0)
    (response,) = client.receive_data(server.data_to_send())
    return response.status, json.loads(response.body) if response.status == 200 else None


def test_the_v11_http_api_takes_post_slash_action() -> None:
    sim = OneBotSimulator(OneBotSimConfig(access_token=TOKEN))
    body = json.dumps({"user_id": int(sim.user_id), "message": "[CQ:face,id=178]hi"}).encode()
    headers = (("Authorization", f"Bearer {TOKEN}"), ("Content-Type", "application/json"))
    request = HttpRequest(1, "POST", "http://127.0.0.1:3001/send_private_msg", headers, body)
    status, answer = http(sim, request)
    assert status == 200 and answer["retcode"] == 0
    assert sim.sent[0].segments == (Segment("face", {"id": "178"}), Segment.text("hi"))


@pytest.mark.parametrize(
    ("headers", "status"), [((), 401), ((("Authorization", "Bearer x"),), 403)]
)
def test_the_http_api_refuses_a_missing_or_wrong_token(
    headers: tuple[tuple[str, str], ...], status: int
) -> None:
    sim = OneBotSimulator(OneBotSimConfig(access_token=TOKEN))
    request = HttpRequest(1, "POST", "http://127.0.0.1:3001/get_status", headers, b"{}")
    assert http(sim, request)[0] == status
    assert sim.calls == []


def test_unknown_actions_get_each_versions_code() -> None:
    for version, code in ((11, 1404), (12, 10002)):
        state = OneBotSimulator(OneBotSimConfig(version=version)).state  # type: ignore[arg-type]
        (answer,) = state.answers({"action": "no_such", "params": {}, "echo": "1"}, "ws", 0.0)
        assert (answer["status"], answer["retcode"], answer["echo"]) == ("failed", code, "1")


def test_the_same_seed_gives_the_same_bytes() -> None:
    def run() -> list[str]:
        sim, proto, net = world(OneBotSimConfig(version=12, access_token=TOKEN, seed=3))
        sim.group_message("a", net.now)
        reply(proto, net, Chat.group(sim.group_id), "b")
        net.advance(100)
        return [repr(e) for e in net.events]

    assert run() == run()


@pytest.mark.parametrize("version", [11, 12])
def test_files_are_got_in_each_dialect(version: int) -> None:
    _sim, proto, net = world(OneBotSimConfig(version=version, access_token=TOKEN))  # type: ignore[arg-type]
    proto.call(get_file("a.jpg", proto.version, kind="image"), net.now)  # type: ignore[arg-type]
    net.advance(0.01)
    (result,) = results(net)
    assert result.answer is not None
    data = result.answer.result()
    assert data["url" if version == 12 else "file"].endswith("a.jpg")


def test_sends_past_the_limit_wait_in_order_and_other_actions_do_not() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN), send_rate=1.0, send_burst=2)
    chat = Chat.group(sim.group_id)
    for n in range(4):
        proto.call(send_message(chat, f"m{n}", 11), net.now)
    proto.call(Action("get_status"), net.now)  # not a send: never held
    net.advance(0.01)
    assert [m.text for m in sim.sent] == ["m0", "m1"]
    assert [c.action for c in sim.calls][-1] == "get_status"
    net.advance(1.0)
    assert [m.text for m in sim.sent] == ["m0", "m1", "m2"]
    net.advance(1.0)
    assert [m.at - sim.sent[0].at for m in sim.sent] == pytest.approx([0, 0, 1, 2], abs=0.02)
    assert all(r.ok for r in results(net)) and len(results(net)) == 5


def test_a_send_still_waiting_when_the_link_drops_goes_once_on_the_next() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN), send_rate=0.5)
    chat = Chat.group(sim.group_id)
    first = proto.call(send_message(chat, "goes", 11), net.now)
    second = proto.call(send_message(chat, "waits", 11), net.now)
    net.advance(0.01)
    sim.drop()
    net.advance(5)
    assert net.connects == 2
    ended = {r.call_id: r for r in results(net)}
    assert ended[first].ok and ended[second].ok
    assert [m.text for m in sim.sent] == ["goes", "waits"]  # each once


def test_an_action_asked_between_connections_waits_for_the_next() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN))
    sim.drop()
    net.refuse_connections = True
    net.advance(0.01)
    assert proto.state is OneBotState.CONNECTING
    call = proto.call(send_message(Chat.private(sim.user_id), "later", 11), net.now)
    net.advance(5)
    assert results(net) == [] and sim.sent == []
    net.refuse_connections = False
    net.advance(10)
    [result] = results(net)
    assert result.call_id == call and result.ok
    assert [m.text for m in sim.sent] == ["later"]


def test_an_action_that_waits_its_timeout_out_ends_as_not_sent() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN), call_timeout=5)
    sim.drop()
    net.refuse_connections = True
    net.advance(0.01)
    proto.call(send_message(Chat.private(sim.user_id), "never", 11), net.now)
    net.advance(4.9)
    assert results(net) == []
    net.advance(0.2)
    [result] = results(net)
    assert isinstance(result.error, NotSent) and "never went out" in str(result.error)
    net.refuse_connections = False
    net.advance(60)
    assert sim.sent == []  # and it never goes later


def test_closing_ends_waiting_actions_as_not_sent() -> None:
    sim, proto, net = world(OneBotSimConfig(access_token=TOKEN), send_rate=0.1)
    chat = Chat.group(sim.group_id)
    proto.call(send_message(chat, "goes", 11), net.now)
    waiting = proto.call(send_message(chat, "waits", 11), net.now)
    net.advance(0.01)
    proto.close(net.now)
    net.advance(0.01)
    ended = {r.call_id: r for r in results(net)}
    assert isinstance(ended[waiting].error, NotSent)
    assert [m.text for m in sim.sent] == ["goes"]


def ws_to(sim: OneBotSimulator) -> tuple[Any, WebSocketClient]:
    """A raw WebSocket client connected to the simulator, the connect event read."""
    client = WebSocketClient(URL, random.Random(0).randbytes)
    conn = sim.accept(0.0)
    conn.receive_data(client.connect(), 0.0)
    client.receive_data(conn.data_to_send())
    return conn, client


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ACTIONS = st.sampled_from(
    ["send_msg", "send_message", "get_msg", "delete_msg", "upload_file_stream", "get_file", "x"]
)


@settings(max_examples=150, deadline=None)
@given(
    version=st.sampled_from([11, 12]),
    napcat=st.booleans(),
    frame=st.one_of(
        st.text(),
        st.builds(
            lambda a, p, e: json.dumps({"action": a, "params": p, "echo": e}),
            ACTIONS,
            JSON,
            JSON,
        ),
        st.just("[" * 5000),
        st.just('{"action": "send_msg", "params": {"message": "\\ud800"}, "echo": "\\udc80"}'),
        st.just('{"action": "get_status", "echo": "' + "9" * 5000 + '"}'),
    ),
)
def test_the_simulator_answers_any_frame_and_never_raises(
    version: int, napcat: bool, frame: str
) -> None:
    config = OneBotSimConfig(version=version, napcat=napcat, numeric_echo=True)  # type: ignore[arg-type]
    sim = OneBotSimulator(config)
    conn, client = ws_to(sim)
    conn.receive_data(client.send_text(frame), 0.0)
    for event in client.receive_data(conn.data_to_send()):
        if isinstance(event, TextReceived):
            answer = json.loads(event.text)
            assert answer["status"] in ("ok", "failed") and isinstance(answer["retcode"], int)


@pytest.mark.parametrize("body", [b"[" * 100_000, b"\xff\xfe", b'{"a": "\\ud800"}'])
def test_the_simulators_http_api_answers_any_body(body: bytes) -> None:
    sim = OneBotSimulator(OneBotSimConfig(version=12))
    request = HttpRequest(1, "POST", "http://127.0.0.1:3001/", (), body)
    assert http(sim, request)[0] in (200, 400)


def test_numeric_echoes_come_back_as_numbers() -> None:
    sim = OneBotSimulator(OneBotSimConfig(numeric_echo=True))
    (answer,) = sim.state.answers({"action": "get_status", "echo": "12"}, "ws", 0.0)
    assert answer["echo"] == 12
    for odd in ("١٢", "9" * 19, "1a"):  # non-ASCII digits, past int64, not a number
        (answer,) = sim.state.answers({"action": "get_status", "echo": odd}, "ws", 0.0)
        assert answer["echo"] == odd


KEY = "dGhlIHNhbXBsZSBub25jZQ=="
BEARER_X = ["Authorization: Bearer x"]
QUERY = f"?access_token={TOKEN}"


@pytest.mark.parametrize(
    ("config", "headers", "query", "status"),
    [
        (OneBotSimConfig(access_token=TOKEN), ["Authorization: Bearer "], "", 401),
        (OneBotSimConfig.lagrange_like(access_token=TOKEN), [], "", 403),
        (
            OneBotSimConfig(access_token=TOKEN),
            ["Authorization: Bearer x"],
            f"?access_token={TOKEN}",
            403,
        ),
        (
            OneBotSimConfig.napcat_like(access_token=TOKEN, auth_failure="http"),
            ["Authorization: Bearer x"],
            f"?access_token={TOKEN}",
            101,
        ),
    ],
)
def test_token_rules_of_each_implementation(
    config: OneBotSimConfig, headers: list[str], query: str, status: int
) -> None:
    sim = OneBotSimulator(config)
    conn = sim.accept(0.0)
    head = "".join(f"{h}\r\n" for h in headers)
    conn.receive_data(
        f"GET /{query} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{head}\r\n".encode(),
        0.0,
    )
    assert conn.data_to_send().startswith(f"HTTP/1.1 {status} ".encode())


def test_the_wire_shapes_of_each_version() -> None:
    v11 = OneBotSimulator(OneBotSimConfig.napcat_like())
    ws_to(v11)
    event = v11.group_message("hi [x]", 1.0)
    assert type(event["time"]) is int and type(event["self_id"]) is int
    assert type(event["message_id"]) is int and event["message_seq"] == event["message_id"]
    assert event["raw_message"] == "hi &#91;x&#93;" and event["message_format"] == "array"
    assert event["message"] == [{"type": "text", "data": {"text": "hi [x]"}}]
    v12 = OneBotSimulator(OneBotSimConfig(version=12))
    event = v12.private_message("hi", 1.5)
    assert type(event["time"]) is float and isinstance(event["id"], str)
    assert event["self"] == {"platform": "qq", "user_id": v12.self_id}
    assert event["alt_message"] == "hi" and isinstance(event["message_id"], str)
    assert event["detail_type"] == "private" and event["sub_type"] == ""
