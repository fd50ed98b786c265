"""Serve a sans-IO server object (the QQ simulator) on real sockets.

The simulator (``qqproto.testing.QQSimulator``) plays the whole platform on
one port, without I/O; these helpers give it a listening socket, so a bot on
either driver can be tested end to end on loopback::

    async with SimulatorServer(QQSimulator()) as server:
        async with QQBot(app_id, secret, **server.bot_options()) as bot: ...

    with ThreadedSimulatorServer(QQSimulator()) as server: ...

What they do: an accepted socket is ``sim.accept(now)``; bytes in are
``conn.receive_data(data, now)`` (``b""`` at EOF); after every call into the
simulator every connection's ``data_to_send()`` is written, and a connection
whose ``closed`` is true has its socket closed; a socket that went away is
``conn.connection_lost(now)``. With threads, what is written goes out from a
writer thread per connection, never under the lock. ``sim.wakeup`` is the same flush, for output a
test's scripting caused; one timer follows ``sim.next_deadline()``.
Call the simulator through :meth:`call` to get ``now`` (and, with threads, the lock).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from qqproto.testing.served import ServedConnection, ServedSimulator

from ._common import READ_SIZE
from ._http import close_writer

__all__ = ["SimulatorServer", "ThreadedSimulatorServer"]

T = TypeVar("T")


class _Addresses:
    host: str
    port: int

    @property
    def base_url(self) -> str:
        """The REST base (``api_base``); the gateway URL comes from ``/gateway/bot``."""
        return f"http://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/app/getAppAccessToken"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/websocket"

    def bot_options(self, **more: Any) -> dict[str, Any]:
        """``BotConfig`` fields (``QQBot`` keyword arguments) pointing at this server."""
        return {"api_base": self.base_url, "token_url": self.token_url, **more}


class SimulatorServer(_Addresses):
    """The simulator on an asyncio server; ``async with`` starts and stops it."""

    def __init__(self, sim: ServedSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sim, self.host, self.port = sim, host, port
        self._conns: dict[ServedConnection, asyncio.StreamWriter] = {}
        self._clients: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> SimulatorServer:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.sim.wakeup = self._flush
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self.sim.wakeup = None
        self._server.close()
        conns, self._conns = self._conns, {}
        for writer in conns.values():
            writer.close()
        await asyncio.gather(*self._clients, return_exceptions=True)
        await self._server.wait_closed()
        if self._timer is not None:
            self._timer.cancel()

    def call(self, fn: Callable[[float], T]) -> T:
        """``fn(now)`` (a call into the simulator), then flush what it caused."""
        result = fn(asyncio.get_running_loop().time())
        self._flush()
        return result

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        conn = self.call(self.sim.accept)
        self._conns[conn] = writer
        self._flush()
        try:
            while conn in self._conns:
                data = await reader.read(READ_SIZE)
                if conn not in self._conns:
                    break
                self.call(partial(conn.receive_data, data))
                if not data:
                    break
        except OSError:
            pass
        finally:
            self._conns.pop(conn, None)
            self.call(conn.connection_lost)
            await close_writer(writer)
            self._clients.discard(task)

    def _flush(self) -> None:
        for conn, writer in list(self._conns.items()):
            if data := conn.data_to_send():
                writer.write(data)
            if conn.closed:
                del self._conns[conn]
                writer.close()
        if self._timer is not None:
            self._timer.cancel()
        deadline = self.sim.next_deadline()
        loop = asyncio.get_running_loop()
        self._timer = None if deadline is None else loop.call_at(deadline, self._on_timer, deadline)

    def _on_timer(self, when: float) -> None:
        self._timer = None
        self.call(lambda now: self.sim.handle_timer(max(now, when)))


class _Served:
    """An accepted socket: a reader thread reads it, a writer thread alone writes it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.out = bytearray()  # for the writer; under the server's lock
        self.done = False  # no more output: the writer writes ``out``, then cuts


