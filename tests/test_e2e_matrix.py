"""Both bot drivers end to end against the QQ simulator on loopback, as one matrix.

Every test takes a ``make`` fixture parametrized over the drivers: ``QQBot``
(asyncio, ``SimulatorServer``) and ``ThreadedQQBot`` (threads,
``ThreadedSimulatorServer``), behind the one interface of
``tests/e2e_bots.py``. The simulator keeps its real 41 s heartbeat unless a
test is about heartbeats, so no timer races the assertions; waits have 10 s
deadlines; nothing sleeps to synchronise. Warnings are errors, and after each
test no thread, task or socket of the test may be left.
"""

from __future__ import annotations

import gc
import itertools
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qqproto.adapters import DriverClosed, DriverError, DriverFailed
from qqproto.link import Retry
from qqproto.qq import (
    ApiResult,
    BotPhase,
    C2CMessageCreate,
    GroupAtMessageCreate,
    Intents,
    ProtocolViolation,
    Ready,
    Resumed,
    Target,
)
from qqproto.qq import gateway as gateway_module
from qqproto.qq.api import ReplyTo, send_text
from qqproto.qq.codes import ApiError
from qqproto.qq.reply_rules import Refusal, ReplyRefused
from qqproto.qq.results import SentMessage
from qqproto.testing import SimulatorConfig

from .e2e_bots import APP_ID, HARNESSES, SECRET, Harness, TappedSimulator

pytestmark = pytest.mark.filterwarnings("error")

Make = Callable[..., Harness]
WATCHDOG_OFF = 30.0  # seconds of client silence the simulator tolerates in heartbeat tests


@pytest.fixture(params=sorted(HARNESSES))
def make(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Make]:
    """``make(**simulator_config)``: a harness of this test's driver, closed afterwards."""
    # A new session after op 9 / 4006 waits 1-5 s on the platform; milliseconds here.
    monkeypatch.setattr(gateway_module, "NEW_SESSION_PAUSE", (0.0, 0.01))
    before = set(threading.enumerate())
    made: list[Harness] = []

    def factory(**config: Any) -> Harness:
        # Identifies 0.2 s apart, not 5 s (the bot is told the same: Harness.start).
        config.setdefault("identify_window", 0.2)
        harness = HARNESSES[request.param](SimulatorConfig(APP_ID, SECRET, **config))
        made.append(harness)
        return harness

    try:
        yield factory
    finally:
        for harness in made:
            harness.close()
        gc.collect()
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        assert not leaked, leaked


def started(make: Make, **options: Any) -> tuple[Harness, TappedSimulator, Ready]:
    """A harness whose bot is up (READY), with ``options`` for the bot."""
    h = make()
    h.start(**options)
    return h, h.sim, h.next_event(Ready)


# -- handshake, heartbeats, messages -------------------------------------------------------------


def test_handshake_identify_carries_the_token_intents_and_shard(make: Make) -> None:
    intents = Intents.GROUP_AND_C2C_EVENT | Intents.INTERACTION
    h = make(shards=2)
    h.start(intents=intents, shard=(1, 2))
    ready = h.next_event(Ready)
    sim = h.sim
    token, _ = h.push(sim.issue_token)  # the live token: what the token endpoint handed out
    [identify] = sim.ops(2)
    assert identify["d"]["token"] == f"QQBot {token}"
    assert identify["d"]["intents"] == int(intents)
    assert identify["d"]["shard"] == [1, 2]
    [record] = sim.identifies
    assert (record.outcome, record.intents, record.shard) == ("READY", int(intents), [1, 2])
    assert ready.session_id == record.session_id == h.push(lambda now: sim.session_id(1))
    assert ready.shard == (1, 2) and ready.user.id == sim.config.bot_id
    assert h.state is BotPhase.RUNNING
    # The shard's dispatches reach it.
    _, message = h.group_message("to shard 1", shard=1)
    assert message.text == "to shard 1"


