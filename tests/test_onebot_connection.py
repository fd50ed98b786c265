"""OneBotProtocol on a fake clock, against a scripted implementation (tests/onebot_world.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qqproto.actions import SendData
from qqproto.calls import CallTimeout, StrayAnswer
from qqproto.errors import ConfigError, LocalProtocolError, ProtocolViolation
from qqproto.http import HttpResponse
from qqproto.link import Retry
from qqproto.onebot import ActionResult, OneBotConfig, StreamFrame
from qqproto.onebot.actions import Action, Chat, send_message
from qqproto.onebot.events import MessageEvent, MetaEvent
from qqproto.onebot.lifecycle import OneBotState

from .onebot_world import TOKEN, URL, World
from .test_onebot_events import V12_CONNECT

LIFECYCLE: dict[str, object] = {
    "post_type": "meta_event",
    "meta_event_type": "lifecycle",
    "sub_type": "connect",
    "self_id": 42,
    "time": 1,
}


def group_message(n: int) -> dict[str, object]:
    return {
        "post_type": "message",
        "message_type": "group",
        "self_id": 42,
        "user_id": 1,
        "group_id": 2,
        "message_id": n,
        "message": [{"type": "text", "data": {"text": f"hi {n}"}}],
    }


def connected(**config: Any) -> World:
    w = World(**config)
    assert w.proto.state is OneBotState.CONNECTED
    w.send(LIFECYCLE)
    return w


def test_it_dials_with_the_token_and_reads_the_version_and_self_id() -> None:
    w = connected()
    assert w.impls[0].authorization == f"Bearer {TOKEN}"
    assert w.states() == [("CONNECTING", "CONNECTED")]
    assert (w.proto.version, w.proto.self_id) == (11, 42)
    assert isinstance(w.delivered[0], MetaEvent)


def test_events_arrive_in_order_as_the_models_values() -> None:
    w = connected()
    for n in range(3):
        w.send(group_message(n))
    texts = [e.text for e in w.delivered if isinstance(e, MessageEvent)]
    assert texts == ["hi 0", "hi 1", "hi 2"]


def test_an_action_goes_with_a_string_echo_and_its_answer_comes_back() -> None:
    w = connected()
    call_id = w.call(send_message(Chat.group(2), "pong", 11))
    [frame] = w.impls[0].received
    assert frame["action"] == "send_msg" and frame["echo"] == str(call_id)
    w.send({"status": "ok", "retcode": 0, "data": {"message_id": 9}, "echo": frame["echo"]})
    [result] = w.results()
    assert result.call_id == call_id and result.ok and result.answer is not None
    assert result.answer.result() == {"message_id": 9}


def test_a_numeric_echo_whose_text_is_ours_matches() -> None:
    w = connected()
    call_id = w.call(Action("get_status"))
    w.send({"status": "ok", "retcode": 0, "data": {}, "echo": call_id})  # a number
    assert [r.call_id for r in w.results()] == [call_id]


@pytest.mark.parametrize("echo", ["999", "", None, {"seq": 1}])
def test_answers_to_nobody_are_reported_not_crashed_on(echo: object) -> None:
    w = connected()
    w.send({"status": "failed", "retcode": 1400, "data": None, "echo": echo})
    [violation] = [e for e in w.delivered if isinstance(e, ProtocolViolation)]
    assert isinstance(violation.error, StrayAnswer)
    w.send(group_message(1))  # and the connection goes on
    assert w.proto.state is OneBotState.CONNECTED and isinstance(w.delivered[-1], MessageEvent)


def test_a_second_answer_to_one_echo_is_reported() -> None:
    w = connected()
    call_id = w.call(Action("get_status"))
    answer = {"status": "ok", "retcode": 0, "data": {}, "echo": str(call_id)}
    w.send(answer)
    w.send(answer)
    assert len(w.results()) == 1
    [violation] = [e for e in w.delivered if isinstance(e, ProtocolViolation)]
    assert isinstance(violation.error, StrayAnswer) and violation.error.late


def test_a_streamed_answer_is_not_retired_on_its_first_frame() -> None:
    w = connected()
    call_id = w.call(Action("download_file_stream", {"file": "x"}))
    echo = str(call_id)
    for n in range(2):
        data = {"type": "stream", "data": f"chunk {n}"}
        w.send(
            {"status": "ok", "retcode": 0, "data": data, "echo": echo, "stream": "stream-action"}
        )
    final = {"type": "response", "data": "done"}
    w.send({"status": "ok", "retcode": 0, "data": final, "echo": echo, "stream": "stream-action"})
    frames = [e for e in w.delivered if isinstance(e, StreamFrame)]
    assert [f.answer.data["data"] for f in frames] == ["chunk 0", "chunk 1"]
    [result] = w.results()
    assert result.ok and result.answer is not None and result.answer.data == final


def test_an_unanswered_action_times_out_and_the_connection_goes_on() -> None:
    w = connected(call_timeout=5.0)
    call_id = w.call(send_message(Chat.private(1), "hi", 11))
    w.advance(5.0)
    [result] = w.results()
    assert result.call_id == call_id and isinstance(result.error, CallTimeout)
    assert "outcome is unknown" in str(result.error)
    assert w.proto.state is OneBotState.CONNECTED


def test_a_drop_ends_pending_actions_with_an_unknown_outcome_and_reconnects() -> None:
    w = connected()
    w.call(Action("send_msg", {"user_id": 1, "message": "x"}))
    w.drop()
    [result] = w.results()
    assert result.error is not None and "outcome unknown" in str(result.error)
    # A drop is retried after the first wait, and said so.
    [retry] = [e for e in w.delivered if isinstance(e, Retry)]
    assert (retry.attempt, retry.what) == (1, "onebot") and 0.75 <= retry.delay <= 1.25
    assert w.proto.state is OneBotState.CONNECTING and len(w.impls) == 1
    w.advance(1.5)
    assert len(w.impls) == 2 and w.proto.state is OneBotState.CONNECTED
    assert w.states()[1:] == [("CONNECTED", "CONNECTING"), ("CONNECTING", "CONNECTED")]
    w.send(group_message(7))
    assert isinstance(w.delivered[-1], MessageEvent)  # events after a reconnect arrive


def test_failed_attempts_back_off_and_say_so_forever_by_default() -> None:
    w = connected()
    w.refuse_connect = True
    w.drop()
    w.advance(200.0)
    retries = [e for e in w.delivered if isinstance(e, Retry)]
    assert len(retries) >= 8 and all(r.what == "onebot" and r.of is None for r in retries)
    delays = [r.delay for r in retries]
    assert [r.attempt for r in retries] == list(range(1, len(retries) + 1))
    # 1, 2, 4, 8, 16, then the 30 s cap (each ±25 %, never shorter than the one before).
    for n, low in enumerate([0.75, 1.5, 3.0, 6.0, 12.0]):
        assert delays[n] >= low
    assert delays[-1] == 30.0 and max(delays) <= 30.0
    assert delays == sorted(delays)
    assert w.proto.state is OneBotState.CONNECTING  # never gives up
    w.refuse_connect = False
    w.advance(31.0)
    assert w.proto.state is OneBotState.CONNECTED


def test_a_bounded_budget_fails_with_the_last_reason() -> None:
    w = World(max_attempts=2)
    w.refuse_connect = True
    w.drop()
    w.advance(10.0)
    assert w.proto.state is OneBotState.FAILED
    assert w.failed() and "gave up after 2 failed attempts" in w.failed()[0]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_at_the_upgrade_is_final(status: int) -> None:
    w = World(impl={"status": status})
    assert w.proto.state is OneBotState.FAILED
    assert w.failed() == [f"access token refused (HTTP {status} at the upgrade)"]
    w.advance(3600)
    assert len(w.impls) == 1  # never dialled again


def test_another_refused_upgrade_is_retried() -> None:
    w = World(impl={"status": 503})
    retries = [e for e in w.delivered if isinstance(e, Retry)]
    assert retries and "HTTP 503" in retries[0].reason
    assert w.proto.state is OneBotState.CONNECTING


def test_a_1403_answering_an_action_or_after_an_event_is_an_answer_not_a_refusal() -> None:
    w = connected()  # the lifecycle event came first
    w.send({"status": "failed", "retcode": 1403, "data": None, "echo": ""})
    assert w.proto.state is OneBotState.CONNECTED  # a stray, reported
    call_id = w.call(Action("get_status"))
    w.send({"status": "failed", "retcode": 1403, "data": None, "echo": str(call_id)})
    [result] = w.results()
    assert w.proto.state is OneBotState.CONNECTED and not result.ok
    assert result.answer is not None and result.answer.retcode == 1403


def test_an_upgrade_never_answered_is_a_failed_attempt_after_open_timeout() -> None:
    w = World(impl={"silent": True}, open_timeout=5.0)
    assert w.proto.state is OneBotState.CONNECTING and w.proto.next_deadline() == 5.0
    w.advance(5.0)
    [retry] = [e for e in w.delivered if isinstance(e, Retry)]
    assert retry.reason == "no answer to the upgrade within 5 s" and retry.attempt == 1
    w.advance(1.5)
    assert len(w.impls) == 2  # dialled again, after its wait


@pytest.mark.parametrize("interval", [1, 0.5])
def test_a_heartbeat_interval_under_a_second_is_taken_as_one(interval: float) -> None:
    w = connected()
    w.send({"post_type": "meta_event", "meta_event_type": "heartbeat", "interval": interval})
    w.advance(2.4)  # 2.5 x 1 s: still alive
    assert len(w.impls) == 1 and w.proto.state is OneBotState.CONNECTED


def test_a_1403_frame_then_a_close_is_final_too() -> None:
    w = World()
    w.send(
        {"status": "failed", "retcode": 1403, "data": None, "message": "token验证失败", "echo": ""}
    )
    assert w.proto.state is OneBotState.FAILED
    assert w.failed() == ["access token refused (retcode 1403)"]
    w.advance(3600)
    assert len(w.impls) == 1


def test_heartbeats_that_stop_end_the_connection_and_a_new_one_is_dialled() -> None:
    w = connected(heartbeat_factor=2.5)
    beat = {
        "post_type": "meta_event",
        "meta_event_type": "heartbeat",
        "interval": 10000,
        "self_id": 42,
    }
    w.send(beat)
    w.advance(20.0)
    w.send(group_message(1))  # any frame is a sign of life
    w.advance(24.9)
    assert len(w.impls) == 1
    w.advance(0.2)  # 25 s after the last frame: dead
    [retry] = [e for e in w.delivered if isinstance(e, Retry)]
    assert "nothing received for 25 s" in retry.reason
    w.advance(1.5)
    assert len(w.impls) == 2 and w.proto.state is OneBotState.CONNECTED


def test_without_heartbeats_a_quiet_connection_that_answers_pings_is_left_alone() -> None:
    w = connected()
    w.advance(3600.0)
    assert len(w.impls) == 1 and w.proto.state is OneBotState.CONNECTED
    assert not any(isinstance(d, Retry) for d in w.delivered)


def test_without_heartbeats_a_transport_that_stops_answering_pings_is_dead() -> None:
    w = connected(ping_interval=10.0, ping_timeout=5.0)
    assert w.impl is not None
    w.impl.silent = True  # a hung peer: no pong, no frame
    w.advance(14.9)
    assert len(w.impls) == 1 and not any(isinstance(d, Retry) for d in w.delivered)
    w.advance(0.2)  # the ping at 10 s went unanswered for 5 s
    (retry,) = [d for d in w.delivered if isinstance(d, Retry)]
    assert "ping" in retry.reason


def test_the_ping_fallback_can_be_turned_off() -> None:
    w = connected(ping_interval=None)
    assert w.impl is not None
    w.impl.silent = True
    w.advance(3600.0)
    assert len(w.impls) == 1 and w.proto.state is OneBotState.CONNECTED


def test_once_heartbeats_come_they_watch_the_link_and_pings_stop() -> None:
    w = connected(ping_interval=10.0, ping_timeout=5.0)
    assert w.impl is not None
    w.send(LIFECYCLE | {"meta_event_type": "heartbeat", "interval": 60_000})
    sent_before = len(w.log)
    w.impl.silent = True
    w.advance(60 * 2.5 - 1)  # 40 s of silence: a ping would have gone and failed by now
    assert w.proto.state is OneBotState.CONNECTED and len(w.impls) == 1
    assert not [a for a in w.log[sent_before:] if isinstance(a, SendData)]
    w.advance(2)
    assert any(isinstance(d, Retry) for d in w.delivered)


@pytest.mark.parametrize(
    "frame",
    ["not json {", "[1, 2]", '"x"', "{}", '{"post_type": "message"}', "[" * 2000 + "]" * 2000],
)
def test_hostile_frames_never_end_the_connection(frame: str) -> None:
    w = connected()
    w.send(frame)
    w.send(group_message(1))
    assert w.proto.state is OneBotState.CONNECTED
    assert isinstance(w.delivered[-1], MessageEvent)


def test_close_ends_pending_actions_and_nothing_dials_again() -> None:
    w = connected()
    w.call(Action("get_status"))
    w.proto.close(w.now)
    w.pump()
    assert w.proto.state is OneBotState.CLOSED
    [result] = w.results()
    assert result.error is not None and "closed by the application" in str(result.error)
    with pytest.raises(LocalProtocolError, match="the connection is over"):
        w.proto.call(Action("get_status"), w.now)
    w.advance(3600)
    assert len(w.impls) == 1


def test_a_v12_connection_is_told_by_its_first_event() -> None:
    w = World()
    w.send(V12_CONNECT)
    assert w.proto.version == 12


@pytest.mark.parametrize(
    ("field", "value"),
    [("url", "http://x/"), ("access_token", " x"), ("call_timeout", 0), ("heartbeat_factor", 4)],
)
def test_bad_configuration_is_refused(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=field):
        OneBotConfig(**{"url": URL, field: value})  # type: ignore[arg-type]


def test_results_are_values() -> None:
    result = ActionResult(1, Action("x"))
    assert not result.ok and result.error is None


def v12_over_http(**config: Any) -> World:
    w = World(api_url="http://127.0.0.1:3002/", protocol="v12", **config)
    w.send(V12_CONNECT)
    return w


def test_v12_actions_go_over_http_when_an_api_url_is_given() -> None:
    w = v12_over_http()
    call_id = w.call(Action("get_self_info"))
    assert w.impls[0].received == []  # not on the socket
    [request] = w.requests
    assert (request.method, request.url) == ("POST", "http://127.0.0.1:3002/")
    assert ("Authorization", f"Bearer {TOKEN}") in request.headers
    body = json.loads(request.body)
    assert body == {"action": "get_self_info", "params": {}, "echo": str(call_id)}
    answer = {"status": "ok", "retcode": 0, "data": {"user_id": "42"}, "message": "", "echo": "1"}
    w.proto.http_response(
        request.request_id, HttpResponse(200, (), json.dumps(answer).encode()), w.now
    )
    w.pump()
    [result] = w.results()
    assert result.call_id == call_id and result.ok and result.answer is not None
    assert result.answer.result() == {"user_id": "42"}


def test_an_http_action_that_got_no_answer_has_an_unknown_outcome() -> None:
    w = v12_over_http()
    w.call(Action("send_message", {"detail_type": "private", "user_id": "1", "message": []}))
    [request] = w.requests
    w.proto.http_failed(request.request_id, w.now, "connection refused")
    w.pump()
    [result] = w.results()
    assert result.error is not None and "outcome is unknown" in str(result.error)


@pytest.mark.parametrize(("status", "final"), [(401, True), (403, True), (500, False)])
def test_a_refused_token_from_the_api_is_final_other_errors_are_not(
    status: int, final: bool
) -> None:
    w = v12_over_http()
    w.call(Action("get_self_info"))
    [request] = w.requests
    w.proto.http_response(request.request_id, HttpResponse(status, (), b"nope"), w.now)
    w.pump()
    [result] = w.results()
    assert result.error is not None and str(status) in str(result.error)
    assert (w.proto.state is OneBotState.FAILED) is final


def test_a_late_http_answer_is_reported_and_a_drop_leaves_http_actions_alone() -> None:
    w = v12_over_http(call_timeout=5.0)
    w.call(Action("get_self_info"))
    late, kept = w.requests[0], None
    w.advance(5.0)  # its deadline passes before the driver's own timeout
    assert isinstance(w.results()[0].error, CallTimeout)
    w.proto.http_response(late.request_id, HttpResponse(200, (), b"{}"), w.now)
    w.pump()
    [violation] = [e for e in w.delivered if isinstance(e, ProtocolViolation)]
    assert isinstance(violation.error, StrayAnswer) and violation.error.late
    call_id = w.call(Action("get_status"))
    kept = w.requests[-1]
    w.drop()  # the socket goes; the HTTP request does not need it
    assert [r.call_id for r in w.results()] == [1]
    ok = {"status": "ok", "retcode": 0, "data": {}, "message": ""}
    w.proto.http_response(kept.request_id, HttpResponse(200, (), json.dumps(ok).encode()), w.now)
    w.pump()
    assert w.results()[-1].call_id == call_id and w.results()[-1].ok


def test_a_frame_with_a_lone_surrogate_goes_out_escaped() -> None:
    w = connected()
    w.call(send_message(Chat.private(1), "bad \ud800 text", 11))
    [frame] = w.impls[0].received
    assert frame["params"]["message"][0]["data"]["text"] == "bad \ud800 text"


def test_an_http_answer_to_no_request_is_the_drivers_mistake() -> None:
    w = v12_over_http()
    with pytest.raises(LocalProtocolError, match="HTTP answer to no request"):
        w.proto.http_response(999, HttpResponse(200, (), b"{}"), w.now)


def test_v11_ignores_the_api_url_and_uses_the_socket() -> None:
    w = connected(api_url="http://127.0.0.1:3002/")
    w.call(Action("get_status"))
    assert w.requests == [] and len(w.impls[0].received) == 1


def test_with_an_api_url_and_auto_an_action_waits_for_the_version() -> None:
    w = World(api_url="http://127.0.0.1:3002/")  # protocol auto: v11 or v12 unknown yet
    assert w.proto.state is OneBotState.CONNECTED and w.proto.version is None
    call_id = w.call(Action("get_self_info"))
    assert w.requests == [] and w.impls[0].received == []  # neither way yet
    w.send(V12_CONNECT)  # v12: HTTP it is
    [request] = w.requests
    assert json.loads(request.body)["echo"] == str(call_id)
    assert w.impls[0].received == []


def test_an_http_answer_after_many_other_calls_is_still_only_late() -> None:
    w = v12_over_http(call_timeout=1.0)
    w.call(Action("get_status"))
    [first] = w.requests
    w.advance(2.0)  # it timed out
    for _ in range(1100):  # more than the calls a pending-call book remembers
        w.call(Action("get_status"))
        w.advance(2.0)
    w.proto.http_response(first.request_id, HttpResponse(200, (), b"{}"), w.now)
    w.pump()
    assert isinstance(w.delivered[-1], ProtocolViolation)
    with pytest.raises(LocalProtocolError, match="HTTP answer to no request"):
        w.proto.http_response(10**9, HttpResponse(200, (), b"{}"), w.now)


def test_each_stream_frame_gives_its_action_more_time() -> None:
    w = connected(call_timeout=5.0, ping_interval=None)
    echo = str(w.call(Action("upload_file_stream", {"file": "x"})))
    frame = {"status": "ok", "retcode": 0, "echo": echo, "stream": "stream-action"}
    for _ in range(3):  # 12 s in all, more than call_timeout, but never 5 s without a frame
        w.advance(4.0)
        w.send(frame | {"data": {"type": "stream"}})
    assert w.results() == []
    w.send(frame | {"data": {"type": "response"}})
    [result] = w.results()
    assert result.ok
    echo = str(w.call(Action("upload_file_stream", {"file": "y"})))
    w.send(frame | {"echo": echo, "data": {"type": "stream"}})
    w.advance(5.1)  # a stream that stalls still ends
    assert isinstance(w.results()[-1].error, CallTimeout)
