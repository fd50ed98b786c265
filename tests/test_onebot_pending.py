"""PendingActions: the actions a OneBot endpoint has out, on sockets and over HTTP."""

from __future__ import annotations

import random
from typing import Any

import pytest

from qqproto.actions import Deliver, HttpRequest
from qqproto.calls import CallTimeout, StrayAnswer
from qqproto.errors import LocalProtocolError, ProtocolViolation, RemoteProtocolError
from qqproto.http import HttpResponse
from qqproto.onebot.actions import Action, read_answer
from qqproto.onebot.http_api import HttpApi, TokenRefused
from qqproto.onebot.pending import PendingActions
from qqproto.onebot.results import ActionResult, StreamFrame


def _pending() -> tuple[PendingActions, list[Any]]:
    out: list[Any] = []
    return PendingActions(random.Random(1), 10.0, out.append), out


def _results(out: list[Any]) -> dict[int, ActionResult]:
    return {
        d.event.call_id: d.event
        for d in out
        if isinstance(d, Deliver) and isinstance(d.event, ActionResult)
    }


def _answer(echo: Any, **extra: Any) -> Any:
    return read_answer({"status": "ok", "retcode": 0, "data": {"n": 1}, "echo": echo, **extra})


def test_a_numeric_echo_whose_text_is_ours_ends_the_call() -> None:
    pending, out = _pending()
    call = pending.new(Action("get_status"))
    pending.on_socket(call, 0.0)
    pending.answered(_answer(call.id), 1.0)  # NapCat's number, not our text
    assert _results(out)[call.id].answer is not None
    assert pending.next_deadline() is None


def test_a_socket_going_ends_its_calls_only() -> None:
    pending, out = _pending()
    api = HttpApi("http://127.0.0.1:5700", 11)
    on_a, on_b, by_http = (pending.new(Action("get_status")) for _ in range(3))
    pending.on_socket(on_a, 0.0, tag=1)
    pending.on_socket(on_b, 0.0, tag=2)
    pending.over_http(by_http, api, 0.0)
    pending.socket_gone("socket 1 closed", 1)
    results = _results(out)
    assert set(results) == {on_a.id}
    assert isinstance(results[on_a.id].error, RemoteProtocolError)
    assert "socket 1 closed" in str(results[on_a.id].error)
    pending.answered(_answer(str(on_b.id)), 1.0, tag=1)  # socket 1 cannot answer it
    assert on_b.id not in _results(out)
    pending.answered(_answer(str(on_b.id)), 1.0, tag=2)  # its own socket does
    assert _results(out)[on_b.id].error is None


def test_an_http_answer_ends_its_call_and_a_refused_token_is_returned() -> None:
    pending, out = _pending()
    api = HttpApi("http://127.0.0.1:5700", 12, "t")
    first, second = pending.new(Action("a")), pending.new(Action("b"))
    pending.over_http(first, api, 0.0)
    pending.over_http(second, api, 0.0)
    first_id, second_id = (a.request_id for a in out if isinstance(a, HttpRequest))
    body = b'{"status":"ok","retcode":0,"data":null,"echo":"x"}'
    assert pending.http_answered(first_id, HttpResponse(200, (), body), api) is None
    refused = pending.http_answered(second_id, HttpResponse(403, (), b""), api)
    assert isinstance(refused, TokenRefused)
    results = _results(out)
    assert results[first.id].answer is not None and results[second.id].error is refused
    with pytest.raises(LocalProtocolError, match="HTTP answer to no request"):
        pending.http_failed(second_id, "again")  # the driver's mistake, said to it


def test_a_late_http_answer_is_a_violation_not_a_crash() -> None:
    pending, out = _pending()
    api = HttpApi("http://127.0.0.1:5700", 11)
    call = pending.new(Action("a"))
    pending.over_http(call, api, 0.0)
    (request,) = (a for a in out if isinstance(a, HttpRequest))
    pending.expire(10.0)
    assert isinstance(_results(out)[call.id].error, CallTimeout)
    pending.http_failed(request.request_id, "too late")
    violations = [
        d.event for d in out if isinstance(d, Deliver) and isinstance(d.event, ProtocolViolation)
    ]
    assert len(violations) == 1 and isinstance(violations[0].error, StrayAnswer)
    assert violations[0].error.late


def test_stream_frames_extend_the_deadline_and_the_last_one_ends_the_call() -> None:
    pending, out = _pending()
    call = pending.new(Action("upload_file_stream"))
    pending.on_socket(call, 0.0)
    frame = _answer(str(call.id), stream="stream-action", data={"type": "stream"})
    pending.answered(frame, 8.0)
    assert pending.next_deadline() == 18.0
    assert [type(d.event) for d in out] == [StreamFrame]
    pending.answered(_answer(str(call.id)), 9.0)
    assert _results(out)[call.id].error is None


@pytest.mark.parametrize("echo", [None, "", 1.5, ["1"]])
def test_an_echo_we_never_send_is_a_violation(echo: Any) -> None:
    pending, out = _pending()
    pending.answered(_answer(echo), 0.0)
    (said,) = out
    assert isinstance(said.event, ProtocolViolation)
    assert "never send" in str(said.event.error)
