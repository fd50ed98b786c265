"""One suite for both implementations of what a bot's processes share: in
memory (no Redis, the default) and in a real redis-server on loopback.

Waits here are short protocol windows (a fraction of a second) with lower
bounds only: an implementation that is slow never fails a test, one that
lets something through early does.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

from qqproto.adapters.coordination import Coordination
from qqproto.qq.session import Session

WINDOW = 0.3

Make = Callable[[], Coordination]


def run(make: Make, body: Callable[[Coordination], Awaitable[None]]) -> None:
    async def main() -> None:
        shared = make()
        try:
            await body(shared)
        finally:
            await shared.aclose()

    asyncio.run(main())


# -- identify slots --------------------------------------------------------------------------


def test_one_identify_per_window_for_the_app(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        loop = asyncio.get_running_loop()
        times = []
        for shard in (0, 1, 2):
            await shared.slots.acquire(shard, 1, WINDOW)
            times.append(loop.time())
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= WINDOW * 0.95 for gap in gaps), gaps

    run(store_maker, body)


def test_max_concurrency_slots_go_together(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await shared.slots.acquire(0, 2, WINDOW)
        await shared.slots.acquire(1, 2, WINDOW)
        together = loop.time() - start
        await shared.slots.acquire(2, 2, WINDOW)  # slot 0 again: waits out the window
        assert together < WINDOW <= (loop.time() - start) / 0.95

    run(store_maker, body)


# -- sessions ----------------------------------------------------------------------------------


def test_a_saved_session_is_loaded_for_its_shard_only(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        session = Session("sess-1", 42, (1, 4), "wss://api.sgroup.qq.com/websocket/", "bot")
        assert await shared.sessions.load((1, 4)) is None
        await shared.sessions.save(session)
        assert await shared.sessions.load((1, 4)) == session
        assert await shared.sessions.load((1, 8)) is None  # another count: not this session
        await shared.sessions.forget((1, 4))
        assert await shared.sessions.load((1, 4)) is None

    run(store_maker, body)


# -- the event stream ----------------------------------------------------------------------------


def test_entries_go_to_one_worker_and_a_held_one_is_taken_over(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        stream = shared.stream
        await stream.publish([{"n": str(n)} for n in range(3)])
        taken = await stream.take("a", 10, 0.1, min_idle=60)
        assert [t.fields["n"] for t in taken] == ["0", "1", "2"]
        assert not any(t.reclaimed for t in taken)
        assert await stream.take("b", 10, 0.05, min_idle=60) == []  # nothing left for b
        await stream.ack([t.entry_id for t in taken[:2]])
        assert await stream.pending() == 1
        await asyncio.sleep(WINDOW)
        [again] = await stream.take("b", 10, 0.05, min_idle=WINDOW * 0.9)  # a went quiet
        assert again.fields == {"n": "2"} and again.reclaimed
        await stream.ack([again.entry_id])
        assert await stream.pending() == 0

    run(store_maker, body)


def test_a_waiting_worker_gets_what_is_published_meanwhile(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        waiting = asyncio.create_task(shared.stream.take("a", 10, 5.0, min_idle=60))
        await asyncio.sleep(0.05)
        await shared.stream.publish([{"n": "late"}])
        [taken] = await asyncio.wait_for(waiting, 10)
        assert taken.fields == {"n": "late"}

    run(store_maker, body)


# -- handled ids ---------------------------------------------------------------------------------


def test_an_event_is_handled_once(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        handled = shared.handled
        assert await handled.start("m1", "a", reclaimed=False, lease=60) == "mine"
        assert await handled.start("m1", "a", reclaimed=False, lease=60) == "mine"  # its own
        assert await handled.start("m1", "b", reclaimed=False, lease=60) == "busy"  # a copy
        assert await handled.start("m1", "b", reclaimed=True, lease=60) == "mine"  # taken over
        await handled.finish("m1", 60)
        assert await handled.start("m1", "c", reclaimed=True, lease=60) == "done"
        assert await handled.start("m2", "c", reclaimed=False, lease=WINDOW) == "mine"
        await asyncio.sleep(WINDOW * 1.1)  # the lease ran out: the worker died quietly
        assert await handled.start("m2", "d", reclaimed=False, lease=60) == "mine"

    run(store_maker, body)


# -- reply seqs ------------------------------------------------------------------------------------


def test_reply_seqs_count_per_message_for_the_window(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        seqs = shared.seqs
        assert [await seqs.next("m1", WINDOW) for _ in range(3)] == [1, 2, 3]
        assert await seqs.next("m2", WINDOW) == 1
        await asyncio.sleep(WINDOW * 1.1)
        assert await seqs.next("m1", WINDOW) == 1  # the window from the first reply is over

    run(store_maker, body)


def test_concurrent_replies_never_share_a_seq(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        got = await asyncio.gather(*(shared.seqs.next("m", 60) for _ in range(50)))
        assert sorted(got) == list(range(1, 51))

    run(store_maker, body)
