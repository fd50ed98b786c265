"""A quick run of the server fuzz target (``fuzz/fuzz_server.py``).

The long run is ``make fuzz``; this runs 300 structured streams, 300 raw
inputs through the decoder the atheris target uses, and the seed corpus.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzz import fuzz_server as fz

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
    assert "http, served" in outcomes
    assert any(o.startswith("websocket") for o in outcomes)
    refused = {o for o in outcomes if o.startswith("http, refused")}
    for status in ("400", "404", "405", "426"):
        assert any(status in o for o in refused), (status, refused)


def test_the_oracle_catches_a_status_the_pieces_never_promise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fz, "STATUSES", (400,))
    with pytest.raises(fz.ContractViolation, match="refused with 404"):
        fz.run_case(fz.Case(fz.post("/nowhere", b""), (), eof=False))
