"""The test harnesses' clock: a deadline that passes with no effect fails, never hangs."""

from __future__ import annotations

import pytest

from .timers import StuckTimer, fire_deadlines


class Alarm:
    """One deadline; ``handle_timer`` moves it on unless ``stuck``."""

    def __init__(self, at: float, period: float, stuck: bool = False) -> None:
        self.at, self.period, self.stuck = at, period, stuck
        self.fired: list[float] = []

    def next_deadline(self) -> float | None:
        return self.at

    def handle_timer(self, now: float) -> None:
        self.fired.append(now)
        if not self.stuck and now >= self.at:
            self.at = now + self.period

    def __repr__(self) -> str:
        return f"Alarm(at={self.at})"


def test_every_deadline_up_to_the_target_fires_in_order() -> None:
    alarm = Alarm(at=5.0, period=10.0)
    fire_deadlines(alarm, 0.0, 30.0, alarm.handle_timer)
    assert alarm.fired == [5.0, 15.0, 25.0]


def test_a_deadline_in_the_past_fires_at_now() -> None:
    alarm = Alarm(at=1.0, period=100.0)
    fire_deadlines(alarm, 3.0, 4.0, alarm.handle_timer)
    assert alarm.fired == [3.0]


def test_a_deadline_left_where_it_was_fails_with_the_state() -> None:
    alarm = Alarm(at=5.0, period=10.0, stuck=True)
    with pytest.raises(StuckTimer, match=r"deadline 5.0 passed at 5.0 .* Alarm\(at=5.0\)"):
        fire_deadlines(alarm, 0.0, 30.0, alarm.handle_timer)
    assert alarm.fired == [5.0]
