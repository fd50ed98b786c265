"""``qqproto qq run`` as a subprocess against the simulator on loopback.

The simulator runs in this process (threads); the command runs as a user
would run it, and these tests read its JSON lines and its exit status. Waits
have generous deadlines and never stand in for synchronisation.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from qqproto.adapters import cli, runner
from qqproto.adapters.bot import QQBot
from qqproto.adapters.report import JsonReport
from qqproto.adapters.serve import SimulatorServer, ThreadedSimulatorServer
from qqproto.testing import QQSimulator, SimulatorConfig

DEADLINE = 20.0
APP_ID = "102000000"
SECRET = "simulator-secret"
RUN_ARGS = ["qq", "run", "--app-id", APP_ID]


class Command:
    """One ``qqproto qq run`` process and the lines it printed."""

    def __init__(self, args: list[str], secret: str = SECRET, **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "qqproto", "qq", "run", "--app-id", APP_ID, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env={**os.environ, "QQPROTO_SECRET": secret, **env},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read lines until one is ``wanted``; every line must be one JSON object."""
        while True:
            try:
                line = self.lines.get(timeout=DEADLINE)
            except queue.Empty:
                raise AssertionError(f"no wanted line in {DEADLINE} s; saw {self.seen}") from None
            if line is None:
                raise AssertionError(f"stdout ended; saw {self.seen}; stderr: {self.stderr()}")
            record = json.loads(line)  # nothing but JSON on stdout
            assert isinstance(record, dict), line
            self.seen.append(record)
            if wanted(record):
                return record

    def wait(self) -> int:
        code = self.process.wait(timeout=DEADLINE)
        self._reader.join(timeout=DEADLINE)
        while (line := self.lines.get(timeout=DEADLINE)) is not None:
            self.seen.append(json.loads(line))
        return code

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stderr is not None
        return self.process.stderr.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=DEADLINE)
        self._reader.join(DEADLINE)  # it reads to EOF; closing under it would raise there
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def kind(name: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda record: (
        record["kind"] == name and all(record.get(k) == v for k, v in fields.items())
    )


@pytest.fixture
def server() -> Iterator[ThreadedSimulatorServer]:
    sim = QQSimulator(SimulatorConfig(app_id=APP_ID, secret=SECRET, heartbeat_interval_ms=500))
    with ThreadedSimulatorServer(sim) as served:
        yield served


def endpoints(server: ThreadedSimulatorServer) -> list[str]:
    return ["--api-base", server.base_url, "--token-url", server.token_url]


@pytest.fixture
def run(server: ThreadedSimulatorServer) -> Iterator[Callable[..., Command]]:
    started: list[Command] = []

    def start(*args: str, secret: str = SECRET, **env: str) -> Command:
        command = Command([*endpoints(server), "--json", *args], secret, **env)
        started.append(command)
        return command

    yield start
    for command in started:
        command.stop()


def sim_of(server: ThreadedSimulatorServer) -> QQSimulator:
    assert isinstance(server.sim, QQSimulator)
    return server.sim


def test_echo_json_lines_and_a_clean_exit_on_sigterm(
    server: ThreadedSimulatorServer, run: Callable[..., Command]
) -> None:
    command = run("--echo")
    command.until(kind("state", to="READY"))
    sim = sim_of(server)
    group = server.call(lambda now: sim.group_at_message("hello there", now))
    event = command.until(kind("event", type="GROUP_AT_MESSAGE_CREATE"))
    assert event["id"] == group["id"] and event["content"] == "hello there"
    assert event["attachments"] == [] and isinstance(event["seq"], int)
    reply = command.until(kind("reply"))
    assert reply == {"kind": "reply", "to": group["id"], "status": "ok", "code": None}
    assert [(s.msg_id, s.msg_seq, s.content) for s in sim.sent] == [(group["id"], 1, "hello there")]

    # A bare @bot gets its line with empty content, and no echo.
    bare = server.call(lambda now: sim.group_at_message("", now))
    c2c = server.call(lambda now: sim.c2c_message("one to one", now))
    assert command.until(kind("event", id=bare["id"]))["content"] == ""
    command.until(kind("reply", to=c2c["id"], status="ok"))
    assert [s.msg_id for s in sim.sent] == [group["id"], c2c["id"]]

    command.process.send_signal(signal.SIGTERM)
    assert command.wait() == 0
    states = [(r["from"], r["to"]) for r in command.seen if r["kind"] == "state"]
    assert ("CONNECTING", "IDENTIFY") in states and ("IDENTIFY", "READY") in states
    assert ("READY", "CLOSED") in states and states[-1] == ("BOT_RUNNING", "BOT_CLOSED")
    # Each says why and which machine moved; the token's moves are logged, not lines.
    lines = [r for r in command.seen if r["kind"] == "state"]
    assert {r["machine"] for r in lines} == {"gateway", "bot"}
    assert all(r["why"] for r in lines)
    assert lines[0]["why"] == "access token received"  # BOT_AUTHENTICATING -> BOT_DISCOVERING


def test_only_text_is_echoed_and_json_is_utf8_whatever_the_console(
    server: ThreadedSimulatorServer, run: Callable[..., Command]
) -> None:
    command = run("--echo", PYTHONIOENCODING="ascii")  # a console that cannot show 你好
    command.until(kind("state", to="READY"))
    sim = sim_of(server)

    def picture_only(now: float) -> dict[str, Any]:
        d = dict(sim.group_at_message("", now), id="ROBOT1.0_picture-only")
        d["attachments"] = [{"content_type": "image/png", "url": "img.example/1.png"}]
        sim.dispatch("GROUP_AT_MESSAGE_CREATE", d, now)
        return d

    server.call(picture_only)
    text = server.call(lambda now: sim.c2c_message("你好 👋", now))
    picture = command.until(kind("event", id="ROBOT1.0_picture-only"))
    assert picture["attachments"] == [
        {"url": "https://img.example/1.png", "content_type": "image/png"}
    ]
    assert command.until(kind("event", id=text["id"]))["content"] == "你好 👋"
    command.until(kind("reply", to=text["id"], status="ok"))
    assert [s.content for s in sim.sent] == ["你好 👋"]  # the picture got no echo
    command.process.send_signal(signal.SIGTERM)
    assert command.wait() == 0
    assert "Traceback" not in command.stderr() and "exception" not in command.stderr()


def test_every_message_gets_one_line_across_a_drop_and_resume(
    server: ThreadedSimulatorServer, run: Callable[..., Command]
) -> None:
    command = run()
    command.until(kind("state", to="READY"))
    sim = sim_of(server)
    first = server.call(lambda now: sim.c2c_message("before", now))
    command.until(kind("event", id=first["id"]))
    server.call(sim.drop)

    def message(text: str) -> Callable[[float], dict[str, Any]]:
        return lambda now: sim.c2c_message(text, now)

    later = [server.call(message(f"during {i}")) for i in range(3)]
    command.until(kind("state", **{"from": "RESUMING", "to": "READY"}))
    last = server.call(lambda now: sim.c2c_message("after", now))
    command.until(kind("event", id=last["id"]))
    ids = [r["id"] for r in command.seen if r["kind"] == "event"]
    assert ids == [first["id"], *(d["id"] for d in later), last["id"]]
    command.process.send_signal(signal.SIGINT)
    assert command.wait() == 0


def test_allow_from_keeps_strangers_out(
    server: ThreadedSimulatorServer, run: Callable[..., Command]
) -> None:
    command = run("--allow-from", "FRIEND", "--echo")
    command.until(kind("state", to="READY"))
    sim = sim_of(server)
    server.call(lambda now: sim.c2c_message("from a stranger", now))
    friend = server.call(lambda now: sim.c2c_message("from a friend", now, user_openid="FRIEND"))
    command.until(kind("reply", to=friend["id"]))
    events = [r for r in command.seen if r["kind"] == "event"]
    assert [e["id"] for e in events] == [friend["id"]]
    assert [s.msg_id for s in sim.sent] == [friend["id"]]


def test_a_fatal_close_code_is_a_failed_line_and_exit_3(
    server: ThreadedSimulatorServer, run: Callable[..., Command]
) -> None:
    command = run()
    command.until(kind("state", to="READY"))
    server.call(lambda now: sim_of(server).close(4914, now))
    failed = command.until(kind("failed"))
    assert "4914" in failed["reason"]
    assert command.wait() == 3


def test_wrong_credentials_fail_with_the_platforms_code(run: Callable[..., Command]) -> None:
    command = run(secret="not-the-secret")
    failed = command.until(kind("failed"))
    assert "100016" in failed["reason"]
    assert command.wait() == 3
    assert not any(r["kind"] == "state" and r["to"] == "CONNECTING" for r in command.seen)


def test_max_attempts_counts_the_first_attempt(run: Callable[..., Command]) -> None:
    import socket

    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    command = run("--gateway-url", f"ws://127.0.0.1:{port}/websocket", "--max-attempts", "1")
    failed = command.until(kind("failed"))
    assert "gave up after 1 failed attempts" in failed["reason"]
    assert command.wait() == 3


def test_each_failed_attempt_that_will_be_retried_gets_a_retry_line(
    run: Callable[..., Command],
) -> None:
    import socket

    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    command = run("--gateway-url", f"ws://127.0.0.1:{port}/websocket", "--max-attempts", "2")
    failed = command.until(kind("failed"))
    assert command.wait() == 3
    [retry] = [line for line in command.seen if line["kind"] == "retry"]
    # The shape, in its order; then what was attempted (an extension).
    assert list(retry) == ["kind", "attempt", "of", "delay", "reason", "what"]
    assert retry["what"] == "gateway"
    assert (retry["attempt"], retry["of"]) == (1, 2)
    assert 0.5 <= retry["delay"] <= 1.5  # the first wait: 1 s, give or take its jitter
    assert "connection refused" in retry["reason"]
    # The attempt that spends the budget is the failed line, after the retry line.
    assert command.seen.index(retry) < command.seen.index(failed)
    assert "gave up after 2 failed attempts" in failed["reason"]


def test_a_token_endpoint_that_refuses_connections_gets_retry_lines_too(
    run: Callable[..., Command],
) -> None:
    import socket

    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    token_url = f"http://127.0.0.1:{port}/app/getAppAccessToken"
    command = run("--token-url", token_url, "--max-attempts", "2")
    failed = command.until(kind("failed"))
    assert command.wait() == 3
    [retry] = [line for line in command.seen if line["kind"] == "retry"]
    assert (retry["what"], retry["attempt"], retry["of"]) == ("token", 1, 2)
    assert "refused" in retry["reason"]
    assert command.seen.index(retry) < command.seen.index(failed)


def test_human_output_without_json(server: ThreadedSimulatorServer) -> None:
    command = subprocess.Popen(
        [sys.executable, "-m", "qqproto", "qq", "run", "--app-id", APP_ID, *endpoints(server)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "QQPROTO_SECRET": "not-the-secret"},
    )
    out, err = command.communicate(timeout=DEADLINE)
    assert command.returncode == 3
    assert out.splitlines()[-1].startswith("FAILED: ") and "100016" in out
    assert "not-the-secret" not in out + err


def test_a_closed_stdout_stops_the_bot_cleanly(server: ThreadedSimulatorServer) -> None:
    # qqproto qq run --json | head -2: the reader goes away; that means "stop".
    process = subprocess.Popen(
        [sys.executable, "-m", "qqproto", *RUN_ARGS, *endpoints(server), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "QQPROTO_SECRET": SECRET},
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        # Read up to READY on a thread that then stops: closing a pipe another
        # thread is blocked reading would wait for that read.
        reader = threading.Thread(target=lambda: read_until_ready(process.stdout))
        reader.start()
        reader.join(DEADLINE)
        assert not reader.is_alive(), "no READY line"
        process.stdout.close()
        sim = sim_of(server)
        server.call(lambda now: sim.c2c_message("anyone there?", now))  # a line to write
        assert process.wait(timeout=DEADLINE) == 0
        assert "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()


def read_until_ready(stream: Any) -> None:
    for line in stream:
        if json.loads(line).get("to") == "READY":
            return


def test_an_unexpected_error_is_the_last_line_and_exit_3() -> None:
    class Broken(JsonReport):
        def event(self, event: Any) -> None:
            raise KeyError("a bug")

    sim = QQSimulator(SimulatorConfig(app_id=APP_ID, secret=SECRET))
    out = io.StringIO()

    async def scenario() -> int:
        async with SimulatorServer(sim) as served:
            argv = [*RUN_ARGS, "--api-base", served.base_url, "--token-url", served.token_url]
            args = cli.build_parser().parse_args([*argv, "--json"])
            served.call(lambda now: sim.c2c_message("trips the bug", now))  # after READY
            code: int = await asyncio.wait_for(
                runner.serve(runner.config_from(args, SECRET), args, Broken(out)), DEADLINE
            )
            return code

    assert asyncio.run(scenario()) == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[-1] == {"kind": "failed", "reason": "internal error: KeyError: 'a bug'"}
    closed = {"kind": "state", "from": "BOT_RUNNING", "to": "BOT_CLOSED"}
    assert any(closed.items() <= line.items() for line in lines)


def test_an_echo_under_way_when_asked_to_stop_finishes_and_gets_its_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate, started = asyncio.Event(), asyncio.Event()
    real_reply = QQBot.reply

    async def held_reply(self: QQBot, event: object, text: str, **kw: Any) -> Any:
        started.set()
        await gate.wait()
        return await real_reply(self, event, text, **kw)

    monkeypatch.setattr(QQBot, "reply", held_reply)
    sim = QQSimulator(SimulatorConfig(app_id=APP_ID, secret=SECRET))
    out = io.StringIO()

    async def scenario() -> int:
        async with SimulatorServer(sim) as served:
            argv = [*RUN_ARGS, "--api-base", served.base_url, "--token-url", served.token_url]
            args = cli.build_parser().parse_args([*argv, "--echo", "--json"])
            report = JsonReport(out)
            bot_run = asyncio.create_task(
                runner.serve(runner.config_from(args, SECRET), args, report)
            )
            async with asyncio.timeout(DEADLINE):
                while not sim.live:
                    await asyncio.sleep(0.01)
                message = served.call(lambda now: sim.group_at_message("last words", now))
                await started.wait()
                assert report.on_closed is not None
                report.on_closed()  # what SIGTERM or a closed stdout does
                await asyncio.sleep(0)
                gate.set()  # the reply goes out while the bot is stopping
                code: int = await bot_run
            assert [s.msg_id for s in sim.sent] == [message["id"]]
            return code

    assert asyncio.run(scenario()) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    replies = [line for line in lines if line["kind"] == "reply"]
    assert replies == [{"kind": "reply", "to": replies[0]["to"], "status": "ok", "code": None}]
    assert lines[-1] == {
        "kind": "state",
        "from": "BOT_RUNNING",
        "to": "BOT_CLOSED",
        "why": "closed by the application",
        "machine": "bot",
    }


def test_shards_run_in_one_process_and_each_event_says_its_shard() -> None:
    sim = QQSimulator(SimulatorConfig(app_id=APP_ID, secret=SECRET, shards=4, max_concurrency=4))
    with ThreadedSimulatorServer(sim) as server:
        command = Command(
            [*endpoints(server), "--json", "--shards", "auto", "--shard-slice", "1..2"]
        )
        try:
            for _ in range(2):
                command.until(kind("state", to="READY"))
            guild = str((2 << 22) | 5)  # the platform routes it to shard 2 of 4
            server.call(lambda now: sim.guild_at_message("sharded", now, guild_id=guild))
            event = command.until(kind("event", type="AT_MESSAGE_CREATE"))
            assert event["shard"] == [2, 4] and event["content"] == "sharded"
            assert sorted(tuple(i.shard) for i in sim.identifies) == [(1, 4), (2, 4)]  # type: ignore[arg-type]
        finally:
            command.stop()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--shards", "0"], "--shards"),
        (["--shards", "many"], "--shards"),
        (["--shards", "4", "--shard-slice", "3..1"], "--shard-slice"),
        (["--shards", "4", "--shard-slice", "2..4"], "--shard-slice"),
        (["--shard-slice", "0..1"], "--shard-slice"),
    ],
)
def test_bad_shard_options_are_usage_errors(args: list[str], said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qqproto", *RUN_ARGS, "--secret", SECRET, *args],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 2 and said in done.stderr, done.stderr
