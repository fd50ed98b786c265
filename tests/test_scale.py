"""One bot across processes, through a real redis-server, against the sharded simulator.

Each process is ``tests/scale_proc.py`` in one role (or the ``qqproto``
command itself), started here and killed here, SIGKILL included. The
simulator is served in this process on loopback; the identify window is
shortened on both sides (0.3 s for the platform's 5 s).
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qqproto.adapters.coordination import Coordination
from qqproto.adapters.feed import entry_of, key_of
from qqproto.adapters.feeder import Feeder
from qqproto.adapters.redis import connect
from qqproto.adapters.serve import ThreadedSimulatorServer
from qqproto.adapters.worker import Worker
from qqproto.qq import Dispatch, Event
from qqproto.qq.decode import EventDecoder
from qqproto.testing import QQSimulator, SimulatorConfig

from .redis_server import RedisServer

DEADLINE = 30.0
#: How long to wait for a line that must not come.
QUIET = 2.0
WINDOW = 0.3
ROOT = Path(__file__).resolve().parent.parent


class Proc:
    """A child process and the JSON lines it printed."""

    def __init__(self, *args: str, module: str = "tests.scale_proc") -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "QQPROTO_SECRET": "simulator-secret"},
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def until(
        self, wanted: Callable[[dict[str, Any]], bool], within: float = DEADLINE
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no wanted line; saw {self.seen}") from None
            if line is None:
                assert self.process.stderr is not None
                self.process.wait(DEADLINE)
                raise AssertionError(f"ended; saw {self.seen}; {self.process.stderr.read()}")
            self.seen.append(line)
            if wanted(line):
                return line

    def kill(self) -> None:
        """SIGKILL (no goodbye), then let its pipes go."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(DEADLINE)
        self._reader.join(DEADLINE)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


@pytest.fixture
def platform() -> Iterator[tuple[QQSimulator, ThreadedSimulatorServer]]:
    sim = QQSimulator(
        SimulatorConfig(
            shards=4, max_concurrency=1, identify_window=WINDOW, heartbeat_interval_ms=500
        )
    )
    with ThreadedSimulatorServer(sim) as server:
        yield sim, server


def app() -> str:
    """The simulator's app: each test has a Redis of its own, so no key is another test's."""
    return "102000000"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    yield server
    server.stop()


def gateway_args(
    server: ThreadedSimulatorServer, url: str, app_id: str, first: int, last: int
) -> list[str]:
    return [
        "gateway", "--redis", url, "--app-id", app_id, "--api-base", server.base_url,
        "--token-url", server.token_url, "--shards", "4",
        "--first", str(first), "--last", str(last), "--window", str(WINDOW),
    ]  # fmt: skip


def both_ready(proc: Proc) -> Callable[[dict[str, Any]], bool]:
    """Wanted once ``proc`` said both its shards are READY."""
    return lambda line: len([s for s in proc.seen if "ready" in s]) == 2


def test_processes_identify_through_one_gate(
    redis_server: RedisServer, platform: Any, procs: list[Proc]
) -> None:
    sim, server = platform
    app_id = app()
    for first in (0, 2):  # two processes, two shards each
        procs.append(Proc(*gateway_args(server, redis_server.url, app_id, first, first + 1)))
    for proc in procs:
        proc.until(both_ready(proc))
    ready = sorted((i.now, tuple(i.shard)) for i in sim.identifies if i.outcome == "READY")
    assert sorted(shard for _, shard in ready) == [(i, 4) for i in range(4)]
    assert not [i for i in sim.identifies if i.outcome != "READY"]  # none too soon
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(ready)]
    assert all(gap >= WINDOW * 0.95 for gap in gaps), gaps


def test_a_process_killed_holding_a_slot_blocks_no_one_beyond_the_window(
    redis_server: RedisServer, procs: list[Proc]
) -> None:
    app_id, window = app(), 1.0
    holder = Proc("slot", "--redis", redis_server.url, "--app-id", app_id, "--window", str(window))
    procs.append(holder)
    holder.until(lambda line: line.get("held") is True)
    killed_at = time.monotonic()
    holder.kill()  # mid-identify: it holds the slot and never identifies

    async def take() -> float:
        shared = connect(redis_server.url, app_id)
        try:
            await shared.slots.acquire(1, hold=5.0)
        finally:
            await shared.aclose()
        return time.monotonic() - killed_at

    waited = asyncio.run(take())
    assert waited < window + 5.0  # the window, not forever (5 s: a slow machine's slack)


def wait_for_saved_sessions(url: str, app_id: str, shards: list[tuple[int, int]]) -> None:
    """Until the store holds a session for each of ``shards`` (saved every 0.1 s)."""

    async def saved() -> bool:
        shared = connect(url, app_id)
        try:
            return all([await shared.sessions.load(shard) for shard in shards])
        finally:
            await shared.aclose()

    deadline = time.monotonic() + DEADLINE
    while not asyncio.run(saved()):
        assert time.monotonic() < deadline, "the sessions were never saved"
        time.sleep(0.05)


