"""The driver conformance suite: the same checks on every driver.

The first object listens on a free port, opens two connections to itself, and
each side talks to the other through the driver: every id, every call and
every action of the contract goes over real loopback sockets. The rest hold
the drivers to what the contract leaves to them: backpressure, a transport
that must not leak, an HTTP request that always ends. Deadlines are generous
and nothing waits on a clock but the test's own bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import importlib.util
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import qqproto.adapters._listener as listener_module
from qqproto.actions import (
    Connect,
    Deliver,
    Disconnect,
    HttpRequest,
    Listen,
    SendData,
    StopListening,
)
from qqproto.adapters._http import AsyncHttpPool, BlockingHttpPool
from qqproto.adapters.asyncio import AsyncioDriver
from qqproto.adapters.threaded import ThreadedDriver
from qqproto.contract import Driven, Peer
from qqproto.http import HttpResponse

from .e2e_faults import (
    FLOOD,
    ConnectTwice,
    Flooder,
    FloodPeer,
    GoesSilent,
    OneRequest,
    Trickle,
    post,
)
from .e2e_servers import LoopThread

WAIT = 20.0


class Loopback(Driven):
    """Listens, connects to itself twice, echoes in upper case, then closes it all."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[Any, ...]] = []
        self.listener = next(self._ids)
        self.outbound = [next(self._ids), next(self._ids)]
        self.accepted: dict[int, Peer] = {}
        self.echoes: dict[int, bytes] = {}
        self._out.append(Listen(self.listener, "127.0.0.1", 0))

    def listening(self, listener: int, host: str, port: int, now: float) -> None:
        self.log.append(("listening", listener, host))
        for conn in self.outbound:
            self._out.append(Connect(conn, f"ws://127.0.0.1:{port}/"))

    def connection_made(self, conn: int, now: float) -> None:
        self.log.append(("made", conn))
        self._out.append(SendData(conn, f"hello from {conn}".encode()))

    def connection_accepted(self, listener: int, conn: int, peer: Peer, now: float) -> None:
        self.log.append(("accepted", listener, conn))
        self.accepted[conn] = peer

    def receive_data(self, conn: int, data: bytes, now: float) -> None:
        if conn in self.accepted:
            if data:
                self._out.append(SendData(conn, data.upper()))
            else:  # the other side closed: so do we
                self._out.append(Disconnect(conn))
            return
        self.echoes[conn] = self.echoes.get(conn, b"") + data
        if all(self.echoes.get(c) == f"HELLO FROM {c}".encode() for c in self.outbound):
            for out in self.outbound:
                self._out.append(Disconnect(out))
            self._out.append(StopListening(self.listener))

    def connection_lost(self, conn: int, now: float, reason: str | None = None) -> None:
        self.log.append(("lost", conn, reason))
        if len([e for e in self.log if e[0] == "lost"]) == 4:
            self._out.append(Deliver("done"))

    def listener_lost(self, listener: int, now: float, reason: str | None = None) -> None:
        self.log.append(("listener lost", listener, reason))


def on_asyncio(proto: Loopback) -> None:
    async def main() -> None:
        done = asyncio.Event()
        driver = AsyncioDriver(proto, on_event=lambda event: done.set())
        task = asyncio.create_task(driver.run())
        await asyncio.wait_for(done.wait(), WAIT)
        driver.stop()
        await task

    asyncio.run(main())


def on_threads(proto: Loopback) -> None:
    done = threading.Event()
    driver = ThreadedDriver(proto, on_event=lambda event: done.set())
    driver.start()
    try:
        assert done.wait(WAIT)
    finally:
        driver.stop()


