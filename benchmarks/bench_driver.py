"""End-to-end throughput of inbound messages on loopback: socket to application.

Run by hand (not a test)::

    .venv/bin/python benchmarks/bench_driver.py [--events N] [--repeats R]
    .venv/bin/python benchmarks/bench_driver.py --profile asyncio   # cProfile one run

A loopback server plays a minimal QQ gateway: Hello (op 10), the client's
Identify (op 2, its token checked), READY; then it writes N pre-encoded
``GROUP_AT_MESSAGE_CREATE`` dispatch frames (realistic payloads as in
``bench_dispatch.py``, each with its own ``s`` and message id) as fast as the
socket takes them, in one ``write``. The same server also answers the token
endpoint (``POST``), for the whole bots. Each contestant connects, identifies
and counts the dispatches reaching the application; the time is from the
server's first dispatch byte handed to the socket to the N-th event in the
application's hands, best of R interleaved repeats:

- floor: a ``websockets`` client (``websockets.asyncio.client.connect``),
  ``json.loads`` of each message: what a hand-written bot on a popular
  library does;
- ``AsyncioDriver`` driving a bare ``GatewayProtocol`` (its ``TokenWanted``
  answered at once in ``on_event``), counting ``GroupAtMessageCreate``
  events in ``on_event``;
- ``QQBot`` (the whole bot: token over HTTP, reply ledger, dedup,
  ``allow_from`` routing), ``gateway_url`` pointed at the server, counting in
  ``async for event in bot.events()``;
- ``ThreadedDriver`` with a bare ``GatewayProtocol``, counting in
  ``on_event`` (the transport's thread, the driver's lock held);
- ``ThreadedQQBot``, counting in ``for event in bot.events()`` (another
  thread than the one reading the socket).

The server is a raw asyncio server in a process of its own, shared by every
contestant: it writes pre-built unmasked frame bytes, so its cost is a few
system calls, and it takes no CPU or GIL time from the client under test.
Both processes read the same clock (``time.perf_counter``, system-wide on
Linux, macOS and Windows). The ratio is contestant / floor (time per event);
only the ratio means something on another machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import multiprocessing
import os
import pstats
import random
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from multiprocessing.connection import Connection
from typing import Any

from websockets.asyncio.client import connect

from qqproto.adapters.asyncio import AsyncioDriver
from qqproto.adapters.bot import QQBot
from qqproto.adapters.threaded import ThreadedDriver
from qqproto.adapters.threaded_bot import ThreadedQQBot
from qqproto.qq import GroupAtMessageCreate, Ready, TokenWanted
from qqproto.qq.config import GatewayConfig
from qqproto.qq.gateway import GatewayProtocol

sys.path.insert(0, os.path.dirname(__file__))
from bench_dispatch import dispatch_payloads, server_frame, switching_protocols, text

APP_ID, SECRET, TOKEN = "102000000", "bench-secret", "bench-token"
BOT_ID = "6158788878435714165"
LIBRARIES = ("websockets", "wsproto", "msgspec", "qqproto")
TIMEOUT = 60.0  # one run may take this long before it counts as stuck
_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)[ \t]*\r?$")


# -- bytes the server sends ---------------------------------------------------------------


HELLO = text({"op": 10, "d": {"heartbeat_interval": 45000}})
READY = text(
    {
        "op": 0,
        "s": 1,
        "t": "READY",
        "d": {
            "version": 1,
            "session_id": "bench",
            "user": {"id": BOT_ID, "username": "bench", "bot": True},
            "shard": [0, 1],
        },
    }
)
_TOKEN_BODY = json.dumps({"access_token": TOKEN, "expires_in": "7200"}).encode()
TOKEN_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: " + str(len(_TOKEN_BODY)).encode() + b"\r\n\r\n" + _TOKEN_BODY
)


# -- the server (a process of its own) -------------------------------------------------------


async def client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The opcode and payload of one masked client frame."""
    b0, b1 = await reader.readexactly(2)
    assert b0 & 0x80, "a fragmented client frame"
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    mask = await reader.readexactly(4) if b1 & 0x80 else b""
    data = await reader.readexactly(n)
    if mask:
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        data = (int.from_bytes(data, "big") ^ key).to_bytes(n, "big")
    return b0 & 0x0F, data


