"""The serving endpoints on both drivers, on loopback, plain and over TLS.

``QQWebhook`` takes callbacks signed with ``cryptography`` and sent with
``http.client``; ``OneBotServer`` takes a reverse WebSocket dialled with the
``websockets`` library. Each runs once per driver; the TLS cases serve a
self-signed certificate made here, which the client trusts.
"""

from __future__ import annotations

import asyncio
import datetime
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import connect

from qqproto.adapters.asyncio import AsyncioDriver
from qqproto.adapters.threaded import ThreadedDriver
from qqproto.listener import HttpService, ListenerState
from qqproto.onebot import MessageEvent
from qqproto.onebot.reverse import OneBotServer
from qqproto.onebot.serving import ServeConfig
from qqproto.qq import C2CMessageCreate
from qqproto.qq.webhook import QQWebhook, WebhookConfig

from .e2e_servers import LoopThread

DEADLINE = 20.0
SECRET = "serving-secret-01"
DRIVERS = ["asyncio", "threads"]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a self-signed certificate for 127.0.0.1, and a
    client context that trusts it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


class Running:
    """``proto`` on a driver of the given kind, and what it delivered."""

    def __init__(self, kind: str, proto: HttpService, loop: LoopThread, **options: Any) -> None:
        self.proto, self.loop = proto, loop
        self.delivered: list[object] = []
        self._got = threading.Condition()
        if kind == "asyncio":
            self.driver: AsyncioDriver | ThreadedDriver = AsyncioDriver(
                proto, on_event=self._on_event, **options
            )
            self._task = asyncio.run_coroutine_threadsafe(self.driver.run(), loop.loop)
        else:
            self.driver = ThreadedDriver(proto, on_event=self._on_event, **options)
            self.driver.start()
        self.wait(lambda: proto.state is ListenerState.LISTENING)

    def _on_event(self, event: object) -> None:
        with self._got:
            self.delivered.append(event)
            self._got.notify_all()

    def wait(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE
        with self._got:
            while not done():
                assert time.monotonic() < deadline, f"not done; delivered {self.delivered}"
                self._got.wait(0.05)

    def stop(self) -> None:
        if isinstance(self.driver, ThreadedDriver):
            self.driver.stop()
        else:
            self.loop.loop.call_soon_threadsafe(self.driver.stop)
            self._task.result(DEADLINE)


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as running:
        yield running


def signed_post(port: int, body: bytes, context: ssl.SSLContext | None) -> int:
    stamp = str(int(time.time()))
    key = Ed25519PrivateKey.from_private_bytes((SECRET * 2).encode()[:32])
    headers = {
        "X-Signature-Ed25519": key.sign(stamp.encode() + body).hex(),
        "X-Signature-Timestamp": stamp,
    }
    connection: http.client.HTTPConnection
    if context is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    else:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=DEADLINE, context=context
        )
    try:
        connection.request("POST", "/", body, headers)
        return connection.getresponse().status
    finally:
        connection.close()


CALLBACK = json.dumps(
    {
        "id": "C2C_MESSAGE_CREATE:1",
        "op": 0,
        "t": "C2C_MESSAGE_CREATE",
        "d": {
            "id": "ROBOT1.0_x",
            "content": "over the wire",
            "timestamp": "2026-12-07T10:00:00+08:00",
            "author": {"user_openid": "u1"},
        },
    }
).encode()


