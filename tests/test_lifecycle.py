"""The lifecycle table, the machine compiled from it, and the diagram."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from qqproto.errors import LocalProtocolError
from qqproto.qq import diagram
from qqproto.qq.lifecycle import TABLE, GatewayState, Input, Lifecycle, allowed, next_state

PAIRS = list(itertools.product(GatewayState, Input))


@pytest.mark.parametrize(("state", "trigger"), PAIRS, ids=lambda v: v.name)
def test_every_state_input_pair_follows_the_table(state: GatewayState, trigger: Input) -> None:
    """h2's pattern: either the table's next state, or a typed error and no move."""
    model = Lifecycle(state)
    rows = [dest or state for t, sources, dest in TABLE if t is trigger and state in sources]
    if rows:
        assert len(rows) == 1, "the table is ambiguous"
        assert model.fire(trigger) is rows[0]
        assert next_state(state, trigger) is rows[0]
        assert allowed(state, trigger)
    else:
        with pytest.raises(LocalProtocolError, match=f"no transition for '{trigger.value}'"):
            model.fire(trigger)
        assert model.state is state
        assert not allowed(state, trigger)
        with pytest.raises(LocalProtocolError):
            next_state(state, trigger)


def test_terminal_states_have_no_way_out() -> None:
    for state in (GatewayState.FAILED, GatewayState.CLOSED):
        assert not any(allowed(state, trigger) for trigger in Input)


def test_every_live_state_can_fail_and_close() -> None:
    live = [s for s in GatewayState if s not in (GatewayState.FAILED, GatewayState.CLOSED)]
    for state in live:
        assert next_state(state, Input.FATAL) is GatewayState.FAILED
        assert next_state(state, Input.CLOSE) is GatewayState.CLOSED


def test_every_state_and_input_is_used() -> None:
    used_inputs = {t for t, _, _ in TABLE}
    used_states = {s for _, sources, _ in TABLE for s in sources} | {d for *_, d in TABLE if d}
    assert used_inputs == set(Input)
    assert used_states == set(GatewayState)


def test_committed_diagram_matches_the_table() -> None:
    committed = Path(__file__).parent.parent / "docs" / "gateway-states.md"
    assert committed.read_text(encoding="utf-8") == diagram.markdown(), (
        "docs/gateway-states.md is stale: run `make diagram`"
    )


def test_diagram_has_one_edge_per_table_pair() -> None:
    text = diagram.mermaid()
    for trigger, sources, dest in TABLE:
        for source in sources:
            edge = f"{source.name} --> {(dest or source).name}: "
            line = next(line for line in text.splitlines() if edge in line)
            assert trigger.value in line.split(": ", 1)[1].split(", ")
