"""The QQ Official Bot Platform API v2: the gateway session and its pieces."""

from .events import Dispatch, ProtocolViolation
from .gateway import DEFAULT_GATEWAY_URL, GatewayConfig, GatewayProtocol, Link, Session
from .lifecycle import GatewayState
from .payloads import CloseAction, ClosePolicy, Intents, Opcode, close_policy

__all__ = [
    "DEFAULT_GATEWAY_URL",
    "CloseAction",
    "ClosePolicy",
    "Dispatch",
    "GatewayConfig",
    "GatewayProtocol",
    "GatewayState",
    "Intents",
    "Link",
    "Opcode",
    "ProtocolViolation",
    "Session",
    "close_policy",
]
