"""qqproto: a sans-IO protocol core for QQ bots.

The core consumes bytes and the current time and answers with actions; it
never opens a socket, reads a clock, sleeps or draws randomness on its own.
"""

from .actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    HttpRequest,
    Listen,
    SendData,
    StateChanged,
    StopListening,
)
from .backoff import Backoff
from .errors import (
    ConfigError,
    LocalProtocolError,
    MessageTooBig,
    ProtocolError,
    RemoteProtocolError,
    WebSocketHandshakeError,
)
from .ratelimit import RateLimiter
from .ttl import TTLMap

__version__ = "0.1.0.dev0"

__all__ = [
    "Action",
    "Backoff",
    "ConfigError",
    "Connect",
    "Deliver",
    "Disconnect",
    "Failed",
    "HttpRequest",
    "Listen",
    "LocalProtocolError",
    "MessageTooBig",
    "ProtocolError",
    "RateLimiter",
    "RemoteProtocolError",
    "SendData",
    "StateChanged",
    "StopListening",
    "TTLMap",
    "WebSocketHandshakeError",
    "__version__",
]
