"""Heartbeat: the clock of one gateway connection.

A connection first waits for Hello (and, after it, for an access token to
log in with), each within ``hello_timeout``. Once logged in it beats every
interval Hello asked for, and each beat must be acknowledged (op 11) before
the next is due. :meth:`Heartbeat.tick` says which of these a timer call
finds; the gateway decides what that means for the connection.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from ..errors import RemoteProtocolError

__all__ = ["FALLBACK_HEARTBEAT_MS", "MAX_HEARTBEAT_MS", "Heartbeat", "Tick"]

#: Heartbeat interval (ms) to use when Hello does not carry a usable one.
FALLBACK_HEARTBEAT_MS = 41_250
#: The longest heartbeat interval (ms) a Hello may ask for (real ones: 45 s).
#: A longer one is out of range, as a missing one is, and falls back: past
#: about 10**308 ms it would not even fit a float.
MAX_HEARTBEAT_MS = 3_600_000


class Tick(Enum):
    """What a timer call finds on an open connection."""

    NOTHING = "nothing"
    HELLO_LATE = "hello_late"  # no Hello within the timeout
    TOKEN_LATE = "token_late"  # Hello came, but no token to log in with
    BEAT = "beat"  # send a heartbeat now
    ACK_MISSED = "ack_missed"  # the last heartbeat got no ACK


class Heartbeat:
    """The deadlines of one connection; :meth:`reset` starts the next one's."""

    __slots__ = ("_ack_pending", "_beat_at", "_hello_deadline", "interval")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._hello_deadline: float | None = None
        #: Seconds between beats, once Hello said (None before).
        self.interval: float | None = None
        self._beat_at: float | None = None
        self._ack_pending = False

    @property
    def deadline(self) -> float | None:
        """When :meth:`tick` has something to find, or None."""
        if self._hello_deadline is not None:
            return self._hello_deadline
        return self._beat_at

    def opened(self, now: float, timeout: float) -> None:
        """The transport is up: Hello, then a login, are due within ``timeout``."""
        self._hello_deadline = now + timeout

    def hello(self, data: Any) -> RemoteProtocolError | None:
        """Take Hello's ``d``; the problem with it, if any (then a fallback applies).

        A second Hello on one connection is refused and changes nothing.
        """
        if self.interval is not None:
            return RemoteProtocolError(
                "second Hello", expected="one Hello per connection", received=data
            )
        interval = data.get("heartbeat_interval") if type(data) is dict else None
        problem = None
        if type(interval) is not int or not 0 < interval <= MAX_HEARTBEAT_MS:
            problem = RemoteProtocolError(
                "Hello without a usable heartbeat interval",
                expected=f"d.heartbeat_interval in ms, from 1 to {MAX_HEARTBEAT_MS}",
                received=data,
            )
            interval = FALLBACK_HEARTBEAT_MS
        self.interval = interval / 1000
        return problem

    def logged_in(self, now: float) -> None:
        """Identify or Resume went out: the first beat is one interval away."""
        assert self.interval is not None, "log in only after Hello"
        self._hello_deadline = None
        self._beat_at = now + self.interval
        self._ack_pending = False

    def acked(self) -> None:
        self._ack_pending = False

    def tick(self, now: float) -> Tick:
        """What is due at ``now``; a ``BEAT`` found here counts as sent."""
        if self._hello_deadline is not None:
            if now < self._hello_deadline:
                return Tick.NOTHING
            return Tick.HELLO_LATE if self.interval is None else Tick.TOKEN_LATE
        if self._beat_at is None or now < self._beat_at:
            return Tick.NOTHING
        if self._ack_pending:
            return Tick.ACK_MISSED
        assert self.interval is not None
        self._ack_pending = True
        self._beat_at = now + self.interval
        return Tick.BEAT
