"""Gateway opcodes, intents, close codes, and the payloads the client sends.

Everything here is data or a pure function. The close-code table is the one
place that says what a close code means and what to do about it; the gateway
consults it and nothing else (spec section 4.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum, IntEnum, IntFlag
from typing import Any

__all__ = [
    "CLOSE_CODES",
    "CloseAction",
    "ClosePolicy",
    "Intents",
    "Opcode",
    "close_policy",
    "encode_heartbeat",
    "encode_identify",
    "encode_resume",
]


class Opcode(IntEnum):
    """Gateway opcodes (spec section 2). 3-5 and 8 are unused."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    RESUME = 6
    RECONNECT = 7
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11
    HTTP_CALLBACK_ACK = 12
    CALLBACK_VALIDATION = 13


class Intents(IntFlag):
    """Event subscriptions sent in Identify (spec section 5).

    Asking for an intent the bot has not been granted ends the session
    (op 9 before READY, or close 4013/4014).
    """

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_MESSAGES = 1 << 9  # private-domain bots only
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGE = 1 << 12
    OPEN_FORUMS_EVENT = 1 << 18
    AUDIO_OR_LIVE_CHANNEL_MEMBER = 1 << 19
    ENTER_AIO = 1 << 23
    GROUP_MEMBERS = 1 << 24
    GROUP_AND_C2C_EVENT = 1 << 25
    INTERACTION = 1 << 26
    MESSAGE_AUDIT = 1 << 27
    FORUMS_EVENT = 1 << 28  # private-domain bots only
    AUDIO_ACTION = 1 << 29
    PUBLIC_GUILD_MESSAGES = 1 << 30

    @classmethod
    def default(cls) -> Intents:
        """Group and C2C messages plus public guild @-messages."""
        return cls.GROUP_AND_C2C_EVENT | cls.PUBLIC_GUILD_MESSAGES


class CloseAction(Enum):
    """What the gateway does after the server closed with a given code."""

    RESUME = "reconnect and resume"
    RESUME_LATER = "wait, then reconnect and resume"
    REFRESH_TOKEN = "refresh the token, then reconnect and resume"
    IDENTIFY = "start a new session"
    FATAL = "stop"


@dataclass(frozen=True, slots=True)
class ClosePolicy:
    """One row of the close-code table."""

    code: int
    action: CloseAction
    meaning: str

    def describe(self) -> str:
        return f"close {self.code} ({self.meaning})"


_R, _L, _T, _I, _F = (
    CloseAction.RESUME,
    CloseAction.RESUME_LATER,
    CloseAction.REFRESH_TOKEN,
    CloseAction.IDENTIFY,
    CloseAction.FATAL,
)

#: Close code -> (action, meaning). Codes 4900-4913 are added below.
CLOSE_CODES: dict[int, tuple[CloseAction, str]] = {
    1000: (_R, "normal closure"),
    1001: (_R, "going away"),
    1006: (_R, "connection lost"),
    1011: (_R, "server error"),
    4000: (_R, "unknown error"),
    4001: (_F, "invalid opcode"),
    4002: (_F, "invalid payload"),
    4003: (_I, "not authenticated yet"),
    4004: (_T, "authentication failed"),
    4005: (_I, "already authenticated"),
    4006: (_I, "session no longer valid"),
    4007: (_I, "invalid seq on resume"),
    4008: (_L, "sending payloads too fast"),
    4009: (_R, "session timed out"),
    4010: (_F, "invalid shard"),
    4011: (_F, "too many guilds for one connection; shard properly"),
    4012: (_F, "invalid API version"),
    4013: (_F, "invalid intents"),
    4014: (_F, "intents not permitted"),
    4914: (_F, "bot is offline; only sandbox connections allowed"),
    4915: (_F, "bot is banned"),
}
for _code in range(4900, 4914):
    CLOSE_CODES[_code] = (_I, "internal server error")
CLOSE_CODES[4902] = (_I, "internal server error (reset by resume)")
del _code


def close_policy(code: int) -> ClosePolicy:
    """The row for ``code``; unknown codes resume (the gateway falls back to
    a new session after repeated failed resumes)."""
    action, meaning = CLOSE_CODES.get(code, (CloseAction.RESUME, "unknown close code"))
    return ClosePolicy(code, action, meaning)


# -- what the client sends ------------------------------------------------------
#
# Frames from the server are decoded by ``decode.EventDecoder``.

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode_identify(
    token: str,
    intents: int,
    shard: tuple[int, int],
    properties: dict[str, str] | None = None,
) -> str:
    data: dict[str, Any] = {
        "token": f"QQBot {token}",
        "intents": int(intents),
        "shard": [shard[0], shard[1]],
    }
    if properties:
        data["properties"] = properties
    return _dumps({"op": Opcode.IDENTIFY.value, "d": data})


def encode_resume(token: str, session_id: str, seq: int | None) -> str:
    data = {"token": f"QQBot {token}", "session_id": session_id, "seq": seq or 0}
    return _dumps({"op": Opcode.RESUME.value, "d": data})


def encode_heartbeat(seq: int | None) -> str:
    return _dumps({"op": Opcode.HEARTBEAT.value, "d": seq})
