"""What the two QQ bots share: how they are made, and how their values are routed.

:class:`QQBotSetup` is the constructor and the state both
:class:`~.bot.QQBot` and :class:`~.threaded_bot.ThreadedQQBot` have; they
differ only in the machinery underneath (``_bot_async``, ``_bot_threaded``).
"""

from __future__ import annotations

import dataclasses
import os
import random
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from qqproto.actions import StateChanged
from qqproto.qq import (
    ApiResult,
    BotConfig,
    BotPhase,
    BotProtocol,
    Dispatch,
    Intents,
    InteractionCreate,
    Message,
)

from ._bot import ConfiguredBot, Routing, no_driver_options_in
from ._wall import wall_offset

__all__ = ["QQ_ROUTING", "QQBotSetup", "make_config"]

#: Where a message that failed typed decoding names its sender, by type: the
#: author field its scene uses (what ``Message.sender`` would have said).
_RAW_SENDER = {
    "GROUP_AT_MESSAGE_CREATE": "member_openid",
    "GROUP_MESSAGE_CREATE": "member_openid",
    "C2C_MESSAGE_CREATE": "user_openid",
    "AT_MESSAGE_CREATE": "id",
    "MESSAGE_CREATE": "id",
    "DIRECT_MESSAGE_CREATE": "id",
}


def _call_id(value: object) -> int | None:
    return value.request_id if isinstance(value, ApiResult) else None


def _from_someone(value: object) -> bool:
    """A message, a button press, or a message event that failed typed decoding."""
    return isinstance(value, Message | InteractionCreate) or (
        isinstance(value, Dispatch) and value.type in _RAW_SENDER
    )


def _sender(value: object) -> str | None:
    """The sender of a message or a button press; None when it cannot be told."""
    if isinstance(value, Message):
        return value.sender
    if isinstance(value, InteractionCreate):
        resolved = value.data.resolved if value.data else None
        guild_user = resolved.user_id if resolved else None  # chat_type 0 (guild)
        return value.group_member_openid or value.user_openid or guild_user
    if isinstance(value, Dispatch) and value.type in _RAW_SENDER:  # it failed to decode
        author = value.data.get("author") if isinstance(value.data, dict) else None
        sender = author.get(_RAW_SENDER[value.type]) if isinstance(author, dict) else None
        return sender if isinstance(sender, str) else None
    return None


def _empty(value: object) -> bool:
    return isinstance(value, Message) and value.empty


QQ_ROUTING = Routing(call_id=_call_id, from_someone=_from_someone, sender=_sender, empty=_empty)


def make_config(
    app_id: str, secret: str, intents: Intents | int | None, options: dict[str, Any]
) -> BotConfig:
    """A BotConfig for a real network: OS-seeded jitter and masking keys."""
    no_driver_options_in(options)
    if intents is None:
        intents = Intents.default()
    options.setdefault("rng", random.Random())
    options.setdefault("entropy", os.urandom)
    return BotConfig(app_id, secret, intents=intents, **options)


class QQBotSetup(ConfiguredBot[BotConfig, BotProtocol, Any]):
    """A QQ bot's constructor and state, whatever drives it.

    ``options`` are :class:`~qqproto.qq.BotConfig` fields (``api_base``,
    ``token_url``, ``gateway_url``, ``shard``, ``max_attempts``, ...).
    ``allow_from`` holds sender ids (``Message.sender``); messages and button
    presses from anyone else never reach the application. ``on_state``,
    ``driver_options`` and ``ssl_context`` are :class:`~._bot.BotBase`'s.
    """

    routing = QQ_ROUTING

    def __init__(
        self,
        app_id: str,
        secret: str,
        *,
        intents: Intents | int | None = None,
        allow_from: Iterable[str] | None = None,
        on_state: Callable[[StateChanged], None] | None = None,
        driver_options: Mapping[str, Any] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        config = make_config(app_id, secret, intents, options)
        self._made(config, allow_from, on_state, driver_options, ssl_context)

    def _protocol(self, config: BotConfig) -> BotProtocol:
        hook = config.webhook
        if hook is not None and hook.wall_offset is None:  # the drivers' clock is monotonic
            hook = dataclasses.replace(hook, wall_offset=wall_offset())
            self.config = config = dataclasses.replace(config, webhook=hook)
        return BotProtocol(config)

    @property
    def state(self) -> BotPhase:
        """AUTHENTICATING, DISCOVERING, RUNNING, FAILED or CLOSED."""
        return self.protocol.phase
