"""ThreadedQQBot: QQBot for programs without an event loop.

::

    with ThreadedQQBot(app_id, secret) as bot:
        for event in bot.events():
            if isinstance(event, GroupAtMessageCreate):
                bot.reply(event, "hi")

or ``@bot.on(GroupAtMessageCreate)`` handlers and ``bot.run_forever()`` (until
``stop()``, Ctrl-C, SIGTERM or failure). Every method is thread-safe; ``reply``
and ``call`` block for the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qqproto.qq import ApiCall, ApiResult, BotProtocol

from ._bot_threaded import ThreadedBotBase
from ._qq_bot import QQBotSetup

__all__ = ["ThreadedQQBot"]


class ThreadedQQBot(QQBotSetup, ThreadedBotBase[BotProtocol]):
    """One bot on the QQ platform, driven by threads; made as :class:`QQBot` is."""

    def reply(
        self,
        event: object,
        text: str,
        *,
        markdown: str | Mapping[str, Any] | None = None,
        media_file_info: str | None = None,
        msg_seq: int | None = None,
        timeout: float | None = 60.0,
    ) -> ApiResult[Any]:
        """A passive reply; blocks for its :class:`ApiResult` (TimeoutError after
        ``timeout``). ``msg_seq``: one a counter shared by several workers handed out."""
        result: ApiResult[Any] = self._wait(
            lambda now: self.protocol.reply(
                event,
                text,
                now,
                markdown=markdown,
                media_file_info=media_file_info,
                msg_seq=msg_seq,
            ),
            timeout,
        )
        return result

    def call(self, api_call: ApiCall[Any], timeout: float | None = 60.0) -> ApiResult[Any]:
        result: ApiResult[Any] = self._wait(lambda now: self.protocol.call(api_call, now), timeout)
        return result

    def identify_allowed(self, shard_id: int) -> None:
        """With ``external_gate``: the shared gate lets shard ``shard_id`` Identify."""
        self.start()
        self.driver.call(lambda now: self.protocol.identify_allowed(shard_id, now))

    def inbound(self, event: object) -> bool:
        """Register an event that came another way (a worker's stream), so that
        :meth:`reply` can answer it; False when the bot had it already."""
        self.start()
        fresh: bool = self.driver.call(lambda now: self.protocol.inbound(event, now))
        return fresh
