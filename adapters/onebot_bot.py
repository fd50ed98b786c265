"""OneBotBot and ThreadedOneBotBot: a bot on a OneBot implementation (NapCat, Lagrange, v12).

They mirror :class:`~.bot.QQBot` and :class:`~.threaded_bot.ThreadedQQBot`:
the same ``events()``, ``run()``/``run_forever()``, ``@bot.on(...)`` handlers,
``allow_from`` and ``on_state``, over a :class:`~qqproto.onebot.OneBotProtocol`
(the forward WebSocket)::

    async with OneBotBot("ws://127.0.0.1:3001/", access_token="...") as bot:
        async for event in bot.events():
            if isinstance(event, MessageEvent) and to_me(event, bot.self_id):
                await bot.reply(event, "hi")

Talking back: :meth:`~OneBotBot.reply` answers in the chat an event came
from, :meth:`~OneBotBot.send` writes to any chat, :meth:`~OneBotBot.call`
runs any action by name (``set_msg_emoji_like``, ``send_poke``, ...). Each
gives the :class:`~qqproto.onebot.ActionResult`: its ``answer`` when one
came (``answer.result()`` raises :class:`~qqproto.onebot.ActionFailed` for a
failure), else the ``error`` that says why none did. A send whose answer did
not come may still have been delivered: it is never sent again by itself.
"""

from __future__ import annotations

import os
import random
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from qqproto.actions import StateChanged
from qqproto.errors import LocalProtocolError
from qqproto.onebot import (
    Action,
    ActionResult,
    Chat,
    MessageEvent,
    OneBotConfig,
    OneBotProtocol,
    OneBotState,
    Segment,
    reply_to,
    send_message,
)
from qqproto.onebot.actions import Version

from ._bot import ConfiguredBot, Routing, no_driver_options_in
from ._bot_async import AsyncBotBase
from ._bot_threaded import ThreadedBotBase

__all__ = ["ONEBOT_ROUTING", "OneBotBot", "ThreadedOneBotBot"]

Message = Iterable[Segment] | str


def _call_id(value: object) -> int | None:
    return value.call_id if isinstance(value, ActionResult) else None


def _from_someone(value: object) -> bool:
    return isinstance(value, MessageEvent)


def _sender(value: object) -> str | None:
    user = value.user_id if isinstance(value, MessageEvent) else None
    return None if user is None else str(user)


def _empty(value: object) -> bool:
    """A message with nothing but mentions and blank text (a bare "@bot")."""
    if not isinstance(value, MessageEvent):
        return False
    return all(
        s.type in ("mention", "mention_all")
        or (s.type == "text" and not str(s.data.get("text", "")).strip())
        for s in value.segments
    )


ONEBOT_ROUTING = Routing(call_id=_call_id, from_someone=_from_someone, sender=_sender, empty=_empty)


class _OneBotSetup(ConfiguredBot[OneBotConfig, OneBotProtocol, Any]):
    """A OneBot bot's constructor and state, whatever drives it.

    ``options`` are :class:`~qqproto.onebot.OneBotConfig` fields
    (``call_timeout``, ``max_attempts``, ``heartbeat_factor``, ...).
    ``allow_from`` holds user ids (as strings); messages from anyone else
    never reach the application.
    """

    routing = ONEBOT_ROUTING

    def __init__(
        self,
        url: str,
        *,
        access_token: str | None = None,
        protocol: Literal["auto", "v11", "v12"] = "auto",
        api_url: str | None = None,
        allow_from: Iterable[str] | None = None,
        on_state: Callable[[StateChanged], None] | None = None,
        driver_options: Mapping[str, Any] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        no_driver_options_in(options)
        options.setdefault("rng", random.Random())
        options.setdefault("entropy", os.urandom)
        config = OneBotConfig(
            url, access_token=access_token, protocol=protocol, api_url=api_url, **options
        )
        self._made(config, allow_from, on_state, driver_options, ssl_context)

    def _protocol(self, config: OneBotConfig) -> OneBotProtocol:
        return OneBotProtocol(config)

    @property
    def state(self) -> OneBotState:
        """CONNECTING, CONNECTED, FAILED or CLOSED."""
        return self.protocol.state

    @property
    def self_id(self) -> int | str | None:
        """The bot's own id, once an event said it."""
        return self.protocol.self_id

    @property
    def version(self) -> Version | None:
        """11 or 12 once known (configured, or told by the first frames)."""
        version = self.protocol.version
        return 11 if version == 11 else 12 if version == 12 else None

    def _send_action(self, chat: Chat, message: Message) -> Action:
        version = self.version
        if version is None:  # auto, and no frame came yet: the dialect is unknown
            raise LocalProtocolError(
                "the OneBot version is not known yet",
                expected="an event first, or protocol='v11'/'v12'",
                received="no frame yet",
            )
        return send_message(chat, message, version)


def _action(action: Action | str, params: Mapping[str, Any] | None) -> Action:
    if isinstance(action, Action):
        if params is not None:
            raise TypeError("params go in the Action, or with an action name: not both")
        return action
    return Action(action, dict(params or {}))


class OneBotBot(_OneBotSetup, AsyncBotBase[OneBotProtocol]):
    """A OneBot bot driven by asyncio; see the module docstring."""

    async def reply(
        self, event: MessageEvent, message: Message, *, quote: bool = False
    ) -> ActionResult:
        """Answer in the chat ``event`` came from (``quote``: as a reply to it)."""
        action = reply_to(event, message, quote=quote)
        return await self.call(action)

    async def send(self, chat: Chat, message: Message) -> ActionResult:
        """Send ``message`` (text, or segments) to ``chat``."""
        return await self.call(self._send_action(chat, message))

    async def call(
        self, action: Action | str, params: Mapping[str, Any] | None = None
    ) -> ActionResult:
        """Run an action, typed or by name with its params; its :class:`ActionResult`."""
        wanted = _action(action, params)
        result: ActionResult = await self._await(lambda now: self.protocol.call(wanted, now))
        return result


class ThreadedOneBotBot(_OneBotSetup, ThreadedBotBase[OneBotProtocol]):
    """A OneBot bot driven by threads; made as :class:`OneBotBot` is, and its
    calls block (``TimeoutError`` after ``timeout`` seconds)."""

    def reply(
        self,
        event: MessageEvent,
        message: Message,
        *,
        quote: bool = False,
        timeout: float | None = 60.0,
    ) -> ActionResult:
        """Answer in the chat ``event`` came from (``quote``: as a reply to it)."""
        return self.call(reply_to(event, message, quote=quote), timeout=timeout)

    def send(self, chat: Chat, message: Message, *, timeout: float | None = 60.0) -> ActionResult:
        """Send ``message`` (text, or segments) to ``chat``."""
        return self.call(self._send_action(chat, message), timeout=timeout)

    def call(
        self,
        action: Action | str,
        params: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = 60.0,
    ) -> ActionResult:
        """Run an action, typed or by name with its params; its :class:`ActionResult`."""
        wanted = _action(action, params)
        result: ActionResult = self._wait(lambda now: self.protocol.call(wanted, now), timeout)
        return result