@pytest.mark.parametrize("secure", [False, True])
@pytest.mark.parametrize("kind", DRIVERS)
def test_the_qq_webhook_takes_a_signed_callback(
    kind: str, secure: bool, loop: LoopThread, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ssl, client_ssl = tls
    hook = QQWebhook(WebhookConfig("1", SECRET, port=0, wall_offset=time.time() - time.monotonic()))
    running = Running(kind, hook, loop, server_ssl=server_ssl if secure else None)
    try:
        assert signed_post(hook.port, CALLBACK, client_ssl if secure else None) == 200
        running.wait(lambda: any(isinstance(e, C2CMessageCreate) for e in running.delivered))
        [event] = [e for e in running.delivered if isinstance(e, C2CMessageCreate)]
        assert event.content == "over the wire"
    finally:
        running.stop()


@pytest.mark.parametrize("secure", [False, True])
@pytest.mark.parametrize("kind", DRIVERS)
def test_onebot_reverse_websocket_dialled_by_another_library(
    kind: str, secure: bool, loop: LoopThread, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ssl, client_ssl = tls
    server = OneBotServer(ServeConfig(port=0, access_token="t"))
    running = Running(kind, server, loop, server_ssl=server_ssl if secure else None)
    scheme = "wss" if secure else "ws"

    async def napcat() -> None:
        headers = {"Authorization": "Bearer t", "X-Self-ID": "42", "X-Client-Role": "Universal"}
        async with connect(
            f"{scheme}://127.0.0.1:{server.port}/",
            additional_headers=headers,
            ssl=client_ssl if secure else None,
        ) as ws:
            event = {"post_type": "message", "message_type": "private", "self_id": 42}
            event |= {"user_id": 7, "message_id": 1, "message": "hi from napcat"}
            await ws.send(json.dumps(event))  # it goes before the close that follows

    try:
        loop.run(napcat())
        running.wait(lambda: any(isinstance(e, MessageEvent) for e in running.delivered))
        [event] = [e for e in running.delivered if isinstance(e, MessageEvent)]
        assert event.text == "hi from napcat" and event.self_id == 42
    finally:
        running.stop()


@pytest.mark.parametrize("kind", DRIVERS)
def test_two_accounts_and_a_replaced_connection(kind: str, loop: LoopThread) -> None:
    server = OneBotServer(ServeConfig(port=0, access_token="t"))
    running = Running(kind, server, loop)

    async def accounts() -> tuple[int | None, str | None]:
        url = f"ws://127.0.0.1:{server.port}/"
        headers = {"Authorization": "Bearer t", "X-Client-Role": "Universal"}
        a = await connect(url, additional_headers=headers | {"X-Self-ID": "1001"})
        b = await connect(url, additional_headers=headers | {"X-Self-ID": "1002"})
        again = await connect(url, additional_headers=headers | {"X-Self-ID": "1001"})
        await a.wait_closed()  # replaced by `again`
        for ws, sid in ((b, 1002), (again, 1001)):
            event = {"post_type": "message", "message_type": "private", "self_id": sid}
            await ws.send(json.dumps(event | {"user_id": 7, "message_id": sid, "message": "x"}))
        for ws in (b, again):  # each close follows its message
            await ws.close()
        return a.close_code, a.close_reason

    try:
        code, reason = loop.run(accounts())
        assert code == 1000 and "replaced" in (reason or "")
        running.wait(
            lambda: len([e for e in running.delivered if isinstance(e, MessageEvent)]) == 2
        )
        senders = {e.self_id for e in running.delivered if isinstance(e, MessageEvent)}
        assert senders == {1001, 1002}
    finally:
        running.stop()


@pytest.mark.parametrize("kind", DRIVERS)
def test_forged_stale_and_oversize_callbacks_are_refused(kind: str, loop: LoopThread) -> None:
    hook = QQWebhook(WebhookConfig("1", SECRET, port=0, wall_offset=time.time() - time.monotonic()))
    running = Running(kind, hook, loop)
    try:
        key = Ed25519PrivateKey.from_private_bytes((SECRET * 2).encode()[:32])

        def status(body: bytes, stamp: str, signature: str | None = None) -> int:
            sig = signature or key.sign(stamp.encode() + body).hex()
            headers = {"X-Signature-Ed25519": sig, "X-Signature-Timestamp": stamp}
            connection = http.client.HTTPConnection("127.0.0.1", hook.port, timeout=DEADLINE)
            try:
                connection.request("POST", "/", body, headers)
                return connection.getresponse().status
            except (ConnectionResetError, BrokenPipeError):
                return -1  # cut off while sending: the 413 went first
            finally:
                connection.close()

        now = str(int(time.time()))
        assert status(CALLBACK, now, signature="00" * 64) == 401  # forged
        assert status(CALLBACK, str(int(time.time()) - 86_400)) == 401  # a day old
        assert status(b"{" + b" " * (2 * 1024 * 1024) + b"}", now) in (413, -1)
        assert status(CALLBACK, now) == 200  # and it goes on serving
        running.wait(lambda: any(isinstance(e, C2CMessageCreate) for e in running.delivered))
    finally:
        running.stop()


@pytest.mark.parametrize("kind", DRIVERS)
def test_a_failed_tls_handshake_is_let_go_and_serving_goes_on(
    kind: str, loop: LoopThread, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    server_ssl, client_ssl = tls
    hook = QQWebhook(WebhookConfig("1", SECRET, port=0, wall_offset=time.time() - time.monotonic()))
    running = Running(kind, hook, loop, server_ssl=server_ssl)
    try:
        # Plain HTTP to the TLS port: no HTTP answer, and the socket is closed
        # (a hang would time the read out and fail here).
        with socket.create_connection(("127.0.0.1", hook.port), timeout=DEADLINE) as plain:
            plain.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            answer = b""
            try:
                while chunk := plain.recv(4096):
                    answer += chunk
            except ConnectionResetError:  # closed with our bytes unread: a reset, as good
                pass
            assert not answer.startswith(b"HTTP/")
        # A client that does not trust the certificate gives up in the handshake.
        with pytest.raises(ssl.SSLCertVerificationError):
            signed_post(hook.port, CALLBACK, ssl.create_default_context())
        assert signed_post(hook.port, CALLBACK, client_ssl) == 200
        running.wait(lambda: any(isinstance(e, C2CMessageCreate) for e in running.delivered))
        running.wait(lambda: not hook.peers)  # every connection, the failed ones too, is gone
    finally:
        running.stop()
