"""The settings of the quick fuzz runs in the tests (``make fuzz`` is the long one)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def quick(examples: int, *, keep_failures: bool = False) -> settings:
    """A few hundred examples, no deadline; failures kept in Hypothesis's
    database only when ``keep_failures`` (they replay first next time)."""
    fast = settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    return fast if keep_failures else settings(fast, database=None)
