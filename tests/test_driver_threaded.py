"""The threaded driver and ThreadedQQBot end to end, on loopback.

The servers (tests/e2e_servers.py: a ``websockets`` gateway and an h11 REST
server) run in an event loop of their own thread; the driver under test uses
blocking sockets and threads. Every test checks that ``stop()`` leaves no
thread behind. Waits have 10 s deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import random
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import serve

import qqproto.adapters._transport as transport_module
from qqproto.actions import StateChanged
from qqproto.adapters import DriverFailed
from qqproto.adapters.serve import ThreadedSimulatorServer
from qqproto.adapters.threaded import ThreadedDriver
from qqproto.adapters.threaded_bot import ThreadedQQBot
from qqproto.qq import (
    BotConfig,
    BotProtocol,
    Dispatch,
    GatewayConfig,
    GatewayProtocol,
    GroupAtMessageCreate,
    Ready,
)
from qqproto.qq import gateway as gateway_module

from .e2e_faults import (
    FLOOD,
    PushSim,
)
from .e2e_servers import (
    MEMBER,
    WAIT,
    FakeGateway,
    FakeRest,
    LoopThread,
    group_message,
)
from .tokens import answering_tokens

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(autouse=True)
def no_leaked_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(gateway_module, "NEW_SESSION_PAUSE", (0.0, 0.01))
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, leaked


class SocketThreads:
    """Which threads call methods of each TCP socket (``socket`` and ``SSLSocket``, patched)."""

    SOCKET = ("connect", "connect_ex", "recv", "recv_into", "send", "sendall", "shutdown", "close")
    TLS = ("recv", "recv_into", "send", "sendall", "shutdown", "do_handshake", "unwrap", "read")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: dict[socket.socket, set[threading.Thread]] = {}
        self.connecting = threading.Event()  # a driver thread has called connect()
        self._lock = threading.Lock()
        for cls, names in ((socket.socket, self.SOCKET), (ssl.SSLSocket, self.TLS)):
            for name in names:
                monkeypatch.setattr(cls, name, self._wrap(name, getattr(cls, name)))

    def _wrap(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(sock: socket.socket, *args: Any, **kwargs: Any) -> Any:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                thread = threading.current_thread()
                with self._lock:
                    self.threads.setdefault(sock, set()).add(thread)
                if name == "connect" and thread.name.startswith("qqproto"):
                    self.connecting.set()
            return method(sock, *args, **kwargs)

        return wrapper

    def check(self) -> None:
        """Every socket had one thread; the driver's were its transport threads."""
        with self._lock:
            shared = {s: t for s, t in self.threads.items() if len(t) > 1}
            ours = [t for threads in self.threads.values() for t in threads if "qqproto" in t.name]
        assert not shared, shared
        assert ours and all(t.name == "qqproto-link" for t in ours), ours


@pytest.fixture
def socket_threads(monkeypatch: pytest.MonkeyPatch) -> SocketThreads:
    return SocketThreads(monkeypatch)


class Client:
    """A bare GatewayProtocol on a ThreadedDriver."""

    def __init__(self, url: str, **config: Any) -> None:
        config.setdefault("rng", random.Random(7))
        config.setdefault("backoff_base", 0.01)
        config.setdefault("backoff_cap", 0.05)
        self.proto = GatewayProtocol(GatewayConfig("102000000", gateway_url=url, **config))
        self.events: queue.Queue[object] = queue.Queue()
        on_event = answering_tokens(self.proto, self.events.put, token=lambda: ("tok", 7200.0))
        self.driver = ThreadedDriver(self.proto, on_event=on_event)

    def __enter__(self) -> Client:
        self.driver.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.driver.stop()

    def next(self, kind: type[Any] = object) -> Any:
        while True:
            event = self.events.get(timeout=WAIT)
            if isinstance(event, kind):
                return event


def wait_for(loop: LoopThread, gw: FakeGateway, predicate: Any) -> None:
    loop.run(gw.wait_for(predicate))


async def _drop(gw: FakeGateway) -> None:
    gw.drop()


# -- the gateway, bare -----------------------------------------------------------------------


