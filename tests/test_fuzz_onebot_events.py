"""A quick run of the OneBot event fuzz target (``fuzz/fuzz_onebot_events.py``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fuzz import fuzz_onebot_events as fz

from .quick import quick

QUICK = quick(400)


@QUICK
@given(fz.objects())
def test_fuzz_events_with_fields_replaced(obj: object) -> None:
    fz.run_case(obj)


@QUICK
@given(st.binary(max_size=400))
def test_fuzz_raw_bytes(raw: bytes) -> None:
    fz.run_case(fz.decode_input(raw))


def test_seed_corpus_reaches_both_versions_and_every_kind() -> None:
    outcomes = {fz.run_case(fz.decode_input(seed)) for seed in fz.seed_inputs()}
    assert outcomes == {
        "v11 MessageEvent",
        "v11 NoticeEvent",
        "v11 RequestEvent",
        "v11 MetaEvent",
        "v12 MessageEvent",
        "v12 MetaEvent",
        "no event",
    }
