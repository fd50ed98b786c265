"""What a sans-IO server object (a simulator) offers the code that serves it.

:class:`~qqproto.testing.QQSimulator` and
:class:`~qqproto.testing.OneBotSimulator` both have this shape, so one
helper serves either: :class:`~qqproto.testing.MemoryNetwork` in memory,
:class:`~qqproto.adapters.serve.SimulatorServer` (and its threaded twin) on
real sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

__all__ = ["ServedConnection", "ServedSimulator"]


class ServedConnection(Protocol):
    """The server end of one transport: bytes in, bytes out; once ``closed``,
    write the last output and close the socket."""

    @property
    def closed(self) -> bool: ...
    def receive_data(self, data: bytes, now: float) -> None: ...
    def data_to_send(self) -> bytes: ...
    def connection_lost(self, now: float) -> None: ...


class ServedSimulator(Protocol):
    """A server: one :class:`ServedConnection` per accepted transport, timers,
    and ``wakeup`` (set by the helper) for bytes its scripting left to write."""

    wakeup: Callable[[], None] | None

    def accept(self, now: float) -> ServedConnection: ...
    def next_deadline(self) -> float | None: ...
    def handle_timer(self, now: float) -> None: ...
