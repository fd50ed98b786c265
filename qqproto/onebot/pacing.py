"""Actions that wait before they go out: for a connection, and for the send limit.

An action is asked for at any time, but goes out only when the connection
can take it (CONNECTED and, for v12 over HTTP, the version known), and a
send (an action named ``send_*``: messages, forwards, pokes, likes) only when
the optional :class:`~qqproto.ratelimit.RateLimiter` has room: accounts get
banned for bursts. Until then it waits here, in order, unsent. Other actions
never wait for the limiter, only for the connection.

A waiting action has not gone out, so it can end in a way a sent one
cannot: as *not sent*, an outcome that is known. It does when it waited
``give_up_at`` out, or when its connection is closed for good.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..ratelimit import RateLimiter
from .actions import Action

__all__ = ["Outbox", "is_send"]

C = TypeVar("C")


def is_send(action: Action) -> bool:
    """Whether the send limit applies to ``action``."""
    return action.name.startswith("send_")


@dataclass(slots=True)
class _Waiting(Generic[C]):
    item: C
    send: bool
    give_up_at: float


class Outbox(Generic[C]):
    """Actions waiting to go out (``C``: the owner's record of each), oldest first."""

    def __init__(self, limiter: RateLimiter | None) -> None:
        self.limiter = limiter
        self._waiting: deque[_Waiting[C]] = deque()
        self._free_at: float | None = None  # when the limiter has room for a waiting send

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, item: C, action: Action, give_up_at: float, now: float, *, open_: bool) -> bool:
        """True when ``item`` may go now (a send took the limiter's room); else it
        waits. ``open_`` says whether the connection can take it. A send never
        overtakes one that waits."""
        send = self.limiter is not None and is_send(action)
        if open_ and not (send and self._sends_wait()):
            if not send:
                return True
            assert self.limiter is not None
            if self.limiter.take(now):
                return True
        self._waiting.append(_Waiting(item, send, give_up_at))
        if send and open_ and self._free_at is None:
            assert self.limiter is not None
            self._free_at = self.limiter.next_free(now)
        return False

    def _sends_wait(self) -> bool:
        return any(w.send for w in self._waiting)

    def next_deadline(self, *, open_: bool) -> float | None:
        """The first give-up time, or (when open) when a waiting send may go."""
        times = [self._waiting[0].give_up_at] if self._waiting else []
        if open_ and self._free_at is not None:
            times.append(self._free_at)
        return min(times, default=None)

    def ready(self, now: float) -> list[C]:
        """What may go now on an open connection, taken out in order: every
        action but a send, and sends while the limiter has room."""
        out: list[C] = []
        kept: deque[_Waiting[C]] = deque()
        limiter, blocked = self.limiter, False
        for waiting in self._waiting:
            if waiting.send and (blocked or limiter is None or not limiter.take(now)):
                blocked = True  # sends go in order: none after this one goes now
                kept.append(waiting)
            else:
                out.append(waiting.item)
        self._waiting = kept
        sends_wait = any(w.send for w in kept)
        self._free_at = limiter.next_free(now) if sends_wait and limiter is not None else None
        return out

    def expired(self, now: float) -> list[C]:
        """The actions whose give-up time has come, taken out."""
        out = [w.item for w in self._waiting if now >= w.give_up_at]
        if out:
            self._waiting = deque(w for w in self._waiting if now < w.give_up_at)
            if not self._sends_wait():
                self._free_at = None
        return out

    def drop_all(self) -> list[C]:
        """Every waiting action, taken out."""
        waiting, self._waiting, self._free_at = self._waiting, deque(), None
        return [w.item for w in waiting]

    def __repr__(self) -> str:
        return f"Outbox({self.limiter!r}, waiting={len(self._waiting)})"