def on_selectors(proto: Loopback) -> None:
    """docs/examples/selectors_driver.py: the third I/O model, kept working."""
    path = Path(__file__).parent.parent / "docs" / "examples" / "selectors_driver.py"
    spec = importlib.util.spec_from_file_location("selectors_driver", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    done: list[object] = []
    driver = example.SelectorsDriver(proto, on_event=done.append)
    try:
        driver.run(until=lambda: bool(done), timeout=WAIT)
    finally:
        driver.stop()


DRIVERS: dict[str, Callable[[Any], None]] = {
    "asyncio": on_asyncio,
    "threads": on_threads,
    "selectors": on_selectors,
}


@pytest.mark.parametrize("run", DRIVERS.values(), ids=DRIVERS.keys())
def test_two_connections_out_and_a_listener_all_through_one_driver(
    run: Callable[[Any], None],
) -> None:
    proto = Loopback()
    run(proto)
    assert ("listening", proto.listener, "127.0.0.1") in proto.log
    # Each outbound connection got its own echo, on its own id.
    for conn in proto.outbound:
        assert ("made", conn) in proto.log
        assert proto.echoes[conn] == f"HELLO FROM {conn}".encode()
    # The driver named the accepted ones, with negative ids: never the object's.
    assert len(proto.accepted) == 2 and all(conn < 0 for conn in proto.accepted)
    assert all(peer.host == "127.0.0.1" and peer.port > 0 for peer in proto.accepted.values())
    accepted = [e[2] for e in proto.log if e[0] == "accepted"]
    assert accepted == sorted(accepted, reverse=True) and set(accepted) == set(proto.accepted)
    # Every connection ended once, closed by us (reason None), and so did the listener.
    lost = sorted(e[1] for e in proto.log if e[0] == "lost")
    assert lost == sorted([*proto.outbound, *proto.accepted])
    assert all(e[2] is None for e in proto.log if e[0] == "lost")
    assert ("listener lost", proto.listener, None) in proto.log


class BindsTwice(Driven):
    """Listens on a port, then again on the same one: the second cannot bind."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[Any, ...]] = []
        self._out.append(Listen(1, "127.0.0.1", 0))

    def listening(self, listener: int, host: str, port: int, now: float) -> None:
        self.events.append(("listening", listener))
        if listener == 1:
            self._out.append(Listen(2, "127.0.0.1", port))

    def listener_lost(self, listener: int, now: float, reason: str | None = None) -> None:
        self.events.append(("lost", listener, reason))
        self._out.append(Deliver("done"))


@pytest.mark.parametrize("run", DRIVERS.values(), ids=DRIVERS.keys())
def test_a_port_in_use_is_a_lost_listener_with_a_reason(run: Callable[[Any], None]) -> None:
    proto = BindsTwice()
    run(proto)
    assert proto.events[0] == ("listening", 1)
    [(_, listener, reason)] = [e for e in proto.events if e[0] == "lost"]
    assert listener == 2 and reason and "in use" in reason.lower()


# -- what the shipped drivers add to the contract --------------------------------------------


def until_set(kind: str, proto: Driven, event: threading.Event) -> None:
    """Run ``proto`` on the ``kind`` driver until ``event`` is set, then stop it."""
    if kind == "threads":
        threaded = ThreadedDriver(proto)
        threaded.start()
        try:
            assert event.wait(WAIT)
        finally:
            threaded.stop()
        return

    async def main() -> None:
        driver = AsyncioDriver(proto)
        task = asyncio.create_task(driver.run())
        try:
            assert await asyncio.to_thread(event.wait, WAIT)
        finally:
            driver.stop()
            await task

    asyncio.run(main())


SHIPPED = ["asyncio", "threads"]


@pytest.mark.parametrize("kind", SHIPPED)
def test_reading_waits_while_the_peer_takes_none_of_our_bytes(kind: str, loop: LoopThread) -> None:
    """Backpressure: ``b`` is read only once most of the flood ``a`` caused is gone."""
    peer = loop.run(FloodPeer().__aenter__())
    try:
        flooder = Flooder(peer)
        until_set(kind, flooder, flooder.second)
    finally:
        loop.run(peer.__aexit__())
    (first, _), (second, taken) = flooder.seen[:2]
    assert (first, second) == (b"a", b"b")
    assert taken > FLOOD // 2


@pytest.mark.parametrize("kind", SHIPPED)
def test_a_second_connect_under_one_id_closes_the_first_transport(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Belt and braces: an object never reuses an id that is open, but a driver
    told to all the same closes the old transport rather than leak it."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(WAIT)
        host, port = listener.getsockname()[:2]
        proto = ConnectTwice(f"ws://{host}:{port}/")
        closed = threading.Event()

        def watch() -> None:
            with listener.accept()[0] as first, listener.accept()[0]:
                first.settimeout(WAIT)
                if first.recv(1) == b"":  # the driver closed the first one
                    closed.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            until_set(kind, proto, closed)
        finally:
            watcher.join(WAIT)
    assert "still open" in caplog.text


@pytest.mark.parametrize("kind", SHIPPED)
def test_an_unexpected_error_in_an_http_request_reaches_http_failed(
    kind: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug below the driver must not leave the object's call pending forever."""

    def broken(*args: Any) -> HttpResponse:
        raise RuntimeError("a bug")

    async def broken_async(*args: Any) -> HttpResponse:
        raise RuntimeError("a bug")

    monkeypatch.setattr(BlockingHttpPool, "request", broken)
    monkeypatch.setattr(AsyncHttpPool, "request", broken_async)
    proto = OneRequest(post(1, "http://127.0.0.1:1/send"))
    until_set(kind, proto, proto.done)
    assert proto.failures == ["RuntimeError: a bug"]
    assert "a bug" in caplog.text and "Traceback" in caplog.text


class Greeter(Driven):
    """Greets each connection it accepts and closes it at once, from
    connection_accepted: the id is good from there."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.port: int | None = None
        self.bound = threading.Event()
        self.lost: list[tuple[int, str | None]] = []
        self._out.append(Listen(1, host, 0))

    def listening(self, listener: int, host: str, port: int, now: float) -> None:
        self.port = port
        self.bound.set()

    def connection_accepted(self, listener: int, conn: int, peer: Peer, now: float) -> None:
        self._out += [SendData(conn, b"220 hello\r\n"), Disconnect(conn)]

    def connection_lost(self, conn: int, now: float, reason: str | None = None) -> None:
        self.lost.append((conn, reason))
        self._out.append(Deliver("done"))

    def listener_lost(self, listener: int, now: float, reason: str | None = None) -> None:
        self.bound.set()  # (a failed bind leaves port None)


def greeted(host: str, port: int) -> bytes:
    """What a client reads from the greeter until EOF."""
    with socket.create_connection((host, port), timeout=WAIT) as sock:
        got = b""
        while chunk := sock.recv(100):
            got += chunk
        return got


@pytest.mark.parametrize("run", DRIVERS.values(), ids=DRIVERS.keys())
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"], ids=["IPv4", "IPv6"])
def test_an_accepted_connection_can_be_written_and_closed_at_once(
    run: Callable[[Any], None], host: str
) -> None:
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    proto = Greeter(host)
    result: list[bytes] = []

    def client() -> None:
        assert proto.bound.wait(WAIT) and proto.port is not None
        result.append(greeted(host, proto.port))

    thread = threading.Thread(target=client)
    thread.start()
    try:
        run(proto)
    finally:
        thread.join(WAIT)
    assert result == [b"220 hello\r\n"]  # the greeting, then EOF: nothing left open
    assert len(proto.lost) == 1 and proto.lost[0][0] < 0 and proto.lost[0][1] is None


def test_a_listener_that_breaks_after_binding_is_lost_with_its_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The threaded driver's listener thread: a socket that breaks for good
    ends it, and the object hears of it."""

    def broken(self: socket.socket) -> Any:
        raise OSError(errno.EINVAL, "Invalid argument")

    lost = threading.Event()

    class Listening(Greeter):
        def listener_lost(self, listener: int, now: float, reason: str | None = None) -> None:
            self.lost.append((listener, reason))
            lost.set()

    proto = Listening()
    monkeypatch.setattr(socket.socket, "accept", broken)
    driver = ThreadedDriver(proto)
    driver.start()
    try:
        assert proto.bound.wait(WAIT) and proto.port is not None
        with socket.socket() as client:
            client.settimeout(WAIT)
            # The listener may close while this connect waits in its backlog:
            # a reset then is fine, what counts is that the object hears of it.
            with contextlib.suppress(OSError):
                client.connect(("127.0.0.1", proto.port))
            assert lost.wait(WAIT)
    finally:
        driver.stop()
    assert proto.lost == [(1, "OSError: [Errno 22] Invalid argument")]


def test_a_listener_out_of_descriptors_pauses_and_accepts_again(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """EMFILE passes once other connections close: the threaded listener says
    so, waits, and serves the connection after (asyncio's server does too)."""
    real_accept = socket.socket.accept
    failures = iter([OSError(errno.EMFILE, "Too many open files")])

    def out_of_descriptors_once(self: socket.socket) -> Any:
        if (error := next(failures, None)) is not None:
            raise error
        return real_accept(self)

    class Listening(Greeter):
        listeners_lost = 0

        def listener_lost(self, listener: int, now: float, reason: str | None = None) -> None:
            self.listeners_lost += 1

    monkeypatch.setattr(socket.socket, "accept", out_of_descriptors_once)
    monkeypatch.setattr(listener_module, "ACCEPT_RETRY_DELAY", 0.01)
    proto = Listening()
    driver = ThreadedDriver(proto)
    driver.start()
    try:
        assert proto.bound.wait(WAIT) and proto.port is not None
        assert greeted("127.0.0.1", proto.port) == b"220 hello\r\n"
        assert proto.listeners_lost == 0
    finally:
        driver.stop()
    assert "Too many open files" in caplog.text


# -- the HTTP pools the drivers carry REST calls on ----------------------------------------


class Pool:
    """Either driver's pool, used from the test's thread."""

    def __init__(self, kind: str, loop: LoopThread, io_timeout: float) -> None:
        self.kind, self.loop = kind, loop
        if kind == "threads":
            self.blocking = BlockingHttpPool(ssl.create_default_context, io_timeout=io_timeout)
        else:
            self.asynchronous = loop.run(self._make_async(io_timeout))

    @staticmethod
    async def _make_async(io_timeout: float) -> AsyncHttpPool:
        return AsyncHttpPool(ssl.create_default_context, io_timeout=io_timeout)

    def request(self, request: HttpRequest) -> HttpResponse:
        if self.kind == "threads":
            return self.blocking.request(request)
        return self.loop.run(self.asynchronous.request(request))

    def close(self) -> None:
        if self.kind == "threads":
            self.blocking.close()
        else:
            self.loop.run(self.asynchronous.aclose())


@pytest.mark.parametrize("kind", SHIPPED)
def test_a_request_that_times_out_on_a_reused_connection_is_not_sent_again(
    kind: str, loop: LoopThread
) -> None:
    """The server may be processing it: a second copy would be a duplicate message."""
    server = loop.run(GoesSilent().__aenter__())
    pool = Pool(kind, loop, io_timeout=0.5)
    try:
        assert pool.request(post(1, f"{server.url}/send")).status == 200
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            pool.request(post(2, f"{server.url}/send"))  # the reused connection
        assert time.monotonic() - started < WAIT  # one io_timeout, not a hang
    finally:
        pool.close()
        loop.run(server.__aexit__())
    assert server.requests == [(0, "POST", "/send"), (0, "POST", "/send")]


@pytest.mark.parametrize("kind", SHIPPED)
def test_a_connection_the_server_closed_while_idle_costs_no_request(
    kind: str, loop: LoopThread
) -> None:
    server = loop.run(GoesSilent(close_idle=True).__aenter__())
    pool = Pool(kind, loop, io_timeout=5)
    try:
        for n in range(3):
            assert pool.request(post(n, f"{server.url}/send")).status == 200
    finally:
        pool.close()
        loop.run(server.__aexit__())
    assert server.requests == [(n, "POST", "/send") for n in range(3)]


@pytest.mark.parametrize("kind", SHIPPED)
def test_io_timeout_bounds_the_whole_exchange_not_each_read(kind: str, loop: LoopThread) -> None:
    """An answer that trickles in, a byte at a time, still times out."""
    server = loop.run(Trickle().__aenter__())
    pool = Pool(kind, loop, io_timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            pool.request(post(1, f"{server.url}/token"))
        # The pool's own bound, not the test's (WAIT): a generous margin over 0.5 s.
        assert time.monotonic() - started < WAIT / 4
    finally:
        pool.close()
        loop.run(server.__aexit__())