def test_one_thread_touches_the_socket(
    loop: LoopThread, gw: FakeGateway, socket_threads: SocketThreads
) -> None:
    """Reads (the link), heartbeats (the timer) and the close frame (stop) share one writer."""
    with Client(gw.url) as client:
        client.next(Ready)
        for n in range(10):
            loop.run(gw.message(n))
        for _ in range(10):
            client.next(GroupAtMessageCreate)
        wait_for(loop, gw, lambda g: len(g.ops(1)) >= 3)
    wait_for(loop, gw, lambda g: g.closes == [1000])
    socket_threads.check()


@pytest.mark.parametrize("stage", ["tcp", "tls"])
def test_stop_gives_up_a_connect_under_way(stage: str, socket_threads: SocketThreads) -> None:
    """A peer that never finishes the TCP handshake (a full backlog) or the TLS one."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        listener.settimeout(WAIT)
        host, port = listener.getsockname()
        with contextlib.ExitStack() as held:
            if stage == "tcp":  # the one place in the accept queue is taken: SYNs go unanswered
                held.enter_context(socket.create_connection((host, port)))
            proto = GatewayProtocol(
                GatewayConfig("1", gateway_url=f"wss://{host}:{port}/", rng=random.Random(1))
            )
            driver = ThreadedDriver(proto, on_event=answering_tokens(proto), connect_timeout=60)
            driver.start()
            if stage == "tls":
                held.enter_context(listener.accept()[0])  # then not a byte back
            assert socket_threads.connecting.wait(WAIT)
            started = time.monotonic()
            driver.stop()
            assert time.monotonic() - started < WAIT / 2  # not the 60 s connect_timeout
    assert driver.wait(0)


@pytest.mark.parametrize("stage", ["tcp", "tls"])
def test_stop_cuts_an_http_request_still_opening(
    stage: str, socket_threads: SocketThreads, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot's token request connects (SYNs unanswered) or shakes hands (no byte
    back): stop() cuts it at once, and no failure is reported after it."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        listener.settimeout(WAIT)
        host, port = listener.getsockname()
        with contextlib.ExitStack() as held:
            if stage == "tcp":  # the one place in the accept queue is taken
                held.enter_context(socket.create_connection((host, port)))
            url = f"{'https' if stage == 'tls' else 'http'}://{host}:{port}"
            config = BotConfig(
                "1", "s", api_base=url, token_url=f"{url}/token", rng=random.Random(1)
            )
            driver = ThreadedDriver(BotProtocol(config), connect_timeout=60, io_timeout=60)
            driver.start()
            if stage == "tls":
                held.enter_context(listener.accept()[0])  # then not a byte back
            assert socket_threads.connecting.wait(WAIT)
            started = time.monotonic()
            driver.stop()
            assert time.monotonic() - started < WAIT / 2  # not the 60 s timeouts
    assert "HTTP request" not in caplog.text


def test_stop_mid_send_joins_everything(loop: LoopThread, gw: FakeGateway) -> None:
    client = Client(gw.url)
    client.driver.start()
    client.next(Ready)
    sends = [asyncio.run_coroutine_threadsafe(gw.message(n), loop.loop) for n in range(20)]
    client.driver.stop()
    for send in sends:
        send.exception(WAIT)  # done, one way or the other
    wait_for(loop, gw, lambda g: g.closes == [1000])
    assert client.proto.state.name == "CLOSED"
    client.driver.stop()  # twice is fine


def test_wss_uses_tls_with_sni(monkeypatch: pytest.MonkeyPatch) -> None:
    wrapped: list[str | None] = []

    class Context(ssl.SSLContext):
        def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> Any:
            wrapped.append(kwargs.get("server_hostname"))
            raise ssl.SSLError("not really")

    with socket.create_server(("127.0.0.1", 0)) as listener:  # where gw.example.com leads
        real_getaddrinfo = socket.getaddrinfo

        def fake_getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
            assert (host, port) == ("gw.example.com", 443)
            return real_getaddrinfo(*listener.getsockname(), *args, **kwargs)

        monkeypatch.setattr(f"{transport_module.__name__}.socket.getaddrinfo", fake_getaddrinfo)
        proto = GatewayProtocol(
            GatewayConfig("1", gateway_url="wss://gw.example.com/", max_attempts=1)
        )
        driver = ThreadedDriver(
            proto, on_event=answering_tokens(proto), ssl_context=Context(ssl.PROTOCOL_TLS_CLIENT)
        )
        with pytest.raises(DriverFailed):
            driver.run()
    assert wrapped == ["gw.example.com"]


# -- TLS for real, with a self-signed certificate -----------------------------------------------


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_wss_end_to_end(
    loop: LoopThread, certificate: tuple[Path, Path], socket_threads: SocketThreads
) -> None:
    cert, key = certificate
    server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ssl.load_cert_chain(cert, key)
    client_ssl = ssl.create_default_context(cafile=str(cert))
    gw = FakeGateway()

    async def start() -> Any:
        return await serve(gw._handler, "127.0.0.1", 0, ssl=server_ssl)

    server = loop.run(start())
    port = server.sockets[0].getsockname()[1]
    try:
        proto = GatewayProtocol(
            GatewayConfig("1", gateway_url=f"wss://localhost:{port}/", rng=random.Random(1))
        )
        events: queue.Queue[object] = queue.Queue()
        driver = ThreadedDriver(
            proto, on_event=answering_tokens(proto, events.put), ssl_context=client_ssl
        )
        driver.start()
        try:
            assert isinstance(events.get(timeout=WAIT), Ready)
            loop.run(gw.message(1))
            assert isinstance(events.get(timeout=WAIT), GroupAtMessageCreate)
            wait_for(loop, gw, lambda g: len(g.ops(1)) >= 2)  # heartbeats, from the timer
        finally:
            driver.stop()
        wait_for(loop, gw, lambda g: g.closes == [1000])
    finally:
        server.close()
        loop.run(server.wait_closed())
    socket_threads.check()


# -- ThreadedQQBot -----------------------------------------------------------------------------


def test_bot_events_and_thread_safe_replies(
    loop: LoopThread, gw: FakeGateway, rest: FakeRest
) -> None:
    with ThreadedQQBot("102000000", rest.secret, **rest.options()) as bot:
        events = bot.events()
        assert isinstance(next(events), Ready)
        for n in range(4):
            loop.run(gw.message(n))
        messages = [next(events) for _ in range(4)]
        results: list[Any] = []
        threads = [
            threading.Thread(target=lambda m=m: results.append(bot.reply(m, m.text)))
            for m in messages
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        assert len(results) == 4 and all(r.ok for r in results)
        assert sorted(s["content"] for s in rest.sent) == [f"hello {n}" for n in range(4)]
    assert bot.state.name == "CLOSED"
    wait_for(loop, gw, lambda g: g.closes == [1000])


def test_bot_handlers_allow_from_and_stop_from_a_handler(
    loop: LoopThread, gw: FakeGateway, rest: FakeRest, caplog: pytest.LogCaptureFixture
) -> None:
    bot = ThreadedQQBot("102000000", rest.secret, allow_from=[MEMBER], **rest.options())
    seen: list[str] = []

    def ready(event: Ready) -> None:
        async def script() -> None:
            await gw.message(1, member="STRANGER")
            await gw.message(2, content=" ")  # empty: no handler sees it
            await gw.message(3, content="boom")
            await gw.message(4, content="bye")

        asyncio.run_coroutine_threadsafe(script(), loop.loop)

    def echo(event: GroupAtMessageCreate) -> None:
        seen.append(event.text)
        if event.text == "boom":
            raise RuntimeError("handler bug")
        assert bot.reply(event, event.text).ok
        bot.stop()

    bot.on(Ready)(ready)  # the decorator, called: mypy sees no types here
    bot.on(GroupAtMessageCreate)(echo)
    bot.run_forever()
    assert seen == ["boom", "bye"]
    assert "handler bug" in caplog.text


def test_bot_on_state_driver_options_and_raw_messages_from_strangers(
    loop: LoopThread, gw: FakeGateway, rest: FakeRest
) -> None:
    changes: queue.SimpleQueue[StateChanged] = queue.SimpleQueue()
    options = {"connect_timeout": 3.0, "io_timeout": 4.0, "pool_size": 2}
    bot = ThreadedQQBot(
        "102000000",
        rest.secret,
        allow_from=[MEMBER],
        on_state=changes.put,
        driver_options=options,
        **rest.options(),
    )
    assert (bot.driver.connect_timeout, bot.driver.io_timeout, bot.driver.pool_size) == (3, 4, 2)
    with bot:
        events = bot.events()
        assert isinstance(next(events), Ready)
        broken = group_message(1, member="STRANGER")
        del broken["group_openid"]  # fails typed decoding: delivered as a raw Dispatch
        loop.run(gw.dispatch("GROUP_AT_MESSAGE_CREATE", broken))
        del (broken := group_message(2))["group_openid"]
        loop.run(gw.dispatch("GROUP_AT_MESSAGE_CREATE", broken))
        raw = next(e for e in events if isinstance(e, Dispatch))  # violations come first
        assert raw.data["id"] == "ROBOT1.0_msg-2"  # the stranger's came first, and is gone
    assert changes.get(timeout=WAIT).new is not None  # on_state heard the start


def test_bot_options_are_checked() -> None:
    with pytest.raises(TypeError, match="driver_options"):
        ThreadedQQBot("1", "s", io_timeout=5)
    with pytest.raises(TypeError, match="unknown driver option"):
        ThreadedQQBot("1", "s", driver_options={"io_timeout": 5, "on_event": print})
    config = BotConfig("1", "s")
    bot = ThreadedQQBot.from_config(config, on_state=print, driver_options={"pool_size": 1})
    assert bot.driver.on_state is print and bot.driver.pool_size == 1


# -- review fixes ------------------------------------------------------------------------------


class ContendedLock:
    """A lock that says when a second thread has to wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.contended = threading.Event()

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            self.contended.set()
            self._lock.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()


