"""Hypothesis profiles: ``dev`` by default, ``ci`` when CI=true, ``soak`` on request.

HYPOTHESIS_PROFILE names a profile outright and wins over CI. ``make soak``
runs the gateway state machine with ``HYPOTHESIS_PROFILE=soak``.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev",
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    # One example is a whole gateway schedule: slow next to a unit test.
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", settings.get_profile("dev"), max_examples=2000, print_blob=True)
settings.register_profile("soak", settings.get_profile("ci"), max_examples=100_000)


def _profile() -> str:
    if chosen := os.environ.get("HYPOTHESIS_PROFILE"):
        return chosen
    return "ci" if os.environ.get("CI", "").strip().lower() in ("true", "1") else "dev"


settings.load_profile(_profile())
