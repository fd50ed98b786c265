"""The bot's phases and the access token's lifecycle, as tables.

Both are built with :mod:`qqproto.machine`, as the gateway's lifecycle is
(``lifecycle.py``): the rows below are every way they move, and
``docs/states.md`` draws them. :class:`~qqproto.qq.bot.BotProtocol` fires the
bot's inputs; :class:`~qqproto.qq.auth.TokenManager` the token's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from ..machine import Guard, Row, Table

__all__ = [
    "BOT_TABLE",
    "TOKEN_TABLE",
    "BotInput",
    "BotPhase",
    "TokenFailure",
    "TokenInput",
    "TokenPhase",
]


class BotPhase(Enum):
    AUTHENTICATING = "authenticating"
    DISCOVERING = "discovering the gateway"
    RUNNING = "running"
    FAILED = "failed"
    CLOSED = "closed"


class BotInput(Enum):
    TOKEN = "token"  # the first access token came
    GATEWAY = "gateway"  # a gateway was started (found, configured, or saved)
    SERVING = "serving"  # webhook mode: the first token came, and there is no gateway
    FAIL = "fail"  # the bot gave up (its token, its gateway, or discovery)
    CLOSE = "close"  # the application closed the bot


B = BotPhase
_BOT_LIVE: Final = (B.AUTHENTICATING, B.DISCOVERING, B.RUNNING)

#: The bot's phases. A bot told its gateway URL (or given a saved session)
#: skips discovery; one on callbacks alone (no gateway) runs once it has a token.
BOT_TABLE: Final[Table[BotPhase, BotInput, None]] = Table(
    "bot",
    BotPhase,
    (
        Row(BotInput.TOKEN, (B.AUTHENTICATING,), B.DISCOVERING),
        Row(BotInput.GATEWAY, (B.AUTHENTICATING, B.DISCOVERING), B.RUNNING),
        Row(BotInput.SERVING, (B.AUTHENTICATING,), B.RUNNING),
        Row(BotInput.FAIL, _BOT_LIVE, B.FAILED),
        Row(BotInput.CLOSE, _BOT_LIVE, B.CLOSED),
    ),
    starts={B.AUTHENTICATING: ""},
)


class TokenPhase(Enum):
    IDLE = "idle"  # a token is held (or none was asked for yet)
    FETCHING = "fetching"  # a request is out
    WAITING = "waiting to retry"  # the last one failed; a retry is scheduled
    FAILED = "failed"  # given up for good


class TokenInput(Enum):
    FETCH = "fetch"  # a token was asked for, or a refresh or retry is due
    ANSWER = "answer"  # the endpoint gave a token
    ERROR = "error"  # the request failed, or its answer was no token


@dataclass(frozen=True, slots=True)
class TokenFailure:
    """What the condition of a failed fetch reads."""

    #: The error says retrying cannot help (a wrong secret, say).
    final: bool
    #: That fetch was the last the attempt budget allows.
    attempts_spent: bool


GIVE_UP: Final[Guard[TokenFailure]] = Guard(
    "final error or attempts spent", lambda f: f.final or f.attempts_spent
)

T = TokenPhase

#: The access token's lifecycle.
TOKEN_TABLE: Final[Table[TokenPhase, TokenInput, TokenFailure]] = Table(
    "token",
    TokenPhase,
    (
        Row(TokenInput.FETCH, (T.IDLE, T.WAITING), T.FETCHING),
        Row(TokenInput.ANSWER, (T.FETCHING,), T.IDLE),
        Row(TokenInput.ERROR, (T.FETCHING,), T.FAILED, GIVE_UP),
        Row(TokenInput.ERROR, (T.FETCHING,), T.WAITING),
    ),
    starts={T.IDLE: ""},
)
