"""qqproto.calls: pending calls end with an answer, a typed error or a timeout."""

from __future__ import annotations

import random

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from qqproto.calls import Call, Calls, CallTimeout, StrayAnswer
from qqproto.errors import LocalProtocolError, RemoteProtocolError


def calls(max_attempts: int = 3) -> Calls[str]:
    return Calls(random.Random(0), max_attempts=max_attempts)


def test_an_answer_retires_its_call_and_a_second_one_is_stray() -> None:
    pending = calls()
    call = pending.new("get")
    pending.sent(call, "echo-1")
    assert pending.answer("echo-1") is call and len(pending) == 0
    with pytest.raises(StrayAnswer, match="a call that was answered already") as caught:
        pending.answer("echo-1")
    assert caught.value.late and caught.value.key == "echo-1"


def test_an_answer_to_a_key_never_used_is_stray_and_not_late() -> None:
    with pytest.raises(StrayAnswer, match="an answer to no call") as caught:
        calls().answer("nobody")
    assert not caught.value.late
    assert isinstance(caught.value, RemoteProtocolError)  # the peer's, to report


def test_a_streamed_answer_keeps_its_call_until_the_last_frame() -> None:
    pending = calls()
    call = pending.new("upload_file_stream")
    pending.sent(call, 7)
    for _ in range(3):
        assert pending.answer(7, final=False) is call
    assert pending.answer(7) is call and call.frames == 4
    assert pending.in_flight == []


def test_a_deadline_ends_the_call_with_a_timeout_whose_outcome_is_unknown() -> None:
    pending = calls()
    call = pending.new("send_msg")
    pending.sent(call, 1, deadline=30.0)
    assert pending.next_deadline() == 30.0
    assert pending.expired(29.9) == []
    [(ended, timeout)] = pending.expired(30.0)
    assert ended is call and isinstance(timeout, CallTimeout)
    assert "outcome is unknown" in str(timeout)
    with pytest.raises(StrayAnswer, match="timed out"):  # its answer comes too late
        pending.answer(1)
    assert pending.next_deadline() is None


def test_retries_back_off_and_end_when_the_attempts_are_spent() -> None:
    pending = calls(max_attempts=3)
    call = pending.new("post")
    error = RemoteProtocolError("503")
    waits = []
    for key in range(3):
        pending.sent(call, key)
        pending.answer(key)
        wait = pending.retry_later(call, error, now=100.0)
        if wait is None:
            break
        waits.append(wait)
        assert pending.due(100.0 + wait - 0.01) == []
        assert pending.due(100.0 + wait) == [call]
    assert len(waits) == 2 and 0.75 <= waits[0] <= 1.25 and 1.5 <= waits[1] <= 2.5
    assert call.attempts == 3 and call.last_error is error and len(pending) == 0


def test_held_calls_come_back_in_order_and_unsent_ones_can_be_taken() -> None:
    pending = calls()
    first, second, retried = pending.new("a"), pending.new("b"), pending.new("c")
    pending.hold(first)
    pending.hold(second)
    pending.sent(retried, 1)
    pending.answer(1)
    pending.retry_later(retried, RemoteProtocolError("later"), 0.0)
    assert pending.release() == [first, second] and pending.release() == []
    pending.hold(first)
    assert pending.take_unsent() == [first, retried] and len(pending) == 0


def test_dropping_all_ends_every_call_and_their_answers_are_late() -> None:
    pending = calls()
    flying, held = pending.new("a"), pending.new("b")
    pending.sent(flying, "k", deadline=5.0)
    pending.hold(held)
    assert set(map(id, pending.drop_all("link lost"))) == {id(flying), id(held)}
    assert len(pending) == 0 and pending.next_deadline() is None
    with pytest.raises(StrayAnswer, match=r"was ended \(link lost\)"):
        pending.answer("k")


def test_ids_never_repeat_across_calls_and_keys() -> None:
    pending = calls()
    ids = [pending.new("x").id for _ in range(3)] + [pending.next_id() for _ in range(3)]
    assert ids == [1, 2, 3, 4, 5, 6]


