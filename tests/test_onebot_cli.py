"""``qqproto onebot run`` end to end: the real command against an implementation
written with the ``websockets`` library, on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from .e2e_servers import LoopThread

DEADLINE = 20.0
TOKEN = "s3cret"


class Impl:
    """A NapCat-like v11 implementation: checks the token, sends the lifecycle
    frame and one group message, answers every action ok."""

    def __init__(
        self,
        *,
        refuse: int | None = None,
        answer_with: int = 0,
        status: str | None = None,
        hostile: tuple[str | bytes, ...] = (),
    ) -> None:
        self.status = status  # the answers' status (by default from the retcode)
        self.hostile = hostile
        self.refuse = refuse
        self.answer_with = answer_with
        self.actions: list[dict[str, Any]] = []
        self.url = ""
        self.server: Server | None = None

    async def start(self) -> Impl:
        self.server = await serve(
            self._handler, "127.0.0.1", 0, process_request=self._check, max_size=None
        )
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/"
        return self

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.refuse is not None:
            return connection.respond(HTTPStatus(self.refuse), "token refused\n")
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "no token\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        for frame in self.hostile:
            await ws.send(frame)
        await ws.send(
            json.dumps(
                {
                    "post_type": "meta_event",
                    "meta_event_type": "lifecycle",
                    "sub_type": "connect",
                    "self_id": 42,
                    "time": 1,
                }
            )
        )
        await ws.send(json.dumps({
            "post_type": "message", "message_type": "group", "sub_type": "normal",
            "self_id": 42, "user_id": 10001, "group_id": 20002, "message_id": -7,
            "message": "[CQ:at,qq=42] hello &#91;world&#93;", "time": 2,
        }))  # fmt: skip
        async for text in ws:
            action = json.loads(text)
            self.actions.append(action)
            await ws.send(json.dumps({
                "status": self.status or ("ok" if self.answer_with == 0 else "failed"),
                "retcode": self.answer_with, "data": {"message_id": 8}, "echo": action["echo"],
            }))  # fmt: skip


class Process:
    """One ``qqproto onebot run`` (or ``command``) process and the lines it printed."""

    def __init__(self, *args: str, command: tuple[str, ...] = ("onebot", "run")) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qqproto", *command, "--json", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env={**os.environ},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        while True:
            line = self.lines.get(timeout=DEADLINE)
            assert line is not None, f"stdout ended; saw {self.seen}"
            record: dict[str, Any] = json.loads(line)  # nothing but JSON on stdout
            self.seen.append(record)
            if wanted(record):
                return record

    def wait(self) -> int:
        return self.process.wait(timeout=DEADLINE)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=DEADLINE)


def kind(name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda record: record["kind"] == name


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


def test_events_and_echo_replies_as_json_lines_then_sigterm_exits_0(loop: LoopThread) -> None:
    impl = loop.run(Impl().start())
    process = Process("--ws-url", impl.url, "--access-token", TOKEN, "--echo")
    try:
        state = process.until(kind("state"))
        assert (state["from"], state["to"]) == ("CONNECTING", "CONNECTED")
        event = process.until(kind("event"))
        assert event == {
            "kind": "event",
            "type": "message.group",
            "id": "-7",  # a negative id keeps its sign
            "user": "10001",
            "group": "20002",
            "content": "@42 hello [world]",  # entities undone, the mention as @id
            "to_me": True,
        }
        reply = process.until(kind("reply"))
        assert reply == {"kind": "reply", "to": "-7", "status": "ok", "code": None}
        [action] = impl.actions
        assert action["action"] == "send_msg" and action["params"]["group_id"] == 20002
        assert action["params"]["message"] == [
            {"type": "text", "data": {"text": "@42 hello [world]"}}
        ]
        process.process.send_signal(signal.SIGTERM)
        assert process.wait() == 0
    finally:
        process.kill()
        loop.run(impl.stop())


HOSTILE: tuple[str | bytes, ...] = (
    "not json {",
    b"\x00\x01binary",
    "[1, 2]",
    '"a string"',
    '{"post_type": "message"}',  # missing every field
    '{"post_type": "x_custom", "x": 1}',
    '{"status": "ok", "retcode": 0, "echo": "nobody"}',
    json.dumps({"post_type": "notice", "notice_type": "x", "blob": "x" * (2 * 1024 * 1024)}),
    "[" * 100_000 + "]" * 100_000,
    r'{"post_type": "notice", "notice_type": "\ud800"}',  # JSON-escaped: a lone surrogate
)


def test_hostile_frames_end_nothing_and_later_events_arrive(loop: LoopThread) -> None:
    impl = loop.run(Impl(hostile=HOSTILE).start())
    process = Process("--ws-url", impl.url, "--access-token", TOKEN)
    try:
        event = process.until(lambda r: r["kind"] == "event" and r["id"] == "-7")
        assert event["content"] == "@42 hello [world]"
        assert process.process.poll() is None  # still running
        assert not [r for r in process.seen if r["kind"] in ("failed", "retry")]
    finally:
        process.kill()
        loop.run(impl.stop())


def test_a_failed_answer_is_an_error_reply_line_with_its_retcode(loop: LoopThread) -> None:
    impl = loop.run(Impl(answer_with=1404).start())
    process = Process("--ws-url", impl.url, "--access-token", TOKEN, "--echo")
    try:
        reply = process.until(kind("reply"))
        assert (reply["status"], reply["code"]) == ("error", 1404)
    finally:
        process.kill()
        loop.run(impl.stop())


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_a_failed_line_and_exit_3(loop: LoopThread, status: int) -> None:
    impl = loop.run(Impl(refuse=status).start())
    process = Process("--ws-url", impl.url, "--access-token", "wrong")
    try:
        failed = process.until(kind("failed"))
        assert failed["reason"] == f"access token refused (HTTP {status} at the upgrade)"
        assert process.wait() == 3
    finally:
        process.kill()
        loop.run(impl.stop())


def test_a_refused_connection_gets_retry_lines(loop: LoopThread) -> None:
    async def free_port() -> int:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port: int = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return port

    port = loop.run(free_port())
    process = Process("--ws-url", f"ws://127.0.0.1:{port}/")
    try:
        retry = process.until(kind("retry"))
        assert (retry["attempt"], retry["of"], retry["what"]) == (1, None, "onebot")
        assert 0.5 <= retry["delay"] <= 1.5 and "refused" in retry["reason"]
    finally:
        process.kill()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ([], "--ws-url"),
        (["--ws-url", "http://x/"], "--ws-url"),
        (["--ws-url", "ws://x/", "--protocol", "v13"], "--protocol"),
        (["--ws-url", "ws://x/", "--access-token", " spaced"], "--access-token"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(args: list[str], named: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qqproto", "onebot", "run", *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(  # the message, not the usage
            f"qqproto onebot run: error: argument {named}"
        )
        or f"arguments are required: {named}" in done.stderr
    )


def test_an_async_answer_is_an_error_reply_line_its_retcode_not_0(loop: LoopThread) -> None:
    impl = loop.run(Impl(answer_with=1, status="async").start())
    process = Process("--ws-url", impl.url, "--access-token", TOKEN, "--echo")
    try:
        reply = process.until(kind("reply"))
        assert (reply["status"], reply["code"]) == ("error", 1)
    finally:
        process.kill()
        loop.run(impl.stop())


def test_sigint_exits_0_too(loop: LoopThread) -> None:
    impl = loop.run(Impl().start())
    process = Process("--ws-url", impl.url, "--access-token", TOKEN)
    try:
        process.until(kind("event"))
        process.process.send_signal(signal.SIGINT)
        assert process.wait() == 0
    finally:
        process.kill()
        loop.run(impl.stop())
