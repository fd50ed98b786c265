"""GatewayProtocol against a scripted QQ gateway server, through random schedules.

A Hypothesis ``RuleBasedStateMachine`` plays three parts at once:

- the driver: a fake clock, one transport at a time, tokens handed over on
  request (at once, late, or short-lived), ``connection_lost`` reported at once
  or after the batch of actions, a Connect given up after CONNECT_TIMEOUT, and
  the wait for a reconnect slept through, as a driver sleeps until the next
  deadline;
- the network: connects accepted or refused, at once or after a while,
  upgrades refused, transports dropped, dispatches lost in flight;
- the QQ gateway server, speaking WebSocket through the sans-IO protocol of
  the ``websockets`` library (not wsproto, so our framing meets an independent
  implementation). It keeps real session bookkeeping: READY creates a session
  it remembers, every dispatch takes the next seq of its session and goes into
  that session's log, and a Resume is honoured only for the newest session id,
  never for one the server invalidated (op 9 false, 4006, 4007, 49xx). An
  honoured Resume replays the log after the client's seq (sometimes with a few
  events the client already has, as an at-least-once server may) and then
  sends RESUMED; any other Resume gets op 9 false or a 4006/4007/4902 close.
  While the client has no transport, its session goes on: events pile up for
  the Resume to replay, or the session expires. A server off the spec may
  answer a Resume with READY.

Beside the server the machine keeps a model of what the client must believe,
written from the spec rather than from the code: the session it holds, the
last seq it received, how many attempts in a row failed, how many resumes
failed, how many 4004s came in a row, which token it may use. The invariants
compare the client's actions and public state with the model after every step.

This file is the list of what can happen (the rules) and what must always
hold (the invariants). The parts they move live beside it:
``tests/gateway_model.py`` (the server's sessions and the client model, from
the spec) and ``tests/gateway_world.py`` (the driver and the server's end of
the wire, wired to one GatewayProtocol).

Profiles (``tests/conftest.py``): ``dev`` by default, ``ci`` when CI=true,
``soak`` with HYPOTHESIS_PROFILE=soak (``make soak``).

Hypothesis turns a random share of the rules off in each schedule (swarm
testing). A state where only k rules can act is left with none, and the whole
schedule thrown away, with chance 1/(k+1). So no state is left to a single
rule: the first Connect is answered by ``start``, a pending Connect has
several rules that answer it (and the driver's timeout), the wait for a
reconnect is the driver's, and an ended client has two ways to restart.
Rules have preconditions instead of bodies that do nothing: nearly every
step a schedule takes does work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from qqproto.link import LinkState
from qqproto.qq.lifecycle import TABLE, GatewayState
from qqproto.qq.session import Session

from .gateway_model import (
    FATAL_CODES,
    IDENTIFY_CODES,
    MAX_ATTEMPTS,
    MAX_MESSAGE_SIZE,
    RESUME_CODES,
    URL,
    ClientModel,
    Entry,
    ServerSession,
    client_config,
)
from .gateway_world import GatewayWorld, ServerConn

#: Every (old, new) a StateChanged may carry: the rows of TABLE that move.
STATE_PAIRS = frozenset(
    (source.name, row.dest.name)
    for row in TABLE.rows
    for source in row.sources
    if row.dest is not None and row.dest is not source
)
TERMINAL = (GatewayState.FAILED, GatewayState.CLOSED)

close_codes = st.one_of(
    st.sampled_from(RESUME_CODES),
    st.sampled_from(RESUME_CODES),
    st.sampled_from((4004, 4008)),  # refresh the token; wait 60 s
    st.sampled_from(IDENTIFY_CODES),
    st.sampled_from(IDENTIFY_CODES),
    st.sampled_from(FATAL_CODES),
)

# Mostly short jumps (heartbeats, hello timeouts, backoff), now and then long
# ones (the 60 s pause after 4008, tokens expiring).
time_steps = st.one_of(
    st.integers(1, 30).map(lambda n: n / 10),
    st.integers(1, 150).map(lambda n: n / 10),
    st.integers(1, 90).map(float),
)
token_lives = st.sampled_from([1.0, 7.0, 25.0, 7200.0, 7200.0])
hello_intervals = st.one_of(
    st.integers(1_000, 15_000),
    st.sampled_from([None, 0, -1, "45000"]),  # unusable: the client falls back
)
rejections = st.sampled_from(["op 9", 4006, 4007, 4902])


@dataclass(frozen=True)
class Play:
    """How the server plays a connection it accepts."""

    prompt: bool  # it sends Hello at once and answers logins as they come
    hello: Any  # the heartbeat interval a prompt Hello carries
    rejection: str | int  # how a prompt server refuses a Resume it cannot honour
    overlap: int  # how many old events a prompt replay repeats


plays = st.builds(
    Play,
    prompt=st.sampled_from([True, True, True, False]),
    hello=hello_intervals,
    rejection=rejections,
    overlap=st.integers(0, 2),
)
#: How a Connect ends: accepted (mostly), refused, or its upgrade refused (HTTP 503).
outcomes = st.sampled_from(["accept"] * 6 + ["refuse", "refuse upgrade"])

# Bad payloads the client must report (ProtocolViolation) and survive.
GARBAGE = (
    "invalid json",
    "json array",
    "json number",
    "json null",
    "binary frame",
    "unknown opcode",
    "string opcode",
    "no opcode",
    "second hello",
    "dispatch without d",
    "dispatch without t",
    "READY out of turn",
    "RESUMED out of turn",
)


class GatewayMachine(GatewayWorld):
    """The rules and invariants; the state they move is GatewayWorld's."""

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        eager_lost=st.booleans(),
        prompt_tokens=st.booleans(),
        lives=st.lists(token_lives, min_size=1, max_size=3),
        restart=st.sampled_from(["fresh", "fresh", "valid", "invalidated", "unknown"]),
        restored=st.integers(0, 4),
        seen=st.integers(0, 4),
        first=outcomes,
        play=plays,
    )
    def start(
        self,
        seed: int,
        eager_lost: bool,
        prompt_tokens: bool,
        lives: list[float],
        restart: str,
        restored: int,
        seen: int,
        first: str,
        play: Play,
    ) -> None:
        self.eager_lost = eager_lost
        self.prompt_tokens = prompt_tokens
        self.lives = lives
        self.config = client_config(seed)
        session = None
        if restart != "fresh":
            # A process restart: the client resumes a stored session. The server
            # knows it (or not), with READY and ``restored`` dispatches in its
            # log, of which the client had seen the first ``seen``.
            seq = 1 + min(seen, restored)
            if restart == "unknown":
                sid = "forgotten"
            else:
                stored = self.server.stored(restored, seq, invalidated=restart == "invalidated")
                sid = stored.sid
            self.model.session, self.model.seq = sid, seq
            session = Session(sid, seq, (0, 1), URL)
        self._new_client(session)
        # A new client's first move is a Connect: answering it here spares
        # every schedule a first step that only a few rules could take.
        self._answer_connect(first, play)

    # -- rules: the network ---------------------------------------------------------------

    # The pending Connect is answered (by a prompt or a quiet server), at once
    # or after a while: three rules, not one, since Hypothesis turns rules off
    # at random in each schedule, and a pending Connect must seldom be left
    # with no way on. (The driver may also give it up: see ``advance``.)

    @precondition(lambda self: self.pending_connect)
    @rule(outcome=outcomes, play=plays)
    def answer_connect(self, outcome: str, play: Play) -> None:
        self._answer_connect(outcome, play)

    @precondition(lambda self: self.pending_connect)
    @rule(outcome=outcomes, rejection=rejections)
    def answer_connect_quietly(self, outcome: str, rejection: str | int) -> None:
        """A server that sends Hello, and answers logins, only when a rule says so."""
        self._answer_connect(outcome, Play(False, None, rejection, overlap=0))

    @precondition(lambda self: self.pending_connect)
    @rule(seconds=st.integers(1, 99).map(lambda n: n / 10), outcome=outcomes, play=plays)
    def answer_connect_slowly(self, seconds: float, outcome: str, play: Play) -> None:
        """The transport takes a while to open or fail (within the driver's timeout)."""
        self._advance_to(self.now + seconds)
        if self.pending_connect:
            self._answer_connect(outcome, play)

    def _answer_connect(self, outcome: str, play: Play) -> None:
        """Accepted (a prompt server sends Hello at once and answers logins as
        they come), refused, or its upgrade refused with HTTP 503."""
        self.pending_connect = False
        if outcome == "refuse":
            self._attempt_ended()
            self.proto.connection_lost(self.conn_id, self.now, "connection refused")
            self._settle()
            return
        upgrade = outcome == "accept"
        self.conn = conn = ServerConn(upgrade, play.prompt, play.rejection, play.overlap)
        self.proto.connection_made(self.conn_id, self.now)
        self._settle()
        if play.prompt and self.conn is conn and conn.open:
            self.send_hello(play.hello)

    @precondition(lambda self: self.conn is not None)
    @rule(eof=st.booleans())
    def drop(self, eof: bool) -> None:
        """The transport dies: an EOF read, or connection_lost."""
        if eof:
            self._push_raw(b"")
            self._settle()
        else:
            self._lose_transport()

    # -- rules: the gateway server ------------------------------------------------------

    @precondition(lambda self: self._open() and not self.conn.hello)
    @rule(interval=hello_intervals)
    def send_hello(self, interval: Any) -> None:
        assert self.conn is not None
        self.conn.hello = True
        self._send([{"op": 10, "d": {"heartbeat_interval": interval}}])

    @precondition(lambda self: self._awaiting("identify"))
    @rule(then=st.integers(0, 2))
    def ready(self, then: int) -> None:
        assert self.conn is not None
        self._ready(self.conn, then)
        self._settle()

    @precondition(lambda self: self._awaiting("identify"))
    @rule(resumable=st.booleans())
    def refuse_identify(self, resumable: bool) -> None:
        """op 9 in answer to Identify: the intents were refused."""
        assert self.conn is not None
        self.conn.answered = True
        self._send([{"op": 9, "d": resumable}], "intents")

    @precondition(lambda self: self._awaiting("resume"))
    @rule(rejection=rejections, overlap=st.integers(0, 2), one_read=st.booleans())
    def answer_resume(self, rejection: str | int, overlap: int, one_read: bool) -> None:
        assert self.conn is not None
        self._answer_resume(self.conn, rejection, overlap, one_read=one_read)
        self._settle()

    @precondition(lambda self: self._awaiting("resume"))
    @rule(then=st.integers(0, 2))
    def ready_instead_of_resumed(self, then: int) -> None:
        """A server off the spec answers a Resume with READY: a new session,
        whose events the client must deliver, numbered from its READY on."""
        assert self.conn is not None
        self._ready(self.conn, then)
        self._settle()

    @precondition(lambda self: self._live_session())
    @rule(count=st.integers(1, 3), lost=st.integers(0, 3))
    def dispatch(self, count: int, lost: int) -> None:
        """``count`` dispatches in one read; the last ``lost`` of them are lost
        in flight with the transport."""
        conn = self.conn
        assert conn is not None and conn.session is not None
        entries = [self.server.message(conn.session) for _ in range(count)]
        arrive = entries[: max(0, count - lost)]
        if arrive:
            self.model.saw(arrive)
            self._send([e.frame() for e in arrive])
        if lost and self.conn is conn:
            self._lose_transport()

    @precondition(lambda self: self._away() is not None)
    @rule(count=st.integers(1, 3))
    def events_while_away(self, count: int) -> None:
        """With no transport, the client's session goes on at the server: events
        pile up in its log, for the Resume to replay."""
        session = self._away()
        assert session is not None
        for _ in range(count):
            self.server.message(session)

    @precondition(lambda self: self._away() is not None)
    @rule()
    def session_expires(self) -> None:
        """... or the server ends it while the client is away: the Resume will
        be refused, and the client must start a new session."""
        self.server.invalidate_newest()

    def _away(self) -> ServerSession | None:
        """The session the client holds at the server, while no transport is open."""
        if self.conn is not None or self.model.session is None:
            return None
        session = self.server.sessions.get(self.model.session)
        if session is None or session.invalidated or session.sid != self.server.newest:
            return None
        return session

    @precondition(lambda self: self._sent_before())
    @rule(back=st.integers(0, 5))
    def duplicate(self, back: int) -> None:
        """Send again a dispatch the client already has, with its seq."""
        old = self._sent_before()
        self._send([old[max(0, len(old) - 1 - back)].frame()])

    def _sent_before(self) -> list[Entry]:
        """The dispatches of the live session a Resume could replay."""
        conn = self.conn
        if conn is None or conn.session is None:
            return []
        return [e for e in conn.session.log if e.replayable]

    @precondition(lambda self: self._open())
    @rule()
    def reconnect(self) -> None:
        """op 7: reconnect and resume."""
        self._send([{"op": 7}])

    @precondition(lambda self: self._open())
    @rule(resumable=st.booleans())
    def invalid_session(self, resumable: bool) -> None:
        """op 9 at any moment (in answer to Identify, see refuse_identify)."""
        self._invalid_session(resumable)

    @precondition(lambda self: self._open())
    @rule(code=close_codes)
    def server_close(self, code: int) -> None:
        self._close(code)
        self._settle()

    @precondition(lambda self: self._open())
    @rule()
    def lose_acks(self) -> None:
        """From now on the server loses heartbeat ACKs (or sends them again)."""
        assert self.conn is not None
        self.conn.drop_acks = not self.conn.drop_acks

    @precondition(lambda self: self._open())
    @rule(ping=st.booleans())
    def request_heartbeat(self, ping: bool) -> None:
        """op 1 (heartbeat now), or a WebSocket ping."""
        assert self.conn is not None
        if ping:
            self.conn.ws.send_ping(b"still there?")
            self._push_raw(self.conn.output())
            self._settle()
        else:
            self._send([{"op": 1}])

    @precondition(lambda self: self._open())
    @rule(kind=st.sampled_from(GARBAGE))
    def garbage(self, kind: str) -> None:
        """A bad payload: the client reports it and keeps the connection."""
        conn = self.conn
        assert conn is not None
        payload: dict[str, Any] | str | bytes
        if not self._garbage_applies(kind):
            kind = "invalid json"  # any connection takes this one
        if kind == "invalid json":
            payload = '{"op": 0, "d": '
        elif kind.startswith("json "):
            payload = {"json array": "[0, 1]", "json number": "11"}.get(kind, "null")
        elif kind == "binary frame":
            payload = b'{"op": 11}'
        elif kind == "unknown opcode":
            payload = {"op": 8, "d": {}}
        elif kind == "string opcode":
            payload = {"op": "11"}
        elif kind == "no opcode":
            payload = {"d": {"heartbeat_interval": 1}}
        elif kind == "second hello":
            payload = {"op": 10, "d": {"heartbeat_interval": 1000}}
        elif kind.startswith("dispatch without"):
            assert conn.session is not None
            # It takes a seq: the client counts it but cannot deliver it.
            entry = self.server.log(conn.session, "GROUP_AT_MESSAGE_CREATE", {}, deliverable=False)
            self.model.saw([entry])
            payload = entry.frame()
            if kind.endswith("t"):
                payload["d"] = {}
                del payload["t"]
        elif kind == "READY out of turn":
            payload = {"op": 0, "t": "READY", "d": {"session_id": "forged"}}
        else:
            assert kind == "RESUMED out of turn"
            payload = {"op": 0, "t": "RESUMED", "d": ""}
        violations, disconnects, state = self.violations, self.disconnects, self.proto.state
        if isinstance(payload, bytes):
            conn.ws.send_binary(payload)
            self._push_raw(conn.output())
            self._settle()
        else:
            self._send([payload])
        if self.violations == violations:
            self.problems["garbage"].append(f"{kind}: no ProtocolViolation")
        if self.disconnects != disconnects or self.proto.state is not state:
            self.problems["garbage"].append(f"{kind}: the connection did not survive")

    def _garbage_applies(self, kind: str) -> bool:
        """Whether ``kind`` is garbage now (a READY is no garbage after Identify)."""
        conn = self.conn
        assert conn is not None
        if kind == "second hello":
            return conn.hello
        if kind.startswith("dispatch without"):
            return conn.session is not None
        if kind == "READY out of turn":
            return not (self.proto.state is GatewayState.IDENTIFY or self._awaiting("resume"))
        if kind == "RESUMED out of turn":
            return not self._awaiting("resume")
        return True

    @precondition(lambda self: self._open())
    @rule(too_big=st.booleans())
    def broken_frames(self, too_big: bool) -> None:
        """A message over the size limit, or bytes that are no WebSocket frame:
        the client reports it, closes and resumes."""
        assert self.conn is not None
        if too_big:
            self.conn.ws.send_text(b" " * (MAX_MESSAGE_SIZE + 1))
            data = self.conn.output()
        else:
            data = b"\x8f\x00"  # FIN and a reserved opcode
        violations = self.violations
        self._push_raw(data)
        self._settle()
        if self.violations == violations:
            self.problems["garbage"].append("broken frame: no ProtocolViolation")

    # -- rules: tokens, time, the application ---------------------------------------------

    @precondition(lambda self: self.fetches_outstanding > 0)
    @rule(life=token_lives)
    def give_token(self, life: float) -> None:
        """Answer TokenWanted, late (and maybe short-lived)."""
        self._give_token(life)
        self._settle()

    @rule(seconds=time_steps, traffic=st.integers(0, 2))
    def advance(self, seconds: float, traffic: int) -> None:
        """Time passes (after ``traffic`` dispatches, when a session is live). A
        Connect pending for CONNECT_TIMEOUT is given up by the driver."""
        self._traffic(traffic)
        self._advance_to(self.now + seconds)

    @precondition(lambda self: self.proto.next_deadline() is not None)
    @rule(traffic=st.integers(0, 2))
    def next_timer(self, traffic: int) -> None:
        """Jump to the client's next deadline."""
        self._traffic(traffic)
        deadline = self.proto.next_deadline()
        if deadline is not None:
            self._advance_to(max(self.now, deadline))

    def _traffic(self, count: int) -> None:
        if count and self._live_session():
            self.dispatch(count, 0)

    @precondition(lambda self: self.model.goods >= 3 and self.proto.state not in TERMINAL)
    @rule(code=st.sampled_from([1000, 4000]))
    def app_close(self, code: int) -> None:
        """The application closes the gateway (1000 ends the session on the
        server; 4000 does not)."""
        self.model.expect_closed = True
        self.model.cause = "closed"
        self.proto.close(self.now, code)
        self._settle()

    @precondition(lambda self: self.proto.state in TERMINAL)
    @rule(first=outcomes, play=plays)
    def restart_with_the_session(self, first: str, play: Play) -> None:
        """After FAILED or CLOSED the application starts a new GatewayProtocol
        from the session the old one exported (if it has one)."""
        self._restart(self.proto.session, first, play)

    @precondition(lambda self: self.proto.state in TERMINAL)
    @rule(first=outcomes, play=plays)
    def restart_from_scratch(self, first: str, play: Play) -> None:
        """... or from nothing. (Two rules, not one with a flag: when the
        client has ended, these are the only ways on, and Hypothesis turns
        rules off at random per schedule.)"""
        self._restart(None, first, play)

    def _restart(self, session: Session | None, first: str, play: Play) -> None:
        old = self.proto
        assert not old.actions(), "actions after the end"
        self.model.client_restarted(session_kept=session is not None)
        self.state_changes, self.checked_changes, self.failed = [], 0, []
        self.terminal_seen = False
        self.fetches_outstanding = 0
        self._new_client(session)
        self._answer_connect(first, play)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def state_follows_the_table(self) -> None:
        state = self.proto.state
        assert isinstance(state, GatewayState), state
        for change in self.state_changes[self.checked_changes :]:
            assert change.machine == "gateway", change
            assert (change.old, change.new) in STATE_PAIRS, f"{change} is no row of TABLE"
            assert change.old == self.last_state, f"{change}, but the state was {self.last_state}"
            self.last_state = change.new
        self.checked_changes = len(self.state_changes)
        assert self.last_state == state.name, (
            f"{state}, the last StateChanged said {self.last_state}"
        )

    @invariant()
    def one_transport_at_a_time(self) -> None:
        assert not self.problems["transport"], self.problems["transport"]
        expected = (
            LinkState.OPENING
            if self.pending_connect
            else LinkState.OPEN
            if self.conn
            else LinkState.IDLE
        )
        assert self.proto.link is expected, (self.proto.link, expected)

    @invariant()
    def heartbeats_carry_the_last_seq(self) -> None:
        for sent, expected in self.heartbeats[self.checked_heartbeats :]:
            assert sent == expected, f"heartbeat d={sent!r}; the last seq received is {expected}"
        self.checked_heartbeats = len(self.heartbeats)
        assert self.proto.seq == self.model.seq, f"seq {self.proto.seq}, expected {self.model.seq}"

    @invariant()
    def resumes_carry_the_session(self) -> None:
        assert not self.problems["login"], self.problems["login"]
        for kind, d, session_id, seq in self.logins[self.checked_logins :]:
            if session_id is None:
                assert kind == "identify", f"Resume {d} but the client holds no session"
            else:
                assert kind == "resume", f"Identify, but session {session_id} was resumable"
                sent = (d.get("session_id"), d.get("seq"))
                assert sent == (session_id, seq), f"Resume {sent}, expected {(session_id, seq)}"
        self.checked_logins = len(self.logins)
        held = self.proto.session
        assert (held and held.session_id) == self.model.session, (held, self.model.session)

    @invariant()
    def exactly_once_in_order(self) -> None:
        assert not self.problems["delivery"], self.problems["delivery"]
        for s in self.server.sessions.values():
            got, expected = s.got, s.expected
            assert got == expected[: len(got)], f"{s.sid}: delivered {got}, sent {expected}"
            assert len(got) >= s.must_have, f"{s.sid}: delivered {got} of {expected}"

    @invariant()
    def fails_only_for_a_reason(self) -> None:
        state = self.proto.state
        why = self.model.expect_failed
        if state is not GatewayState.FAILED:
            assert why is None, f"{state}, but it should have failed: {why}"
            assert not self.failed, self.failed
        else:
            assert self.failed == [self.proto.failure_reason], self.failed
            reason = self.failed[0]
            assert why is not None, f"FAILED for no good reason: {reason}"
            if why == "fatal":
                assert reason.startswith(f"close {self.model.cause_code} ("), reason
            elif why == "intents":
                assert "op 9" in reason and "Identify" in reason, reason
            elif why == "auth":
                assert reason.startswith("close 4004 (") and "again" in reason, reason
            else:
                assert reason.startswith(f"gave up after {MAX_ATTEMPTS} failed attempts"), reason
        assert (state is GatewayState.CLOSED) == self.model.expect_closed, state

    @invariant()
    def reconnects_back_off(self) -> None:
        assert not self.problems["pacing"], self.problems["pacing"]

    @invariant()
    def nothing_after_the_end(self) -> None:
        assert not self.problems["terminal"], self.problems["terminal"]
        if self.proto.state in TERMINAL:
            assert not self.pending_connect, "a Connect outstanding after the end"
            assert self.proto.next_deadline() is None

    @invariant()
    def never_stuck(self) -> None:
        """A live client always has a way on: a deadline, a Connect for the
        driver to answer, or a token it asked for."""
        assert not self.problems["timer"], self.problems["timer"]
        if self.proto.state in TERMINAL or self.pending_connect:
            return
        assert self.proto.next_deadline() is not None, "no deadline and no transport opening"
        conn = self.conn
        if conn is not None and conn.hello and conn.login is None:
            assert self.fetches_outstanding > 0, "Hello came; no login, no token asked for"

    @invariant()
    def bad_frames_are_survived(self) -> None:
        assert not self.problems["garbage"], self.problems["garbage"]


