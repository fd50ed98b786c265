"""GatewayProtocol, rule by rule, against the in-memory server on a fake clock."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from websockets.frames import Frame

from fuzz.frames import OP_TEXT, frame
from qqproto.actions import Connect, Deliver, Disconnect, SendData, StateChanged
from qqproto.errors import (
    ConfigError,
    LocalProtocolError,
    MessageTooBig,
    ProtocolViolation,
    WebSocketHandshakeError,
)
from qqproto.http import HttpResponse
from qqproto.link import SHORT_SESSION, LinkState, Retry
from qqproto.qq import lifecycle
from qqproto.qq.config import GatewayConfig
from qqproto.qq.decode import EventDecodeError
from qqproto.qq.events import AtMessageCreate, Dispatch, Event, GroupAtMessageCreate, Ready, Resumed
from qqproto.qq.gateway import MAX_SEQ, GatewayProtocol
from qqproto.qq.heartbeat import MAX_HEARTBEAT_MS
from qqproto.qq.lifecycle import GatewayState
from qqproto.qq.payloads import CLOSE_CODES, CloseAction, Intents, close_policy
from qqproto.qq.session import Session, TokenWanted
from qqproto.url import BadUrl

from .gateway_harness import BOT_ID, GROUP, MEMBER, Harness, ServerEnd

S = GatewayState


def ready_harness(**config: Any) -> tuple[Harness, ServerEnd]:
    h = Harness(config=GatewayConfig(app_id="102000000", **config))
    server = h.connect_and_ready()
    h.sent()
    return h, server


def ops(payloads: list[dict[str, Any]]) -> list[int]:
    return [p["op"] for p in payloads]


# -- start and login ------------------------------------------------------------------


def test_a_new_gateway_asks_for_a_token_and_a_connection() -> None:
    proto = GatewayProtocol(GatewayConfig(app_id="1"))
    assert proto.actions() == [
        Deliver(TokenWanted("no access token yet")),
        Connect(1, "wss://api.sgroup.qq.com/websocket/"),
    ]
    assert proto.state is S.CONNECTING
    assert proto.next_deadline() is None  # waiting for the driver, not the clock


def test_hello_is_answered_with_identify() -> None:
    config = GatewayConfig(
        app_id="1", intents=Intents.GROUP_AND_C2C_EVENT | Intents.INTERACTION, shard=(2, 4)
    )
    h = Harness(config=config)
    h.accept()
    h.hello()
    assert h.sent() == [
        {"op": 2, "d": {"token": "QQBot tok-1", "intents": (1 << 25) | (1 << 26), "shard": [2, 4]}}
    ]
    assert h.proto.state is S.IDENTIFY


def test_identify_carries_properties_when_configured() -> None:
    h = Harness(config=GatewayConfig(app_id="1", properties={"$os": "linux"}))
    h.accept()
    h.hello()
    assert h.sent()[0]["d"]["properties"] == {"$os": "linux"}


def test_ready_stores_the_session_and_the_bot_user() -> None:
    h = Harness()
    h.connect_and_ready("082ee18c-0be3")
    assert h.proto.session == Session(
        "082ee18c-0be3", 1, (0, 1), "wss://api.sgroup.qq.com/websocket/", BOT_ID
    )
    assert h.proto.bot_user == {"id": BOT_ID, "username": "bot", "bot": True}
    assert [(s.old, s.new) for s in h.states] == [("CONNECTING", "IDENTIFY"), ("IDENTIFY", "READY")]
    [ready] = h.typed()
    assert isinstance(ready, Ready) and ready.user.id == BOT_ID and ready.event_seq == 1
    assert h.dispatches()[0].type == "READY"


def test_ready_shard_never_overwrites_the_configured_one() -> None:
    h, _ = ready_harness(shard=(1, 3))  # READY says shard [0, 0], as the docs' sample
    h.send({"op": 9, "d": False})  # the session is gone: a new Identify follows
    h.advance(10)
    h.accept()
    h.hello()
    assert h.sent()[0]["d"]["shard"] == [1, 3]


def test_a_token_about_to_expire_is_refreshed_before_identify() -> None:
    h = Harness(token_life=5.0)  # margin is min(10 s, half the life) = 2.5 s
    h.auto_token = False
    h.advance(3)  # the token from construction has 2 s left
    h.accept()
    h.hello()
    assert h.token_requests[-1] == "access token missing or about to expire"
    assert h.sent() == []  # nothing goes out without a usable token
    h.proto.token_received("tok-2", h.now + 7200, h.now)
    h.pump()
    assert h.sent()[0]["d"]["token"] == "QQBot tok-2"


def test_only_one_token_request_is_in_flight() -> None:
    h = Harness(auto_token=False)
    h.accept()
    h.hello()
    h.drop()
    h.advance(5)
    assert h.token_requests == ["no access token yet"]


def test_an_expired_or_empty_token_is_refused() -> None:
    proto = GatewayProtocol(GatewayConfig(app_id="1"))
    with pytest.raises(LocalProtocolError, match="already expired"):
        proto.token_received("t", expires_at=10.0, now=10.0)
    with pytest.raises(LocalProtocolError, match="bad access token"):
        proto.token_received("", expires_at=20.0, now=10.0)


def test_a_token_that_never_comes_drops_the_link_and_is_asked_for_again() -> None:
    h = Harness(config=GatewayConfig(app_id="1", hello_timeout=5.0), auto_token=False)
    h.accept()
    h.hello()
    h.advance(5)
    assert h.states[-1].why == "no access token within 5.0 s"
    h.advance(10)
    assert h.token_requests == ["no access token yet", "access token missing or about to expire"]


def test_no_hello_within_the_timeout_drops_the_link() -> None:
    h = Harness(config=GatewayConfig(app_id="1", hello_timeout=5.0))
    h.accept()
    h.advance(5)
    assert h.disconnects == 1
    assert h.server is None
    assert h.proto.state is S.CONNECTING
    assert h.states == [] and h.proto.next_deadline() is not None
    assert h.proto.next_deadline() is not None  # a reconnect is armed


# -- heartbeats -----------------------------------------------------------------------------


def test_heartbeats_carry_null_before_any_seq() -> None:
    h = Harness()
    h.accept()
    h.hello(interval_ms=10_000)
    h.sent()
    h.advance(10)
    assert h.sent() == [{"op": 1, "d": None}]


def test_heartbeats_run_at_the_interval_with_the_last_seq() -> None:
    h, _ = ready_harness()
    h.dispatch(2)
    h.dispatch(7)
    h.advance(44.9)
    assert h.sent() == []
    h.advance(0.1)
    assert h.sent() == [{"op": 1, "d": 7}]
    h.send({"op": 11})
    h.dispatch(8)
    h.advance(45)
    assert h.sent() == [{"op": 1, "d": 8}]


def test_a_missed_ack_is_a_dead_link_closed_non_1000_then_resumed() -> None:
    h, server = ready_harness()
    h.dispatch(2)
    h.advance(45)
    assert ops(h.sent()) == [1]  # no ACK comes back
    h.advance(45)
    assert server.closed_by_client == 3000  # not 1000: the session must survive
    lost = StateChanged("gateway", "READY", "RESUMING", "heartbeat not acknowledged")
    assert h.states[-1] == lost
    h.accept()
    h.hello()
    assert h.sent() == [{"op": 6, "d": {"token": "QQBot tok-1", "session_id": "sess-1", "seq": 2}}]


def test_a_server_heartbeat_request_is_answered_at_once() -> None:
    h, _ = ready_harness()
    h.dispatch(5)
    h.send({"op": 1})
    assert h.sent() == [{"op": 1, "d": 5}]


def test_heartbeat_acks_and_dispatches_fire_no_transitions_trigger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h, _ = ready_harness()
    fired: list[str] = []
    for name, event in lifecycle.TABLE._machine.events.items():
        original = event.trigger

        def spy(model: object, *a: object, _n: str = name, _o: Any = original, **k: Any) -> Any:
            fired.append(_n)
            return _o(model, *a, **k)

        monkeypatch.setattr(event, "trigger", spy)
    for seq in range(2, 50):
        h.dispatch(seq)
    h.send({"op": 11})
    h.advance(45)
    h.send({"op": 11})
    assert fired == []
    h.send({"op": 7})
    assert fired == ["link_lost"]  # lifecycle inputs do go through the machine


# -- reconnect, resume, invalid session -----------------------------------------------------


def test_op7_reconnects_at_once_and_resumes() -> None:
    h, server = ready_harness()
    h.dispatch(2)
    h.send({"op": 7})
    assert server.closed_by_client == 3000
    assert h.proto.state is S.RESUMING
    assert h.connect_times[-1] == h.now  # a good session reconnects with no delay
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 6
    h.dispatch(3)
    h.resumed(4)
    assert h.proto.state is S.READY
    assert [d.seq for d in h.dispatches()] == [1, 2, 3, 4]


def test_sessions_that_keep_dying_young_back_off_without_spending_attempts() -> None:
    # A server that honours every Resume and kills the session at once: the
    # first two losses reconnect at once, then the waits grow as a backoff.
    h, _ = ready_harness()
    waits: list[float] = []
    for seq in range(2, 12):
        dropped_at = h.now
        h.drop()
        if not h.pending_connect:
            deadline = h.proto.next_deadline()
            assert deadline is not None
            h.advance(deadline - h.now)
        waits.append(h.connect_times[-1] - dropped_at)
        h.accept()
        h.hello()
        h.resumed(seq)
        assert h.proto.state is S.READY
    assert waits[:2] == [0.0, 0.0]
    assert 0.75 <= waits[2] <= 1.25 and waits == sorted(waits) and waits[-1] <= 60.0
    assert not h.failed  # 10 losses, attempt cap 30 or not: every session started

    # A session that lives SHORT_SESSION seconds resets it all.
    h.advance(SHORT_SESSION)
    h.drop()
    assert h.connect_times[-1] == h.now


def test_resumed_with_empty_string_data_returns_to_ready() -> None:
    h, _ = ready_harness()
    h.drop()
    h.accept()
    h.hello()
    h.send({"op": 0, "s": 9, "t": "RESUMED", "d": ""})
    assert h.proto.state is S.READY
    assert isinstance(h.events[-1], Resumed) and h.events[-1].event_seq == 9
    assert h.dispatches()[-1] == Dispatch("RESUMED", 9, None, "")


def test_replayed_dispatches_are_delivered_once() -> None:
    h, _ = ready_harness()
    for seq in (2, 3, 4):
        h.dispatch(seq)
    h.drop()
    h.accept()
    h.hello()
    assert h.sent()[0]["d"]["seq"] == 4
    for seq in (3, 4, 5, 6):  # the server replays a little more than asked
        h.dispatch(seq)
    h.resumed(7)
    assert [d.seq for d in h.dispatches()] == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("s", [4, 2, None])
def test_a_resumed_whose_seq_does_not_advance_still_resumes(s: int | None) -> None:
    h, _ = ready_harness()
    for seq in (2, 3, 4):
        h.dispatch(seq)
    h.drop()
    h.accept()
    h.hello()
    assert h.sent()[0]["d"]["seq"] == 4
    h.send({"op": 0, "s": s, "t": "RESUMED", "d": ""})
    assert h.proto.state is S.READY and h.states[-1].new == "READY"
    assert isinstance(h.events[-1], Resumed)
    assert h.proto.seq == 4  # never moved back
    h.dispatch(5)
    assert [d.seq for d in h.dispatches()][-2:] == [s, 5]


def test_resumes_answered_with_a_stale_seq_never_fall_back_to_identify() -> None:
    """Each one honoured is a good session: the count of failed resumes never grows."""
    h, _ = ready_harness()
    h.dispatch(9)
    for _ in range(5):
        h.drop()
        h.accept()
        h.hello()
        [login] = h.sent()
        assert (login["op"], login["d"]["seq"]) == (6, 9)
        h.resumed(1)
        assert h.proto.state is S.READY
        h.advance(SHORT_SESSION)


def test_a_resume_answered_with_ready_starts_a_new_session_and_delivers_it() -> None:
    h, _ = ready_harness()
    for seq in range(2, 11):
        h.dispatch(seq)
    h.drop()
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 6
    h.ready("sess-2", seq=1)  # a server that starts over instead of resuming
    for seq in (2, 3, 4):  # the new session's own events, numbered anew
        h.dispatch(
            seq,
            d={
                "id": f"new-{seq}",
                "content": "x",
                "author": {"member_openid": MEMBER},
                "group_openid": GROUP,
            },
        )
    assert h.proto.state is S.READY and h.proto.seq == 4
    assert h.proto.session is not None and h.proto.session.session_id == "sess-2"
    [violation] = h.violations()
    assert "READY in answer to Resume" in str(violation.error)
    assert "session sess-1 after seq 10 are not replayed" in str(violation.error)
    assert [e.id for e in h.typed() if isinstance(e, GroupAtMessageCreate)][-3:] == [
        "new-2",
        "new-3",
        "new-4",
    ]
    h.drop()  # and the new session is the one resumed
    h.accept()
    h.hello()
    assert h.sent()[0]["d"] == {"token": "QQBot tok-1", "session_id": "sess-2", "seq": 4}


@pytest.mark.parametrize("d", [1, "true", {}, [], None, False], ids=repr)
def test_op9_resumes_only_when_d_is_exactly_true(d: object) -> None:
    h, _ = ready_harness()
    h.send({"op": 9, "d": d})
    assert h.proto.state is S.CONNECTING and h.proto.session is None
    h.advance(5)
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 2  # Identify: the session is gone


@pytest.mark.parametrize(
    "ending",
    [{"op": 7}, {"op": 9, "d": True}, "close 4009"],
    ids=["op 7", "op 9 true", "close frame"],
)
def test_frames_after_a_connection_ending_frame_wait_for_the_resume(ending: object) -> None:
    h, server = ready_harness()
    h.dispatch(2)
    end = server.close(4009) if ending == "close 4009" else server.text(ending)  # type: ignore[arg-type]
    data = {"id": "m-3", "content": "x", "author": {"member_openid": MEMBER}, "group_openid": GROUP}
    payload = {"op": 0, "s": 3, "t": "GROUP_AT_MESSAGE_CREATE", "id": "e3", "d": data}
    after = frame(OP_TEXT, json.dumps(payload).encode())  # even after the server's close
    h.send_raw(end + after)  # in one read
    assert [d.seq for d in h.dispatches()] == [1, 2]  # 3 is not delivered from a dead link
    assert h.proto.state is S.RESUMING and h.proto.seq == 2
    h.accept()
    h.hello()
    assert h.sent()[0]["d"]["seq"] == 2  # the Resume asks for it
    h.dispatch(3)  # replayed
    h.resumed(4)
    assert [d.seq for d in h.dispatches()] == [1, 2, 3, 4]


def test_op9_true_resumes() -> None:
    h, _ = ready_harness()
    h.send({"op": 9, "d": True})
    assert h.proto.state is S.RESUMING
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 6


def test_the_pause_before_a_new_session_spans_one_to_five_seconds() -> None:
    """Jittered from the RNG: over a dozen seeds it reaches near both ends."""
    pauses = []
    for seed in range(12):
        h = Harness(config=GatewayConfig(app_id="102000000", seed=seed))
        h.connect_and_ready()
        h.send({"op": 9, "d": False})
        deadline = h.proto.next_deadline()
        assert deadline is not None
        pauses.append(deadline - h.now)
    assert all(1.0 <= p <= 5.0 for p in pauses)
    assert min(pauses) < 1.1 and max(pauses) > 4.5


def test_op9_false_forgets_the_session_waits_and_identifies_with_a_fresh_token() -> None:
    h, _ = ready_harness()
    h.token = "tok-2"
    h.send({"op": 9, "d": False})
    assert h.proto.state is S.CONNECTING
    assert h.proto.session is None
    assert h.token_requests[-1] == "invalid session (op 9)"
    wait = h.connect_times[-1] - h.now if h.pending_connect else None
    assert wait is None  # not at once
    deadline = h.proto.next_deadline()
    assert deadline is not None and 1.0 <= deadline - h.now <= 5.0
    h.advance(5)
    h.accept()
    h.hello()
    identify = h.sent()[0]
    assert identify["op"] == 2
    assert identify["d"]["token"] == "QQBot tok-2"


@pytest.mark.parametrize("resumable", [True, False])
def test_op9_before_identify_went_out_is_no_intents_refusal(resumable: bool) -> None:
    h = Harness(auto_token=False)
    h.accept()
    h.hello()  # no token yet: nothing was identified
    h.send({"op": 9, "d": resumable})
    assert h.proto.state is S.CONNECTING
    assert h.failed == []


def test_ready_before_identify_went_out_is_a_violation() -> None:
    h = Harness(auto_token=False)
    h.accept()
    h.hello()
    h.ready()
    assert "READY out of turn" in str(h.violations()[0].error)
    assert h.proto.state is S.IDENTIFY


def test_op9_in_answer_to_identify_means_intents_refused() -> None:
    h = Harness(config=GatewayConfig(app_id="1", intents=Intents.GUILD_MESSAGES))
    h.accept()
    h.hello()
    h.send({"op": 9, "d": False})
    assert h.proto.state is S.FAILED
    assert h.failed == ["invalid session (op 9) in answer to Identify: intents 512 refused"]
    connects = len(h.connects)
    h.advance(3600)
    assert len(h.connects) == connects  # no hot loop, no loop at all
    assert h.proto.next_deadline() is None


# -- close codes ------------------------------------------------------------------------------

RESUME_CODES = [1000, 1001, 1011, 4000, 4009, 4999, 3000]
IDENTIFY_CODES = [4003, 4005, 4006, 4007, *range(4900, 4914)]
FATAL_CODES = [4001, 4002, 4010, 4011, 4012, 4013, 4014, 4914, 4915]


def test_the_close_code_table_covers_the_spec() -> None:
    for code in IDENTIFY_CODES:
        assert close_policy(code).action is CloseAction.IDENTIFY
    for code in FATAL_CODES:
        assert close_policy(code).action is CloseAction.FATAL
    for code in RESUME_CODES:
        assert close_policy(code).action is CloseAction.RESUME
    assert close_policy(4008).action is CloseAction.RESUME_LATER
    assert close_policy(4004).action is CloseAction.REFRESH_TOKEN
    assert close_policy(4999).meaning == "unknown close code"
    assert all(meaning for _, meaning in CLOSE_CODES.values())


@pytest.mark.parametrize("code", RESUME_CODES)
def test_resumable_closes_reconnect_at_once_and_resume(code: int) -> None:
    h, server = ready_harness()
    h.dispatch(2)
    h.close_from_server(code, "bye")
    assert server.closed_by_client == code  # the close frame was answered
    assert h.proto.state is S.RESUMING
    assert h.pending_connect and h.connect_times[-1] == h.now
    h.accept()
    h.hello()
    assert h.sent()[0] == {"op": 6, "d": {"token": "QQBot tok-1", "session_id": "sess-1", "seq": 2}}


def test_eof_without_a_close_frame_is_1006_and_resumes() -> None:
    h, _ = ready_harness()
    h.dispatch(2)
    h.send_raw(b"")
    assert (
        h.states[-1].why == "close 1006 (connection lost): transport closed without a close frame"
    )
    assert close_policy(1006).action is CloseAction.RESUME
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 6


def test_4008_resumes_after_a_long_pause() -> None:
    h, _ = ready_harness()
    h.close_from_server(4008)
    assert not h.pending_connect
    h.advance(59.9)
    assert not h.pending_connect
    h.advance(0.1)
    assert h.pending_connect
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 6


def test_4004_refreshes_the_token_then_resumes_and_a_second_4004_is_fatal() -> None:
    h, _ = ready_harness()
    h.token = "tok-2"
    h.close_from_server(4004)
    assert h.token_requests[-1] == "close 4004 (authentication failed)"
    h.accept()
    h.hello()
    assert h.sent()[0]["d"]["token"] == "QQBot tok-2"
    assert h.sent() == []
    h.close_from_server(4004)
    assert h.proto.state is S.FAILED
    assert h.failed == ["close 4004 (authentication failed) (again, with a fresh token)"]


def test_a_good_connection_forgets_a_refused_token() -> None:
    """4004 is fatal only twice in a row: a connection that reached RESUMED in
    between starts the count again, so a later refusal gets a fresh token."""
    h, _ = ready_harness()
    h.token = "tok-2"
    h.close_from_server(4004)
    h.accept()
    h.hello()
    h.resumed(2)
    h.token = "tok-3"
    h.close_from_server(4004)
    assert h.proto.state is S.RESUMING and h.failed == []
    assert h.stale_tokens[-1] is True  # a fresh one was asked for, not the refused one


@pytest.mark.parametrize("code", IDENTIFY_CODES)
def test_session_closes_start_a_new_session_after_a_pause(code: int) -> None:
    h, _ = ready_harness()
    h.dispatch(2)
    h.close_from_server(code)
    assert h.proto.state is S.CONNECTING
    assert h.proto.session is None
    assert not h.pending_connect
    h.advance(5)
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 2
    h.advance(45)
    assert h.sent() == [{"op": 1, "d": None}]  # the old seq went with the old session


@pytest.mark.parametrize("code", FATAL_CODES)
def test_fatal_closes_fail_with_the_code_and_its_meaning(code: int) -> None:
    h, _ = ready_harness()
    h.close_from_server(code, "nope")
    assert h.proto.state is S.FAILED
    _, meaning = CLOSE_CODES[code]
    assert h.failed == [f"close {code} ({meaning}): nope"]
    assert h.proto.failure_reason == h.failed[0]
    h.advance(3600)
    assert not h.pending_connect and h.server is None


def test_three_failed_resumes_fall_back_to_identify() -> None:
    h, _ = ready_harness()
    h.close_from_server(4999)  # unknown: resume
    for _ in range(3):
        h.advance(60)
        h.accept()
        h.hello()
        assert h.sent()[0]["op"] == 6
        h.close_from_server(4999)  # the resume is not honoured
    assert h.proto.state is S.CONNECTING
    assert "3 resumes failed, starting a new session" in h.states[-1].why
    h.advance(60)
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 2


def test_a_refused_token_after_resumes_that_failed_starts_a_new_session() -> None:
    """Whatever ends the third failed resume (here close 4004), the session is
    gone: the next login identifies, and its READY is taken."""
    h, _ = ready_harness()
    h.close_from_server(4999)  # unknown: resume
    for code in (4999, 4999, 4004):
        h.advance(60)
        h.accept()
        h.hello()
        assert h.sent()[0]["op"] == 6
        h.close_from_server(code)  # the resume is not honoured
    assert h.proto.state is S.CONNECTING and h.proto.session is None
    h.advance(60)
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 2  # Identify
    h.ready()
    assert h.proto.state is S.READY and h.violations() == []


def test_a_resume_that_succeeds_resets_the_count_of_failed_ones() -> None:
    """Two failures, a success, one failure: that is one failure in a row, so resume."""
    h, _ = ready_harness()
    h.close_from_server(4999)  # unknown: resume
    for honoured in (False, False, True, False):
        h.advance(60)
        h.accept()
        h.hello()
        assert h.sent()[0]["op"] == 6
        if honoured:
            h.resumed(2)
            assert h.proto.state is S.READY
        h.close_from_server(4999)
    assert h.proto.state is S.RESUMING and h.proto.session is not None
    h.advance(60)
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 6  # still a Resume, not an Identify


# -- backoff and the attempt cap ------------------------------------------------------------


def test_failed_attempts_back_off_and_the_cap_fails_with_the_last_reason() -> None:
    h = Harness(config=GatewayConfig(app_id="1", max_attempts=4, seed=7))
    gaps: list[float] = []
    for attempt in range(4):
        h.refuse(f"refused #{attempt}")
        if attempt < 3:
            deadline = h.proto.next_deadline()
            assert deadline is not None
            gaps.append(deadline - h.now)
            h.advance(deadline - h.now)
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1]
    assert h.proto.state is S.FAILED
    assert h.failed == ["gave up after 4 failed attempts; last: could not connect: refused #3"]
    assert len(h.connects) == 4
    # Every failed attempt but the last was said, with its number, the cap, the
    # wait that followed and why; the last one is the failure instead.
    retries = [e for e in h.events if isinstance(e, Retry)]
    assert [(r.attempt, r.of, r.reason) for r in retries] == [
        (n + 1, 4, f"could not connect: refused #{n}") for n in range(3)
    ]
    assert [r.delay for r in retries] == pytest.approx(gaps)  # the waits that came
    assert str(retries[0]).startswith(
        "gateway attempt 1 of 4 failed (could not connect: refused #0)"
    )


def test_a_good_session_lost_is_no_failed_attempt() -> None:
    h, _ = ready_harness()
    h.close_from_server(4009)
    h.accept()
    h.hello()
    h.close_from_server(4009)  # the resume was not answered: that one failed
    retries = [e for e in h.events if isinstance(e, Retry)]
    assert [(r.attempt, r.reason) for r in retries] == [(1, "close 4009 (session timed out)")]


def test_an_open_socket_does_not_reset_the_budget() -> None:
    h = Harness(config=GatewayConfig(app_id="1", max_attempts=3))
    for _ in range(3):
        h.accept()  # opens, then the server kicks us before READY
        h.hello()
        h.close_from_server(4000)
        h.advance(120)
    assert h.proto.state is S.FAILED
    assert h.failed[0].startswith("gave up after 3 failed attempts")


def test_ready_resets_the_budget() -> None:
    h = Harness(config=GatewayConfig(app_id="1", max_attempts=2))
    h.refuse()
    h.advance(120)
    h.connect_and_ready()
    h.drop()
    h.refuse()  # one failure after a good session: not the cap yet
    assert h.proto.state is S.RESUMING
    h.advance(120)
    h.accept()
    h.hello()
    h.resumed(5)
    h.drop()
    h.refuse()
    assert h.proto.state is S.RESUMING


def test_one_transport_at_a_time() -> None:
    h, _ = ready_harness()
    # A close frame, then EOF, then the driver's connection_lost: one reconnect.
    h.close_from_server(4009)
    assert h.connects.count(h.connects[0]) == 2
    assert h.proto.link is LinkState.OPENING
    with pytest.raises(LocalProtocolError):
        h.proto.receive_data(h.conn - 1, b"late bytes", h.now)  # the old connection's


def test_the_same_seed_and_inputs_give_the_same_actions() -> None:
    def run(seed: int) -> list[object]:
        h = Harness(config=GatewayConfig(app_id="1", seed=seed))
        h.connect_and_ready()
        h.send({"op": 9, "d": False})
        h.advance(10)
        for _ in range(3):
            h.refuse()
            h.advance(100)
        out: list[object] = [a.data if isinstance(a, SendData) else a for a in h.all_actions]
        return [*out, h.proto.next_deadline(), h.connect_times]

    assert run(3) == run(3)
    assert run(3) != run(4)  # the jitter really comes from the seed


def test_an_injected_rng_is_used() -> None:
    rng = random.Random(11)
    h = Harness(config=GatewayConfig(app_id="1", rng=rng))
    before = rng.getstate()
    h.refuse()
    assert rng.getstate() != before


# -- dispatches and bad input -----------------------------------------------------------------


def test_a_group_at_message_arrives_typed_with_clean_text() -> None:
    h, _ = ready_harness()
    d = {
        "id": "ROBOT1.0_yiT7pd!",
        "content": "\xa0echo hi",  # the PC client's space after the removed @bot
        "timestamp": "2025-09-08T23:13:34+08:00",
        "author": {"id": MEMBER, "member_openid": MEMBER, "union_openid": MEMBER},
        "group_id": GROUP,
        "group_openid": GROUP,
        "message_scene": {"source": "default"},
        "message_type": 0,
    }
    h.dispatch(2, d=d)
    [event] = [e for e in h.events if isinstance(e, Event) and e.event_seq == 2]
    assert type(event) is GroupAtMessageCreate
    assert event.text == "echo hi" and event.content == "\xa0echo hi"
    assert event.author.member_openid == MEMBER and event.group_openid == GROUP
    assert event.event_id == "GROUP_AT_MESSAGE_CREATE:2" and event.raw == d
    assert h.violations() == []
    assert h.proto.seq == 2


def test_a_guild_at_message_loses_the_bots_mention_from_ready() -> None:
    h, _ = ready_harness()  # READY's user.id is BOT_ID
    d = {
        "id": "0812345677890abcdef",
        "channel_id": "100010",
        "guild_id": "18700000000001",
        "author": {"id": "1234", "username": "someone"},
        "content": f"<@!{BOT_ID}> /help &lt;b&gt;",
    }
    h.dispatch(2, kind="AT_MESSAGE_CREATE", d=d)
    event = h.events[-1]
    assert isinstance(event, AtMessageCreate)
    assert event.bot_id == BOT_ID and event.text == "/help <b>" and event.to_me


def test_a_resumed_process_still_knows_the_bot_id() -> None:
    h, _ = ready_harness()
    h.dispatch(2)
    session = h.proto.session
    assert session is not None and session.bot_id == BOT_ID
    h2 = Harness(session=Session.from_dict(session.to_dict()))
    h2.accept()
    h2.hello()
    h2.resumed(3)
    d = {"id": "m", "channel_id": "1", "guild_id": "2", "author": {"id": "3"}}
    h2.dispatch(4, kind="AT_MESSAGE_CREATE", d={**d, "content": f"ping <@{BOT_ID}>"})
    event = h2.events[-1]
    assert isinstance(event, AtMessageCreate) and event.text == "ping"


def test_a_bad_typed_field_is_reported_and_the_dispatch_delivered_raw() -> None:
    h, _ = ready_harness()
    d = {"id": "m-2", "content": "hi", "author": {"user_openid": 5}}
    h.dispatch(2, kind="C2C_MESSAGE_CREATE", d=d)
    violation, delivered = h.events[-2:]
    assert isinstance(violation, ProtocolViolation)
    error = violation.error
    assert isinstance(error, EventDecodeError)
    assert error.path == "d.author.user_openid" and error.expected == "str" and error.received == 5
    assert "bad C2C_MESSAGE_CREATE payload at d.author.user_openid" in str(error)
    assert delivered == Dispatch("C2C_MESSAGE_CREATE", 2, "C2C_MESSAGE_CREATE:2", d)
    assert h.proto.seq == 2 and h.proto.state is S.READY  # the session goes on
    h.dispatch(3)
    assert isinstance(h.events[-1], GroupAtMessageCreate)


def test_unknown_event_types_are_delivered_raw() -> None:
    h, _ = ready_harness()
    h.dispatch(2, kind="SOMETHING_NEW_2027", d={"x": [1, 2]})
    assert h.events[-1] == Dispatch("SOMETHING_NEW_2027", 2, "SOMETHING_NEW_2027:2", {"x": [1, 2]})
    assert h.violations() == []


def test_a_dispatch_id_that_is_not_a_string_is_dropped() -> None:
    h, _ = ready_harness()
    h.send({"op": 0, "s": 2, "t": "SOMETHING_NEW_2027", "id": 7, "d": {}})
    assert h.events[-1] == Dispatch("SOMETHING_NEW_2027", 2, None, {})


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("{not json", "gateway payload is not valid JSON: expected a JSON object"),
        ("[1, 2]", "gateway payload is not a JSON object: expected a JSON object, got '[1, 2]'"),
        ("null", "gateway payload is not a JSON object"),
        ('{"op": 42}', "unknown opcode: expected 0, 1, 7, 9, 10 or 11, got 42"),
        ('{"op": "0"}', "bad opcode: expected an integer op, got '0'"),
        ('{"d": {}}', "bad opcode: expected an integer op, got None"),
        ('{"op": 0, "s": 2, "t": "X"}', "dispatch without d: expected a d field"),
        ('{"op": 0, "s": 2, "d": {}}', "dispatch without an event type: expected a string t"),
        ('{"op": 0, "s": "2", "t": "X", "d": {}}', "bad dispatch seq: expected an integer"),
    ],
)
def test_bad_payloads_are_reported_and_the_session_goes_on(frame: str, message: str) -> None:
    h, _ = ready_harness()
    h.send(frame)
    [violation] = h.violations()
    assert message in str(violation.error)
    assert h.proto.state is S.READY and h.server is not None
    h.dispatch(3)
    assert h.dispatches()[-1].seq == 3


def test_a_dispatch_without_d_still_advances_the_seq() -> None:
    h, _ = ready_harness()
    h.send('{"op": 0, "s": 2, "t": "X"}')
    h.send({"op": 1})
    assert h.sent() == [{"op": 1, "d": 2}]


def test_a_binary_frame_is_reported_and_the_session_goes_on() -> None:
    h, server = ready_harness()
    server.ws.send_binary(b"\x00\x01")
    h.send_raw(server.out())
    [violation] = h.violations()
    assert "binary WebSocket message" in str(violation.error)
    assert h.proto.state is S.READY


def test_a_message_over_the_limit_is_reported_and_resumed() -> None:
    h, server = ready_harness(max_message_size=1024)
    h.dispatch(2, d={"content": "x" * 2000})
    [violation] = h.violations()
    assert isinstance(violation.error, MessageTooBig)
    assert server.closed_by_client == 1009
    assert h.proto.state is S.RESUMING
    assert [d.seq for d in h.dispatches()] == [1]


def test_a_refused_upgrade_is_reported_and_retried() -> None:
    h = Harness()
    h.pending_connect = False
    h.server = ServerEnd()
    h.proto.connection_made(h.conn, h.now)
    h.proto.actions()
    h.send_raw(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 6\r\n\r\ndenied")
    [violation] = h.violations()
    assert isinstance(violation.error, WebSocketHandshakeError)
    assert violation.error.status == 401 and violation.error.body == b"denied"
    assert h.disconnects == 1 and h.proto.link is LinkState.IDLE  # the transport was let go
    deadline = h.proto.next_deadline()
    assert deadline is not None and h.now < deadline <= h.now + 1.25  # a backoff, then a retry
    h.advance(1.25)
    assert h.pending_connect


def test_ready_out_of_turn_is_a_violation() -> None:
    h, _ = ready_harness()
    h.ready("another", seq=2)
    [violation] = h.violations()
    assert "READY out of turn" in str(violation.error)
    assert h.proto.session is not None and h.proto.session.session_id == "sess-1"


def test_ready_without_a_session_id_starts_over() -> None:
    h = Harness()
    h.accept()
    h.hello()
    h.send({"op": 0, "s": 1, "t": "READY", "d": {"user": {}}})
    assert "READY without a session id" in str(h.violations()[0].error)
    assert h.proto.state is S.CONNECTING


def test_a_ready_with_a_bad_typed_field_still_starts_the_session() -> None:
    h = Harness()
    h.accept()
    h.hello()
    d = {"session_id": "sess-9", "user": {"id": 42, "username": "bot"}}
    h.send({"op": 0, "s": 1, "t": "READY", "d": d})
    assert h.proto.state is S.READY and h.proto.bot_user == {"id": 42, "username": "bot"}
    [violation] = h.violations()
    assert isinstance(violation.error, EventDecodeError) and violation.error.path == "d.user.id"
    assert h.events[-1] == Dispatch("READY", 1, None, d)
    session = h.proto.session
    assert session is not None and session.bot_id is None  # 42 is no id string


def test_a_second_hello_is_a_violation() -> None:
    h, _ = ready_harness()
    h.hello()
    assert "second Hello" in str(h.violations()[0].error)
    assert h.proto.state is S.READY


def test_hello_without_an_interval_falls_back() -> None:
    h = Harness()
    h.accept()
    h.send({"op": 10, "d": {}})
    assert h.violations() and h.proto.state is S.IDENTIFY
    h.sent()
    h.advance(41.25)
    assert h.sent() == [{"op": 1, "d": None}]


#: Numbers no float holds (past 10**308), past int64, past the digits an int may print.
HUGE_NUMBERS = ["1" + "0" * 400, str(2**63), "9" * 5000]


@pytest.mark.parametrize("interval", [*HUGE_NUMBERS, str(MAX_HEARTBEAT_MS + 1)])
def test_a_hello_interval_out_of_range_falls_back(interval: str) -> None:
    h = Harness()
    h.accept()
    h.send('{"op": 10, "d": {"heartbeat_interval": ' + interval + "}}")
    [violation] = h.violations()
    assert "heartbeat interval" in str(violation.error)
    assert f"from 1 to {MAX_HEARTBEAT_MS}" in str(violation.error)
    assert h.proto.state is S.IDENTIFY
    h.sent()
    h.advance(41.25)
    assert h.sent() == [{"op": 1, "d": None}]


def test_the_longest_hello_interval_is_taken() -> None:
    assert MAX_HEARTBEAT_MS == 3_600_000  # an hour, written out
    h = Harness()
    h.accept()
    h.hello(3_600_000)
    assert h.violations() == []
    assert h.proto.next_deadline() == h.now + 3600.0


@pytest.mark.parametrize("seq", [*HUGE_NUMBERS, str(MAX_SEQ + 1), "-1"])
def test_a_dispatch_seq_out_of_range_is_reported_delivered_and_not_counted(seq: str) -> None:
    h, _ = ready_harness()
    h.dispatch(7)
    frame = '{"op": 0, "s": %s, "t": "GROUP_AT_MESSAGE_CREATE", "id": "e-8", "d": %s}'
    data = {"id": "m-8", "content": "hi", "author": {"member_openid": MEMBER}}
    h.send(frame % (seq, json.dumps({**data, "group_openid": GROUP})))
    [violation] = h.violations()
    assert "bad dispatch seq" in str(violation.error)
    assert [e.id for e in h.typed() if isinstance(e, GroupAtMessageCreate)][-1] == "m-8"
    assert h.proto.seq == 7
    h.advance(45)
    assert h.sent()[-1] == {"op": 1, "d": 7}  # the heartbeat still names a real seq


def test_the_largest_seq_is_counted() -> None:
    assert MAX_SEQ == 9_223_372_036_854_775_807  # int64's largest, written out
    h, _ = ready_harness()
    h.dispatch(9_223_372_036_854_775_807)
    assert h.violations() == [] and h.proto.seq == 9_223_372_036_854_775_807


# -- sessions across restarts ---------------------------------------------------------------


def test_a_session_exported_and_handed_to_a_new_object_resumes() -> None:
    h, _ = ready_harness()
    h.dispatch(41)
    data = h.proto.session.to_dict() if h.proto.session else {}
    assert data == {
        "session_id": "sess-1",
        "seq": 41,
        "shard": [0, 1],
        "gateway_url": "wss://api.sgroup.qq.com/websocket/",
        "bot_id": BOT_ID,
    }
    h2 = Harness(session=Session.from_dict(data))
    assert h2.proto.state is S.RESUMING
    h2.accept()
    h2.hello()
    assert h2.sent() == [
        {"op": 6, "d": {"token": "QQBot tok-1", "session_id": "sess-1", "seq": 41}}
    ]
    h2.resumed(42)
    assert h2.proto.state is S.READY


@pytest.mark.parametrize(
    "data",
    [
        {"session_id": "", "seq": 1, "shard": [0, 1], "gateway_url": "wss://x"},
        {"session_id": "s", "seq": -1, "shard": [0, 1], "gateway_url": "wss://x"},
        {"session_id": "s", "seq": 1, "shard": [0], "gateway_url": "wss://x"},
        {"session_id": "s", "seq": 1, "shard": [0, 1], "gateway_url": None},
        {"session_id": "s", "seq": 1, "shard": [0, 1], "gateway_url": "wss://x", "bot_id": 5},
        {"session_id": "s", "seq": 1, "shard": [0, 1], "gateway_url": "wss://x", "bot_id": ""},
    ],
)
def test_a_bad_saved_session_is_a_config_error(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Session.from_dict(data)


def test_a_session_saved_before_bot_id_existed_still_loads() -> None:
    data = {"session_id": "s", "seq": 7, "shard": [0, 1], "gateway_url": "wss://x/"}
    session = Session.from_dict(data)
    assert session == Session("s", 7, (0, 1), "wss://x/") and session.bot_id is None
    assert Session.from_dict({**data, "bot_id": None}) == session
    assert Session.from_dict(session.to_dict()) == session


def test_a_session_for_another_shard_is_refused() -> None:
    session = Session("s", 1, (1, 2), "wss://x/")
    with pytest.raises(ConfigError, match="shard"):
        GatewayProtocol(GatewayConfig(app_id="1", shard=(0, 2)), session)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"app_id": ""},
        {"app_id": "1", "shard": (1, 1)},
        {"app_id": "1", "shard": (0, 0)},
        {"app_id": "1", "intents": -1},
        {"app_id": "1", "gateway_url": "https://x"},
        {"app_id": "1", "max_attempts": 0},
        {"app_id": "1", "hello_timeout": 0},
    ],
)
def test_bad_configuration_is_refused_with_what_was_expected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="expected"):
        GatewayConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"intents": 0},
        {"intents": 2**31 - 1},
        {"max_attempts": 1},
        {"backoff_base": 5.0, "backoff_cap": 5.0},
        {"hello_timeout": 1e-9},
        {"shard": (0, 1)},
    ],
    ids=repr,
)
def test_the_edges_of_each_setting_are_taken(kwargs: dict[str, Any]) -> None:
    GatewayConfig(app_id="1", **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"intents": 2**31}, {"backoff_base": 5.0, "backoff_cap": 4.9}],
    ids=repr,
)
def test_just_past_each_edge_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="expected"):
        GatewayConfig(app_id="1", **kwargs)


def test_the_defaults_are_the_documented_ones() -> None:
    config = GatewayConfig(app_id="1")
    assert (config.max_attempts, config.backoff_base, config.backoff_cap) == (30, 1.0, 60.0)
    assert (config.hello_timeout, config.seed, config.shard) == (30.0, 0, (0, 1))


def test_the_rng_and_entropy_are_neither_compared_nor_shown() -> None:
    a = GatewayConfig(app_id="1", rng=random.Random(1), entropy=bytes)
    b = GatewayConfig(app_id="1", rng=random.Random(2))
    assert a == b
    assert "rng" not in repr(a) and "entropy" not in repr(a)


def test_sessions_and_configs_are_frozen() -> None:
    import dataclasses

    for value, name in (
        (Session("s", 1, (0, 1), "wss://x/"), "seq"),
        (GatewayConfig("1"), "shard"),
    ):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, name, None)


@pytest.mark.parametrize(
    "data",
    [
        {"session_id": "s", "seq": 0, "shard": [0, 1], "gateway_url": "wss://x"},
        {"session_id": "s", "seq": None, "shard": [0, 1], "gateway_url": "wss://x"},
    ],
)
def test_a_saved_session_from_seq_zero_or_none_loads(data: dict[str, Any]) -> None:
    assert Session.from_dict(data).seq == data["seq"]


@pytest.mark.parametrize("url", ["", None, "https://x/", "wss://bad host/", "wss://[::1/"])
def test_a_saved_session_without_a_good_url_is_refused(url: object) -> None:
    data = {"session_id": "s", "seq": 1, "shard": [0, 1], "gateway_url": url}
    with pytest.raises(ConfigError, match="gateway_url"):
        Session.from_dict(data)


@pytest.mark.parametrize("url", ["https://x/", "wss://bad host/", "wss://user:pw@x/", "ws://x:0/"])
def test_a_gateway_url_is_read_by_the_one_url_parser(url: str) -> None:
    with pytest.raises(ConfigError, match="gateway_url") as refused:
        GatewayConfig(app_id="1", gateway_url=url)
    assert isinstance(refused.value.__cause__, BadUrl)  # which part is wrong


def test_a_new_gateway_has_no_failure_no_bot_user_and_no_failed_resumes() -> None:
    proto = GatewayProtocol(GatewayConfig(app_id="1"))
    assert (proto.failure_reason, proto.bot_user, proto.session) == (None, None, None)
    # A restored session may fail to resume twice and is still resumed the third time.
    h = Harness(session=Session("sess-1", 5, (0, 1), "wss://api.sgroup.qq.com/websocket/"))
    for _ in range(3):
        h.accept()
        h.hello()
        assert h.sent()[0]["op"] == 6
        h.close_from_server(4999)  # not honoured
        h.advance(60)


def test_a_token_within_ten_seconds_of_expiry_is_fetched_anew() -> None:
    h = Harness(token_life=100.0)  # the margin: min(10 s, half the life)
    h.connect_and_ready()
    h.token_requests.clear()
    h.advance(89.0)  # 11 s left: still good for the next login
    h.drop()
    h.accept()
    h.hello()
    h.resumed(2)
    assert h.token_requests == []
    h.advance(2.0)  # 9 s left: the next login asks for a new one first
    h.drop()
    h.accept()
    assert h.token_requests == ["access token missing or about to expire"]


def test_a_short_token_keeps_half_its_life_as_margin() -> None:
    h = Harness(token_life=8.0)  # the margin: min(10 s, 4 s)
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 2 and h.token_requests == ["no access token yet"]
    h.ready()
    h.advance(3.9)  # 4.1 s left: still good
    h.drop()
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 6 and len(h.token_requests) == 1
    h.resumed(2)
    h.advance(0.2)  # 3.9 s left: a new one first
    h.drop()
    assert h.token_requests[-1] == "access token missing or about to expire"


def test_a_token_with_exactly_its_margin_left_is_renewed_first() -> None:
    h = Harness(token_life=8.0)  # the margin: 4 s
    h.accept()
    h.hello()
    h.ready()
    h.advance(4.0)  # exactly the margin left: no longer good enough
    h.drop()
    assert h.token_requests[-1] == "access token missing or about to expire"


def test_a_timer_called_before_the_heartbeat_is_due_sends_nothing() -> None:
    h, _ = ready_harness()
    h.proto.handle_timer(h.now + 44.9)  # drivers may call a hair early, never this early
    assert h.proto.actions() == []
    h.proto.handle_timer(h.now + 45.0)
    [beat] = h.proto.actions()
    assert isinstance(beat, SendData)


def test_seq_zero_and_a_one_millisecond_interval_are_taken() -> None:
    h = Harness()
    h.accept()
    h.hello(1)
    assert h.violations() == [] and h.proto.next_deadline() == h.now + 0.001
    h.ready(seq=0)
    assert h.violations() == [] and h.proto.seq == 0


@pytest.mark.parametrize("session_id", ["", 5, None])
def test_a_ready_without_a_usable_session_id_starts_nothing(session_id: object) -> None:
    h = Harness()
    h.accept()
    h.hello()
    h.send({"op": 0, "s": 1, "t": "READY", "d": {"session_id": session_id, "user": {"id": "1"}}})
    assert any("READY without a session id" in str(v.error) for v in h.violations())
    assert h.proto.session is None and h.proto.state is S.CONNECTING
    assert not [e for e in h.events if isinstance(e, Ready)]


def test_a_ready_out_of_turn_moves_no_seq_typed_or_not() -> None:
    h, _ = ready_harness()
    h.dispatch(5)
    h.send({"op": 0, "s": 50, "t": "READY", "d": {"session_id": "forged", "user": {"id": "1"}}})
    h.send({"op": 0, "s": 60, "t": "READY", "d": {"session_id": 7}})  # untyped: a bad field
    assert h.proto.seq == 5 and h.proto.state is S.READY
    assert h.proto.session is not None and h.proto.session.session_id == "sess-1"


def test_a_ready_without_a_seq_in_answer_to_resume_forgets_the_old_seq() -> None:
    h, _ = ready_harness()
    h.dispatch(9)
    h.drop()
    h.accept()
    h.hello()
    ready = {"session_id": "sess-2", "user": {"id": BOT_ID}}
    h.send({"op": 0, "t": "READY", "d": ready})  # no s at all
    assert h.proto.state is S.READY and h.proto.seq is None  # not session 1's 9
    h.advance(45)
    assert h.sent()[-1] == {"op": 1, "d": None}


def test_a_ping_is_answered_with_a_pong() -> None:
    h, server = ready_harness()
    server.ws.send_ping(b"still there?")
    h.proto.receive_data(h.conn, server.out(), h.now)
    [answer] = h.proto.actions()
    assert isinstance(answer, SendData)
    server.ws.receive_data(answer.data)
    [pong] = server.ws.events_received()
    assert isinstance(pong, Frame)
    assert (pong.opcode.name, bytes(pong.data)) == ("PONG", b"still there?")


# -- closing and misuse ----------------------------------------------------------------------


def test_close_sends_1000_and_never_reconnects() -> None:
    h, server = ready_harness()
    h.proto.close(h.now)
    h.pump()
    assert server.closed_by_client == 1000
    assert h.states[-1] == StateChanged("gateway", "READY", "CLOSED", "closed by the application")
    h.advance(3600)
    assert h.proto.link is LinkState.IDLE and not h.pending_connect
    with pytest.raises(LocalProtocolError, match="no transition for 'close' in CLOSED"):
        h.proto.close(h.now)


def test_driver_misuse_is_a_local_protocol_error() -> None:
    proto = GatewayProtocol(GatewayConfig(app_id="1"))
    proto.actions()
    with pytest.raises(LocalProtocolError, match="data received without an open transport"):
        proto.receive_data(1, b"x", 0.0)
    with pytest.raises(LocalProtocolError, match="connection_made without an outstanding"):
        proto.connection_made(2, 0.0)  # not the connection asked for
    proto.connection_made(1, 0.0)
    with pytest.raises(LocalProtocolError, match="connection_made without an outstanding"):
        proto.connection_made(1, 0.0)
    with pytest.raises(LocalProtocolError, match="data received without an open transport"):
        proto.receive_data(2, b"x", 0.0)
    with pytest.raises(LocalProtocolError, match="GatewayProtocol has nothing that http_resp"):
        proto.http_response(1, HttpResponse(200, (), b""), 0.0)
    with pytest.raises(LocalProtocolError, match="nothing that listening could answer"):
        proto.listening(1, "127.0.0.1", 80, 0.0)
    with pytest.raises(LocalProtocolError, match="connection_lost without a transport"):
        proto.connection_lost(2, 0.0, "reset")
    proto.connection_lost(1, 0.0, "reset")
    proto.actions()
    proto2 = GatewayProtocol(GatewayConfig(app_id="1"))
    proto2.connection_lost(1, 0.0)  # the Connect failed
    with pytest.raises(LocalProtocolError, match="connection_lost without a transport"):
        proto2.connection_lost(1, 0.0)


def test_actions_never_leak_the_token_in_repr() -> None:
    h, _ = ready_harness()
    assert not any("tok-1" in repr(a) for a in h.all_actions)
    assert any(isinstance(a, SendData) for a in h.all_actions)
    assert "tok-1" not in repr(h.proto)


def test_violations_are_delivered_as_events() -> None:
    h, _ = ready_harness()
    h.send("nope")
    delivered = [a for a in h.all_actions if isinstance(a, Deliver)]
    assert isinstance(delivered[-1].event, ProtocolViolation)
    assert isinstance(h.all_actions[-1], Deliver)
    assert not any(isinstance(a, Disconnect) for a in h.all_actions)


# -- several frames in one read (found by the fuzzer) --------------------------------------


def test_a_fatal_close_in_the_same_read_as_a_message_is_not_missed() -> None:
    h, server = ready_harness()
    both = server.text({"op": 11}) + server.close(4914)
    h.send_raw(both)
    assert h.proto.state is S.FAILED
    assert server.closed_by_client == 4914  # the close was answered at once
    assert h.failed == ["close 4914 (bot is offline; only sandbox connections allowed)"]


def test_the_101_and_a_close_in_one_read() -> None:
    h = Harness()
    h.pending_connect = False
    h.server = server = ServerEnd()
    h.proto.connection_made(h.conn, h.now)
    [upgrade] = h.proto.actions()
    assert isinstance(upgrade, SendData)
    response = server.feed(upgrade.data)
    h.send_raw(response + server.close(4914))
    assert h.proto.state is S.FAILED


def test_a_reply_owed_to_a_server_that_closed_in_the_same_read_is_dropped() -> None:
    h, server = ready_harness()
    h.send_raw(server.text({"op": 1}) + server.close(4009))
    assert h.proto.state is S.RESUMING  # no exception, and the close was handled
    assert server.closed_by_client == 4009
    assert server.received == []  # no heartbeat after our close


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ('{"op":0,"s":2,"t":"X","d":' + "[" * 100_000 + "]" * 100_000 + "}", "nests too deeply"),
        (
            '{"op":0,"s":2,"t":"GROUP_AT_MESSAGE_CREATE","d":{"x":' + "[" * 100_000 + "}",
            "nests too deeply",
        ),
        ("[" * 100_000, "is not a JSON object"),  # an array: refused before its depth counts
    ],
)
def test_deeply_nested_json_is_a_violation(frame: str, message: str) -> None:
    h, _ = ready_harness()
    h.send(frame)
    [violation] = h.violations()
    assert message in str(violation.error)
    assert len(str(violation.error)) < 400  # the frame is not repeated whole
    assert h.proto.state is S.READY
    h.dispatch(3)
    assert isinstance(h.events[-1], GroupAtMessageCreate)
