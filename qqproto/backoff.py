"""Capped exponential backoff with jitter, driven by an injected RNG.

The n-th wait is ``base * factor ** (n - 1)`` stretched or shrunk by up to
``jitter`` (±25 % by default), never more than ``cap``, and never shorter
than the wait before it. That last rule is what people mean by "backing off":
with full jitter a later wait can be shorter than an earlier one, which reads
as a bug in a log. Spreading many clients apart still works, because the sum
of the jittered waits differs from one client to the next.

The RNG comes from outside, so the same seed always gives the same waits.
"""

from __future__ import annotations

import random

from .errors import ConfigError

__all__ = ["Backoff"]


class Backoff:
    """Waits between consecutive failed attempts, up to ``max_attempts``
    (None: as many as it takes; the waits stay at ``cap``).

    >>> b = Backoff(random.Random(1), base=1.0, cap=8.0)
    >>> [round(b.next_delay(), 2) for _ in range(5)]
    [0.82, 2.35, 4.53, 7.02, 7.98]
    >>> b.reset(); b.failures
    0
    """

    __slots__ = ("_last", "_rng", "base", "cap", "factor", "failures", "jitter", "max_attempts")

    def __init__(
        self,
        rng: random.Random,
        *,
        base: float = 1.0,
        factor: float = 2.0,
        cap: float = 60.0,
        jitter: float = 0.25,
        max_attempts: int | None = 30,
    ) -> None:
        if not base > 0:
            raise ConfigError("backoff base", "a positive number of seconds", base)
        if not factor >= 1:
            raise ConfigError("backoff factor", "a number >= 1", factor)
        if not cap >= base:
            raise ConfigError("backoff cap", f"a number of seconds >= base ({base})", cap)
        if not 0 <= jitter < 1:
            raise ConfigError("backoff jitter", "a fraction in [0, 1)", jitter)
        if max_attempts is not None and (type(max_attempts) is not int or max_attempts < 1):
            raise ConfigError("max_attempts", "None or an integer >= 1", max_attempts)
        self._rng = rng
        self.base = base
        self.factor = factor
        self.cap = cap
        self.jitter = jitter
        self.max_attempts = max_attempts
        self.failures = 0
        self._last = 0.0

    @property
    def exhausted(self) -> bool:
        """True once ``max_attempts`` consecutive attempts have failed (never
        when there is no cap)."""
        return self.max_attempts is not None and self.failures >= self.max_attempts

    def next_delay(self) -> float:
        """Count one more failed attempt and return the wait before the next."""
        self.failures += 1
        try:
            raw = min(self.base * self.factor ** (self.failures - 1), self.cap)
        except OverflowError:
            # A long outage or a large factor: the wait was capped long ago.
            raw = self.cap
        spread = 1.0 + self.jitter * (2.0 * self._rng.random() - 1.0)
        self._last = min(self.cap, max(self._last, raw * spread))
        return self._last

    def reset(self) -> None:
        """Forget past failures: call it after a good session."""
        self.failures = 0
        self._last = 0.0

    def __repr__(self) -> str:
        return (
            f"Backoff(failures={self.failures}/{self.max_attempts}, base={self.base}, "
            f"factor={self.factor}, cap={self.cap}, jitter={self.jitter})"
        )
