"""I/O drivers for qqproto's protocol objects (installed as ``qqproto.adapters``).

- :class:`QQBot`, a QQ bot on asyncio, and :class:`ThreadedQQBot`, the same on
  threads (:mod:`.bot`, :mod:`.threaded_bot`);
- :class:`OneBotBot` and :class:`ThreadedOneBotBot`, the same for a OneBot
  implementation (:mod:`.onebot_bot`);
- :mod:`.asyncio`: :class:`AsyncioDriver`, any protocol object on asyncio streams;
- :mod:`.threaded`: :class:`ThreadedDriver`, the same on blocking sockets and threads;
- :mod:`.serve`: a simulator (QQ's or OneBot's) served on loopback, for end-to-end tests.

See ``docs/drivers.md``.
"""

from ._common import DriverClosed, DriverError, DriverFailed
from .bot import QQBot
from .onebot_bot import OneBotBot, ThreadedOneBotBot
from .threaded_bot import ThreadedQQBot

__all__ = [
    "DriverClosed",
    "DriverError",
    "DriverFailed",
    "OneBotBot",
    "QQBot",
    "ThreadedOneBotBot",
    "ThreadedQQBot",
]
