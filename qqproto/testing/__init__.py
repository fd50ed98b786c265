"""Tools for testing code that embeds qqproto (shipped, sans-IO, typed).

- :class:`QQSimulator`: the QQ platform's server side (token endpoint, REST,
  gateway), with scripted users and faults; see ``docs/testing.md``.
- :class:`MemoryNetwork`: runs a bot against the simulator in memory, on a
  fake clock.
- :mod:`qqproto.testing.faults`: faults as values; Hypothesis strategies for
  them live in :mod:`qqproto.testing.strategies` (import it only where
  Hypothesis is installed: the ``qqproto[testing]`` extra).
- :class:`FakeServer`: the server end of one gateway WebSocket, by hand.
- :class:`OneBotSimulator`: a OneBot implementation's side (v11 or v12,
  NapCat's and Lagrange's quirks switchable), served the same ways.
"""

from ._ob_state import NO_ECHO, OneBotSimConfig, SimCall, SimMessage
from ._sim_common import (
    Heartbeat,
    SimDelivered,
    SimIdentify,
    SimLost,
    SimRejected,
    SimResume,
    SimSent,
    SimulatorConfig,
)
from ._sim_http import SimConnection
from ._sim_rest import BAD_REQUEST
from ._sim_state import SimState
from .faults import (
    AskHeartbeat,
    CloseWith,
    Drop,
    ExpireTokens,
    Fault,
    FaultSchedule,
    GarbageFrame,
    InvalidSession,
    LoseAcks,
    Push,
    Reconnect,
)
from .memory import HttpLatency, MemoryNetwork
from .onebot_simulator import OneBotSimulator
from .served import ServedConnection, ServedSimulator
from .simulator import QQSimulator
from .wire import FakeServer

__all__ = [
    "BAD_REQUEST",
    "NO_ECHO",
    "AskHeartbeat",
    "CloseWith",
    "Drop",
    "ExpireTokens",
    "FakeServer",
    "Fault",
    "FaultSchedule",
    "GarbageFrame",
    "Heartbeat",
    "HttpLatency",
    "InvalidSession",
    "LoseAcks",
    "MemoryNetwork",
    "OneBotSimConfig",
    "OneBotSimulator",
    "Push",
    "QQSimulator",
    "Reconnect",
    "ServedConnection",
    "ServedSimulator",
    "SimCall",
    "SimConnection",
    "SimDelivered",
    "SimIdentify",
    "SimLost",
    "SimMessage",
    "SimRejected",
    "SimResume",
    "SimSent",
    "SimState",
    "SimulatorConfig",
]
