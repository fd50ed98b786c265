"""Small keep-alive HTTP/1.1 pools over :class:`qqproto.http.HttpConnection`.

One for asyncio streams, one for blocking sockets; h11 (inside
``HttpConnection``) does the protocol, these only move bytes. A request
takes an idle connection to its origin or opens one (TLS with SNI for
``https``) within ``connect_timeout``; then the whole exchange, however
slowly the bytes trickle in, has ``io_timeout``. A connection both sides let
live goes back to the pool.

A connection that sat idle may have been closed by the server meanwhile. One
whose close has already arrived is never reused. One whose close crosses our
request on the wire fails at once, before any byte of an answer, with EOF or
a reset; only that case is tried again on a fresh connection (see
:func:`_dead_before_use`). A timeout never is: a server that went silent may
have processed the request, and sending it again would duplicate it (a
message sent twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable

from qqproto.actions import HttpRequest
from qqproto.errors import ProtocolError, RemoteProtocolError
from qqproto.http import HttpConnection, HttpResponse
from qqproto.url import Origin

from ._common import CLOSE_GRACE, READ_SIZE

log = logging.getLogger(__name__)

__all__ = ["AsyncHttpPool", "BlockingHttpPool", "close_writer", "open_stream"]

_AsyncLink = tuple[HttpConnection, asyncio.StreamReader, asyncio.StreamWriter]
#: How soon after the request went out a reused connection must fail for the
#: failure to count as the server's idle close crossing it (about a round trip,
#: with room to spare); later, the server may have been working on the request.
STALE_WITHIN = 1.0
#: How a connection the server had closed fails when written to or read from.
_DEAD = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def _dead_before_use(exc: BaseException, eof: bool, answered: bool, elapsed: float) -> bool:
    """Whether a reused connection's failure shows it was dead before the server
    could have processed our request, so that sending it again is safe: EOF or a
    reset, before any byte of an answer, at once. Never a timeout."""
    if answered or elapsed >= STALE_WITHIN or isinstance(exc, TimeoutError):
        return False
    return eof or isinstance(exc, _DEAD)


class AsyncHttpPool:
    """Keep-alive connections on asyncio streams, ``size`` idle ones per origin."""

    def __init__(
        self,
        ssl_context: Callable[[], ssl.SSLContext],
        size: int = 4,
        connect_timeout: float = 10.0,
        io_timeout: float = 30.0,
    ) -> None:
        self._ssl = ssl_context
        self._size = size
        self._connect_timeout, self._io_timeout = connect_timeout, io_timeout
        self._idle: dict[Origin, list[_AsyncLink]] = {}
        self._closing: set[asyncio.Task[None]] = set()

    async def outcome(self, request: HttpRequest) -> HttpResponse | Exception:
        """The response to ``request``, or the exception that says why none came."""
        try:
            return await self.request(request)
        except (OSError, ProtocolError) as exc:  # TimeoutError is an OSError
            return exc
        except Exception as exc:  # a bug, but the object must hear of it: its caller waits
            log.exception("HTTP request #%d failed unexpectedly", request.request_id)
            return exc

    async def request(self, request: HttpRequest) -> HttpResponse:
        origin = Origin.of(request.url, ("http", "https"))
        loop = asyncio.get_running_loop()
        while True:
            link = self._take_idle(origin)
            reused = link is not None
            if link is None:
                async with asyncio.timeout(self._connect_timeout):
                    reader, writer = await open_stream(
                        origin.host, origin.port, origin.tls, self._ssl
                    )
                link = (HttpConnection(), reader, writer)
            http, reader, writer = link
            answered = eof = False
            sent_at = loop.time()
            try:
                async with asyncio.timeout(self._io_timeout):  # the whole exchange
                    writer.write(http.send(request))
                    while True:
                        data = await reader.read(READ_SIZE)
                        answered, eof = answered or bool(data), not data
                        if responses := http.receive_data(data):
                            break
            except (OSError, RemoteProtocolError) as exc:  # TimeoutError is an OSError
                self._close(writer)
                if reused and _dead_before_use(exc, eof, answered, loop.time() - sent_at):
                    continue
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

    def _take_idle(self, origin: Origin) -> _AsyncLink | None:
        """An idle connection to ``origin`` whose server has not closed it (as far as we know)."""
        idle = self._idle.get(origin)
        while idle:
            link = idle.pop()
            if not link[1].at_eof():
                return link
            self._close(link[2])  # its FIN came while it sat idle
        return None

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


def _quiet(sock: socket.socket) -> bool:
    """Whether an idle keep-alive connection has nothing to read, as it should: its
    server's FIN, a reset or stray bytes (a TLS alert) mean it is done with."""
    sock.settimeout(0.0)
    try:  # socket.socket's recv, not SSLSocket's: peek at the raw bytes
        socket.socket.recv(sock, 1, socket.MSG_PEEK)
    except (BlockingIOError, InterruptedError):
        return True  # nothing there: still open
    except OSError:
        return False
    return False  # EOF, or bytes nobody asked for


