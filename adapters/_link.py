"""One connection of the asyncio driver: a stream and the task that owns it.

The asyncio twin of :mod:`._transport`. The task connects (TLS with SNI for
``wss://``) within ``connect_timeout``, or takes a stream a listener accepted,
reads with backpressure, and closes the stream when it ends. It reports
through three callbacks: ``on_open(link)`` (once connected; not for an
accepted stream); ``on_data(link, data)`` (``b""`` at EOF); and
``on_lost(link, reason)`` when the connection failed to open or broke.
:meth:`Link.close` cancels the task: a connect under way is given up at once,
an open stream is flushed (within :data:`CLOSE_GRACE`) and closed, and no
callback comes after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

from qqproto.url import BadUrl, Origin

from ._common import READ_SIZE, describe
from ._http import close_writer, open_stream

__all__ = ["Link"]

log = logging.getLogger(__name__)


class Link:
    """A connection to ``url`` (ws or wss), run by a task of its own (``task``)."""

    def __init__(
        self,
        url: str,
        ssl_context: Callable[[], ssl.SSLContext],
        connect_timeout: float,
        *,
        on_open: Callable[[Link], None],
        on_data: Callable[[Link, bytes], None],
        on_lost: Callable[[Link, str], None],
        accepted: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None,
    ) -> None:
        self.url = url
        self._accepted = accepted
        self._ssl, self._connect_timeout = ssl_context, connect_timeout
        self._on_open, self._on_data, self._on_lost = on_open, on_data, on_lost
        # Once open: an accepted stream is, at once (the object may write to
        # it from connection_accepted, before the task first runs).
        self._writer: asyncio.StreamWriter | None = accepted[1] if accepted else None
        self._closing = False
        self.task = asyncio.get_running_loop().create_task(self._run(), name="qqproto-link")
        if accepted is not None:  # closed even if given up before its task ever ran
            self.task.add_done_callback(lambda _: accepted[1].close())

    def write(self, data: bytes) -> bool:
        """Queue ``data`` to be written; False while the link is not open (or closing)."""
        if self._writer is None or self._closing:
            return False
        self._writer.write(data)
        return True

    @staticmethod
    async def close_all(links: set[Link]) -> None:
        """Close every link in ``links`` and wait for their tasks to end."""
        closing = list(links)
        for link in closing:
            link.close()
        await asyncio.gather(*(link.task for link in closing), return_exceptions=True)

    def close(self) -> None:
        """Give the link up: flushed and closed by its task (a second call does nothing)."""
        if not self._closing:
            self._closing = True
            self.task.cancel()  # delivered at the task's next await: no callback after this

    async def _run(self) -> None:
        if self._accepted is not None:
            reader, writer = self._accepted
        else:
            try:
                end = Origin.of(self.url)
                async with asyncio.timeout(self._connect_timeout):
                    reader, writer = await open_stream(end.host, end.port, end.tls, self._ssl)
            except (OSError, ValueError, BadUrl) as exc:  # TimeoutError, ssl errors: OSErrors
                self._on_lost(self, f"{self.url}: {describe(exc)}")
                return
        self._writer = writer
        try:
            if self._accepted is None:
                log.info("connected to %s", self.url)
                self._on_open(self)
            await self._read(reader, writer)
        finally:
            await close_writer(writer)

    async def _read(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            # Backpressure: while the peer is not taking our bytes, read none of its
            # own (each may make the object write more). A lost link: the read says how.
            with contextlib.suppress(OSError):
                await writer.drain()
            try:
                data = await reader.read(READ_SIZE)
            except OSError as exc:
                self._on_lost(self, describe(exc))
                return
            log.debug("received %d bytes", len(data))
            self._on_data(self, data)
            if not data:  # the peer is done; we may still write (a close frame) until close()
                await asyncio.get_running_loop().create_future()
