"""A quick run of the serving endpoints' fuzz target (``fuzz/fuzz_webhooks.py``).

The long run is ``make fuzz``; this runs 300 structured streams, 300 raw
inputs through the decoder the atheris target uses, and the seed corpus.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz import fuzz_webhooks as fz

from .quick import quick

QUICK = quick(300)


@QUICK
@given(fz.cases())
def test_fuzz_structured_streams(case: fz.Case) -> None:
    fz.run_case(case)


@QUICK
@given(st.binary(max_size=800))
def test_fuzz_raw_bytes(raw: bytes) -> None:
    fz.run_case(fz.decode_input(raw))


def test_seed_corpus_reaches_every_outcome() -> None:
    outcomes = {fz.run_case(fz.decode_input(seed)) for seed in fz.seed_inputs()}
    assert any(o.startswith("qq") and "events 1" in o for o in outcomes)
    assert any(o.startswith("qq") and "401" in o for o in outcomes)
    assert any(o.startswith("onebot") and "101" in o and "events 1" in o for o in outcomes)
    assert any(o.startswith("onebot") and "403" in o for o in outcomes)
    assert any(o.startswith("onebot") and "204" in o for o in outcomes)


def test_the_oracle_catches_a_status_the_endpoint_never_promises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fz, "QQ_STATUSES", {200})
    with pytest.raises(fz.ContractViolation, match="answered"):
        fz.run_case(fz.Case(False, fz._post("/elsewhere", b"{}"), ()))
