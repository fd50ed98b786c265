"""When a OneBot link is dead, whichever side dialled it (spec 9).

Heartbeats are optional in v11 and their interval varies, so a link is
watched two ways. Once a heartbeat has promised an interval (taken within 1 s
and an hour), the link is dead when nothing at all arrives for ``factor``
intervals. Until then (heartbeats off, or NapCat's first one a whole interval
late), the transport is asked: after ``ping_interval`` seconds without a byte
a WebSocket ping goes out, and a link that brings nothing within
``ping_timeout`` after it is dead. Any byte, a pong too, is a sign of life.

:class:`Liveness` keeps those times for one link and says, when asked, what
is due: nothing, a ping, or the verdict with its reason. Its owner sends the
ping and closes the link.
"""

from __future__ import annotations

from typing import Final

__all__ = ["INTERVAL_RANGE", "PING", "Liveness"]

#: A heartbeat interval is taken within these bounds (seconds): one of a
#: millisecond would make the watch drop every link at once.
INTERVAL_RANGE: Final = (1.0, 3600.0)
#: What :meth:`Liveness.due` says when a ping should go out now.
PING: Final = "ping"


class Liveness:
    """The watch over one open link (see the module docstring)."""

    __slots__ = (
        "_factor",
        "_heard_at",
        "_interval",
        "_ping_interval",
        "_ping_timeout",
        "_pinged_at",
    )

    def __init__(self, factor: float, ping_interval: float | None, ping_timeout: float) -> None:
        self._factor = factor
        self._ping_interval, self._ping_timeout = ping_interval, ping_timeout
        self._interval: float | None = None  # the last heartbeat's promise
        self._heard_at = 0.0  # when the link last brought bytes
        self._pinged_at: float | None = None  # a ping waits for a sign of life since then

    def opened(self, now: float) -> None:
        self._heard_at, self._pinged_at, self._interval = now, None, None

    def heard(self, now: float) -> None:
        """Bytes came: the link lives."""
        self._heard_at, self._pinged_at = now, None

    def heartbeat(self, interval: float, now: float) -> None:
        """A heartbeat promised the next one ``interval`` seconds from now."""
        low, high = INTERVAL_RANGE
        self._interval = min(max(interval, low), high)
        self.heard(now)

    def deadline(self) -> float | None:
        """When :meth:`due` has something to say next."""
        if self._interval is not None:
            return self._heard_at + self._factor * self._interval
        if self._ping_interval is None:
            return None  # nothing watches a quiet link
        if self._pinged_at is None:
            return self._heard_at + self._ping_interval
        return self._pinged_at + self._ping_timeout

    def due(self, now: float) -> str | None:
        """None (alive), :data:`PING` (send one now), or why the link is dead."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        if self._interval is not None:
            waited = self._factor * self._interval
            return f"nothing received for {waited:g} s (heartbeats stopped)"
        if self._pinged_at is None:
            self._pinged_at = now
            return PING
        return f"no answer to a ping within {self._ping_timeout:g} s (and no heartbeats)"
