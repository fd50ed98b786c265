"""qqproto.machine: tables of rows compiled to one transitions machine."""

from __future__ import annotations

from enum import Enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qqproto.actions import StateChanged
from qqproto.errors import LocalProtocolError
from qqproto.machine import Guard, Row, Table


class Light(Enum):
    OFF = "off"
    ON = "on"
    BROKEN = "broken"


class Press(Enum):
    SWITCH = "switch"
    KICK = "kick"
    FIX = "fix"


Rows = tuple[Row[Light, Press, int], ...]
WORN: Guard[int] = Guard("worn out", lambda presses: presses >= 3)

LAMP: Table[Light, Press, int] = Table(
    "lamp",
    Light,
    (
        Row(Press.SWITCH, (Light.OFF, Light.ON), Light.BROKEN, WORN),
        Row(Press.SWITCH, (Light.OFF,), Light.ON),
        Row(Press.SWITCH, (Light.ON,), Light.OFF),
        Row(Press.KICK, (Light.ON,), None),
        Row(Press.FIX, (Light.BROKEN,), Light.OFF),
    ),
    starts={Light.OFF: "", Light.BROKEN: "second hand"},
)


def test_the_first_row_whose_condition_holds_wins() -> None:
    lamp = LAMP.lifecycle(Light.OFF)
    assert lamp.fire(Press.SWITCH, "pressed", 0) == StateChanged("lamp", "OFF", "ON", "pressed")
    assert lamp.last is LAMP.rows[1]
    assert lamp.fire(Press.SWITCH, "pressed again", 3) == StateChanged(
        "lamp", "ON", "BROKEN", "pressed again"
    )
    assert lamp.last is LAMP.rows[0]


def test_a_row_without_a_destination_keeps_the_state_and_says_nothing() -> None:
    lamp = LAMP.lifecycle(Light.OFF)
    lamp.fire(Press.SWITCH, "on", 0)
    assert lamp.fire(Press.KICK, "kicked", 0) is None
    assert lamp.state is Light.ON and lamp.last is LAMP.rows[3]


def test_a_pair_the_table_does_not_list_is_refused_and_nothing_moves() -> None:
    lamp = LAMP.lifecycle(Light.OFF)
    with pytest.raises(LocalProtocolError) as caught:
        lamp.fire(Press.FIX, "why", 0)
    assert "lamp: no transition for 'fix' in OFF" in str(caught.value)
    assert "expected one of ['switch']" in str(caught.value)
    assert lamp.state is Light.OFF
    assert not LAMP.allowed(Light.OFF, Press.FIX)
    with pytest.raises(LocalProtocolError):
        LAMP.next_state(Light.OFF, Press.FIX, 0)


def test_an_owner_starts_only_where_the_table_says() -> None:
    assert LAMP.lifecycle(Light.BROKEN).state is Light.BROKEN
    with pytest.raises(LocalProtocolError, match="lamp cannot start in ON"):
        LAMP.lifecycle(Light.ON)


@pytest.mark.parametrize(
    "rows",
    [
        # no row without a condition: some presses would have no answer
        (Row(Press.SWITCH, (Light.OFF,), Light.ON, WORN),),
        # a row after the unconditional one could never fire
        (Row(Press.SWITCH, (Light.OFF,), Light.ON), Row(Press.SWITCH, (Light.OFF,), None, WORN)),
        # two unconditional rows for one pair
        (Row(Press.SWITCH, (Light.OFF,), Light.ON), Row(Press.SWITCH, (Light.OFF,), None)),
        # no source at all
        (Row(Press.SWITCH, (), Light.ON),),
    ],
)
def test_a_table_that_could_leave_a_pair_unanswered_is_refused(rows: Any) -> None:
    with pytest.raises(ValueError, match=r"must end with exactly one row without|no source"):
        Table("bad", Light, rows, starts={Light.OFF: ""})


def test_the_diagram_draws_each_row_with_its_condition() -> None:
    assert LAMP.mermaid() == (
        "stateDiagram-v2\n"
        "    [*] --> OFF\n"
        "    [*] --> BROKEN: second hand\n"
        "    OFF --> BROKEN: switch [worn out]\n"
        "    ON --> BROKEN: switch [worn out]\n"
        "    OFF --> ON: switch\n"
        "    ON --> OFF: switch\n"
        "    ON --> ON: kick\n"
        "    BROKEN --> OFF: fix\n"
    )


def test_a_table_with_a_terminal_state_draws_its_end() -> None:
    rows: Rows = (Row(Press.KICK, (Light.ON,), Light.BROKEN),)
    ends = Table("ends", Light, rows, starts={Light.ON: ""})
    assert ends.mermaid().splitlines()[-2:] == ["    OFF --> [*]", "    BROKEN --> [*]"]


# -- any table: the machine does what the rows say ------------------------------------------


def by_the_rows(rows: Rows, state: Light, press: Press, n: int) -> Any:
    for row in rows:
        if row.input is press and state in row.sources and (row.when is None or row.when.test(n)):
            return row
    return None


def at_least(k: int) -> Guard[int]:
    return Guard(f">= {k}", lambda n: n >= k)


THRESHOLDS = [at_least(k) for k in range(4)]


@st.composite
def tables(draw: st.DrawFn) -> Rows:
    """Rows for some (input, source) pairs, each pair's a few guarded ones then
    one without, the pairs' rows interleaved at random."""
    groups: list[list[Row[Light, Press, int]]] = []
    pairs = draw(st.sets(st.tuples(st.sampled_from(Press), st.sampled_from(Light)), min_size=1))
    dests = st.one_of(st.none(), st.sampled_from(Light))
    for press, source in sorted(pairs, key=lambda p: (p[0].value, p[1].value)):
        guards = draw(st.lists(st.sampled_from(THRESHOLDS), max_size=3))
        group = [Row(press, (source,), draw(dests), guard) for guard in guards]
        groups.append([*group, Row(press, (source,), draw(dests))])
    rows: list[Row[Light, Press, int]] = []
    while groups:
        group = groups[draw(st.integers(0, len(groups) - 1))]
        rows.append(group.pop(0))
        groups = [g for g in groups if g]
    return tuple(rows)


@given(tables(), st.sampled_from(Light), st.sampled_from(Press), st.integers(0, 4))
def test_any_table_moves_as_its_rows_say(rows: Rows, state: Light, press: Press, n: int) -> None:
    table = Table("any", Light, rows, starts=dict.fromkeys(Light, ""))
    model = table.lifecycle(state)
    expected = by_the_rows(rows, state, press, n)
    if expected is None:
        assert not table.allowed(state, press)
        with pytest.raises(LocalProtocolError):
            model.fire(press, "why", n)
        assert model.state is state
        return
    change = model.fire(press, "why", n)
    assert model.last is expected is table.row(state, press, n)
    assert model.state is (expected.dest or state) is table.next_state(state, press, n)
    assert (change is None) == (model.state is state)
