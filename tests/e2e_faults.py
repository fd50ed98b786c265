"""Servers and protocol objects that misbehave on purpose, for the drivers' tests.

:class:`FloodPeer` and :class:`Flooder` check that a driver stops reading while
its writes are stuck; :class:`Trickle` answers HTTP one byte at a time, never
finishing; :class:`GoesSilent` answers the first request on a connection and
never the next; :class:`ConnectTwice` breaks the one-transport promise;
:class:`OneRequest` is a protocol object making one HTTP request; and
:class:`PushSim` is a simulator that writes on demand. The well-behaved peers
are in :mod:`.e2e_servers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable

import h11

from qqproto.actions import Action, Connect, HttpRequest, SendData
from qqproto.contract import Driven
from qqproto.http import HttpResponse

# -- backpressure ---------------------------------------------------------------------------

FLOOD = 16 * 1024 * 1024  # far more than the kernel's socket buffers hold


class FloodPeer:
    """Sends ``a``; once the client has it, sends ``b`` and reads everything, counting.

    Its receive buffer is small, so bytes the client writes pile up on the client's side.
    """

    def __init__(self) -> None:
        self.taken = 0  # bytes read from the client so far
        self.url = ""
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FloodPeer:
        self._loop = asyncio.get_running_loop()
        self._first = asyncio.Event()
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.url = f"ws://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        await self._server.wait_closed()
        await asyncio.gather(*self._tasks)

    def first_seen(self) -> None:
        """The client has ``a`` (thread-safe)."""
        self._loop.call_soon_threadsafe(self._first.set)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        writer.write(b"a")
        await self._first.wait()
        writer.write(b"b")
        while data := await reader.read(65536):
            self.taken += len(data)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


class StubProtocol(Driven):
    """A protocol object of the driver contract that does nothing unless told:
    what it queues in ``_out`` goes out; every call into it is a no-op."""

    def __init__(self, *actions: Action) -> None:
        super().__init__()
        self._out.extend(actions)

    def connection_made(self, conn: int, now: float) -> None:
        pass

    def receive_data(self, conn: int, data: bytes, now: float) -> None:
        pass

    def connection_lost(self, conn: int, now: float, reason: str | None = None) -> None:
        pass

    def http_response(self, request_id: int, response: HttpResponse, now: float) -> None:
        pass


class Flooder(StubProtocol):
    """A protocol object that answers ``a`` with FLOOD bytes; ``seen`` holds what came
    next with how many of those bytes the peer had taken by then."""

    def __init__(self, peer: FloodPeer) -> None:
        super().__init__(Connect(1, peer.url))
        self.peer = peer
        self.seen: list[tuple[bytes, int]] = []
        self.second = threading.Event()  # something came after ``a``

    def receive_data(self, conn: int, data: bytes, now: float) -> None:
        self.seen.append((data, self.peer.taken))
        if data == b"a":
            self._out.append(SendData(conn, b"x" * FLOOD))
            self.peer.first_seen()
        elif data:
            self.second.set()


# -- a slow HTTP server ---------------------------------------------------------------------


class Trickle:
    """An HTTP server whose answer never ends: a header promising a large body, then
    one byte of it every ``every`` seconds, so no single read ever waits long."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.url = ""
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Trickle:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")  # the request's head
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n")
            while True:  # until the client gives up and closes
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(self.every)  # the server's pace, not a synchronisation
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class ConnectTwice(StubProtocol):
    """A protocol object that breaks its promise: once its first connection is
    open it asks for another under the same id, with no Disconnect in between."""

    def __init__(self, url: str) -> None:
        super().__init__(Connect(1, url))
        self.url = url
        self.opened = 0

    def connection_made(self, conn: int, now: float) -> None:
        self.opened += 1
        if self.opened == 1:
            self._out.append(Connect(1, self.url))


# -- a server that goes silent on a reused connection --------------------------------------------


class GoesSilent:
    """An HTTP server that answers the first request on each connection (keep-alive)
    and takes every later one without ever answering it, as a server that hangs
    while it processes a request. ``requests`` holds ``(connection, method, target)``
    for each request it read in full. With ``close_idle`` it closes each connection
    instead, once the first answer is out (an idle keep-alive timeout of zero)."""

    def __init__(self, *, close_idle: bool = False) -> None:
        self.close_idle = close_idle
        self.requests: list[tuple[int, str, str]] = []
        self.url = ""
        self._connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> GoesSilent:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        for writer in self._writers:  # a handler still waiting hears EOF and ends
            writer.transport.abort()
        await asyncio.gather(*self._tasks)
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        number, self._connections = self._connections, self._connections + 1
        conn = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.EndOfMessage):
                    assert request is not None
                    self.requests.append((number, request.method.decode(), request.target.decode()))
                    if len(self.requests_on(number)) > 1:
                        await reader.read()  # silent, until the client gives up
                        break
                    headers = [("content-type", "application/json"), ("content-length", "2")]
                    writer.write(conn.send(h11.Response(status_code=200, headers=headers)) or b"")
                    writer.write(conn.send(h11.Data(data=b"{}")) or b"")
                    writer.write(conn.send(h11.EndOfMessage()) or b"")
                    if self.close_idle:
                        break
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    break
        except (h11.ProtocolError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._writers.discard(writer)
            self._tasks.discard(task)

    def requests_on(self, connection: int) -> list[tuple[int, str, str]]:
        return [r for r in self.requests if r[0] == connection]


def post(request_id: int, url: str) -> HttpRequest:
    """A POST of a small JSON body (a message send, as far as a server can tell)."""
    return HttpRequest(request_id, "POST", url, (("content-type", "application/json"),), b"{}")


class OneRequest(StubProtocol):
    """A protocol object that makes one HTTP request and waits to hear how it ended:
    ``http_response`` or ``http_failed`` sets ``done``."""

    def __init__(self, request: HttpRequest) -> None:
        super().__init__(request)
        self.failures: list[str] = []
        self.responses: list[HttpResponse] = []
        self.done = threading.Event()

    def http_response(self, request_id: int, response: HttpResponse, now: float) -> None:
        self.responses.append(response)
        self.done.set()

    def http_failed(self, request_id: int, now: float, reason: str) -> None:
        self.failures.append(reason)
        self.done.set()


# -- a simulator that writes what a test tells it to -------------------------------------------


class PushConnection:
    """One connection of :class:`PushSim`: it writes whatever ``push`` queued."""

    closed = False

    def __init__(self) -> None:
        self.lost = threading.Event()
        self._out = bytearray()

    def push(self, data: bytes) -> None:
        self._out += data

    def receive_data(self, data: bytes, now: float) -> None:
        pass

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def connection_lost(self, now: float) -> None:
        self.lost.set()


class PushSim:
    """A stand-in for ``QQSimulator`` behind a server helper; ``accepted`` holds
    a :class:`PushConnection` per accepted socket; ``accept_seen`` is set at the first."""

    wakeup: Callable[[], None] | None = None

    def __init__(self) -> None:
        self.accepted: list[PushConnection] = []
        self.accept_seen = threading.Event()

    def accept(self, now: float) -> PushConnection:
        self.accepted.append(conn := PushConnection())
        self.accept_seen.set()
        return conn

    def next_deadline(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> None:
        pass
