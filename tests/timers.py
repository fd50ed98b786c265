"""Fire a protocol object's deadlines in order on a fake clock: fail, never hang.

A harness that moves time calls ``handle_timer`` at each deadline until the
next one lies beyond where it is going. If ``handle_timer`` leaves a deadline
where it was (a broken comparison: ``now > at`` where ``now >= at`` was meant),
a naive loop fires the same deadline forever and the suite hangs. Here that
fails the test at once, with the object's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Timed(Protocol):
    def next_deadline(self) -> float | None: ...


class StuckTimer(AssertionError):
    """A deadline passed and ``handle_timer`` did nothing about it."""


def fire_deadlines(proto: Timed, now: float, target: float, fire: Callable[[float], None]) -> None:
    """Call ``fire(at)`` (which runs ``handle_timer(at)`` and the actions it asks for)
    at every deadline of ``proto`` from ``now`` up to ``target``, in order."""
    while (deadline := proto.next_deadline()) is not None and deadline <= target:
        at = max(now, deadline)
        fire(at)
        after = proto.next_deadline()
        if after is not None and after <= at:
            raise StuckTimer(
                f"the deadline {deadline} passed at {at} with no effect:"
                f" {proto!r} still asks for a timer at {after}"
            )
        now = at