def _time_left(sock: socket.socket, deadline: float) -> None:
    """Give the next blocking call on ``sock`` what is left until ``deadline``."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out")
    sock.settimeout(left)


class BlockingHttpPool:
    """Keep-alive connections on blocking sockets; thread-safe.

    Every socket a request holds, from before its connect to its return to
    the pool, is in ``_busy``, so :meth:`close` can cut it: a plain
    ``shutdown()`` of the file descriptor wakes the thread blocked in its
    ``recv``, TLS handshake or (on Linux) connect, and that request fails.
    """

    def __init__(
        self,
        ssl_context: Callable[[], ssl.SSLContext],
        size: int = 4,
        connect_timeout: float = 10.0,
        io_timeout: float = 30.0,
    ) -> None:
        self._ssl = ssl_context
        self._size = size
        self._connect_timeout, self._io_timeout = connect_timeout, io_timeout
        self._lock = threading.Lock()
        self._idle: dict[Origin, list[tuple[HttpConnection, socket.socket]]] = {}
        self._busy: set[socket.socket] = set()
        self._closed = False

    def outcome(self, request: HttpRequest) -> HttpResponse | Exception:
        """The response to ``request``, or the exception that says why none came."""
        try:
            return self.request(request)
        except (OSError, ProtocolError) as exc:  # TimeoutError is an OSError
            return exc
        except Exception as exc:  # a bug, but the object must hear of it: its caller waits
            log.exception("HTTP request #%d failed unexpectedly", request.request_id)
            return exc

    def request(self, request: HttpRequest) -> HttpResponse:
        origin = Origin.of(request.url, ("http", "https"))
        while True:
            link = self._take_idle(origin)
            reused = link is not None
            if link is None:
                link = (HttpConnection(), self._open(origin))
            http, sock = link
            answered = eof = False
            sent_at = time.monotonic()
            deadline = sent_at + self._io_timeout  # the whole exchange
            try:
                _time_left(sock, deadline)
                sock.sendall(http.send(request))
                while True:
                    _time_left(sock, deadline)
                    data = sock.recv(READ_SIZE)
                    answered, eof = answered or bool(data), not data
                    if responses := http.receive_data(data):
                        break
            except (OSError, RemoteProtocolError) as exc:  # TimeoutError is an OSError
                self._release(sock)
                if reused and _dead_before_use(exc, eof, answered, time.monotonic() - sent_at):
                    continue
                raise
            except BaseException:
                self._release(sock)
                raise
            self._release(sock, (http, sock) if http.reusable else None, origin)
            return responses[0]

    def _take_idle(self, origin: Origin) -> tuple[HttpConnection, socket.socket] | None:
        """An idle connection to ``origin`` (now busy) whose server has not closed it."""
        while True:
            with self._lock:
                if self._closed:
                    raise OSError("the HTTP pool is closed")
                idle = self._idle.get(origin)
                if not idle:
                    return None
                link = idle.pop()
                self._busy.add(link[1])
            if _quiet(link[1]):
                return link
            self._release(link[1])

    def _open(self, origin: Origin) -> socket.socket:
        """Connect, and shake hands for TLS (with SNI), within ``connect_timeout``."""
        deadline = time.monotonic() + self._connect_timeout
        error = OSError(f"no address for {origin.host}")
        for family, kind, proto, _, address in socket.getaddrinfo(
            origin.host, origin.port, type=socket.SOCK_STREAM
        ):
            sock = self._hold(socket.socket(family, kind, proto))
            try:
                _time_left(sock, deadline)
                sock.connect(address)
                break
            except OSError as exc:
                self._release(sock)
                error = exc
            except BaseException:
                self._release(sock)
                raise
        else:
            raise error
        if origin.tls:
            try:  # wrapping takes over the descriptor: hold the new socket instead
                tls = self._ssl().wrap_socket(
                    sock, server_hostname=origin.host, do_handshake_on_connect=False
                )
                sock = self._hold(tls, sock)
                _time_left(tls, deadline)
                tls.do_handshake()
            except BaseException:
                self._release(sock)
                raise
        return self._hold(sock, sock)  # close() may have come while it opened

    def _hold(self, sock: socket.socket, old: socket.socket | None = None) -> socket.socket:
        """Mark ``sock`` busy (instead of ``old``); closed at once if the pool is."""
        with self._lock:
            if old is not None:
                self._busy.discard(old)
            if not self._closed:
                self._busy.add(sock)
                return sock
        sock.close()
        raise OSError("the HTTP pool is closed")

    def _release(
        self,
        sock: socket.socket,
        link: tuple[HttpConnection, socket.socket] | None = None,
        origin: Origin | None = None,
    ) -> None:
        """Done with ``sock``: back to the pool as ``link`` if there is room, else closed."""
        with self._lock:
            self._busy.discard(sock)
            if link is not None and origin is not None and not self._closed:
                idle = self._idle.setdefault(origin, [])
                if len(idle) < self._size:
                    idle.append(link)
                    return
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
        for sock in busy:  # their own threads close them; only the descriptor is cut
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)  # not SSLSocket's