TestGateway = GatewayMachine.TestCase


@pytest.mark.parametrize("resumable", [False, True])
def test_op9_before_identify_is_no_intents_refusal(resumable: bool) -> None:
    """Found by the machine: Hello came, the token is late, so no Identify
    went out; op 9 now cannot be an answer to Identify. The client must lose
    the session (or the link) and reconnect, not fail for good."""
    machine = GatewayMachine()
    machine.start(
        seed=0,
        eager_lost=True,
        prompt_tokens=False,
        lives=[7200.0],
        restart="fresh",
        restored=0,
        seen=0,
        first="accept",
        play=Play(prompt=True, hello=1000, rejection="op 9", overlap=0),
    )
    assert machine.proto.state is GatewayState.IDENTIFY
    assert machine.conn is not None
    assert machine.conn.login is None  # waiting for the token
    machine._invalid_session(resumable)
    machine.fails_only_for_a_reason()
    machine.state_follows_the_table()
    machine.never_stuck()
    machine.teardown()


def test_the_model_ends_the_session_on_a_third_failed_resume_even_if_fatal() -> None:
    """The gateway drops a session after three failed resumes whatever ended
    the third (a fatal close too: a saved session must not be resumed later);
    the model once kept it when the loss was fatal (found by the ci profile)."""
    model = ClientModel()
    model.session, model.seq = "s", 1
    for cause in ("resume", "resume", "fatal"):
        model.attempt_login, model.attempt_good, model.cause = "resume", False, cause
        model.attempt_ended(0.0, 0)
    assert (model.session, model.seq, model.expect_failed) == (None, None, "fatal")
