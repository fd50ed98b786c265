"""QQBot: a QQ bot on asyncio, as an async iterator of events or with handlers.

::

    async with QQBot(app_id, secret, intents=Intents.default()) as bot:
        async for event in bot.events():
            if isinstance(event, GroupAtMessageCreate):
                await bot.reply(event, "hi")

or, with handlers::

    bot = QQBot(app_id, secret)

    @bot.on(GroupAtMessageCreate)
    async def hello(event: GroupAtMessageCreate) -> None:
        await bot.reply(event, "hi")

    bot.run_forever()  # until Ctrl-C, SIGTERM or the bot gives up

A ``BotProtocol`` does the work; :class:`~qqproto.adapters.asyncio.AsyncioDriver`
carries it out. When the bot gives up (wrong secret, the attempt cap, a fatal
close code), ``events()`` and ``run()`` raise :class:`DriverFailed` with the
reason, after the events that came before.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qqproto.qq import ApiCall, ApiResult, BotProtocol

from ._bot_async import AsyncBotBase
from ._qq_bot import QQBotSetup

__all__ = ["QQBot"]


class QQBot(QQBotSetup, AsyncBotBase[BotProtocol]):
    """One bot on the QQ platform, driven by asyncio.

    The keywords (``intents``, ``allow_from``, ``on_state``, ``driver_options``,
    ``ssl_context`` and :class:`~qqproto.qq.BotConfig` fields) are
    :class:`~._qq_bot.QQBotSetup`'s; so is :meth:`from_config`. ``events()``,
    ``run()``, ``run_forever()`` and ``async with`` are
    :class:`~._bot_async.AsyncBotBase`'s.
    """

    async def reply(
        self,
        event: object,
        text: str,
        *,
        markdown: str | Mapping[str, Any] | None = None,
        media_file_info: str | None = None,
        msg_seq: int | None = None,
    ) -> ApiResult[Any]:
        """A passive reply to ``event``; its :class:`ApiResult` when the call is done.

        ``ReplyRefused`` raises at once when the platform would refuse it.
        ``msg_seq``: one a counter shared by several workers handed out.
        """
        result: ApiResult[Any] = await self._await(
            lambda now: self.protocol.reply(
                event,
                text,
                now,
                markdown=markdown,
                media_file_info=media_file_info,
                msg_seq=msg_seq,
            )
        )
        return result

    async def identify_allowed(self, shard_id: int) -> None:
        """With ``external_gate``: the shared gate lets shard ``shard_id`` Identify."""
        await self.start()
        self.driver.call(lambda now: self.protocol.identify_allowed(shard_id, now))

    async def inbound(self, event: object) -> bool:
        """Register an event that came another way (a worker's stream), so that
        :meth:`reply` can answer it; False when the bot had it already."""
        await self.start()
        fresh: bool = self.driver.call(lambda now: self.protocol.inbound(event, now))
        return fresh

    async def call(self, api_call: ApiCall[Any]) -> ApiResult[Any]:
        """Run a REST call (``qqproto.qq.api``); its :class:`ApiResult`."""
        result: ApiResult[Any] = await self._await(lambda now: self.protocol.call(api_call, now))
        return result
