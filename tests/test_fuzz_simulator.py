"""A quick run of the simulator fuzz target (``fuzz/fuzz_simulator.py``), and what it found.

The long run is ``make fuzz``; this runs 300 structured cases, 300 raw
inputs through the decoder the atheris target uses, and the seed corpus.
The last test is the bug the fuzzer found, as a plain regression.
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from fuzz import fuzz_simulator as fz
from fuzz.frames import OP_TEXT, frame
from fuzz.sim_traffic import (
    GATEWAY_BOT,
    GROUP_REPLY,
    HEARTBEAT,
    IDENTIFY,
    MASK,
    T0,
    TOKEN_REQUEST,
    UPGRADE,
    Case,
    text,
)

from .quick import quick

QUICK = quick(300)


@QUICK
@given(fz.cases())
def test_fuzz_structured(case: Case) -> None:
    fz.run_case(case)


@QUICK
@given(st.binary(max_size=600))
def test_fuzz_raw_bytes(raw: bytes) -> None:
    fz.run_case(fz.decode_input(raw))


def test_seed_corpus_runs() -> None:
    seeds = fz.seed_inputs()
    assert len(seeds) > 300
    outcomes = [fz.run_case(fz.decode_input(seed)) for seed in seeds]
    statuses = {s for out in outcomes for s in out.statuses}
    assert {101, 200, 400, 401, 404, 405} <= statuses
    codes = {out.close_code for out in outcomes}
    assert {1000, 1002, 1007, 4001, 4002, 4004, 4005, 4009, 4010, 4914} <= codes


def test_raw_format_round_trips() -> None:
    for seed in fz.seed_inputs():
        assert fz.encode_input(fz.decode_input(seed)) == seed


def test_the_oracle_is_quiet_on_a_bot_s_whole_day() -> None:
    # Token, gateway URL, a passive reply, then the gateway: Identify, a heartbeat.
    stream = TOKEN_REQUEST + GATEWAY_BOT + GROUP_REPLY + UPGRADE
    stream += text(IDENTIFY) + text(HEARTBEAT)
    for cuts in [(), (5, 300, len(stream) - 3), tuple(range(0, len(stream), 7))]:
        out = fz.run_case(Case(stream, cuts, eof=False))
        assert out.statuses == (200, 200, 200, 101)
        assert out.upgraded and not out.closed and out.close_code is None
        records = out.records
        assert len(records.sent) == 1 and records.rejected == ()
        assert records.identifies == ("READY",) and len(records.heartbeats) == 1
        assert records.tokens == ((T0, True),) and records.lost == 0
        assert [t for _, t, _ in records.delivered] == ["GROUP_AT_MESSAGE_CREATE"]


def test_scripted_moves_run_between_pieces() -> None:
    stream = UPGRADE + text(IDENTIFY) + text(HEARTBEAT)
    cut = len(UPGRADE) + len(text(IDENTIFY))
    pushed = fz.run_case(Case(stream, (cut,), eof=False, actions=((1, "push"),)))
    assert pushed.out.count(b'"t":"GROUP_AT_MESSAGE_CREATE"') == 2
    closed = fz.run_case(Case(stream, (cut,), actions=((1, "close 4009"),)))
    assert closed.closed and closed.close_code == 4009
    assert closed.records.heartbeats == ()  # the heartbeat after the close was not read
    lost = fz.run_case(Case(stream, (cut,), eof=False, actions=((1, "lost"),)))
    assert lost.closed and lost.close_code is None


# -- what the fuzzer found ------------------------------------------------------------------


def test_bad_utf8_closes_the_same_way_however_the_bytes_are_cut() -> None:
    # wsproto's reason named the position of the bad byte in the chunk it came
    # in ("... in position 16"), so the close frame depended on the cuts.
    payload = json.dumps({"op": 1, "d": "x" * 40}).encode()[:-5] + b"\xf5\x80}"
    stream = UPGRADE + frame(OP_TEXT, payload, mask=MASK)
    outs = {fz.run_case(Case(stream, (cut,))).out for cut in range(len(UPGRADE), len(stream))}
    assert len(outs) == 1
    [out] = outs
    assert out.endswith(b"\x88\x0f\x03\xefinvalid UTF-8")  # 1007, and the same reason
