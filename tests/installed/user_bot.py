"""A bot author's script, type-checked with ``mypy --strict`` after the README's
install (``make install-check``): the installed package must be found, typed."""

from __future__ import annotations

import asyncio

from qqproto.adapters import QQBot, ThreadedQQBot
from qqproto.adapters.asyncio import AsyncioDriver
from qqproto.qq import GatewayConfig, GatewayProtocol, GroupAtMessageCreate


async def echo(bot: QQBot) -> None:
    async for event in bot.events():
        if isinstance(event, GroupAtMessageCreate):
            result = await bot.reply(event, event.text)
            if not result.ok:
                print(result.error)


def drivers() -> tuple[AsyncioDriver, type[ThreadedQQBot]]:
    gateway = GatewayProtocol(GatewayConfig("102000000"))
    return AsyncioDriver(gateway, on_event=print), ThreadedQQBot


if __name__ == "__main__":
    asyncio.run(echo(QQBot("102000000", "secret")))
