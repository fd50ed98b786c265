"""How to run a bot, and one gateway session: every value checked when made.

:class:`BotConfig` is what :class:`~qqproto.qq.bot.BotProtocol` needs (the
credentials, the intents and shard, the endpoints, the backoff and the reply
policies); :class:`GatewayConfig` is what one
:class:`~qqproto.qq.gateway.GatewayProtocol` needs, and a bot builds one for
its gateway from its own. A bad value raises :class:`ConfigError` here,
before any protocol runs, naming the field, what it allows and what came.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ConfigError
from ..url import BadUrl, Url
from ..ws import DEFAULT_MAX_MESSAGE_SIZE, Entropy
from .api import PRODUCTION_BASE_URL, SANDBOX_BASE_URL, ApiConfig
from .auth import DEFAULT_TOKEN_URL, AuthConfig
from .payloads import Intents
from .reply_rules import ReplyPolicy
from .scenes import Scene
from .webhook import WebhookConfig

__all__ = ["DEFAULT_GATEWAY_URL", "BotConfig", "GatewayConfig"]

DEFAULT_GATEWAY_URL = "wss://api.sgroup.qq.com/websocket/"


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
    #: Ask before each Identify (``Deliver(IdentifyWanted)``) and wait for
    #: ``identify_allowed``: shards pace their Identifies through a gate
    #: (``qqproto.qq.shards``). A Resume never asks.
    gated: bool = False

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
        try:
            Url.parse(self.gateway_url, ("ws", "wss"))
        except BadUrl as bad:  # the part at fault is in the cause
            raise ConfigError("gateway_url", "a ws:// or wss:// URL", self.gateway_url) from bad
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


@dataclass(frozen=True, slots=True)
class BotConfig:
    """Everything a bot needs. ``secret`` never shows in a repr."""

    app_id: str
    secret: str = field(repr=False)
    intents: Intents | int = field(default_factory=Intents.default)
    shard: tuple[int, int] = (0, 1)
    api_base: str = PRODUCTION_BASE_URL
    token_url: str = DEFAULT_TOKEN_URL
    #: Skip discovery and connect here (a custom or test endpoint).
    gateway_url: str | None = None
    max_attempts: int = 30
    #: Reconnect and discovery backoff: the first wait and the longest (seconds).
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    seed: int = 0
    rng: random.Random | None = field(default=None, compare=False, repr=False)
    entropy: Entropy | None = field(default=None, compare=False, repr=False)
    #: Passive-reply windows and budgets by scene, over ``reply_rules.DEFAULT_POLICIES``.
    reply_policies: Mapping[Scene, ReplyPolicy] | None = field(default=None, compare=False)
    #: How long an inbound id is remembered to drop its redeliveries.
    dedup_ttl: float = 600.0
    #: Serve the platform's callbacks too (webhook mode, ``qqproto.qq.webhook``).
    webhook: WebhookConfig | None = None
    #: Run the WebSocket gateway; False for a bot on callbacks alone, or (with
    #: no webhook either) one that only calls and replies: a worker, whose
    #: events come another way (``BotProtocol.inbound``).
    gateway: bool = True
    #: Run several shards: how many, or ``"auto"`` for the count ``/gateway/bot``
    #: recommends (None: the one shard ``shard`` names).
    shards: int | Literal["auto"] | None = None
    #: Which of those shards this process runs (None: all of them).
    shard_ids: range | None = None
    #: Identifies wait for a gate outside this object (the same gate across
    #: processes): ``Deliver(IdentifyWanted)`` goes to the application, which
    #: answers with ``BotProtocol.identify_allowed``. False: the bot's own gate.
    external_gate: bool = False
    #: The platform's identify window (5 s): ``max_concurrency`` Identifies per
    #: window. Shorter only against a simulator told the same (tests).
    identify_window: float = 5.0

    @classmethod
    def sandbox(cls, app_id: str, secret: str, **kwargs: Any) -> BotConfig:
        return cls(app_id, secret, api_base=SANDBOX_BASE_URL, **kwargs)

    def __post_init__(self) -> None:
        # The pieces validate their own parts; fail here, before anything runs.
        if self.webhook is not None and self.webhook.app_id != self.app_id:
            raise ConfigError("webhook", f"the callbacks of app {self.app_id}", self.webhook.app_id)
        shards = self.shards
        if shards is not None and shards != "auto" and (type(shards) is not int or shards < 1):
            raise ConfigError("shards", 'a count of at least 1, or "auto"', shards)
        ids = self.shard_ids
        if ids is not None:
            if shards is None or not isinstance(ids, range) or len(ids) == 0 or ids.start < 0:
                raise ConfigError("shard_ids", "a non-empty range of the shards", ids)
            if type(shards) is int and ids.stop > shards:
                raise ConfigError("shard_ids", f"a part of 0..{shards - 1}", ids)
        if not self.identify_window > 0:
            raise ConfigError(
                "identify_window", "a positive number of seconds", self.identify_window
            )
        if shards == "auto" and self.gateway_url is not None:
            raise ConfigError("shards", "a count: with gateway_url there is no discovery", shards)
        AuthConfig(self.app_id, self.secret, self.token_url, self.max_attempts)
        ApiConfig(self.app_id, self.api_base)
        GatewayConfig(
            self.app_id,
            self.intents,
            self.shard,
            self.gateway_url or "wss://x/",
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
        )
