"""Sends spaced out: the optional outbound limit of a OneBot connection.

Accounts get banned for bursts. With a :class:`~qqproto.ratelimit.RateLimiter`,
a :class:`SendPacer` lets message sends (actions named ``send_*``: messages,
forwards, pokes, likes) go while the limiter has room and keeps the rest, in
the order they were asked, until it has room again. Other actions (reads,
deletes) are never held. A held send has not gone out: if its connection
ends first, it ends as *not sent*, an outcome that is known, unlike that of
a send whose answer never came.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

from ..ratelimit import RateLimiter
from .actions import Action

__all__ = ["SendPacer", "is_send"]

C = TypeVar("C")


def is_send(action: Action) -> bool:
    """Whether the limit applies to ``action``."""
    return action.name.startswith("send_")


class SendPacer(Generic[C]):
    """Held sends (``C``: the owner's record of each, with the frame it will send)."""

    def __init__(self, limiter: RateLimiter | None) -> None:
        self.limiter = limiter
        self._held: deque[C] = deque()
        self._free_at: float | None = None  # when the first held send may go

    def __len__(self) -> int:
        return len(self._held)

    def admit(self, action: Action, now: float) -> bool:
        """True when ``action`` may go now (it took the limiter's room); False
        when it must wait: :meth:`hold` it. Sends go in order: none overtakes
        one that waits."""
        limiter = self.limiter
        if limiter is None or not is_send(action):
            return True
        return not self._held and limiter.take(now)

    def hold(self, held: C, now: float) -> None:
        assert self.limiter is not None  # admit() said no: there is a limiter
        self._held.append(held)
        if self._free_at is None:
            self._free_at = self.limiter.next_free(now)

    def next_deadline(self) -> float | None:
        return self._free_at

    def ready(self, now: float) -> list[C]:
        """The held sends that may go now, in order, taken out."""
        limiter = self.limiter
        out: list[C] = []
        while self._held and limiter is not None and limiter.take(now):
            out.append(self._held.popleft())
        self._free_at = limiter.next_free(now) if self._held and limiter else None
        return out

    def drop_all(self) -> list[C]:
        """Every held send, taken out (its connection went: none of them went out)."""
        held, self._held, self._free_at = list(self._held), deque(), None
        return held

    def __repr__(self) -> str:
        return f"SendPacer({self.limiter!r}, held={len(self._held)})"