class ThreadedSimulatorServer(_Addresses):
    """The simulator on a listening socket and threads; ``with`` starts and stops it.

    Each connection has a reader thread and a writer thread. Output the
    simulator makes is queued for the writer, so no thread blocks on a socket
    while it holds the lock, and a client that stops reading holds up nobody
    else: after ``write_timeout`` seconds without taking our bytes it is cut.
    """

    def __init__(
        self,
        sim: ServedSimulator,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        write_timeout: float = 10.0,
    ) -> None:
        self.sim, self.host, self.port = sim, host, port
        self.write_timeout = write_timeout
        self._cond = threading.Condition(threading.RLock())  # the simulator and _conns
        self._conns: dict[ServedConnection, _Served] = {}
        # Every open socket and live thread, under a lock of their own that is
        # never held while blocking, so __exit__ can cut sockets before it waits
        # for the simulator's lock.
        self._registry = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()

    def __enter__(self) -> ThreadedSimulatorServer:
        self._listener = socket.create_server((self.host, self.port))
        self._listener.settimeout(0.25)  # accept() notices stop() at least this often
        self.port = self._listener.getsockname()[1]
        self.sim.wakeup = self._flush
        self._spawn(self._accept_loop, "sim-accept")
        self._spawn(self._timer_loop, "sim-timer")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        with self._registry:
            socks = list(self._socks)
        for sock in socks:  # wakes readers, and a writer stuck on a full socket
            _cut(sock)
        assert self._listener is not None
        _cut(self._listener)
        with self._cond:
            self.sim.wakeup = None
            conns, self._conns = self._conns, {}
            for served in conns.values():
                served.done = True
            self._cond.notify_all()
        while True:
            with self._registry:
                threads = [t for t in self._threads if t.is_alive()]
            if not threads:
                break
            for thread in threads:
                thread.join()
        self._listener.close()

    def call(self, fn: Callable[[float], T]) -> T:
        """``fn(now)`` under the server's lock, then queue what it caused (thread-safe)."""
        with self._cond:
            result = fn(time.monotonic())
            self._flush()
            return result

    def _spawn(self, target: Callable[..., None], name: str, *args: object) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            finally:
                with self._registry:
                    self._threads.discard(thread)

        thread = threading.Thread(target=run, name=name)
        with self._registry:
            self._threads.add(thread)
        thread.start()
        return thread

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(self.write_timeout)  # bounds sendall; a read that times out goes on
            with self._registry:
                self._socks.add(sock)
            with self._cond:
                if self._stopping.is_set():
                    self._forget(sock)
                    return
                conn = self.sim.accept(time.monotonic())
                served = self._conns[conn] = _Served(sock)
                self._spawn(self._read_loop, "sim-conn", conn, served)
                self._flush()

    def _read_loop(self, conn: ServedConnection, served: _Served) -> None:
        writer = self._spawn(self._write_loop, "sim-write", served)
        while True:
            try:
                data = served.sock.recv(READ_SIZE)
            except TimeoutError:
                continue  # an idle client; stopping cuts the socket, which ends the read
            except OSError:
                break
            with self._cond:
                if conn not in self._conns:
                    break
                self.call(partial(conn.receive_data, data))
            if not data:
                break
        with self._cond:
            self._conns.pop(conn, None)
            self.call(conn.connection_lost)
            served.done = True
            self._cond.notify_all()
        writer.join()
        self._forget(served.sock)

    def _write_loop(self, served: _Served) -> None:
        """Write what the simulator queued for this connection, outside the lock."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(served.out) or served.done)
                data, served.out = bytes(served.out), bytearray()
                done = served.done
            if data:
                try:
                    served.sock.sendall(data)
                except OSError:  # gone, or it took nothing for write_timeout: cut it
                    done = True
            if done:
                _cut(served.sock)  # the reader wakes, reports the loss and closes it
                return

    def _timer_loop(self) -> None:
        with self._cond:
            while not self._stopping.is_set():
                deadline, now = self.sim.next_deadline(), time.monotonic()
                if deadline is not None and now >= deadline:
                    self.call(self.sim.handle_timer)
                else:
                    self._cond.wait(None if deadline is None else deadline - now)

    def _flush(self) -> None:
        """Queue every connection's output for its writer; never blocks."""
        with self._cond:
            for conn, served in list(self._conns.items()):
                if data := conn.data_to_send():
                    served.out += data
                if conn.closed:
                    del self._conns[conn]
                    served.done = True
            self._cond.notify_all()

    def _forget(self, sock: socket.socket) -> None:
        with self._registry:
            self._socks.discard(sock)
        sock.close()


def _cut(sock: socket.socket) -> None:
    """Our data, then FIN; wakes a thread blocked in recv() or accept()."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