class GatewayServer:
    """Hello, a checked Identify, READY, then ``blast`` in one write; the token
    endpoint for any POST. For each blast, the time it started goes to ``report``."""

    def __init__(self, blast: bytes, report: Connection) -> None:
        self.blast, self.report = blast, report

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if head.startswith(b"POST "):
                length = _LENGTH.search(head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                writer.write(TOKEN_ANSWER)
                await writer.drain()
                return
            writer.write(switching_protocols(head) + HELLO)
            opcode, data = await client_frame(reader)
            identify = json.loads(data) if opcode == 0x1 else None
            d = identify.get("d") if isinstance(identify, dict) else None
            if not (
                isinstance(identify, dict)
                and identify.get("op") == 2
                and isinstance(d, dict)
                and d.get("token") == f"QQBot {TOKEN}"
            ):
                writer.write(server_frame((4004).to_bytes(2, "big") + b"bad identify", 0x8))
                await writer.drain()
                return
            writer.write(READY)
            started = time.perf_counter()
            writer.write(self.blast)  # as much as the socket takes now; the rest as it drains
            self.report.send(started)
            while True:  # heartbeats and the like are ignored; a close is answered
                opcode, data = await client_frame(reader)
                if opcode == 0x8:
                    writer.write(server_frame(data[:2], 0x8))
                    await writer.drain()
                    return
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away: its run reports what it saw
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def serve(n: int, report: Connection) -> None:
    payloads = dispatch_payloads(n)
    gateway = GatewayServer(b"".join(server_frame(p) for p in payloads), report)
    server = await asyncio.start_server(gateway.handle, "127.0.0.1", 0)
    loop = asyncio.get_running_loop()
    told: asyncio.Future[None] = loop.create_future()

    def parent_spoke() -> None:  # it wrote, or went away: stop
        if not told.done():
            told.set_result(None)

    loop.add_reader(report.fileno(), parent_spoke)
    report.send((server.sockets[0].getsockname()[1], sum(map(len, payloads)) / n))
    async with server:
        await told
    loop.remove_reader(report.fileno())


def server_main(n: int, report: Connection) -> None:
    asyncio.run(serve(n, report))


@dataclass
class Server:
    """The server process, seen from the benchmark."""

    port: int
    json_bytes: float  # per dispatch, on average
    process: multiprocessing.process.BaseProcess
    control: Connection

    @classmethod
    def start(cls, n: int) -> Server:
        context = multiprocessing.get_context("spawn")
        control, report = context.Pipe()
        process = context.Process(target=server_main, args=(n, report), daemon=True)
        process.start()
        if not control.poll(TIMEOUT):
            raise RuntimeError("the server did not start")
        port, size = control.recv()
        return cls(port, size, process, control)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/websocket"

    def blast_started(self) -> float:
        """When the server began writing the dispatches of the run that just ended."""
        if not self.control.poll(TIMEOUT):
            raise RuntimeError("the server reported no blast")
        started: float = self.control.recv()
        assert not self.control.poll(), "more than one blast in a run"
        return started

    def stop(self) -> None:
        self.control.send(None)
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join()


# -- the contestants: each returns when the N-th event was in the application's hands -------


class Counter:
    """Counts the dispatches an application receives; remembers when the N-th came."""

    def __init__(self, n: int) -> None:
        self.n, self.count, self.at = n, 0, 0.0
        self.unexpected: list[object] = []

    def __call__(self, event: object) -> bool:
        """True once ``event`` is the N-th message."""
        if type(event) is GroupAtMessageCreate:
            self.count += 1
            if self.count == self.n:
                self.at = time.perf_counter()
                return True
        elif type(event) is not Ready:
            self.unexpected.append(event)
        return False

    def check(self, name: str) -> float:
        assert self.count == self.n, f"{name}: {self.count} events, expected {self.n}"
        assert not self.unexpected, f"{name}: unexpected {self.unexpected[:3]}"
        return self.at


def gateway(url: str) -> GatewayProtocol:
    """A bare gateway, set up as the drivers' callers would (OS-seeded jitter and keys)."""
    return GatewayProtocol(
        GatewayConfig(APP_ID, gateway_url=url, rng=random.Random(), entropy=os.urandom)
    )


def with_token(proto: GatewayProtocol, then: Callable[[object], None]) -> Callable[[object], None]:
    """An ``on_event`` that answers the gateway's ``TokenWanted`` at once (inside
    the driver, where the object may be called) and counts the rest with ``then``."""

    def on_event(event: object) -> None:
        if isinstance(event, TokenWanted):
            now = time.monotonic()
            proto.token_received(TOKEN, now + 7200.0, now)
        else:
            then(event)

    return on_event


async def floor_websockets(server: Server, n: int) -> float:
    loads = json.loads
    identify = {
        "op": 2,
        "d": {"token": f"QQBot {TOKEN}", "intents": 1 << 25, "shard": [0, 1], "properties": {}},
    }
    async with connect(server.url, proxy=None) as ws:
        assert loads(await ws.recv())["op"] == 10
        await ws.send(json.dumps(identify))
        assert loads(await ws.recv())["t"] == "READY"
        count = 0
        async for message in ws:
            loads(message)
            count += 1
            if count == n:
                at = time.perf_counter()
                break
    assert count == n, f"floor: {count} messages, expected {n}"
    return at


async def asyncio_driver(server: Server, n: int) -> float:
    counter = Counter(n)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def on_event(event: object) -> None:  # inside the driver: hand on, do not call back
        if counter(event):
            done.set_result(None)

    proto = gateway(server.url)
    driver = AsyncioDriver(proto, on_event=with_token(proto, on_event))
    running = asyncio.create_task(driver.run())
    await asyncio.wait({running, done}, timeout=TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
    driver.stop()
    await running  # raises what ended it, if it failed
    return counter.check("AsyncioDriver")


async def asyncio_bot(server: Server, n: int) -> float:
    counter = Counter(n)
    token_url = f"{server.base}/app/getAppAccessToken"
    async with (
        asyncio.timeout(TIMEOUT),
        QQBot(
            APP_ID, SECRET, api_base=server.base, gateway_url=server.url, token_url=token_url
        ) as bot,
        contextlib.aclosing(bot.events()) as events,
    ):
        async for event in events:
            if counter(event):
                break
    return counter.check("QQBot")


def threaded_driver(server: Server, n: int) -> float:
    counter = Counter(n)
    done = threading.Event()

    def on_event(event: object) -> None:  # the driver's lock is held: hand on
        if counter(event):
            done.set()

    proto = gateway(server.url)
    driver = ThreadedDriver(
        proto, on_event=with_token(proto, on_event), on_end=lambda _: done.set()
    )
    driver.start()
    try:
        done.wait(TIMEOUT)
    finally:
        driver.stop()
    driver.wait(0)  # raises what ended it, if it failed
    return counter.check("ThreadedDriver")


def threaded_bot(server: Server, n: int) -> float:
    counter = Counter(n)
    token_url = f"{server.base}/app/getAppAccessToken"
    watchdog = None
    with ThreadedQQBot(
        APP_ID, SECRET, api_base=server.base, gateway_url=server.url, token_url=token_url
    ) as bot:
        watchdog = threading.Timer(TIMEOUT, bot.stop)
        watchdog.start()
        for event in bot.events():
            if counter(event):
                break
    watchdog.cancel()
    return counter.check("ThreadedQQBot")


Contestant = Callable[[Server, int], float]


def in_loop(fn: Callable[[Server, int], Any]) -> Contestant:
    def run(server: Server, n: int) -> float:
        at: float = asyncio.run(fn(server, n))
        return at

    run.__name__ = fn.__name__
    return run


SUBJECTS: list[tuple[str, str, Contestant]] = [
    ("floor", "floor: websockets + json.loads", in_loop(floor_websockets)),
    ("asyncio", "AsyncioDriver + GatewayProtocol", in_loop(asyncio_driver)),
    ("bot", "QQBot, events()", in_loop(asyncio_bot)),
    ("threaded", "ThreadedDriver + GatewayProtocol", threaded_driver),
    ("threaded-bot", "ThreadedQQBot, events()", threaded_bot),
]


def timed(run: Contestant, server: Server, n: int) -> float:
    """Seconds from the server's first dispatch byte to the N-th event in hand."""
    gc.collect()
    at = run(server, n)
    started = server.blast_started()
    assert at > started, (at, started)
    return at - started


# -- profiling ----------------------------------------------------------------------------


def profile(run: Contestant, server: Server, n: int, limit: int) -> None:
    """cProfile one run, in every thread it starts (one profiler per thread)."""
    profilers: list[cProfile.Profile] = []

    def in_thread(*_: object) -> None:  # the first call in a new thread
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.enable()

    main = cProfile.Profile()
    threading.setprofile(in_thread)
    try:
        main.runcall(run, server, n)
    finally:
        threading.setprofile(None)
    server.blast_started()
    for profiler in profilers:
        profiler.disable()
    stats = pstats.Stats(main, *profilers, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)


# -- main ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--profile",
        choices=[key for key, _, _ in SUBJECTS],
        help="cProfile one run of this contestant instead",
    )
    args = parser.parse_args(argv)
    n = args.events

    server = Server.start(n)
    try:
        print(
            f"{n} GROUP_AT_MESSAGE_CREATE dispatches over loopback WebSocket, "
            f"{server.json_bytes:.0f} bytes of JSON each on average; best of {args.repeats}"
        )
        libraries = ", ".join(f"{name} {version(name)}" for name in LIBRARIES)
        print(f"Python {sys.version.split()[0]}, {libraries}")

        if args.profile:
            run = next(run for key, _, run in SUBJECTS if key == args.profile)
            profile(run, server, n, 30)
            return 0

        times: dict[str, list[float]] = {key: [] for key, _, _ in SUBJECTS}
        started = time.perf_counter()
        for _ in range(args.repeats):
            for key, _, run in SUBJECTS:  # interleaved: drift hits all alike
                times[key].append(timed(run, server, n))
    finally:
        server.stop()

    floor = min(times["floor"])
    print(f"\n  {'':32s} {'events/s':>10s} {'µs/event':>9s} {'(median)':>9s}   vs floor")
    for key, name, _ in SUBJECTS:
        best, median = min(times[key]), statistics.median(times[key])
        line = f"  {name:32s} {n / best:>10,.0f} {best / n * 1e6:9.2f} {median / n * 1e6:9.2f}"
        if key != "floor":
            line += f"   {best / floor:.2f}x ({(best - floor) / n * 1e6:+.2f} µs/event)"
        print(line)
    print(f"\n(took {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
