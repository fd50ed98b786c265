"""Faults the simulator can play on a bot: values first, so schedules can be data.

A :class:`Fault` is a frozen value; :meth:`QQSimulator.apply(fault, now)
<qqproto.testing.QQSimulator.apply>` plays it. Each one is also a scripting
method of the simulator (``Drop()`` is ``sim.drop(now)``), so a test can say
either; the values exist so that a schedule ``[(delay, fault), ...]`` can be
drawn by Hypothesis (:mod:`qqproto.testing.strategies`), printed, stored and
replayed. They live here, not beside the strategies, because Hypothesis is a
test-only dependency and these are not.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AskHeartbeat",
    "CloseWith",
    "Drop",
    "ExpireTokens",
    "Fault",
    "FaultSchedule",
    "GarbageFrame",
    "InvalidSession",
    "LoseAcks",
    "Push",
    "Reconnect",
]


class Fault:
    """Base class of every fault value. Don't subclass it outside qqproto."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Drop(Fault):
    """The TCP connection dies: no close frame, and output not yet written is lost."""


@dataclass(frozen=True, slots=True)
class Reconnect(Fault):
    """op 7: the server asks the client to reconnect and resume."""


@dataclass(frozen=True, slots=True)
class InvalidSession(Fault):
    """op 9; ``resumable=False`` also ends the session (the next Resume gets op 9 false)."""

    resumable: bool = False


@dataclass(frozen=True, slots=True)
class CloseWith(Fault):
    """The server closes the WebSocket with ``code`` (any code, 1000-4999)."""

    code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class LoseAcks(Fault):
    """The next ``count`` heartbeats get no op 11 ACK."""

    count: int = 1


@dataclass(frozen=True, slots=True)
class ExpireTokens(Fault):
    """Every access token issued so far stops working (REST 401, Identify 4004)."""


@dataclass(frozen=True, slots=True)
class GarbageFrame(Fault):
    """A text frame that is not a JSON payload, on every gateway connection."""

    text: str = "this is not JSON"


@dataclass(frozen=True, slots=True)
class AskHeartbeat(Fault):
    """op 1 from the server: the client must heartbeat at once."""


@dataclass(frozen=True, slots=True)
class Push(Fault):
    """A user message arrives: ``scene`` is "group", "c2c", "guild" or "dm"."""

    scene: str = "group"
    content: str = "hello"


#: What :func:`qqproto.testing.strategies.fault_schedules` draws: (delay in
#: seconds after the previous entry, fault).
FaultSchedule = list[tuple[float, Fault]]
