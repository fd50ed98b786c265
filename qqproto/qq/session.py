"""What a gateway session is given and what it gives back, as plain values.

:class:`GatewayConfig` is how to run one session (validated when made);
:class:`Session` what it takes to resume one, to store between runs;
:class:`TokenWanted` what a gateway delivers when it needs an access token.
The protocol that uses them is :mod:`qqproto.qq.gateway`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..ws import DEFAULT_MAX_MESSAGE_SIZE, Entropy
from .payloads import Intents

__all__ = ["DEFAULT_GATEWAY_URL", "GatewayConfig", "Session", "TokenWanted"]

DEFAULT_GATEWAY_URL = "wss://api.sgroup.qq.com/websocket/"


@dataclass(frozen=True, slots=True)
class TokenWanted:
    """Delivered when the gateway needs an access token: answer with
    :meth:`GatewayProtocol.token_received`. ``stale`` says the server refused
    the last one (close 4004, or a dropped session): hand over a new token,
    not the same one again. :class:`~qqproto.qq.BotProtocol` answers it
    itself; a bare gateway's application does."""

    reason: str
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Session:
    """What it takes to resume a session, as a plain value.

    Export it with ``GatewayProtocol.session`` (``to_dict`` gives JSON-ready
    data), store it, and pass it to a new ``GatewayProtocol`` to resume after
    a restart. ``bot_id`` is READY's ``user.id``, so that guild messages of
    the resumed session still lose their mention of the bot; data saved
    without it is read as None.
    """

    session_id: str
    seq: int | None
    shard: tuple[int, int]
    gateway_url: str
    bot_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "seq": self.seq,
            "shard": [self.shard[0], self.shard[1]],
            "gateway_url": self.gateway_url,
            "bot_id": self.bot_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        session_id = data.get("session_id")
        if type(session_id) is not str or not session_id:
            raise ConfigError("session.session_id", "a non-empty string", session_id)
        seq = data.get("seq")
        if seq is not None and (type(seq) is not int or seq < 0):
            raise ConfigError("session.seq", "null or an integer >= 0", seq)
        shard = data.get("shard")
        if (
            not isinstance(shard, list | tuple)
            or len(shard) != 2
            or not all(type(n) is int for n in shard)
        ):
            raise ConfigError("session.shard", "[shard_id, shard_count]", shard)
        url = data.get("gateway_url")
        if type(url) is not str or not url:
            raise ConfigError("session.gateway_url", "a ws:// or wss:// URL", url)
        bot_id = data.get("bot_id")
        if bot_id is not None and (type(bot_id) is not str or not bot_id):
            raise ConfigError("session.bot_id", "null or a non-empty string", bot_id)
        return cls(session_id, seq, (shard[0], shard[1]), url, bot_id)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """How to run one gateway session. Validated on construction."""

    app_id: str
    intents: Intents | int = field(default_factory=Intents.default)
    shard: tuple[int, int] = (0, 1)
    gateway_url: str = DEFAULT_GATEWAY_URL
    #: Consecutive connection attempts that may fail to reach READY/RESUMED.
    max_attempts: int = 30
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    #: Seconds from connection_made until Hello and a login must have happened.
    hello_timeout: float = 30.0
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Sent as Identify's ``properties`` when given (the server ignores them).
    properties: Mapping[str, str] | None = None
    #: Jitter comes from ``rng`` when given, else from ``random.Random(seed)``.
    #: Drivers pass an OS-seeded ``random.Random()``; tests pass a seed.
    seed: int = 0
    rng: random.Random | None = field(default=None, compare=False, repr=False)
    #: WebSocket masking keys and handshake nonces: ``os.urandom`` in drivers;
    #: when None, bytes from the jitter RNG, so runs are reproducible.
    entropy: Entropy | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if type(self.app_id) is not str or not self.app_id:
            raise ConfigError("app_id", "a non-empty string", self.app_id)
        intents = int(self.intents)
        if not 0 <= intents < 1 << 31:
            raise ConfigError("intents", "a bit mask from 0 to 2**31 - 1", self.intents)
        shard = self.shard
        if not (
            isinstance(shard, tuple)
            and len(shard) == 2
            and all(type(n) is int for n in shard)
            and 0 <= shard[0] < shard[1]
        ):
            raise ConfigError("shard", "(shard_id, shard_count) with 0 <= id < count", shard)
        if not self.gateway_url.startswith(("ws://", "wss://")):
            raise ConfigError("gateway_url", "a ws:// or wss:// URL", self.gateway_url)
        if self.max_attempts < 1:
            raise ConfigError("max_attempts", "an integer >= 1", self.max_attempts)
        # Backoff would refuse these too, but only once a protocol object is built.
        if not self.backoff_base > 0:
            raise ConfigError("backoff_base", "a positive number of seconds", self.backoff_base)
        if not self.backoff_cap >= self.backoff_base:
            raise ConfigError(
                "backoff_cap",
                f"a number of seconds >= backoff_base ({self.backoff_base})",
                self.backoff_cap,
            )
        if not self.hello_timeout > 0:
            raise ConfigError("hello_timeout", "a positive number of seconds", self.hello_timeout)
