"""A quick run of the CQ fuzz target (``fuzz/fuzz_cq.py``); ``make fuzz`` is the long one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fuzz import fuzz_cq as fz

from .quick import quick

QUICK = quick(500)


@QUICK
@given(fz.strings())
def test_fuzz_spliced_strings(message: str) -> None:
    fz.run_case(message)


@QUICK
@given(st.binary(max_size=200))
def test_fuzz_raw_bytes(raw: bytes) -> None:
    fz.run_case(fz.decode_input(raw))


def test_seed_corpus_reads_codes_and_text() -> None:
    outcomes = {fz.run_case(fz.decode_input(seed)) for seed in fz.seed_inputs()}
    assert {"text only", "1 codes", "3 codes"} <= outcomes
