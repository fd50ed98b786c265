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


class RateLimiter:
    """``burst`` sends at once, then ``rate`` per second."""

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int = 1) -> None:
        if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ConfigError("rate", "a positive, finite number of sends per second", rate)
        if type(burst) is not int or burst < 1:
            raise ConfigError("burst", "an integer >= 1", burst)
        self.rate = float(rate)
        self.burst = burst
        self._tokens = float(burst)
        self._at: float | None = None  # when _tokens was last brought up to date

    def _refill(self, now: float) -> None:
        if self._at is not None and now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        if self._at is None or now > self._at:
            self._at = now  # a clock that went back changes nothing

    def next_free(self, now: float) -> float:
        """When the next send may go: ``now`` if it may go now."""
        self._refill(now)
        if self._tokens >= 1:
            return now
        return now + (1 - self._tokens) / self.rate

    def take(self, now: float) -> bool:
        """Take a send if one may go now; False (and nothing taken) if not."""
        self._refill(now)
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}, burst={self.burst}, tokens={self._tokens:.2f})"
