"""Lifecycles as tables: one helper every state machine of qqproto is built with.

Theory of operation
-------------------

A lifecycle is a module-level :class:`Table` of :class:`Row` values, each
``(input, sources, destination, condition)``: "when ``input`` comes in one of
``sources``, go to ``destination`` if ``condition`` holds". The rows are the
whole behaviour. They are compiled once per process to one ``transitions``
machine, and everything else reads that machine, not a second copy of the
rows: :meth:`Table.allowed` and :meth:`Table.next_state` ask it, the Mermaid
diagram is drawn from the rows it was built from, and a test compares the
committed diagrams with the tables.

Rules (after h11 and h2):

- Rows for one ``(input, source)`` pair are tried in table order, and the
  first whose condition holds wins. The last row of each pair has no
  condition, so every listed pair has exactly one answer; a pair the table
  does not list is a :class:`~qqproto.errors.LocalProtocolError`, and the
  state stays.
- A condition is a named, pure test (:class:`Guard`) of a context value the
  owner passes in (its counters). It decides; it never changes anything.
- A destination of None keeps the state: nothing moves, no
  :class:`~qqproto.actions.StateChanged` is made.
- No callbacks: what an owner does after a move, it does in its own code,
  reading the :class:`Row` that fired.

Owners do not register with the machine: each holds a :class:`Lifecycle`, a
tiny model that the shared machine moves, so the machine never keeps a
reference to an owner. Firing is for lifecycle events (a handful per
connection); hot paths such as a dispatch in READY never fire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Generic, TypeVar

from transitions import Machine, MachineError

from .actions import StateChanged
from .errors import LocalProtocolError

__all__ = ["Guard", "Lifecycle", "Row", "Table"]

St = TypeVar("St", bound=Enum)
In = TypeVar("In", bound=Enum)
Ctx = TypeVar("Ctx")


@dataclass(frozen=True, slots=True)
class Guard(Generic[Ctx]):
    """A condition of a row: ``test(context)``, shown in diagrams as ``label``."""

    label: str
    test: Callable[[Ctx], bool]

    def __repr__(self) -> str:
        return f"Guard({self.label!r})"


@dataclass(frozen=True, slots=True)
class Row(Generic[St, In, Ctx]):
    """When ``input`` comes in one of ``sources``, go to ``dest`` if ``when`` holds.

    ``dest`` None keeps the state (an internal transition).
    """

    input: In
    sources: tuple[St, ...]
    dest: St | None
    when: Guard[Ctx] | None = None


class Table(Generic[St, In, Ctx]):
    """The rows of one lifecycle, compiled to one ``transitions`` machine.

    ``name`` is what :class:`~qqproto.actions.StateChanged` carries as its
    ``machine``; ``starts`` maps each state an owner may start in to a note for
    the diagram ("" for none).
    """

    def __init__(
        self,
        name: str,
        states: type[St],
        rows: Iterable[Row[St, In, Ctx]],
        *,
        starts: Mapping[St, str],
    ) -> None:
        self.name = name
        self.states = states
        self.rows = tuple(rows)
        self.starts = dict(starts)
        _check(self.rows)
        self._machine = Machine(
            model=None,
            states=states,
            transitions=[
                {
                    "trigger": row.input.value,
                    "source": source,
                    "dest": row.dest,
                    "conditions": [_condition(row.when)] if row.when else [],
                }
                for row in self.rows
                for source in row.sources
            ],
            initial=None,
            auto_transitions=False,
            send_event=True,
            finalize_event=self._remember_row,
        )
        # Each transition of the machine, with the row it came from: the machine
        # keeps the rows of one (input, source) pair in table order.
        self._row_of: dict[int, Row[St, In, Ctx]] = {}
        placed: dict[tuple[In, St], int] = {}
        for row in self.rows:
            for source in row.sources:
                index = placed.get((row.input, source), 0)
                placed[(row.input, source)] = index + 1
                self._row_of[id(self._candidates(source, row.input)[index])] = row

    def _candidates(self, state: St, trigger: In) -> list[Any]:
        event = self._machine.events.get(trigger.value)
        return list(event.transitions.get(state.name, ())) if event else []

    def allowed(self, state: St, trigger: In) -> bool:
        """Whether the table has a row for ``trigger`` in ``state``."""
        return bool(self._candidates(state, trigger))

    def next_state(self, state: St, trigger: In, context: Ctx | None = None) -> St:
        """Where ``trigger`` would take ``state``, without moving anything."""
        return self.row(state, trigger, context).dest or state

    def row(self, state: St, trigger: In, context: Ctx | None = None) -> Row[St, In, Ctx]:
        """The row that ``trigger`` would fire in ``state`` (given ``context``)."""
        for transition in self._candidates(state, trigger):
            row = self._row_of[id(transition)]
            if row.when is None or row.when.test(context):  # type: ignore[arg-type]
                return row
        raise self._refused(state, trigger)

    def lifecycle(self, state: St) -> Lifecycle[St, In, Ctx]:
        """A model of this table, starting in ``state``."""
        if state not in self.starts:
            raise LocalProtocolError(
                f"{self.name} cannot start in {state.name}",
                expected=f"one of {sorted(s.name for s in self.starts)}",
                received=state.name,
            )
        return Lifecycle(self, state)

    def fire(self, model: Lifecycle[St, In, Ctx], trigger: In, context: Ctx | None) -> None:
        try:
            self._machine.events[trigger.value].trigger(model, context=context)
        except (MachineError, KeyError):
            raise self._refused(model.state, trigger) from None
        # Some row fired: _check gives every listed pair a last row without a condition.

    def _remember_row(self, event: Any) -> None:
        """finalize_event: note on the model which row fired, if one did."""
        if event.result and event.transition is not None:
            event.model.last = self._row_of[id(event.transition)]

    def _refused(self, state: St, trigger: In) -> LocalProtocolError:
        inputs = sorted({r.input.value for r in self.rows if state in r.sources})
        return LocalProtocolError(
            f"{self.name}: no transition for {trigger.value!r} in {state.name}",
            expected=f"one of {inputs}",
            received=trigger.value,
        )

    def mermaid(self) -> str:
        """A Mermaid ``stateDiagram-v2``: one arrow per (source, destination),
        labelled with its inputs, each with its condition in brackets."""
        edges: dict[tuple[str, str], list[str]] = {}
        for row in self.rows:
            label = row.input.value + (f" [{row.when.label}]" if row.when else "")
            for source in row.sources:
                labels = edges.setdefault((source.name, (row.dest or source).name), [])
                if label not in labels:
                    labels.append(label)
        lines = ["stateDiagram-v2"]
        for state, note in self.starts.items():
            lines.append(f"    [*] --> {state.name}" + (f": {note}" if note else ""))
        for (before, after), labels in edges.items():
            lines.append(f"    {before} --> {after}: {', '.join(labels)}")
        moving = {before for before, _ in edges}
        lines += [f"    {s.name} --> [*]" for s in self.states if s.name not in moving]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return f"Table({self.name!r}, {len(self.rows)} rows)"


class Lifecycle(Generic[St, In, Ctx]):
    """One owner's state in a :class:`Table`; ``last`` is the row that fired last."""

    __slots__ = ("last", "state", "table")

    def __init__(self, table: Table[St, In, Ctx], state: St) -> None:
        self.table = table
        self.state = state
        self.last: Row[St, In, Ctx] | None = None

    def fire(self, trigger: In, why: str, context: Ctx | None = None) -> StateChanged | None:
        """Run ``trigger``: the :class:`StateChanged` to report, or None if the
        state stayed. ``last`` says which row fired. A pair the table does not
        list raises :class:`LocalProtocolError`, and nothing moves."""
        old = self.state
        self.last = None
        self.table.fire(self, trigger, context)
        new = self.state
        return None if new is old else StateChanged(self.table.name, old.name, new.name, why)

    def __repr__(self) -> str:
        return f"Lifecycle({self.table.name}, {self.state.name})"


def _condition(guard: Guard[Any]) -> Callable[[Any], bool]:
    # send_event=True: transitions hands conditions its EventData.
    return lambda event: bool(guard.test(event.kwargs["context"]))


def _check(rows: tuple[Row[Any, Any, Any], ...]) -> None:
    """Each (input, source) pair ends with one row without a condition, and
    has no row after it: every listed pair has one answer, and no row is dead."""
    groups: dict[tuple[Any, Any], list[Row[Any, Any, Any]]] = {}
    for row in rows:
        if not row.sources:
            raise ValueError(f"{row} has no source state")
        for source in row.sources:
            groups.setdefault((row.input, source), []).append(row)
    for (trigger, source), group in groups.items():
        unconditional = [i for i, row in enumerate(group) if row.when is None]
        if unconditional != [len(group) - 1]:
            raise ValueError(
                f"the rows for {trigger.name} in {source.name} must end with exactly "
                f"one row without a condition, and only there: {group}"
            )
