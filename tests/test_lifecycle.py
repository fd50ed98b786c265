"""The QQ path's lifecycle tables, the machines compiled from them, and the diagrams."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from qqproto import diagram
from qqproto.errors import LocalProtocolError
from qqproto.machine import Lifecycle, Table
from qqproto.qq.lifecycle import (
    MAX_FAILED_RESUMES,
    TABLE,
    Counters,
    GatewayState,
    Input,
)
from qqproto.qq.phases import (
    BOT_TABLE,
    TOKEN_TABLE,
    BotInput,
    BotPhase,
    TokenFailure,
    TokenInput,
    TokenPhase,
)

S = GatewayState
#: Counters that make each condition of the gateway's table hold, and none.
COUNTERS = {
    "none": Counters(),
    "spent": Counters(attempts_spent=True),
    "resumes failed": Counters(has_session=True, failed_resumes=MAX_FAILED_RESUMES),
    "resumes failed, no session": Counters(failed_resumes=MAX_FAILED_RESUMES),
    "refused twice": Counters(refused_tokens=2),
    "all": Counters(
        failed_resumes=MAX_FAILED_RESUMES, refused_tokens=2, has_session=True, attempts_spent=True
    ),
}
CASES = list(itertools.product(GatewayState, Input, COUNTERS))


def by_the_rows(table: Table[Any, Any, Any], state: Any, trigger: Any, context: Any) -> Any:
    """The row that answers, read straight off the rows: the first that matches."""
    for row in table.rows:
        if (
            row.input is trigger
            and state in row.sources
            and (row.when is None or row.when.test(context))
        ):
            return row
    return None


@pytest.mark.parametrize(("state", "trigger", "counters"), CASES, ids=str)
def test_the_machine_does_what_the_rows_say(
    state: GatewayState, trigger: Input, counters: str
) -> None:
    """h2's pattern: either the rows' next state, or a typed error and no move."""
    context = COUNTERS[counters]
    model = Lifecycle(TABLE, state)
    row = by_the_rows(TABLE, state, trigger, context)
    if row is not None:
        expected = row.dest or state
        change = model.fire(trigger, "why", context)
        assert model.state is expected
        assert TABLE.next_state(state, trigger, context) is expected
        assert TABLE.allowed(state, trigger)
        # The row that fired, as the rows say: not only a row with the same destination.
        assert model.last is row is TABLE.row(state, trigger, context)
        if expected is state:
            assert change is None
        else:
            assert change is not None
            moved = (change.machine, change.old, change.new)
            assert moved == ("gateway", state.name, expected.name)
    else:
        with pytest.raises(LocalProtocolError, match=f"no transition for '{trigger.value}'"):
            model.fire(trigger, "why", context)
        assert model.state is state
        assert not TABLE.allowed(state, trigger)
        with pytest.raises(LocalProtocolError):
            TABLE.next_state(state, trigger, context)


def test_terminal_states_have_no_way_out() -> None:
    for state in (S.FAILED, S.CLOSED):
        assert not any(TABLE.allowed(state, trigger) for trigger in Input)


def test_every_live_state_can_fail_and_close() -> None:
    for state in (S.CONNECTING, S.IDENTIFY, S.READY, S.RESUMING):
        assert TABLE.next_state(state, Input.FATAL, Counters()) is S.FAILED
        assert TABLE.next_state(state, Input.CLOSE, Counters()) is S.CLOSED


def test_every_state_and_input_is_used() -> None:
    used_inputs = {row.input for row in TABLE.rows}
    used_states = {s for row in TABLE.rows for s in row.sources}
    used_states |= {row.dest for row in TABLE.rows if row.dest}
    assert used_inputs == set(Input)
    assert used_states == set(GatewayState)


def test_a_spent_budget_ends_every_loss_but_a_good_connections() -> None:
    spent = COUNTERS["all"]
    for trigger in (Input.LINK_LOST, Input.SESSION_LOST):
        for state in (S.CONNECTING, S.IDENTIFY, S.RESUMING):
            assert TABLE.next_state(state, trigger, spent) is S.FAILED
        # READY is a good connection: it spent nothing, whatever the counters say.
        assert TABLE.next_state(S.READY, trigger, COUNTERS["spent"]) is not S.FAILED


def test_resumes_that_keep_failing_start_a_new_session() -> None:
    assert TABLE.next_state(S.RESUMING, Input.LINK_LOST, COUNTERS["resumes failed"]) is S.CONNECTING
    few = Counters(has_session=True, failed_resumes=MAX_FAILED_RESUMES - 1)
    assert TABLE.next_state(S.RESUMING, Input.LINK_LOST, few) is S.RESUMING
    # Without a session there is nothing to give up: the next login identifies anyway.
    nothing = COUNTERS["resumes failed, no session"]
    assert TABLE.next_state(S.RESUMING, Input.LINK_LOST, nothing) is S.RESUMING


def test_a_token_refused_twice_is_the_end_in_every_live_state() -> None:
    once, twice = Counters(refused_tokens=1), COUNTERS["refused twice"]
    assert TABLE.next_state(S.READY, Input.TOKEN_REFUSED, once) is S.RESUMING
    assert TABLE.next_state(S.IDENTIFY, Input.TOKEN_REFUSED, once) is S.CONNECTING
    for state in (S.CONNECTING, S.IDENTIFY, S.READY, S.RESUMING):
        assert TABLE.next_state(state, Input.TOKEN_REFUSED, twice) is S.FAILED


def test_the_bot_skips_discovery_only_from_authenticating() -> None:
    assert BOT_TABLE.next_state(BotPhase.AUTHENTICATING, BotInput.TOKEN) is BotPhase.DISCOVERING
    for phase in (BotPhase.AUTHENTICATING, BotPhase.DISCOVERING):
        assert BOT_TABLE.next_state(phase, BotInput.GATEWAY) is BotPhase.RUNNING
    for phase in (BotPhase.FAILED, BotPhase.CLOSED):
        assert not any(BOT_TABLE.allowed(phase, trigger) for trigger in BotInput)


@pytest.mark.parametrize(("final", "spent"), list(itertools.product((False, True), repeat=2)))
def test_a_failed_fetch_waits_unless_it_was_final_or_the_last(final: bool, spent: bool) -> None:
    failure = TokenFailure(final, spent)
    expected = TokenPhase.FAILED if final or spent else TokenPhase.WAITING
    assert TOKEN_TABLE.next_state(TokenPhase.FETCHING, TokenInput.ERROR, failure) is expected


def test_the_committed_diagrams_match_the_tables() -> None:
    committed = Path(__file__).parent.parent / "docs" / "states.md"
    assert committed.read_text(encoding="utf-8") == diagram.markdown(), (
        "docs/states.md is stale: run `make diagram`"
    )


@pytest.mark.parametrize("table", [t for t, _, _ in diagram.TABLES], ids=lambda t: t.name)
def test_each_diagram_has_an_arrow_for_every_row(table: Table[Any, Any, Any]) -> None:
    text = table.mermaid()
    for row in table.rows:
        label = row.input.value + (f" [{row.when.label}]" if row.when else "")
        for source in row.sources:
            edge = f"    {source.name} --> {(row.dest or source).name}: "
            line = next(line for line in text.splitlines() if line.startswith(edge))
            assert label in line.split(": ", 1)[1].split(", ")
