"""``qqproto onebot serve`` end to end: implementations written with the
``websockets`` library dial the real command, and webhook clients sign their
POSTs with ``hmac`` directly, on loopback."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import signal
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from qqproto.adapters.onebot_run import Lines
from qqproto.adapters.onebot_serve import QUICK_WINDOW, ServeEcho

from . import test_onebot_reverse as reverse
from .e2e_servers import LoopThread
from .test_onebot_cli import Process, kind

TOKEN = "s3cret"
SECRET = "hush"


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


@pytest.fixture
def served() -> Iterator[tuple[Process, int]]:
    """The command on a free port, with --echo; the port it listens on."""
    process = Process(
        "--host", "127.0.0.1", "--port", "0", "--access-token", TOKEN, "--secret", SECRET,
        "--echo", command=("onebot", "serve"),
    )  # fmt: skip
    try:
        state = process.until(kind("state"))
        assert (state["from"], state["to"]) == ("STARTING", "LISTENING")
        yield process, int(state["why"].rsplit(":", 1)[1])
    finally:
        process.kill()


async def dial(port: int, self_id: str, token: str = TOKEN) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}", "X-Self-ID": self_id}
    headers["X-Client-Role"] = "Universal"
    return await connect(f"ws://127.0.0.1:{port}/", additional_headers=headers, max_size=None)


def group_message(self_id: int, n: int, text: str) -> str:
    return json.dumps(
        {
            "post_type": "message",
            "message_type": "group",
            "sub_type": "normal",
            "self_id": self_id,
            "user_id": 10001,
            "group_id": 20002,
            "message_id": n,
            "message": [{"type": "text", "data": {"text": text}}],
            "time": 2,
        }
    )


async def answer_one(ws: ClientConnection, retcode: int = 0) -> dict[str, Any]:
    action: dict[str, Any] = json.loads(await ws.recv())
    answer = {"status": "ok" if retcode == 0 else "failed", "retcode": retcode,
              "data": {"message_id": 9}, "echo": action["echo"]}  # fmt: skip
    await ws.send(json.dumps(answer))
    return action


def test_two_accounts_dial_and_each_is_answered_on_its_own_socket(
    loop: LoopThread, served: tuple[Process, int]
) -> None:
    process, port = served
    a = loop.run(dial(port, "1001"))
    b = loop.run(dial(port, "1002"))
    loop.run(a.send(group_message(1001, 1, "from a")))
    assert process.until(kind("event"))["content"] == "from a"
    action = loop.run(answer_one(a))
    assert action["action"] == "send_msg" and action["params"]["group_id"] == 20002
    reply = process.until(kind("reply"))
    assert reply == {"kind": "reply", "to": "1", "status": "ok", "code": None}
    loop.run(b.send(group_message(1002, 2, "from b")))
    assert process.until(kind("event"))["content"] == "from b"
    loop.run(answer_one(b, retcode=1200))
    assert process.until(kind("reply")) == {
        "kind": "reply", "to": "2", "status": "error", "code": 1200
    }  # fmt: skip
    loop.run(a.close())
    loop.run(b.close())
    process.process.send_signal(signal.SIGTERM)
    assert process.wait() == 0


def test_a_wrong_token_is_refused_and_the_server_goes_on(
    loop: LoopThread, served: tuple[Process, int]
) -> None:
    process, port = served
    with pytest.raises(InvalidStatus) as refused:
        loop.run(dial(port, "1001", token="nope"))
    assert refused.value.response.status_code == 403
    ws = loop.run(dial(port, "1001"))
    loop.run(ws.send(group_message(1001, 3, "still served")))
    assert process.until(kind("event"))["content"] == "still served"
    loop.run(ws.close())


def test_a_new_connection_replaces_the_old(loop: LoopThread, served: tuple[Process, int]) -> None:
    process, port = served
    old = loop.run(dial(port, "42"))
    new = loop.run(dial(port, "42"))
    loop.run(old.wait_closed())
    assert old.close_code == 1000 and "replaced" in (old.close_reason or "")
    loop.run(new.send(group_message(42, 4, "on the new one")))
    assert process.until(kind("event"))["content"] == "on the new one"
    loop.run(answer_one(new))
    assert process.until(kind("reply"))["status"] == "ok"
    loop.run(new.close())


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("POST", "/onebot/event", body, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def signature(body: bytes, secret: str = SECRET) -> str:
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def test_a_signed_post_is_echoed_as_its_quick_operation(served: tuple[Process, int]) -> None:
    process, port = served
    body = group_message(42, 5, "posted").encode()
    status, answer = post(port, body, {"X-Signature": signature(body), "X-Self-ID": "42"})
    assert status == 200
    assert json.loads(answer) == {"reply": "posted", "auto_escape": True, "at_sender": False}
    assert process.until(kind("event"))["content"] == "posted"
    assert process.until(kind("reply")) == {
        "kind": "reply", "to": "5", "status": "ok", "code": None
    }  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"X-Signature": "sha1=" + "0" * 40}, 403)],
)
def test_an_unsigned_or_forged_post_is_refused_and_dropped(
    served: tuple[Process, int], headers: dict[str, str], status: int
) -> None:
    process, port = served
    body = group_message(42, 6, "forged").encode()
    assert post(port, body, headers)[0] == status
    good = group_message(42, 7, "after").encode()
    assert post(port, good, {"X-Signature": signature(good)})[0] == 200
    assert process.until(kind("event"))["content"] == "after"  # the forged one never came


def test_an_oversize_post_gets_413_before_its_body(served: tuple[Process, int]) -> None:
    _, port = served
    size = 65 * 1024 * 1024  # past the 64 MiB a frame or a body may have
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"POST /onebot/event HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        assert sock.recv(100).startswith(b"HTTP/1.1 413 ")


def test_bad_arguments_exit_2_naming_the_argument() -> None:
    process = Process("--host", "127.0.0.1", "--port", "70000", command=("onebot", "serve"))
    assert process.wait() == 2
    assert process.process.stderr is not None
    assert "--port" in process.process.stderr.read()
    process.kill()


def test_a_port_in_use_fails_with_a_line_and_exit_3(served: tuple[Process, int]) -> None:
    _, port = served
    process = Process("--host", "127.0.0.1", "--port", str(port), command=("onebot", "serve"))
    try:
        failed = process.until(kind("failed"))
        assert str(port) in failed["reason"]
        assert process.wait() == 3
    finally:
        process.kill()


@pytest.mark.parametrize(
    ("segments", "status"),
    [
        ([{"type": "text", "data": {"text": "hi"}}], 200),
        ([{"type": "face", "data": {"id": "1"}}], 204),
    ],
)
def test_with_echo_a_post_with_nothing_to_echo_is_answered_at_once(
    segments: list[dict[str, Any]], status: int
) -> None:
    """No text: ``--echo`` has nothing to say, and the POST is answered now,
    not when the quick window ends (the server's clock never moves here)."""
    w = reverse.World(quick_window=QUICK_WINDOW)
    echo = ServeEcho(w.server, Lines(io.StringIO(), as_json=True), echo=True)
    body = json.dumps({**reverse.message(42, 5), "message": segments}).encode()
    reverse.post(w, body)
    for event in w.delivered:
        echo.on_event(event, w.now)
    [conn] = w.posts
    assert w.answer_of(conn).status == status