def in_threads(*targets: Callable[[], None]) -> list[BaseException]:
    """Run each target in a thread of its own; what they raised."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_concurrent_starts_start_the_driver_once(
    loop: LoopThread, gw: FakeGateway, rest: FakeRest
) -> None:
    bot = ThreadedQQBot("102000000", rest.secret, **rest.options())
    inner: Any = bot  # the test swaps the bot's lock and the driver's start
    inner._lifecycle = lock = ContendedLock()
    real_start, starts = bot.driver.start, []
    inside = threading.Event()

    def start() -> None:  # the first start() waits, inside, until a second one comes
        starts.append(threading.current_thread())
        inside.set()
        assert lock.contended.wait(WAIT)
        real_start()

    inner.driver.start = start

    def second() -> None:
        assert inside.wait(WAIT)
        bot.start()

    try:
        assert in_threads(bot.start, second) == []
        assert len(starts) == 1
        assert isinstance(next(bot.events()), Ready)
    finally:
        bot.stop()


def test_a_second_stop_waits_until_the_first_has_joined_everything(
    loop: LoopThread, gw: FakeGateway, rest: FakeRest
) -> None:
    bot = ThreadedQQBot("102000000", rest.secret, **rest.options())
    inner: Any = bot  # the test swaps the bot's lock and the driver's stop
    inner._lifecycle = lock = ContendedLock()
    real_stop, joined = bot.driver.stop, threading.Event()
    inside = threading.Event()

    def stop() -> None:  # the first stop() waits, inside, until a second one comes
        inside.set()
        assert lock.contended.wait(WAIT)
        real_stop()
        joined.set()

    inner.driver.stop = stop
    seen_by_second: list[bool] = []

    def second() -> None:
        assert inside.wait(WAIT)
        bot.stop()
        seen_by_second.append(joined.is_set())

    with bot:
        assert isinstance(next(bot.events()), Ready)
        assert in_threads(bot.stop, second) == []
    assert seen_by_second == [True]


@pytest.mark.parametrize("ending", ["write_timeout", "exit"])
def test_a_client_that_stops_reading_holds_up_nobody(ending: str) -> None:
    """ThreadedSimulatorServer: output to a client that reads nothing neither blocks
    call() nor __exit__; after write_timeout that client is cut."""
    sim = PushSim()
    server = ThreadedSimulatorServer(sim, write_timeout=0.5 if ending == "write_timeout" else 60)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    pushed = threading.Event()
    pusher: threading.Thread | None = None
    try:
        with server:
            client.connect(("127.0.0.1", server.port))
            assert sim.accept_seen.wait(WAIT)
            [conn] = sim.accepted

            def push() -> None:
                server.call(lambda now: conn.push(b"x" * FLOOD))
                pushed.set()

            pusher = threading.Thread(target=push)
            pusher.start()
            if not pushed.wait(WAIT):  # call() blocks: free it, or __exit__ hangs too
                client.close()
                pytest.fail("call() blocked on a client that reads nothing")
            if ending == "write_timeout":
                assert conn.lost.wait(WAIT)  # cut, and reported lost
            started = time.monotonic()
        assert time.monotonic() - started < WAIT / 2  # not the 60 s write_timeout
    finally:
        client.close()  # frees a thread stuck in sendall, if one is
        if pusher is not None:
            pusher.join()
