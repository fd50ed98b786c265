"""Small keep-alive HTTP/1.1 pools over :class:`qqproto.http.HttpConnection`.

One for asyncio streams, one for blocking sockets; h11 (inside
``HttpConnection``) does the protocol, these only move bytes. A request
takes an idle connection to its origin or opens one (TLS with SNI for
``https``); a connection both sides let live goes back to the pool. A reused
connection that the server had quietly closed (no byte of an answer came)
costs one retry on a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable

from qqproto.actions import HttpRequest
from qqproto.errors import RemoteProtocolError
from qqproto.http import HttpConnection, HttpResponse, Origin

from ._common import CLOSE_GRACE, READ_SIZE

__all__ = ["AsyncHttpPool", "BlockingHttpPool", "close_writer", "open_socket", "open_stream"]

_AsyncLink = tuple[HttpConnection, asyncio.StreamReader, asyncio.StreamWriter]


class AsyncHttpPool:
    """Keep-alive connections on asyncio streams, ``size`` idle ones per origin."""

    def __init__(self, ssl_context: Callable[[], ssl.SSLContext], size: int = 4) -> None:
        self._ssl = ssl_context
        self._size = size
        self._idle: dict[Origin, list[_AsyncLink]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def request(self, request: HttpRequest) -> HttpResponse:
        origin = Origin.from_url(request.url)
        while True:
            idle = self._idle.get(origin)
            link = idle.pop() if idle else None
            reused = link is not None
            if link is None:
                reader, writer = await open_stream(origin.host, origin.port, origin.tls, self._ssl)
                link = (HttpConnection(), reader, writer)
            http, reader, writer = link
            answered = False
            try:
                writer.write(http.send(request))
                while True:
                    data = await reader.read(READ_SIZE)
                    answered = answered or bool(data)
                    if responses := http.receive_data(data):
                        break
            except (OSError, RemoteProtocolError):
                self._close(writer)
                if reused and not answered:
                    continue  # the server had closed it while it sat idle
                raise
            except BaseException:
                self._close(writer)
                raise
            idle = self._idle.setdefault(origin, [])
            if http.reusable and len(idle) < self._size and not reader.at_eof():
                idle.append(link)
            else:
                self._close(writer)
            return responses[0]

    def _close(self, writer: asyncio.StreamWriter) -> None:
        task = asyncio.get_running_loop().create_task(close_writer(writer))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close every idle connection and wait until all are closed."""
        for idle in self._idle.values():
            for _, _, writer in idle:
                self._close(writer)
        self._idle.clear()
        await asyncio.gather(*self._closing)


async def open_stream(
    host: str, port: int, tls: bool, context: Callable[[], ssl.SSLContext]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connected stream, TLS (with SNI) when ``tls``."""
    return await asyncio.open_connection(
        host, port, ssl=context() if tls else None, server_hostname=host if tls else None
    )


async def close_writer(writer: asyncio.StreamWriter, grace: float = CLOSE_GRACE) -> None:
    """Close a stream after flushing what it holds; cut it if that takes too long."""
    writer.close()
    try:
        async with asyncio.timeout(grace):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        writer.transport.abort()
    except asyncio.CancelledError:
        writer.transport.abort()
        raise


def open_socket(
    host: str, port: int, tls: bool, context: Callable[[], ssl.SSLContext], timeout: float
) -> socket.socket:
    """A connected blocking socket, TLS-wrapped (with SNI) when ``tls``; closed on failure."""
    sock = socket.create_connection((host, port), timeout)
    if not tls:
        return sock
    try:
        return context().wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


class BlockingHttpPool:
    """Keep-alive connections on blocking sockets; thread-safe."""

    def __init__(
        self, ssl_context: Callable[[], ssl.SSLContext], size: int = 4, timeout: float = 30.0
    ) -> None:
        self._ssl = ssl_context
        self._size = size
        self._timeout = timeout
        self._lock = threading.Lock()
        self._idle: dict[Origin, list[tuple[HttpConnection, socket.socket]]] = {}
        self._busy: set[socket.socket] = set()
        self._closed = False

    def request(self, request: HttpRequest) -> HttpResponse:
        origin = Origin.from_url(request.url)
        while True:
            with self._lock:
                if self._closed:
                    raise OSError("the HTTP pool is closed")
                idle = self._idle.get(origin)
                link = idle.pop() if idle else None
            reused = link is not None
            if link is None:
                sock = open_socket(origin.host, origin.port, origin.tls, self._ssl, self._timeout)
                link = (HttpConnection(), sock)
            http, sock = link
            with self._lock:
                self._busy.add(sock)
            answered = False
            try:
                sock.sendall(http.send(request))
                while True:
                    data = sock.recv(READ_SIZE)
                    answered = answered or bool(data)
                    if responses := http.receive_data(data):
                        break
            except (OSError, RemoteProtocolError):
                self._discard(sock)
                if reused and not answered:
                    continue
                raise
            with self._lock:
                self._busy.discard(sock)
                idle = self._idle.setdefault(origin, [])
                if http.reusable and len(idle) < self._size and not self._closed:
                    idle.append(link)
                    return responses[0]
            sock.close()
            return responses[0]

    def _discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._busy.discard(sock)
        sock.close()

    def close(self) -> None:
        """Close idle connections and cut those in use (their requests fail)."""
        with self._lock:
            self._closed = True
            idle = [sock for links in self._idle.values() for _, sock in links]
            self._idle.clear()
            busy = list(self._busy)
        for sock in idle:
            sock.close()
        for sock in busy:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
