"""A token bucket on the injected clock: how many sends may go now, and when the next may.

Accounts get banned for bursts, so a bot may want its sends spaced. A
:class:`RateLimiter` allows ``burst`` sends at once and ``rate`` per second
after that. It does no I/O and reads no clock: it is told ``now``, and says
when a send may go (:meth:`RateLimiter.next_free`) or takes one
(:meth:`RateLimiter.take`). A protocol object holds what must wait and folds
``next_free`` into its ``next_deadline``.
"""

from __future__ import annotations

import math

from .errors import ConfigError

__all__ = ["RateLimiter"]


#: Times this many units in the last place apart are one time: see RateLimiter.
_ULPS = 4


class RateLimiter:
    """``burst`` sends at once, then ``rate`` per second.

    Kept as the GCRA keeps it (the token bucket's twin): not a count of room
    but the time the next send would be due at the steady rate. A send may go
    when that time is at most ``burst - 1`` intervals away. The time
    :meth:`next_free` names is the very value :meth:`take` compares with, so
    one never says yes where the other says no; and times a rounding error
    apart (``1.1 - 1.0`` is not ``0.1``) count as the same time.
    """

    __slots__ = ("_due", "_interval", "_tolerance", "burst", "rate")

    def __init__(self, rate: float, burst: int = 1) -> None:
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ConfigError("rate", "a positive, finite number of sends per second", rate)
        if type(burst) is not int or burst < 1:
            raise ConfigError("burst", "an integer >= 1", burst)
        self.rate = float(rate)
        self.burst = burst
        self._interval = 1.0 / self.rate
        self._tolerance = (burst - 1) * self._interval
        self._due: float | None = None  # when the next send is due at the steady rate

    def next_free(self, now: float) -> float:
        """When the next send may go: ``now`` if it may go now."""
        if self._due is None:
            return now
        return max(now, self._due - self._tolerance)

    def take(self, now: float) -> bool:
        """Take a send if one may go now; False (and nothing taken) if not."""
        due = now if self._due is None else self._due
        # A few units in the last place of the larger time: rounding, not time.
        rounding = _ULPS * math.ulp(max(abs(now), abs(due)))
        if now < due - self._tolerance - rounding:
            return False
        # A clock that went back changes nothing: the due time never moves back.
        self._due = max(due, now) + self._interval
        return True

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}, burst={self.burst}, due={self._due})"
