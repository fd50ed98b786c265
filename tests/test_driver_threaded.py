"""The threaded driver and ThreadedQQBot end to end, on loopback.

The servers (tests/e2e_servers.py: a ``websockets`` gateway and an h11 REST
server) run in an event loop of their own thread; the driver under test uses
blocking sockets and threads. Every test checks that ``stop()`` leaves no
thread behind. Waits have 10 s deadlines; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import queue
import random
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import qqproto.adapters._http as http_module
from qqproto.adapters import DriverError, DriverFailed
from qqproto.adapters.threaded import ThreadedDriver
from qqproto.adapters.threaded_bot import ThreadedQQBot
from websockets.asyncio.server import serve

from qqproto.qq import GatewayConfig, GatewayProtocol, GroupAtMessageCreate, Ready
from qqproto.qq import gateway as gateway_module

from .e2e_servers import MEMBER, WAIT, FakeGateway, FakeRest, LoopThread

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(autouse=True)
def no_leaked_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(gateway_module, "NEW_SESSION_PAUSE", (0.0, 0.01))
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, leaked


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


@pytest.fixture
def gw(loop: LoopThread) -> Iterator[FakeGateway]:
    gateway = FakeGateway()
    loop.run(gateway.__aenter__())
    yield gateway
    loop.run(gateway.__aexit__())


@pytest.fixture
def rest(loop: LoopThread, gw: FakeGateway) -> Iterator[FakeRest]:
    server = FakeRest(gw.url)
    loop.run(server.__aenter__())
    yield server
    loop.run(server.__aexit__())


class Client:
    """A bare GatewayProtocol on a ThreadedDriver."""

    def __init__(self, url: str, **config: Any) -> None:
        config.setdefault("rng", random.Random(7))
        config.setdefault("backoff_base", 0.01)
        config.setdefault("backoff_cap", 0.05)
        self.proto = GatewayProtocol(GatewayConfig("102000000", gateway_url=url, **config))
        self.events: queue.Queue[object] = queue.Queue()
        self.driver = ThreadedDriver(
            self.proto, on_event=self.events.put, token_provider=lambda: ("tok", 7200.0)
        )

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


def test_handshake_messages_and_heartbeats(loop: LoopThread, gw: FakeGateway) -> None:
    with Client(gw.url) as client:
        assert client.next(Ready).session_id == "sess-1"
        loop.run(gw.message(2))
        assert client.next(GroupAtMessageCreate).text == "hello 2"
        wait_for(loop, gw, lambda g: sum(p["d"] == 2 for p in g.ops(1)) >= 2)
        assert gw.ops(2)[0]["d"]["token"] == "QQBot tok"
    wait_for(loop, gw, lambda g: g.closes == [1000])


def test_a_tcp_drop_resumes_and_delivers_each_event_once(loop: LoopThread, gw: FakeGateway) -> None:
    with Client(gw.url) as client:
        client.next(Ready)
        loop.run(gw.message(1))
        client.next(GroupAtMessageCreate)
        loop.run(_drop(gw))
        wait_for(loop, gw, lambda g: len(g.ops(6)) == 1)
        assert gw.ops(6)[0]["d"]["seq"] == 2
        loop.run(gw.message(3))
        assert client.next(GroupAtMessageCreate).text == "hello 3"
        assert len(gw.ops(2)) == 1


@pytest.mark.parametrize("what", ["op7", "op9", "4009", "lost-acks"])
def test_the_session_comes_back(loop: LoopThread, gw: FakeGateway, what: str) -> None:
    with Client(gw.url) as client:
        client.next(Ready)
        if what == "op7":
            loop.run(gw.send_raw({"op": 7}))
        elif what == "op9":
            loop.run(gw.send_raw({"op": 9, "d": False}))
        elif what == "lost-acks":
            gw.lose_acks = 1
        else:
            loop.run(gw.close(4009))
        wait_for(loop, gw, lambda g: len(g.connections) == 2)
        if what == "op9":
            assert client.next(Ready).session_id == "sess-2"
        else:
            wait_for(loop, gw, lambda g: len(g.ops(6)) == 1)
        loop.run(gw.message(9))
        assert client.next(GroupAtMessageCreate).text == "hello 9"


def test_a_fatal_close_code_ends_the_driver(loop: LoopThread, gw: FakeGateway) -> None:
    with Client(gw.url) as client:
        client.next(Ready)
        loop.run(gw.close(4914))
        with pytest.raises(DriverFailed, match=r"4914|offline"):
            client.driver.wait(WAIT)


def test_the_attempt_cap_ends_the_driver() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    with (
        Client(f"ws://127.0.0.1:{port}/", max_attempts=3) as client,
        pytest.raises(DriverFailed, match="gave up after 3"),
    ):
        client.driver.wait(WAIT)


def test_a_token_provider_is_needed_for_a_bare_gateway(gw: FakeGateway) -> None:
    proto = GatewayProtocol(GatewayConfig("102000000", gateway_url=gw.url))
    driver = ThreadedDriver(proto)
    with pytest.raises(DriverError, match="token_provider"):
        driver.run()


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

    def fake_connect(address: tuple[str, int], timeout: float) -> socket.socket:
        assert address == ("gw.example.com", 443)
        return socket.socket()

    monkeypatch.setattr(http_module.socket, "create_connection", fake_connect)
    proto = GatewayProtocol(GatewayConfig("1", gateway_url="wss://gw.example.com/", max_attempts=1))
    driver = ThreadedDriver(
        proto, token_provider=lambda: ("t", 60.0), ssl_context=Context(ssl.PROTOCOL_TLS_CLIENT)
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


def test_wss_end_to_end(loop: LoopThread, certificate: tuple[Path, Path]) -> None:
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
            proto, on_event=events.put, token_provider=lambda: ("t", 60.0), ssl_context=client_ssl
        )
        driver.start()
        try:
            assert isinstance(events.get(timeout=WAIT), Ready)
        finally:
            driver.stop()
    finally:
        server.close()
        loop.run(server.wait_closed())


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


def test_bot_wrong_secret_fails_with_the_reason(rest: FakeRest) -> None:
    with ThreadedQQBot("102000000", "wrong", **rest.options()) as bot:
        with pytest.raises(DriverFailed, match=r"100016|appid"):
            list(bot.events())
        assert bot.state.name == "FAILED"