def test_a_restarted_process_resumes_its_shards(
    redis_server: RedisServer, platform: Any, procs: list[Proc]
) -> None:
    sim, server = platform
    app_id = app()
    first = Proc(*gateway_args(server, redis_server.url, app_id, 0, 1))
    procs.append(first)
    first.until(both_ready(first))
    wait_for_saved_sessions(redis_server.url, app_id, [(0, 4), (1, 4)])
    first.kill()  # SIGKILL: no goodbye, the sessions stay resumable on the platform
    identifies = len(sim.identifies)
    again = Proc(*gateway_args(server, redis_server.url, app_id, 0, 1))
    procs.append(again)
    assert again.until(lambda line: "restored" in line)["restored"] == 2
    again.until(both_ready(again))
    assert len(sim.identifies) == identifies  # resumed: no new session
    assert [r.outcome for r in sim.resumes][-2:] == ["RESUMED", "RESUMED"]


def frame(message_id: str, seq: int = 1) -> str:
    d = {
        "id": message_id,
        "content": " hi",
        "timestamp": "2026-12-07T10:00:00+08:00",
        "author": {"member_openid": "M"},
        "group_openid": "G",
    }
    return json.dumps({"op": 0, "s": seq, "t": "GROUP_AT_MESSAGE_CREATE", "id": f"E{seq}", "d": d})


def test_a_worker_killed_mid_event_leaves_it_to_another_and_each_is_handled_once(
    redis_server: RedisServer, procs: list[Proc]
) -> None:
    app_id = app()

    async def publish() -> None:
        shared = connect(redis_server.url, app_id)
        events = [EventDecoder().decode_dispatch(frame(f"m{i}", i)) for i in range(6)]
        await shared.stream.publish([entry_of(e) for e in events])
        await shared.aclose()

    asyncio.run(publish())
    common = ["--redis", redis_server.url, "--app-id", app_id, "--min-idle", "0.5"]
    doomed = Proc("worker", *common, "--name", "doomed", "--hang-on", "m0")
    procs.append(doomed)
    doomed.until(lambda line: line.get("hanging") == "m0")
    doomed.kill()
    survivor = Proc("worker", *common, "--name", "survivor")
    procs.append(survivor)
    # The doomed worker took the whole batch: the survivor takes all of it over.
    survivor.until(lambda line: len([s for s in survivor.seen if "handled" in s]) == 6)
    with pytest.raises(AssertionError, match="no wanted line"):
        survivor.until(lambda line: "handled" in line, within=QUIET)  # and nothing twice
    handled = [s["handled"] for p in (doomed, survivor) for s in p.seen if "handled" in s]
    assert sorted(handled) == [f"m{i}" for i in range(6)]


def test_two_workers_replying_to_one_message_never_share_a_msg_seq(
    redis_server: RedisServer, platform: Any, procs: list[Proc]
) -> None:
    sim, server = platform
    app_id = app()
    d = server.call(lambda now: sim.group_at_message("answer me twice", now))
    message = json.dumps({"op": 0, "s": 1, "t": "GROUP_AT_MESSAGE_CREATE", "id": "E1", "d": d})
    common = ["--redis", redis_server.url, "--app-id", app_id, "--api-base", server.base_url]
    common += ["--token-url", server.token_url, "--frame", message]
    for name in ("a", "b"):
        procs.append(Proc("reply", *common, "--name", name))
    said = [p.until(lambda line: "seq" in line) for p in procs]
    assert sorted(s["seq"] for s in said) == [1, 2] and all(s["ok"] for s in said)
    assert sorted(s.msg_seq for s in sim.sent) == [1, 2] and not sim.rejected


def test_redis_restarting_under_load_loses_nothing_it_acknowledged(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, persist=True)
    app_id = app()
    handled: list[str] = []

    async def main() -> int:
        shared = connect(server.url, app_id)

        async def handle(event: Event | Dispatch) -> None:
            handled.append(key_of(event))

        worker = Worker(shared, "w", handle, block=0.1)
        stop = asyncio.Event()
        working = asyncio.create_task(worker.run(stop))
        publisher = _Publisher(shared)
        feeding = asyncio.create_task(publisher.feeder.run())
        for n in range(300):
            publisher.feed(n)
            if n == 150:
                await asyncio.to_thread(server.restart)  # under load
            await asyncio.sleep(0.002)
        deadline = time.monotonic() + DEADLINE
        while len(set(handled)) < publisher.feeder.published or publisher.feeder.published < 300:
            assert time.monotonic() < deadline, (len(set(handled)), publisher.feeder.published)
            await asyncio.sleep(0.05)
        stop.set()
        await working
        feeding.cancel()
        await shared.aclose()
        return publisher.feeder.published

    try:
        published = asyncio.run(main())
    finally:
        server.stop()
    assert published == 300
    assert sorted(set(handled)) == sorted(f"m{n}" for n in range(300))
    assert len(handled) == len(set(handled))  # once each


