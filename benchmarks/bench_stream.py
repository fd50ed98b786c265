"""Events through the shared Redis stream: one producer, N workers, against the bare client.

Run by hand (not a test); it starts a redis-server of its own on loopback::

    .venv/bin/python benchmarks/bench_stream.py [--events N] [--workers W] [--repeats R]

N typed group messages, best of R interleaved repeats, in one run:

- ours: what ``qq run --redis`` and ``qq work`` do: each event made a stream
  entry (``feed.entry_of``) and published in batches (``RedisEventStream``),
  and W :class:`~qqproto.adapters.worker.Worker` s taking them through the
  consumer group, each event decoded again into its typed event, checked and
  marked in the handled ids (once each), and acknowledged;
- floor: the same entries' bytes, ``XADD`` in the same batches and read by W
  consumers with ``XREADGROUP`` and ``XACK``, with the bare ``redis`` client:
  no encoding, no decoding, no de-duplication.

Reported: events per second for each, and ours / floor (of the time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))

import redis.asyncio as aioredis

from qqproto.adapters.feed import entry_of
from qqproto.adapters.redis import connect
from qqproto.adapters.worker import Worker
from qqproto.qq import Dispatch, Event
from qqproto.qq.decode import EventDecoder
from tests.redis_server import RedisServer

BATCH = 256


def events(n: int) -> list[Event | Dispatch]:
    decoder = EventDecoder("6158788878435714165", (0, 1))
    out: list[Event | Dispatch] = []
    for i in range(n):
        d = {
            "id": f"ROBOT1.0_{i:020d}",
            "content": f" hello number {i}, how are you?",
            "timestamp": "2026-12-07T10:00:00+08:00",
            "author": {"member_openid": f"M{i % 97}"},
            "group_openid": "G1",
        }
        frame = json.dumps(
            {"op": 0, "s": i + 1, "t": "GROUP_AT_MESSAGE_CREATE", "id": f"E{i}", "d": d}
        )
        body = decoder.decode_frame(frame)[4]
        assert isinstance(body, Event)
        out.append(body)
    return out


async def ours(url: str, app: str, batch: list[Event | Dispatch], workers: int) -> float:
    shared = connect(url, app)
    handled = 0
    done = asyncio.Event()

    async def handle(event: Event | Dispatch) -> None:
        nonlocal handled
        handled += 1
        if handled == len(batch):
            done.set()

    stop = asyncio.Event()
    team = [Worker(shared, f"w{k}", handle, block=0.05) for k in range(workers)]
    await shared.stream.publish([])  # the group exists before the clock starts
    start = time.perf_counter()
    running = [asyncio.create_task(w.run(stop)) for w in team]
    for i in range(0, len(batch), BATCH):
        await shared.stream.publish([entry_of(e) for e in batch[i : i + BATCH]])
    await done.wait()
    took = time.perf_counter() - start
    stop.set()
    await asyncio.gather(*running)
    await shared.aclose()
    return took


async def floor(url: str, key: str, entries: list[dict[str, str]], workers: int) -> float:
    client = aioredis.Redis.from_url(url)
    await client.xgroup_create(key, "g", id="0", mkstream=True)
    got = 0
    done = asyncio.Event()

    async def consume(name: str) -> None:
        nonlocal got
        while not done.is_set():
            answer: Any = await client.xreadgroup("g", name, {key: ">"}, count=64, block=50)
            for _, read in answer or []:
                await client.xack(key, "g", *[i for i, _ in read])
                got += len(read)
            if got >= len(entries):
                done.set()

    start = time.perf_counter()
    running = [asyncio.create_task(consume(f"c{k}")) for k in range(workers)]
    for i in range(0, len(entries), BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for fields in entries[i : i + BATCH]:
                pipe.xadd(key, fields)  # type: ignore[arg-type]
            await pipe.execute()
    await done.wait()
    took = time.perf_counter() - start
    await asyncio.gather(*running)
    await client.aclose()
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    batch = events(args.events)
    entries = [entry_of(e) for e in batch]
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder))
        try:
            best_ours = best_floor = float("inf")
            for r in range(args.repeats):  # interleaved: drift hits both alike
                best_floor = min(
                    best_floor, asyncio.run(floor(server.url, f"floor{r}", entries, args.workers))
                )
                best_ours = min(
                    best_ours, asyncio.run(ours(server.url, f"ours{r}", batch, args.workers))
                )
        finally:
            server.stop()
    n = args.events
    print(f"{n} group messages ({len(entries[0]['frame'])} bytes of frame each), "
          f"1 producer, {args.workers} workers, best of {args.repeats}")  # fmt: skip
    print(f"  floor: XADD + XREADGROUP + XACK   {n / best_floor:10,.0f} events/s")
    print(f"  ours: feed + Worker (once each)   {n / best_ours:10,.0f} events/s")
    print(f"  ours/floor = {best_ours / best_floor:.2f}x (time)")


if __name__ == "__main__":
    main()
