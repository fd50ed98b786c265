"""OneBotProtocol under any schedule of what an implementation and a network do.

A Hypothesis state machine drives the connection against the scripted
implementation of tests/onebot_world.py: events, actions, answers (right,
late, twice, to nobody, in several frames), drops, refused connections,
heartbeats that stop, a peer that hangs, garbage, a refused token, time passing. After every
step it checks the promises of the module docstring:

- every action ends exactly once, with an answer or a typed error, and by
  its deadline (or when its connection goes) at the latest;
- events reach the application once each, in the order they were sent;
- the connection is FAILED only after a refused token, and then nothing moves;
- every failed attempt is a Retry, its wait within the backoff's cap;
- the deadline the object asks for is never in the past;
- a peer that hangs (the socket up, nothing said) is given up in time.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from qqproto.errors import ProtocolViolation
from qqproto.link import Retry
from qqproto.onebot import ActionResult
from qqproto.onebot.actions import Action
from qqproto.onebot.events import MessageEvent
from qqproto.onebot.lifecycle import OneBotState

from .onebot_world import World

TIMEOUT = 10.0


class Connection(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.w = World(call_timeout=TIMEOUT, backoff_cap=8.0)
        self.sent_events = 0
        self.calls: dict[int, float] = {}  # call id -> when it went out
        self.must_have_ended: set[int] = set()
        self.token_refused = False
        self.events_here: dict[int, int] = {}  # per connection (Impl): events sent on it
        self.hung: tuple[object, float] | None = None  # the Impl that went silent, and when

    @property
    def connected(self) -> bool:
        """Connected to an implementation that still speaks (not hung)."""
        impl = self.w.impl
        return self.w.proto.state is OneBotState.CONNECTED and impl is not None and not impl.silent

    def echoes_out(self) -> list[str]:
        impl = self.w.impl
        return [str(f["echo"]) for f in impl.received] if impl is not None else []

    # -- the implementation ---------------------------------------------------------------

    def _event_sent(self) -> None:
        key = id(self.w.impl)
        self.events_here[key] = self.events_here.get(key, 0) + 1

    @precondition(lambda self: self.connected)
    @rule()
    def event(self) -> None:
        self._event_sent()
        self.sent_events += 1
        self.w.send(
            {
                "post_type": "message",
                "message_type": "private",
                "self_id": 42,
                "user_id": 1,
                "message_id": self.sent_events,
                "message": [{"type": "text", "data": {"text": str(self.sent_events)}}],
            }
        )

    @precondition(lambda self: self.connected)
    @rule(data=st.data(), how=st.sampled_from(["once", "twice", "numeric", "streamed"]))
    def answer(self, data: st.DataObject, how: str) -> None:
        echoes = self.echoes_out()
        if not echoes:
            return
        echo = data.draw(st.sampled_from(echoes))
        answer: dict[str, Any] = {"status": "ok", "retcode": 0, "data": {}, "echo": echo}
        if how == "numeric":
            answer["echo"] = int(echo)
        if how == "streamed":
            stream = {**answer, "stream": "stream-action"}
            self.w.send({**stream, "data": {"type": "stream"}})
            self.w.send({**stream, "data": {"type": "response"}})
        else:
            self.w.send(answer)
        if how == "twice":
            self.w.send(answer)

    @precondition(lambda self: self.connected)
    @rule(echo=st.sampled_from(["nobody", "", None, 10**6]))
    def stray_answer(self, echo: object) -> None:
        self.w.send({"status": "failed", "retcode": 1400, "data": None, "echo": echo})

    @precondition(lambda self: self.connected)
    @rule(frame=st.sampled_from(["{", "[]", '{"post_type": 5}', "null", "[" * 500]))
    def garbage(self, frame: str) -> None:
        if frame.startswith('{"post_type"'):  # an event of a type no spec has: an event
            self._event_sent()
        self.w.send(frame)

    @precondition(lambda self: self.connected)
    @rule(interval=st.sampled_from([1, 500, 1000, 5000, 30000]))
    def heartbeat(self, interval: int) -> None:
        self._event_sent()
        self.w.send(
            {"post_type": "meta_event", "meta_event_type": "heartbeat", "interval": interval}
        )

    @precondition(lambda self: self.connected)
    @rule()
    def refuse_token(self) -> None:
        """A 1403 to no action: a refusal only before any event on this connection."""
        refusal = not self.events_here.get(id(self.w.impl))
        self.w.send({"status": "failed", "retcode": 1403, "data": None, "echo": ""})
        if refusal:
            self.token_refused = True
            self.must_have_ended |= set(self.calls)

    # -- the network and the clock ----------------------------------------------------------

    @precondition(lambda self: self.connected)
    @rule()
    def peer_hangs(self) -> None:
        """The implementation stops reading and writing; the socket stays up."""
        assert self.w.impl is not None
        self.w.impl.silent = True
        self.hung = (self.w.impl, self.w.now)

    @precondition(lambda self: self.w.impl is not None)
    @rule()
    def drop(self) -> None:
        self.must_have_ended |= set(self.calls)
        self.w.drop()

    @rule(refuse=st.booleans())
    def network(self, refuse: bool) -> None:
        self.w.refuse_connect = refuse

    @rule(seconds=st.floats(0.0, 40.0))
    def time_passes(self, seconds: float) -> None:
        before = set(self.calls)
        self.w.advance(seconds)
        self.must_have_ended |= {c for c in before if self.w.now >= self.calls[c] + TIMEOUT}
        if self.w.impl is None or (self.w.impls and self.w.impl is not self.w.impls[-1]):
            self.must_have_ended |= before

    # -- the application ----------------------------------------------------------------------

    @precondition(
        lambda self: self.w.proto.state is OneBotState.CONNECTED and self.w.impl is not None
    )
    @rule()
    def call(self) -> None:
        call_id = self.w.call(Action("get_status"))
        self.calls[call_id] = self.w.now

    # -- what always holds ----------------------------------------------------------------------

    @invariant()
    def a_hung_link_is_given_up_in_time(self) -> None:
        """By the heartbeat watch (30 s x 2.5 at most here) or the ping fallback
        (30 s, then 20 s), counted from its last frame, before it hung."""
        if self.hung is not None and self.w.impl is self.hung[0]:
            assert self.w.now - self.hung[1] <= 75.0 + 1e-6

    @invariant()
    def every_action_ends_once_and_in_time(self) -> None:
        ended = [r.call_id for r in self.w.delivered if isinstance(r, ActionResult)]
        assert len(ended) == len(set(ended)), "an action ended twice"
        assert set(ended) <= set(self.calls)
        assert self.must_have_ended <= set(ended), self.must_have_ended - set(ended)

    @invariant()
    def events_arrive_once_each_in_order(self) -> None:
        got = [e.message_id for e in self.w.delivered if isinstance(e, MessageEvent)]
        assert got == list(range(1, self.sent_events + 1))

    @invariant()
    def failed_only_after_a_refused_token_and_then_still(self) -> None:
        state = self.w.proto.state
        assert (state is OneBotState.FAILED) == self.token_refused
        if self.token_refused:
            assert self.w.proto.next_deadline() is None

    @invariant()
    def failed_attempts_are_said_and_bounded(self) -> None:
        retries = [e for e in self.w.delivered if isinstance(e, Retry)]
        assert all(0 < r.delay <= 8.0 and r.of is None and r.what == "onebot" for r in retries)

    @invariant()
    def the_deadline_is_never_in_the_past(self) -> None:
        deadline = self.w.proto.next_deadline()
        assert deadline is None or deadline >= self.w.now - 1e-9

    @invariant()
    def violations_are_values(self) -> None:
        for event in self.w.delivered:
            if isinstance(event, ProtocolViolation):
                assert str(event.error)


TestConnection = Connection.TestCase