def test_heartbeats_at_the_interval_carry_the_last_seq(make: Make) -> None:
    interval = 0.15
    # The server's watchdog is out of the way: only the client's timing is measured.
    h = make(heartbeat_interval_ms=int(interval * 1000), heartbeat_timeout=WATCHDOG_OFF)
    h.start()
    h.next_event(Ready)  # s=1
    sim = h.sim
    h.wait_until(lambda: len(sim.heartbeats) >= 2, "two heartbeats after READY")
    pushed_2 = time.monotonic()
    h.group_message("one")  # s=2
    seen_2 = time.monotonic()  # the bot has it: every heartbeat from now on says 2
    h.wait_until(lambda: len(beats_after(sim, seen_2)) >= 3, "three heartbeats after s=2")
    pushed_3 = time.monotonic()
    h.group_message("two")  # s=3
    seen_3 = time.monotonic()
    h.wait_until(lambda: len(beats_after(sim, seen_3)) >= 3, "three heartbeats after s=3")

    beats = h.push(lambda now: list(sim.heartbeats))  # (server time is the monotonic clock)
    assert {beat.d for beat in beats if beat.now < pushed_2} == {1}
    assert {beat.d for beat in beats if seen_2 < beat.now < pushed_3} == {2}
    assert {beat.d for beat in beats if seen_3 < beat.now} == {3}
    ds = [beat.d for beat in beats]
    assert set(ds) == {1, 2, 3}
    assert ds == sorted(d for d in ds if isinstance(d, int))  # never behind, never back
    assert sim.unacked == [] and len(sim.identifies) == 1 and sim.resumes == []
    # The interval, give or take a loaded machine: no bursts, about right on the whole.
    gaps = [b.now - a.now for a, b in itertools.pairwise(beats)]
    assert min(gaps) >= 0.2 * interval, gaps
    assert 0.8 * interval <= statistics.median(gaps) <= 3 * interval, gaps
    assert 0.8 * interval <= statistics.mean(gaps) <= 3 * interval, gaps
    identify_at = sim.identifies[0].now
    assert 0.5 * interval <= beats[0].now - identify_at <= 10 * interval


def beats_after(sim: TappedSimulator, moment: float) -> list[Any]:
    return [beat for beat in sim.heartbeats if beat.now > moment]


def test_op1_from_the_server_gets_a_heartbeat_at_once(make: Make) -> None:
    h, sim, _ = started(make)  # the real 41 s interval: no heartbeat of its own in this test
    h.group_message("one")  # s=2
    h.push(sim.ask_heartbeat)
    h.wait_until(lambda: bool(sim.heartbeats), "a heartbeat in answer to op 1")
    assert [beat.d for beat in sim.heartbeats] == [2]


def test_messages_and_echo_replies_count_msg_seq_per_message(make: Make) -> None:
    h, sim, _ = started(make)
    d, message = h.group_message("hello")
    assert message.text == "hello" and message.group_openid == sim.group_openid
    first = h.reply(message, "hi")
    second = h.reply(message, "hi again")
    assert first.ok and second.ok
    sent = sim.sent
    assert [(s.msg_id, s.msg_seq, s.content) for s in sent] == [
        (d["id"], 1, "hi"),
        (d["id"], 2, "hi again"),
    ]
    assert all(s.target == sim.group_openid for s in sent)
    assert isinstance(first.result, SentMessage) and first.result.id == sent[0].id
    # Another message, another conversation: msg_seq starts again at 1.
    c2c = h.push(lambda now: sim.c2c_message("one to one", now))
    direct = h.next_event(C2CMessageCreate)
    assert direct.id == c2c["id"] and direct.text == "one to one"
    assert h.reply(direct, "back to you").ok
    assert (sim.sent[-1].target, sim.sent[-1].msg_id, sim.sent[-1].msg_seq) == (
        sim.user_openid,
        c2c["id"],
        1,
    )
    assert sim.rejected == []


# -- faults the session survives ----------------------------------------------------------------

RESUMABLE: dict[str, Callable[[TappedSimulator, float], None]] = {
    "tcp-drop": lambda sim, now: sim.drop(now),
    "op7-reconnect": lambda sim, now: sim.reconnect(now),
    "op9-resumable": lambda sim, now: sim.invalid_session(True, now),
    "close-4009": lambda sim, now: sim.close(4009, now),
}


