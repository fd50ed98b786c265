"""A gated gateway (a shard): it asks before each Identify, never before a Resume."""

from __future__ import annotations

from qqproto.qq.config import GatewayConfig
from qqproto.qq.lifecycle import GatewayState
from qqproto.qq.session import IdentifyTurnOver, IdentifyWanted, Session

from .gateway_harness import Harness

SHARD = (3, 8)


def gated(session: Session | None = None) -> Harness:
    config = GatewayConfig(app_id="102000000", shard=SHARD, gated=True)
    return Harness(config=config, session=session)


def asked(h: Harness) -> list[IdentifyWanted]:
    return [e for e in h.events if isinstance(e, IdentifyWanted)]


def turns(h: Harness) -> list[IdentifyTurnOver]:
    return [e for e in h.events if isinstance(e, IdentifyTurnOver)]


def test_it_opens_nothing_until_its_identify_is_allowed() -> None:
    h = gated()
    assert asked(h) == [IdentifyWanted(SHARD)]
    assert h.connects == [] and h.proto.waiting_for_grant
    assert h.proto.next_deadline() is None  # the wait is the gate's, not a timer's
    h.advance(600)
    assert h.connects == [] and len(asked(h)) == 1  # asked once, however long it waits
    h.proto.identify_allowed(h.now)
    h.pump()
    assert len(h.connects) == 1 and not h.proto.waiting_for_grant
    h.accept()
    h.hello()
    [identify] = h.sent()
    assert identify["op"] == 2 and identify["d"]["shard"] == list(SHARD)


def test_a_resume_never_asks() -> None:
    h = gated()
    h.proto.identify_allowed(h.now)
    h.pump()
    h.connect_and_ready()
    h.drop()
    h.advance(120)  # past any backoff
    assert len(asked(h)) == 1 and len(h.connects) == 2
    h.accept()
    h.hello()
    [resume] = h.sent()
    assert resume["op"] == 6


def test_a_lost_session_asks_again_before_its_new_identify() -> None:
    h = gated()
    h.proto.identify_allowed(h.now)
    h.pump()
    h.connect_and_ready()
    h.send({"op": 9, "d": False})  # the session is gone: a new Identify
    h.advance(120)
    assert len(asked(h)) == 2 and len(h.connects) == 1  # waiting, not dialling
    h.proto.identify_allowed(h.now)
    h.pump()
    assert len(h.connects) == 2
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 2


def test_a_saved_session_resumes_without_asking() -> None:
    saved = Session("sess-9", 40, SHARD, "wss://api.sgroup.qq.com/websocket/")
    h = gated(saved)
    assert asked(h) == [] and len(h.connects) == 1
    h.accept()
    h.hello()
    assert h.sent()[0]["op"] == 6


def test_a_turn_its_connection_did_not_use_goes_back_and_the_next_dial_asks_again() -> None:
    h = gated()
    h.proto.identify_allowed(h.now)
    h.pump()
    h.refuse()  # could not connect: the turn goes back at once, for the next shard
    assert turns(h) == [IdentifyTurnOver(SHARD, identified=False)]
    h.advance(120)  # past the backoff: it asks again, and dials only when allowed
    assert len(asked(h)) == 2 and len(h.connects) == 1
    h.proto.identify_allowed(h.now)
    h.pump()
    assert len(h.connects) == 2


def test_the_turn_ends_when_the_identify_goes_out() -> None:
    h = gated()
    h.proto.identify_allowed(h.now)
    h.pump()
    h.accept()
    assert turns(h) == []  # connected, Hello not yet: the turn holds
    h.hello()
    assert turns(h) == [IdentifyTurnOver(SHARD, identified=True)]


def test_a_closed_gateway_opens_nothing_when_allowed_later() -> None:
    h = gated()
    h.proto.close(h.now)
    h.pump()
    h.proto.identify_allowed(h.now)
    h.pump()
    assert h.connects == [] and h.proto.state is GatewayState.CLOSED
