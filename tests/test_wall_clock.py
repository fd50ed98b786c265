"""The serve commands keep the webhook's wall clock right while they run."""

from __future__ import annotations

import asyncio
import time

from qqproto.adapters._wall import keep_wall_offset, wall_offset
from qqproto.qq.webhook import QQWebhook, WebhookConfig


def test_the_offset_is_taken_again_while_the_command_runs() -> None:
    hook = QQWebhook(WebhookConfig("1", "secret-secret", port=0, wall_offset=-1e9))  # a stale one

    async def main() -> None:
        keeper = asyncio.create_task(keep_wall_offset(lambda: hook, every=0.01))
        deadline = time.monotonic() + 10.0
        while hook.wall_offset == -1e9:
            assert time.monotonic() < deadline, "the offset was never taken again"
            await asyncio.sleep(0.01)
        keeper.cancel()

    asyncio.run(main())
    assert abs(hook.wall_offset - wall_offset()) < 5.0
