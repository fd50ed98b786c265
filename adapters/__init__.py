"""I/O drivers for qqproto's protocol objects (installed as ``qqproto.adapters``).

- :mod:`.asyncio`: :class:`AsyncioDriver`, any protocol object on asyncio streams;
- :mod:`.threaded`: :class:`ThreadedDriver`, the same on blocking sockets and threads;
- :mod:`.bot`: :class:`QQBot`, a QQ bot on asyncio; :mod:`.threaded_bot`: :class:`ThreadedQQBot`;
- :mod:`.serve`: the QQ simulator served on loopback, for end-to-end tests.

See ``docs/drivers.md``.
"""

from ._common import DriverClosed, DriverError, DriverFailed

__all__ = ["DriverClosed", "DriverError", "DriverFailed"]
