"""A quick run of the gateway fuzz target (``fuzz/``), and what it found.

The long run is ``make fuzz``; this runs 250 structured examples per state,
250 raw inputs through the decoder the atheris target uses, and the seed
corpus. The last tests are the bugs the fuzzer found, as plain regressions.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz import fuzz_gateway as fz
from fuzz.frames import ACCEPT, OP_PING, OP_TEXT, Response, close_frame, frame
from fuzz.harness import FULL_101, HELLO, READY, STATES, T0, Case, dispatch, prepare, run_case
from qqproto.actions import Action, Deliver, Disconnect, Failed, SendData, StateChanged
from qqproto.errors import ProtocolViolation
from qqproto.link import LinkState
from qqproto.qq.events import GroupAtMessageCreate
from qqproto.qq.lifecycle import GatewayState
from qqproto.ws import WebSocketClient

from .gateway_harness import ServerEnd
from .quick import quick

S = GatewayState
QUICK = quick(250, keep_failures=True)


def close_sent(actions: list[Action]) -> int:
    """The code of the close frame the gateway wrote, checking it wrote nothing else."""
    data = b"".join(a.data for a in actions if isinstance(a, SendData))
    # One masked client frame: 0x88, 0x80 | length, a 4-byte key, the payload.
    assert data[:1] == b"\x88" and len(data) == 6 + (data[1] & 0x7F), data
    return (data[6] ^ data[2]) << 8 | (data[7] ^ data[3])


# -- the harness and the hand-built bytes --------------------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_prepare_reaches_each_state(state: str) -> None:
    for cut in (0, 1, 60, 255):
        prep = prepare(state, cut)  # asserts the state and an open link
        assert prep.proto.actions() == []
        if state == "mid_handshake":
            assert 0 < prep.fed < len(prep.response)


def test_frames_match_an_independent_server() -> None:
    client = WebSocketClient("wss://api.sgroup.qq.com/websocket/", random.Random(0).randbytes)
    server = ServerEnd()
    server.feed(client.connect())
    assert server.handshake_done
    for text in ("", "x" * 125, "x" * 126, "中文" * 40_000, '{"op":11}'):
        assert frame(OP_TEXT, text.encode()) == server.text(text)
    assert close_frame(4009, b"session timed out") == server.close(4009, "session timed out")


def test_a_templated_101_is_accepted() -> None:
    prep = prepare("awaiting_101")
    headers = ((b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"))
    ok = Response(101, (*headers, (b"Sec-WebSocket-Accept", ACCEPT)))
    prep.proto.receive_data(prep.conn, ok.render(prep.accept) + prep.server.send(HELLO), T0)
    assert prep.proto.state is S.IDENTIFY
    assert prep.proto.link is LinkState.OPEN


# -- the fuzz targets, briefly -------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
@QUICK
@given(data=st.data())
def test_fuzz_structured(state: str, data: st.DataObject) -> None:
    run_case(data.draw(fz.cases(state)))


@QUICK
@given(st.binary(max_size=400))
def test_fuzz_raw_bytes(raw: bytes) -> None:
    run_case(fz.decode_input(raw))


def test_seed_corpus_runs() -> None:
    seeds = fz.seed_inputs()
    assert len(seeds) > 100
    reached = {run_case(fz.decode_input(seed)).after_bytes for seed in seeds}
    assert {S.CONNECTING, S.IDENTIFY, S.READY, S.RESUMING, S.FAILED} <= reached


def test_the_oracle_is_quiet_on_clean_traffic() -> None:
    server = prepare("awaiting_101").server
    messages = b"".join(map(server.send, [HELLO, READY, dispatch(2)]))
    stream = (FULL_101, messages, frame(OP_PING, b"p"), server.send({"op": 11}))
    out = run_case(Case("awaiting_101", stream, sizes=(7,)))
    assert out.after_bytes is S.READY
    assert out.delivered == 2 and out.violations == 0


# -- what the fuzzer found ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "message"),
    [("awaiting_hello", HELLO), ("ready", {"op": 1, "d": None})],
    ids=["hello", "heartbeat-request"],
)
def test_a_reply_owed_to_a_server_that_closed_in_the_same_read_is_dropped(
    state: str, message: dict[str, object]
) -> None:
    prep = prepare(state)
    prep.proto.receive_data(prep.conn, prep.server.send(message) + prep.server.close(4009), T0)
    actions = prep.proto.actions()
    assert close_sent(actions) == 4009  # the close answered, the reply not sent
    assert any(isinstance(a, Disconnect) for a in actions)
    assert any(isinstance(a, StateChanged) and a.why.startswith("close 4009") for a in actions)
    assert prep.proto.link is LinkState.CLOSING


@pytest.mark.parametrize(
    ("state", "before"),
    [("ready", dispatch(10)), ("ready", {"op": 11}), ("awaiting_101", None)],
    ids=["after-dispatch", "after-ack", "with-the-101"],
)
def test_a_close_in_the_same_read_as_another_event_is_seen(
    state: str, before: dict[str, object] | None
) -> None:
    prep = prepare(state)
    head = prep.response if before is None else prep.server.send(before)
    prep.proto.receive_data(prep.conn, head + prep.server.close(4914, "offline"), T0)
    actions = prep.proto.actions()
    assert prep.proto.state is S.FAILED
    assert prep.proto.link is LinkState.CLOSING
    assert any(isinstance(a, Failed) for a in actions)
    assert close_sent(actions) == 4914


@pytest.mark.parametrize(
    ("nested", "message"),
    [
        ('{"op":0,"s":8,"t":"X","d":' + "[" * 5000 + "]" * 5000 + "}", "nests too deeply"),
        ("[" * 5000, "is not a JSON object"),
    ],
)
def test_deeply_nested_json_is_a_violation(nested: str, message: str) -> None:
    prep = prepare("ready")
    prep.proto.receive_data(prep.conn, prep.server.send(nested) + prep.server.send(dispatch(9)), T0)
    events = [a.event for a in prep.proto.actions() if isinstance(a, Deliver)]
    assert len(events) == 2
    assert isinstance(events[0], ProtocolViolation)
    assert message in str(events[0].error)
    assert isinstance(events[1], GroupAtMessageCreate)  # the message after it is not lost
    assert events[1].text == "hello 9"


@pytest.mark.parametrize("t", [[], {}, ["READY"], None, 7])
def test_a_replayed_seq_with_an_unhashable_type_is_dropped_not_a_crash(t: object) -> None:
    """Found by the fuzzer: ``t`` is any JSON value, and a list cannot be looked up in a set."""
    prep = prepare("resumed")
    seq = prep.proto.seq
    assert seq is not None
    prep.proto.receive_data(prep.conn, prep.server.send({"op": 0, "s": seq, "t": t}), T0)
    assert prep.proto.state is S.READY and prep.proto.seq == seq
