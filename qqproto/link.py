"""An outbound link's reconnect policy, and the value each failed attempt becomes.

Anything that keeps one connection up to a server (the QQ gateway, OneBot's
forward WebSocket client) loses it now and then, and must decide when to try
again. :class:`ReconnectPolicy` holds those rules, apart from any protocol:

- **the attempt budget**: a connection that never reached its goal (READY,
  say) is one failed attempt; after ``max_attempts`` in a row, give up;
- **backoff**: the waits between failed attempts grow exponentially, with
  jitter from the injected RNG, up to a cap, and start over after a good
  connection;
- **short sessions**: a good connection that dies young (a server that
  accepts and drops at once) spends no budget, but after ``tolerated`` of
  them in a row the reconnects back off as failed attempts do, so such a
  server is never hammered in a tight loop.

Every failed attempt that will be retried becomes a :class:`Retry` value, for
the application and the logs: which attempt failed, of how many, why, and
how long until the next.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .backoff import Backoff

__all__ = ["SHORT_SESSION", "SHORT_SESSIONS_TOLERATED", "ReconnectPolicy", "Retry"]

#: A good connection lost sooner than this (seconds) was short-lived ...
SHORT_SESSION = 10.0
#: ... and after this many short-lived ones in a row, reconnects back off.
SHORT_SESSIONS_TOLERATED = 2


@dataclass(frozen=True, slots=True)
class Retry:
    """A connection attempt failed, and another comes after ``delay`` seconds.

    ``attempt`` counts the failed attempts in a row, as ``max_attempts``
    does; ``of`` is that cap (None when there is none). The attempt that
    spends the budget is no Retry: the object fails instead.
    """

    attempt: int
    of: int | None
    delay: float
    reason: str

    def __str__(self) -> str:
        of = f" of {self.of}" if self.of is not None else ""
        return f"attempt {self.attempt}{of} failed ({self.reason}); next in {self.delay:.1f} s"


class ReconnectPolicy:
    """When to connect again, for one link. The owner tells it what happened:
    :meth:`attempt_failed` or :meth:`connected`, then :meth:`good_one_ended`."""

    __slots__ = ("_good_since", "_short", "_shorts", "attempts", "short_session", "tolerated")

    def __init__(
        self,
        rng: random.Random,
        *,
        base: float = 1.0,
        cap: float = 60.0,
        max_attempts: int = 30,
        short_session: float = SHORT_SESSION,
        tolerated: int = SHORT_SESSIONS_TOLERATED,
    ) -> None:
        #: The failed attempts in a row, and the waits between them.
        self.attempts = Backoff(rng, base=base, cap=cap, max_attempts=max_attempts)
        # Never spent: only its waits are used, never its count.
        self._short = Backoff(rng, base=base, cap=cap, max_attempts=1)
        self.short_session = short_session
        self.tolerated = tolerated
        self._good_since = 0.0
        self._shorts = 0

    @property
    def spent(self) -> bool:
        """Whether the failed attempts reached ``max_attempts``."""
        return self.attempts.exhausted

    def attempt_failed(self) -> float:
        """Count a failed attempt; the wait before the next (see :attr:`spent`)."""
        return self.attempts.next_delay()

    def retry(self, delay: float, reason: str) -> Retry:
        """The value that reports the failed attempt just counted."""
        return Retry(self.attempts.failures, self.attempts.max_attempts, delay, reason)

    def connected(self, now: float) -> None:
        """A connection reached its goal: the failed attempts are forgotten."""
        self._good_since = now
        self.attempts.reset()

    def good_one_ended(self, now: float) -> float:
        """A good connection was lost: the wait before the next, none unless
        connections keep dying young."""
        if now - self._good_since >= self.short_session:
            self._shorts = 0
            self._short.reset()
            return 0.0
        self._shorts += 1
        if self._shorts <= self.tolerated:
            return 0.0
        return self._short.next_delay()

    def __repr__(self) -> str:
        return f"ReconnectPolicy({self.attempts!r}, short sessions in a row: {self._shorts})"
