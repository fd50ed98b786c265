"""A quick run of the event decoding fuzz target (``fuzz/fuzz_events.py``).

The long run is ``make fuzz``; this runs 200 structured frames, 200 raw
inputs through the decoder the atheris target uses, and the seed corpus.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fuzz import fuzz_events as fz
from qqproto.qq.events import EVENT_TYPES

from .quick import quick

QUICK = quick(200)


@QUICK
@given(fz.cases())
def test_fuzz_structured_frames(case: fz.Case) -> None:
    fz.run_case(case)


@QUICK
@given(st.binary(max_size=600))
def test_fuzz_raw_bytes(raw: bytes) -> None:
    fz.run_case(fz.decode_input(raw))


def test_seed_corpus_runs() -> None:
    seeds = fz.seed_inputs()
    outcomes = {fz.run_case(fz.decode_input(seed)) for seed in seeds}
    # Every spec sample decodes to its typed event, under every bot id.
    assert {f"{t} event" for t in EVENT_TYPES} <= outcomes, outcomes
    assert "not a JSON object" in outcomes
    assert "untyped dispatch" in outcomes


def test_raw_format_round_trips() -> None:
    for seed in fz.seed_inputs():
        assert fz.encode_input(fz.decode_input(seed)) == seed


def test_most_structured_cases_reach_a_typed_message() -> None:
    # The budget goes to message text, attachments and mentions (at about
    # 70%); an odd envelope or a dropped field must stay the exception.
    tally = fz.message_share(300)
    reached = sum(n for outcome, n in tally.items() if fz.reached_a_message(outcome))
    assert reached >= tally.total() // 2, tally.most_common(10)
    # Every message type is among them, and the other outcomes still come.
    assert {f"{t} event" for t in fz.MESSAGE_TYPES} <= set(tally)
    assert any(" bad " in outcome for outcome in tally)