@pytest.mark.parametrize("fault", sorted(RESUMABLE))
def test_a_resumable_fault_loses_nothing_and_repeats_nothing(make: Make, fault: str) -> None:
    h, sim, ready = started(make)
    d1, _ = h.group_message("before")  # s=2

    def fault_then_users(now: float) -> list[dict[str, Any]]:
        RESUMABLE[fault](sim, now)  # and, while the bot is away:
        return [sim.group_at_message(f"away {i}", now) for i in range(3)]

    away = h.push(fault_then_users)
    h.next_event(Resumed)
    d_after, _ = h.group_message("after")
    assert [m.id for m in h.messages()] == [d["id"] for d in (d1, *away, d_after)]
    assert len(sim.identifies) == 1
    assert [r.outcome for r in sim.resumes] == ["RESUMED"]
    [resume] = sim.ops(6)
    assert resume["d"]["session_id"] == ready.session_id and resume["d"]["seq"] == 2
    assert sim.resumes[0].replayed == 3  # what was pushed while away, from the log


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda sim, now: sim.invalid_session(False, now), id="op9-false"),
        pytest.param(lambda sim, now: sim.close(4006, now), id="close-4006"),
    ],
)
def test_a_session_ending_fault_identifies_again(
    make: Make, fault: Callable[[TappedSimulator, float], None]
) -> None:
    h, sim, first = started(make)
    d1, _ = h.group_message("before")

    def fault_then_users(now: float) -> list[dict[str, Any]]:
        fault(sim, now)
        return [sim.group_at_message(f"away {i}", now) for i in range(3)]

    away = h.push(fault_then_users)
    second = h.next_event(Ready)
    assert second.session_id != first.session_id
    d_after, _ = h.group_message("after")
    # The new session gets what the old one never delivered, once, in order.
    assert [m.id for m in h.messages()] == [d["id"] for d in (d1, *away, d_after)]
    assert [i.outcome for i in sim.identifies] == ["READY", "READY"]
    assert len(sim.ops(2)) == 2 and sim.ops(6) == [] and sim.resumes == []
    assert h.state is BotPhase.RUNNING


def test_lost_acks_are_noticed_and_the_session_resumes(make: Make) -> None:
    h = make(heartbeat_interval_ms=300, heartbeat_timeout=WATCHDOG_OFF)
    h.start()
    ready = h.next_event(Ready)
    sim = h.sim
    d1, _ = h.group_message("before")
    h.push(lambda now: sim.lose_acks(1))
    resumed = h.next_event(Resumed)
    assert resumed is not None
    assert len(sim.unacked) == 1
    # One resume, or more if a loaded machine let an ACK arrive after the next
    # heartbeat was due: every one of them honoured, and never a new session.
    assert sim.resumes and all(r.outcome == "RESUMED" for r in sim.resumes)
    assert sim.resumes[0].session_id == ready.session_id and len(sim.identifies) == 1
    assert 3000 in sim.client_closes  # the bot hung up meaning to resume (not 1000)
    d2, _ = h.group_message("after")
    assert [m.id for m in h.messages()] == [d1["id"], d2["id"]]


def test_hostile_frames_are_reported_and_the_session_goes_on(make: Make) -> None:
    h, sim, _ = started(make)
    garbage = [
        "this is not JSON",
        "[1, 2, 3]",
        '{"op": 42, "d": null}',
        '{"op": 0, "s": "x", "t": "GROUP_AT_MESSAGE_CREATE", "d": {}}',
        '{"op": 0, "s": -5, "t": "C2C_MESSAGE_CREATE", "d": {"id": "evil"}}',
    ]

    def hostile(now: float) -> None:
        for text in garbage:
            sim.send_garbage(text, now)

    h.push(hostile)
    d, message = h.group_message("still here")
    violations = [e for e in h.seen if isinstance(e, ProtocolViolation)]
    assert len(violations) >= 4, h.seen  # not JSON, not an object, op 42, a bad seq
    assert h.reply(message, "so am I").ok
    assert sim.sent[-1].msg_id == d["id"]
    assert len(sim.identifies) == 1 and sim.resumes == []
    # The garbage moved no sequence number: a resume names the last real one.
    h.push(sim.drop)
    h.next_event(Resumed)
    [resume] = sim.ops(6)
    assert resume["d"]["seq"] == sim.delivered[-1].seq
    assert [(r.outcome, r.replayed) for r in sim.resumes] == [("RESUMED", 0)]
    assert h.state is BotPhase.RUNNING


# -- tokens, failures, the attempt cap ---------------------------------------------------------