def test_a_key_in_flight_cannot_be_used_twice() -> None:
    pending = calls()
    pending.sent(pending.new("a"), 1)
    with pytest.raises(LocalProtocolError, match="already in flight"):
        pending.sent(pending.new("b"), 1)


class CallsMachine(RuleBasedStateMachine):
    """Any schedule: every call ends once, and the books always add up."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Calls[int] = Calls(random.Random(1), max_attempts=3)
        self.now = 0.0
        self.started: list[Call[int]] = []
        self.ended: list[Call[int]] = []
        self.flying: dict[int, Call[int]] = {}
        self.held: list[Call[int]] = []
        self.waiting: list[Call[int]] = []

    def _send(self, call: Call[int], deadline: float | None) -> None:
        key = self.calls.next_id()
        self.calls.sent(call, key, deadline=None if deadline is None else self.now + deadline)
        self.flying[key] = call

    @rule(deadline=st.one_of(st.none(), st.floats(0.1, 10)))
    def start(self, deadline: float | None) -> None:
        call = self.calls.new(len(self.started))
        self.started.append(call)
        self._send(call, deadline)

    @precondition(lambda self: self.flying)
    @rule(data=st.data(), final=st.booleans())
    def answer(self, data: st.DataObject, final: bool) -> None:
        key = data.draw(st.sampled_from(sorted(self.flying)))
        assert self.calls.answer(key, final=final) is self.flying[key]
        if final:
            self.ended.append(self.flying.pop(key))

    @rule(key=st.integers(-5, -1))
    def stray(self, key: int) -> None:
        with pytest.raises(StrayAnswer):
            self.calls.answer(key)

    @precondition(lambda self: self.flying)
    @rule(data=st.data(), hold=st.booleans())
    def fail(self, data: st.DataObject, hold: bool) -> None:
        key = data.draw(st.sampled_from(sorted(self.flying)))
        call = self.calls.answer(key)
        del self.flying[key]
        if hold:
            self.calls.hold(call)
            self.held.append(call)
        elif self.calls.retry_later(call, RemoteProtocolError("x"), self.now) is None:
            assert call.attempts >= 3
            self.ended.append(call)
        else:
            self.waiting.append(call)

    @precondition(lambda self: self.held)
    @rule()
    def release(self) -> None:
        assert self.calls.release() == self.held
        for call in self.held:
            self._send(call, None)
        self.held = []

    @rule(step=st.floats(0, 5))
    def tick(self, step: float) -> None:
        self.now += step
        for call in self.calls.due(self.now):
            self.waiting.remove(call)
            self._send(call, None)
        for call, timeout in self.calls.expired(self.now):
            assert isinstance(timeout, CallTimeout)
            del self.flying[call.key]  # type: ignore[arg-type]
            self.ended.append(call)

    @rule()
    def drop_all(self) -> None:
        dropped = self.calls.drop_all("dropped by the test")
        assert sorted(c.id for c in dropped) == sorted(
            c.id for c in [*self.flying.values(), *self.held, *self.waiting]
        )
        self.ended += dropped
        self.flying, self.held, self.waiting = {}, [], []

    @invariant()
    def every_call_is_in_one_place_or_ended_once(self) -> None:
        places = [*self.flying.values(), *self.held, *self.waiting, *self.ended]
        assert sorted(c.id for c in places) == sorted(c.id for c in self.started)
        assert len(self.calls) == len(self.flying) + len(self.held) + len(self.waiting)
        assert sorted(self.calls.in_flight) == sorted(self.flying)  # type: ignore[type-var]

    @invariant()
    def the_next_deadline_is_the_first_due_time(self) -> None:
        times = [c.deadline for c in self.flying.values() if c.deadline is not None]
        times += [c.retry_at for c in self.waiting if c.retry_at is not None]
        assert self.calls.next_deadline() == min(times, default=None)


TestCalls = CallsMachine.TestCase