class _Publisher:
    """A Feeder without a bot: what a gateway process publishes."""

    def __init__(self, shared: Coordination) -> None:
        self.feeder = Feeder(None, shared)  # type: ignore[arg-type]  # only its stream side

    def feed(self, n: int) -> None:
        self.feeder.feed(EventDecoder().decode_dispatch(frame(f"m{n}", n + 1)))


def guild_message(sim: QQSimulator, text: str, guild: str, now: float) -> object:
    return sim.guild_at_message(text, now, guild_id=guild)


def test_the_commands_run_and_work_share_one_bot(
    redis_server: RedisServer, procs: list[Proc]
) -> None:
    sim = QQSimulator(SimulatorConfig(shards=2, max_concurrency=2, heartbeat_interval_ms=500))
    with ThreadedSimulatorServer(sim) as server:
        where = ["--api-base", server.base_url, "--token-url", server.token_url]
        runner = Proc(
            "qq", "run", "--app-id", sim.config.app_id, *where, "--shards", "2",
            "--redis", redis_server.url, "--json", module="qqproto",
        )  # fmt: skip
        procs.append(runner)
        for _ in range(2):
            runner.until(lambda line: line.get("to") == "READY")
        echo = Proc(
            "qq", "work", "--redis", redis_server.url, "--app-id", sim.config.app_id, *where,
            "--echo", "--json", module="qqproto",
        )  # fmt: skip
        quiet = Proc("qq", "work", "--redis", redis_server.url, "--json", module="qqproto")
        procs += [echo, quiet]
        guild = str((3 << 22) | 9)  # routed to shard 1 of 2
        for n in range(6):
            server.call(functools.partial(guild_message, sim, f"to the workers {n}", guild))
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + DEADLINE
        while len(got) < 6:
            assert time.monotonic() < deadline, got
            for proc in (echo, quiet):
                try:
                    line = proc.lines.get(timeout=0.05)
                except queue.Empty:
                    continue
                if line is not None:
                    proc.seen.append(line)
                    if line.get("kind") == "event":
                        got.append({**line, "by": "echo" if proc is echo else "quiet"})
        assert sorted(g["content"] for g in got) == [f"to the workers {n}" for n in range(6)]
        assert all(g["shard"] == [1, 2] for g in got)  # each event once, with its shard
        echoed = sorted(g["id"] for g in got if g["by"] == "echo")

        def replied() -> list[str]:
            return sorted(r["to"] for r in echo.seen if r.get("kind") == "reply")

        if replied() != echoed:
            echo.until(lambda line: replied() == echoed)
        assert all(r["status"] == "ok" for r in echo.seen if r.get("kind") == "reply")
        assert sorted(str(s.content) for s in sim.sent) == sorted(
            g["content"] for g in got if g["by"] == "echo"
        )


def test_a_worker_without_app_id_among_several_bots_is_a_usage_error(
    redis_server: RedisServer,
) -> None:
    async def two_bots() -> None:
        for app_id in ("1001", "1002"):
            shared = connect(redis_server.url, app_id)
            await shared.stream.publish([{"frame": "{}"}])
            await shared.aclose()

    asyncio.run(two_bots())
    done = subprocess.run(
        [sys.executable, "-m", "qqproto", "qq", "work", "--redis", redis_server.url, "--json"],
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert done.returncode == 2 and "several bots here: 1001, 1002" in done.stderr, done.stderr


def test_a_clean_stop_keeps_the_sessions_and_the_next_run_resumes_them(
    redis_server: RedisServer, procs: list[Proc]
) -> None:
    sim = QQSimulator(SimulatorConfig(shards=2, max_concurrency=2, heartbeat_interval_ms=500))
    with ThreadedSimulatorServer(sim) as server:
        args = [
            "qq", "run", "--app-id", sim.config.app_id, "--api-base", server.base_url,
            "--token-url", server.token_url, "--shards", "2", "--redis", redis_server.url, "--json",
        ]  # fmt: skip
        first = Proc(*args, module="qqproto")
        procs.append(first)
        for _ in range(2):
            first.until(lambda line: line.get("to") == "READY")
        first.process.send_signal(signal.SIGTERM)
        assert first.process.wait(DEADLINE) == 0
        identifies = len(sim.identifies)
        again = Proc(*args, module="qqproto")
        procs.append(again)
        for _ in range(2):
            again.until(lambda line: line.get("to") == "READY")
        assert len(sim.identifies) == identifies  # both resumed: no session spent
        assert [r.outcome for r in sim.resumes][-2:] == ["RESUMED", "RESUMED"]
