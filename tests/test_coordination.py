"""One suite for both implementations of what a bot's processes share: in
memory (no Redis, the default) and in a real redis-server on loopback.

Waits here are short protocol windows (a fraction of a second) with lower
bounds only: an implementation that is slow never fails a test, one that
lets something through early does.
"""

from __future__ import annotations

import asyncio
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


def test_one_turn_at_a_time_and_the_spacing_after_an_identify(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        loop = asyncio.get_running_loop()
        first = await shared.slots.acquire(0, hold=5.0)
        second = asyncio.create_task(shared.slots.acquire(1, hold=5.0))
        await asyncio.sleep(0.1)
        assert not second.done()  # 0 holds the turn
        await shared.slots.keep(first, 5.0)
        identified_at = loop.time()
        await shared.slots.release(first, WINDOW)  # its Identify went out
        token = await asyncio.wait_for(second, 10)
        assert loop.time() - identified_at >= WINDOW * 0.95
        started = loop.time()
        await shared.slots.release(token, 0.0)  # no Identify: the next goes at once
        await shared.slots.release(token, 5.0)  # (ended already: nothing more happens)
        await shared.slots.acquire(2, hold=5.0)
        assert loop.time() - started < WINDOW

    run(store_maker, body)


def test_a_holder_that_stops_keeping_its_turn_loses_it(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        loop = asyncio.get_running_loop()
        stale = await shared.slots.acquire(0, hold=WINDOW)  # then never heard of again
        started = loop.time()
        await shared.slots.acquire(1, hold=5.0)
        assert loop.time() - started >= WINDOW * 0.9
        await shared.slots.keep(stale, 5.0)  # too late: the turn is another's now
        await shared.slots.release(stale, 0.0)
        third = asyncio.create_task(shared.slots.acquire(2, hold=5.0))
        await asyncio.sleep(0.1)
        assert not third.done()  # the stale token moved nothing
        third.cancel()

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
        assert await handled.start_many(["m1", "m2"], "a", lease=60) == ["mine", "mine"]
        assert await handled.start_many(["m1"], "a", lease=60) == ["mine"]  # its own
        assert await handled.start_many(["m1"], "b", lease=60) == ["busy"]  # a's lease lives
        await handled.finish_many(["m1"], 60)
        assert await handled.start_many(["m1", "m3"], "c", lease=60) == ["done", "mine"]
        assert await handled.start_many(["m4"], "c", lease=WINDOW) == ["mine"]
        await asyncio.sleep(WINDOW * 1.1)  # the lease ran out: the worker died quietly
        assert await handled.start_many(["m4"], "d", lease=60) == ["mine"]

    run(store_maker, body)


def test_trimming_lets_go_only_of_what_every_worker_is_past(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        stream = shared.stream
        await stream.publish([{"n": str(n)} for n in range(5)])
        taken = await stream.take("a", 3, 0.1, min_idle=60)
        await stream.ack([taken[0].entry_id, taken[2].entry_id])  # 1 still held, 3 and 4 unread
        await stream.trim()
        rest = await stream.take("b", 10, 0.1, min_idle=60)
        assert [t.fields["n"] for t in rest] == ["3", "4"]  # the unread ones are all there
        await stream.ack([t.entry_id for t in rest])
        await asyncio.sleep(WINDOW)
        [held] = await stream.take("b", 10, 0.1, min_idle=WINDOW * 0.9)
        assert held.fields == {"n": "1"}  # and so is the held one

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
