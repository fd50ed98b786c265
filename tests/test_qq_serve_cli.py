"""``qqproto qq serve`` as a subprocess: the platform's callbacks, signed here with
``cryptography`` directly (not with qqproto's signing), on loopback."""

from __future__ import annotations

import http.client
import json
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from qqproto.adapters.serve import ThreadedSimulatorServer
from qqproto.testing import QQSimulator, SimulatorConfig

from .test_cli_run import APP_ID, SECRET, kind
from .test_onebot_cli import Process

OFFICIAL = (  # spec 10.3's vector: secret DG5g3B4j9X2KOErG
    "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d0"
    "1bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706"
)


def platform_key(secret: str) -> Ed25519PrivateKey:
    seed = secret.encode()
    while len(seed) < 32:
        seed += seed
    return Ed25519PrivateKey.from_private_bytes(seed[:32])


def start(secret: str, *more: str) -> tuple[Process, int]:
    process = Process(
        "--app-id", APP_ID, "--secret", secret, "--host", "127.0.0.1", "--port", "0", *more,
        command=("qq", "serve"),
    )  # fmt: skip
    state = process.until(kind("state", to="LISTENING"))
    return process, int(state["why"].rsplit(":", 1)[1])


@pytest.fixture
def served() -> Iterator[tuple[Process, int]]:
    process, port = start(SECRET)
    try:
        yield process, port
    finally:
        process.kill()


def request(port: int, method: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request(method, "/", body, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def signed(body: bytes, *, secret: str = SECRET, age: float = 0.0) -> dict[str, str]:
    stamp = str(int(time.time() - age))
    signature = platform_key(secret).sign(stamp.encode() + body).hex()
    return {"X-Signature-Ed25519": signature, "X-Signature-Timestamp": stamp}


def dispatch(envelope: str, msg_id: str, content: str) -> bytes:
    d = {
        "id": msg_id,
        "content": content,
        "timestamp": "2026-12-07T10:00:00+08:00",
        "author": {"id": "u1", "user_openid": "u1", "union_openid": "u1"},
    }
    return json.dumps({"id": envelope, "op": 0, "t": "C2C_MESSAGE_CREATE", "d": d}).encode()


def test_op_13_is_answered_with_the_platforms_own_vector() -> None:
    process, port = start("DG5g3B4j9X2KOErG")
    try:
        body = b'{"d": {"plain_token": "Arq0D5A61EgUu4OxUvOp", "event_ts": "1725442341"}, "op": 13}'
        status, answer = request(port, "POST", body, {})
        assert status == 200
        assert json.loads(answer) == {"plain_token": "Arq0D5A61EgUu4OxUvOp", "signature": OFFICIAL}
    finally:
        process.kill()


def test_a_signed_dispatch_is_one_event_line_and_its_redelivery_none(
    served: tuple[Process, int],
) -> None:
    process, port = served
    body = dispatch("C2C_MESSAGE_CREATE:1", "ROBOT1.0_a", "hello")
    status, answer = request(port, "POST", body, signed(body))
    assert 200 <= status < 300 and json.loads(answer) == {"op": 12, "d": 0}
    event = process.until(kind("event"))
    assert (event["type"], event["id"], event["content"]) == (
        "C2C_MESSAGE_CREATE",
        "ROBOT1.0_a",
        "hello",
    )
    assert request(port, "POST", body, signed(body))[0] == 200  # the platform retries
    second = dispatch("C2C_MESSAGE_CREATE:2", "ROBOT1.0_b", "next")
    assert request(port, "POST", second, signed(second))[0] == 200
    assert process.until(kind("event"))["id"] == "ROBOT1.0_b"  # no line came between
    process.process.send_signal(signal.SIGTERM)
    assert process.wait() == 0


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda body: {}, 401),
        (lambda body: signed(body, secret="not-the-secret"), 401),
        (lambda body: signed(body + b" "), 401),
        (lambda body: signed(body, age=86_400), 401),  # a day old
    ],
)
def test_forged_and_stale_callbacks_get_401_and_no_line(
    served: tuple[Process, int], make: Callable[[bytes], dict[str, str]], status: int
) -> None:
    process, port = served
    body = dispatch("C2C_MESSAGE_CREATE:9", "ROBOT1.0_x", "forged")
    assert request(port, "POST", body, make(body))[0] == status
    good = dispatch("C2C_MESSAGE_CREATE:10", "ROBOT1.0_y", "real")
    assert request(port, "POST", good, signed(good))[0] == 200
    assert process.until(kind("event"))["id"] == "ROBOT1.0_y"  # the forged one made none


def test_a_signed_body_that_is_no_json_gets_400_and_a_get_405(served: tuple[Process, int]) -> None:
    _, port = served
    assert request(port, "POST", b"not json", signed(b"not json"))[0] == 400
    assert request(port, "GET", b"", {})[0] == 405


def test_echo_replies_through_rest_with_the_reply_ledger() -> None:
    sim = QQSimulator(SimulatorConfig(app_id=APP_ID, secret=SECRET))
    with ThreadedSimulatorServer(sim) as platform:
        endpoints = ("--api-base", platform.base_url, "--token-url", platform.token_url)
        process, port = start(SECRET, "--echo", *endpoints)
        try:
            d: dict[str, Any] = platform.call(lambda now: sim.c2c_message("echo me", now))
            body = json.dumps(
                {"id": "C2C_MESSAGE_CREATE:1", "op": 0, "t": "C2C_MESSAGE_CREATE", "d": d}
            ).encode()
            assert request(port, "POST", body, signed(body))[0] == 200
            assert process.until(kind("event"))["id"] == d["id"]
            reply = process.until(kind("reply"))
            assert reply == {"kind": "reply", "to": d["id"], "status": "ok", "code": None}
            assert [(s.msg_id, s.msg_seq, s.content) for s in sim.sent] == [(d["id"], 1, "echo me")]
        finally:
            process.kill()
