"""A stopped bot stays stopped: after ``close()`` (or a failure) nothing opens again.

The bot is driven by hand into each phase with requests still out: a token
fetch, the gateway's discovery, a discovery retry waiting on the clock, a
Connect not yet answered, a live gateway with REST calls in flight and one
waiting for its retry. Then it closes (or fails), and Hypothesis throws every
call of the driver contract at it in any order: every answer a request could
get, transport failures, timers, the transport's news, new calls. Whatever
comes, no ``Connect``, ``HttpRequest``, ``StateChanged`` or ``Failed`` goes
out, the phase stays, and no deadline is asked for. And every REST call ends
exactly once: those not sent at once, the others with their answer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from qqproto.errors import LocalProtocolError
from qqproto.http import HttpResponse
from qqproto.qq.api import ApiResult, Target, send_text
from qqproto.qq.bot import BotProtocol
from qqproto.qq.codes import ApiError
from qqproto.qq.config import BotConfig
from qqproto.qq.phases import BotPhase
from qqproto.testing import FakeServer

from .bot_world import GATEWAY_BOT, SECRET

#: Every answer a request may get, whatever it asked for.
ANSWERS = {
    "token": HttpResponse(200, (), b'{"access_token": "T2", "expires_in": "7200"}'),
    "bad secret": HttpResponse(200, (), b'{"code": 100016, "message": "invalid appid"}'),
    "gateway": HttpResponse(200, (), json.dumps(GATEWAY_BOT).encode()),
    "sent": HttpResponse(200, (), b'{"id": "ROBOT1.0_out", "timestamp": 1}'),
    "401": HttpResponse(401, (), b'{"message": "unauthorized", "code": 11244}'),
    "429": HttpResponse(429, (), b'{"message": "slow down", "code": 22009}'),
    "500": HttpResponse(500, (), b"busy"),
}
PHASES = [
    "authenticating",
    "discovering",
    "discovery retry",
    "connecting",
    "running",
    "failed",
    "failed while running",
]


class Driver:
    """Carries out what the bot asks, except what the test answers by hand."""

    def __init__(self) -> None:
        self.bot = BotProtocol(BotConfig("102000000", SECRET, seed=3))
        self.now = 0.0
        self.requests: dict[int, HttpRequest] = {}
        self.server: FakeServer | None = None  # an open transport
        self.opening = False  # a Connect not answered yet
        self.conn = 0  # the id of the last Connect
        self.after_stop: list[Action] = []
        self.stopped = False
        self.calls: list[int] = []
        self.results: list[ApiResult[Any]] = []
        self.collect()

    def collect(self) -> None:
        self.carry_out(self.bot.actions())

    def carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            if self.stopped:
                self.after_stop.append(action)
            if isinstance(action, HttpRequest):
                self.requests[action.request_id] = action
            elif isinstance(action, Connect):
                self.conn = action.conn
                self.opening = True
            elif isinstance(action, SendData) and self.server is not None:
                if answer := self.server.receive(action.data):
                    self.bot.receive_data(self.conn, answer, self.now)
                    self.collect()
            elif isinstance(action, Disconnect):
                self.opening, self.server = False, None
                self.bot.connection_lost(self.conn, self.now, None)
                self.collect()
            elif isinstance(action, Deliver) and isinstance(action.event, ApiResult):
                self.results.append(action.event)

    def answer(self, kind: str, *, url: str = "") -> None:
        [request_id] = [i for i, r in self.requests.items() if url in r.url][:1]
        del self.requests[request_id]
        self.bot.http_response(request_id, ANSWERS[kind], self.now)
        self.collect()

    def open(self) -> None:
        self.opening, self.server = False, FakeServer()
        self.bot.connection_made(self.conn, self.now)
        self.collect()

    def gateway_sends(self, payload: dict[str, Any]) -> None:
        assert self.server is not None
        self.bot.receive_data(self.conn, self.server.send(payload), self.now)
        self.collect()

    def call(self) -> None:
        self.calls.append(self.bot.call(send_text(Target.group("G"), "hi"), self.now))
        self.collect()


def reach(phase: str) -> Driver:
    """A bot in ``phase`` with requests still out."""
    d = Driver()
    if phase == "authenticating":
        d.call()  # waits for the token
        return d
    if phase == "failed":
        d.call()
        d.answer("bad secret")
        assert d.bot.phase is BotPhase.FAILED
        return d
    if phase == "failed while running":
        d = reach("running")
        d.now = 7200.0 - 60.0  # the token's refresh, answered: the secret was revoked
        d.bot.handle_timer(d.now)
        d.collect()
        d.answer("bad secret", url="getAppAccessToken")
        assert d.bot.phase is BotPhase.FAILED
        return d
    d.answer("token")
    if phase == "discovery retry":
        d.answer("500")
        assert d.bot.next_deadline() is not None
    if phase in ("discovering", "discovery retry"):
        return d
    d.answer("gateway")
    assert d.opening
    if phase == "running":
        d.open()
        d.gateway_sends({"op": 10, "d": {"heartbeat_interval": 45000}})
        ready = {"session_id": "s", "user": {"id": "1"}}
        d.gateway_sends({"op": 0, "s": 1, "t": "READY", "d": ready})
        d.call()
        d.call()
        d.answer("429", url="/messages")  # the first waits for its retry
    assert d.bot.phase is BotPhase.RUNNING
    return d


#: What each kind of step draws: the answer a request gets, or the seconds that pass.
STEP_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "answer": st.sampled_from(sorted(ANSWERS)),
    "fail": st.none(),
    "timer": st.floats(0, 4000),
    "lost": st.none(),
    "bytes": st.none(),
    "call": st.none(),
}


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[str, Any]]:
    kinds = st.sampled_from(["answer", "answer", "fail", "timer", "lost", "bytes", "call"])
    return [(kind, draw(STEP_VALUES[kind])) for kind in draw(st.lists(kinds, max_size=12))]


@pytest.mark.parametrize("phase", PHASES)
@settings(max_examples=60)
@given(schedule=steps())
def test_nothing_opens_after_the_bot_stopped(phase: str, schedule: list[tuple[str, Any]]) -> None:
    d = reach(phase)
    stopped_in = BotPhase.FAILED if phase.startswith("failed") else BotPhase.CLOSED
    d.bot.close(d.now)
    closing = d.bot.actions()
    assert not [a for a in closing if isinstance(a, Connect | HttpRequest | Failed)], closing
    assert all(a.new.endswith("CLOSED") for a in closing if isinstance(a, StateChanged))
    d.carry_out(closing)
    d.stopped = True
    assert d.bot.phase is stopped_in
    for kind, value in schedule:
        if kind == "answer" and d.requests:
            request_id = min(d.requests)
            del d.requests[request_id]
            d.bot.http_response(request_id, ANSWERS[value], d.now)
        elif kind == "fail" and d.requests:
            request_id = max(d.requests)
            del d.requests[request_id]
            d.bot.http_failed(request_id, d.now, "connection reset")
        elif kind == "timer":
            d.now += value
            d.bot.handle_timer(d.now)
        elif kind == "lost" and d.opening:
            d.opening = False
            d.bot.connection_lost(d.conn, d.now, "refused")
        elif kind == "bytes" and d.server is not None:
            d.bot.receive_data(d.conn, d.server.send({"op": 7}), d.now)
        elif kind == "call":
            with pytest.raises(LocalProtocolError, match="the bot has stopped"):
                d.bot.call(send_text(Target.group("G"), "late"), d.now)
        d.collect()
        opened = [a for a in d.after_stop if isinstance(a, Connect | HttpRequest)]
        assert opened == [], f"{phase}: opened after the stop: {opened}"
        moved = [a for a in d.after_stop if isinstance(a, StateChanged | Failed)]
        assert moved == [], f"{phase}: moved after the stop: {moved}"
        assert d.bot.phase is stopped_in
        assert d.bot.next_deadline() is None
    for request_id in sorted(d.requests):  # the driver answers what is still out
        d.bot.http_failed(request_id, d.now, "shut down")
        d.collect()
    assert sorted(r.request_id for r in d.results) == sorted(d.calls), "every call ends, once"


def test_a_discovery_answer_after_close_starts_no_gateway() -> None:
    """The review's case: the /gateway/bot answer came after close()."""
    d = reach("discovering")
    d.bot.close(d.now)
    d.collect()
    d.answer("gateway")
    assert d.bot.phase is BotPhase.CLOSED and d.bot.gateway is None
    assert not d.opening