def test_an_expired_token_is_refetched_and_the_reply_goes_through(make: Make) -> None:
    h, sim, _ = started(make)
    d, message = h.group_message("hello")
    assert h.reply(message, "first").ok
    fetched = len(sim.token_requests)
    h.push(sim.expire_tokens)
    second = h.reply(message, "second")
    assert second.ok, second.error
    assert [(r.status, r.code) for r in sim.rejected] == [(401, 11244)]
    assert len(sim.token_requests) > fetched
    assert [(s.msg_id, s.msg_seq) for s in sim.sent] == [(d["id"], 1), (d["id"], 2)]
    assert len(sim.identifies) == 1  # the gateway session never noticed


def test_close_4914_is_fatal_with_a_reason_naming_it(make: Make) -> None:
    h, sim, _ = started(make)
    _, message = h.group_message("hello")
    h.push(lambda now: sim.close(4914, now))
    error = h.ended()
    assert isinstance(error, DriverFailed) and "4914" in error.reason
    assert h.state is BotPhase.FAILED and h.failure_reason == error.reason
    assert len(sim.identifies) == 1 and sim.resumes == []
    with pytest.raises(DriverError):
        h.reply(message, "too late")
    assert sim.sent == []


def test_the_attempt_cap_gives_up_after_max_attempts(make: Make) -> None:
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    h = make()
    h.start(gateway_url=f"ws://127.0.0.1:{port}/websocket", max_attempts=2)
    error = h.ended()
    assert isinstance(error, DriverFailed)
    assert "gave up after 2 failed attempts" in error.reason
    assert h.state is BotPhase.FAILED and h.failure_reason == error.reason
    # The first failed attempt reached the application; the second is the failure.
    [retry] = h.seen
    assert isinstance(retry, Retry) and (retry.attempt, retry.of) == (1, 2)
    assert "connection refused" in retry.reason
    assert h.sim.identifies == []


# -- shutdown ---------------------------------------------------------------------------------


def test_closing_while_replies_are_under_way(make: Make) -> None:
    h, sim, _ = started(make)
    _, message = h.group_message("talk to me")
    outcomes = h.close_while_replying(message, [f"reply {n}" for n in range(5)])
    assert len(outcomes) == 5
    for outcome in outcomes:
        assert isinstance(outcome, ApiResult | DriverClosed), outcome
    landed = [o for o in outcomes if isinstance(o, ApiResult)]
    assert all(result.ok for result in landed)
    assert len(landed) <= len(sim.sent) <= 5
    assert h.state is BotPhase.CLOSED
    assert h.ended() is None  # events() just ends
    assert 1000 in sim.client_closes  # the close frame went out: the session is over
    with pytest.raises(DriverError):
        h.reply(message, "too late")


# -- the reply rules ----------------------------------------------------------------------------


def test_seed_003_a_reply_never_answers_the_bots_own_message(make: Make) -> None:
    h, sim, _ = started(make)
    d, message = h.group_message("hello")
    assert h.reply(message, "hi").ok
    own = sim.sent[0].id
    # Naming the bot's own id by hand: refused here, or by the platform with 40034024.
    call = send_text(Target.group(sim.group_openid), "again", reply=ReplyTo(msg_id=own))
    outcome: ApiResult[Any] | ReplyRefused
    try:
        outcome = h.call(call)
    except ReplyRefused as refused:
        outcome = refused
    if isinstance(outcome, ReplyRefused):
        assert outcome.reason is Refusal.OWN_MESSAGE
    else:
        assert isinstance(outcome.error, ApiError) and outcome.error.code == 40034024
        assert sim.rejected[-1].code == 40034024
    # The bot's own message coming back inbound takes no reply either.
    h.push(lambda now: sim.dispatch("GROUP_AT_MESSAGE_CREATE", {**d, "id": own}, now))
    echo = h.next_event(GroupAtMessageCreate)
    assert echo.id == own
    with pytest.raises(ReplyRefused):
        h.reply(echo, "to my own message")
    assert len(sim.sent) == 1


def test_the_sixth_reply_to_one_message_is_refused_locally(make: Make) -> None:
    h, sim, _ = started(make)
    d, message = h.group_message("hello")
    for n in range(1, 6):
        assert h.reply(message, f"reply {n}").ok
    with pytest.raises(ReplyRefused) as refused:
        h.reply(message, "reply 6")
    assert refused.value.reason is Refusal.BUDGET_SPENT
    assert (refused.value.used, refused.value.cap) == (5, 5)
    assert [(s.msg_id, s.msg_seq) for s in sim.sent] == [(d["id"], n) for n in range(1, 6)]
    assert sim.rejected == []  # never sent
