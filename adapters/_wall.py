"""The wall clock a webhook checks timestamps against, kept right while a command runs.

The drivers' clock is monotonic, and a callback's timestamp is wall time;
the endpoint holds the difference (``QQWebhook.wall_offset``). An NTP step
(at boot, on a host without a real-time clock) or a suspend moves the wall
clock alone, and the difference taken at start would refuse every callback
after it as a replay. So the commands take it again every minute.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from qqproto.qq.webhook import QQWebhook

__all__ = ["REFRESH", "keep_wall_offset", "wall_offset"]

#: Seconds between two readings of the wall clock.
REFRESH = 60.0


def wall_offset() -> float:
    """Wall time minus the drivers' clock (asyncio's and the threads' are monotonic)."""
    return time.time() - time.monotonic()


async def keep_wall_offset(hook_of: Callable[[], QQWebhook | None], every: float = REFRESH) -> None:
    """Set the endpoint's ``wall_offset`` every ``every`` seconds, until cancelled."""
    while True:
        await asyncio.sleep(every)
        hook = hook_of()
        if hook is not None:
            hook.wall_offset = wall_offset()