def test_a_call_waiting_for_its_retry_ends_at_close_with_the_error_it_got() -> None:
    d = reach("running")
    waiting = d.calls[0]  # a 429 came; its retry is due later
    d.bot.close(d.now)
    d.collect()
    [result] = d.results
    assert result.request_id == waiting and isinstance(result.error, ApiError)
    assert result.error.status == 429  # not "never sent": it was, and this is what came


def test_a_call_waiting_for_a_token_ends_at_close_saying_it_was_never_sent() -> None:
    d = reach("authenticating")
    [waiting] = d.calls
    d.bot.close(d.now)
    d.collect()
    [result] = d.results
    assert result.request_id == waiting and isinstance(result.error, LocalProtocolError)
    assert "the bot closed before the call was sent" in str(result.error)


def test_a_bot_that_fails_while_running_closes_its_gateway() -> None:
    d = reach("failed while running")
    gateway = d.bot.gateway
    assert gateway is not None and gateway.state.name == "CLOSED"
    assert d.server is None and not d.opening  # the close frame went, then the socket
    assert d.bot.next_deadline() is None


def test_close_after_a_failure_keeps_the_failure() -> None:
    d = reach("failed")
    reason = d.bot.failure_reason
    d.bot.close(d.now)
    assert d.bot.actions() == [] and d.bot.phase is BotPhase.FAILED
    assert d.bot.failure_reason == reason
