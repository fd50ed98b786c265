"""Events through the shared stream: their entries, and the workers that handle them.

The workers run against both implementations of the shared store (in memory
and a real redis-server), with short leases and idle times.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from qqproto.adapters.coordination import Coordination
from qqproto.adapters.feed import entry_of, event_of, key_of
from qqproto.adapters.worker import Worker
from qqproto.errors import RemoteProtocolError
from qqproto.qq import AtMessageCreate, Dispatch, Event, GroupAtMessageCreate
from qqproto.qq.decode import EventDecoder

from .test_coordination import Make, run

BOT = "6158788878435714165"


def frame(t: str, d: dict[str, Any], seq: int = 7, envelope: str = "E7") -> str:
    return json.dumps({"op": 0, "s": seq, "t": t, "id": envelope, "d": d})


GROUP = {
    "id": "ROBOT1.0_group",
    "content": " hello 你好",
    "timestamp": "2026-12-07T10:00:00+08:00",
    "author": {"member_openid": "M1"},
    "group_openid": "G1",
}
GUILD = {
    "id": "guild-msg-1",
    "content": f"<@!{BOT}> roll",
    "channel_id": "100",
    "guild_id": "200",
    "author": {"id": "7"},
}


def decoded(text: str, shard: tuple[int, int] | None = (3, 8)) -> Event:
    body = EventDecoder(BOT, shard).decode_frame(text)[4]
    assert isinstance(body, Event)
    return body


# -- entries ---------------------------------------------------------------------------------------


def test_a_typed_event_comes_back_the_same_with_its_shard_and_bot_id() -> None:
    for original in (
        decoded(frame("GROUP_AT_MESSAGE_CREATE", GROUP)),
        decoded(frame("AT_MESSAGE_CREATE", GUILD)),
    ):
        entry = entry_of(original)
        again = event_of(entry)
        assert type(again) is type(original)
        assert again.on_shard == (3, 8) and entry["shard"] == "3/8"
        assert (again.event_id, again.event_seq) == (original.event_id, original.event_seq)
        assert again.raw == original.raw
    assert isinstance(again, AtMessageCreate) and again.text == "roll"  # the bot's mention gone


def test_an_untyped_dispatch_and_a_slow_path_event_come_back_too() -> None:
    untyped = Dispatch("SOMETHING_NEW", 9, "E9", {"x": [1, "二"]}, (0, 2))
    again = event_of(entry_of(untyped))
    assert again == untyped and again.on_shard == (0, 2)
    slow = EventDecoder().decode("GROUP_AT_MESSAGE_CREATE", 4, "E4", json.dumps(GROUP))
    assert isinstance(slow, GroupAtMessageCreate)
    back = event_of(entry_of(slow))
    assert isinstance(back, GroupAtMessageCreate) and back.text == slow.text
    assert back.on_shard is None


def test_the_key_is_the_message_id_else_the_envelope_id() -> None:
    assert key_of(decoded(frame("GROUP_AT_MESSAGE_CREATE", GROUP))) == "ROBOT1.0_group"
    assert key_of(Dispatch("GROUP_ADD_ROBOT", 1, "E1", {"group_openid": "G"})) == "E1"


@given(st.dictionaries(st.sampled_from(["frame", "shard", "bot_id", "key"]), st.text()))
def test_any_entry_is_an_event_or_a_typed_error(fields: dict[str, str]) -> None:
    with contextlib.suppress(RemoteProtocolError):  # and nothing else
        event_of(fields)


# -- workers -------------------------------------------------------------------------------------


def messages(n: int) -> list[dict[str, str]]:
    return [
        entry_of(decoded(frame("GROUP_AT_MESSAGE_CREATE", {**GROUP, "id": f"m{i}"}, seq=i)))
        for i in range(n)
    ]


def collector() -> tuple[list[str], Callable[[Event | Dispatch], Any]]:
    seen: list[str] = []

    async def handle(event: Event | Dispatch) -> None:
        seen.append(key_of(event))

    return seen, handle


def test_each_event_reaches_one_worker_once(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        seen, handle = collector()
        a, b = (
            Worker(shared, "a", handle, batch=3, block=0.05),
            Worker(shared, "b", handle, batch=3, block=0.05),
        )
        entries = messages(10)
        await shared.stream.publish(entries + entries[:3])  # the platform sent three twice
        while await a.run_once() + await b.run_once():
            pass
        assert sorted(seen) == sorted(f"m{i}" for i in range(10))
        assert a.stats.duplicates + b.stats.duplicates == 3
        assert await shared.stream.pending() == 0

    run(store_maker, body)


def test_a_worker_that_dies_mid_event_leaves_it_to_another(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        seen, handle = collector()
        await shared.stream.publish(messages(2))
        # Worker "dead" takes both, starts the first, and is never heard of again.
        taken = await shared.stream.take("dead", 10, 0.05, min_idle=60)
        assert len(taken) == 2
        key = taken[0].fields["key"]
        assert await shared.handled.start_many([key], "dead", lease=0.4) == ["mine"]
        survivor = Worker(shared, "alive", handle, block=0.05, min_idle=0.2)
        assert await survivor.run_once() == 0  # not idle long enough yet
        await asyncio.sleep(0.25)
        await survivor.run_once()  # m1 now; m0 waits: the dead one's lease still runs
        assert seen == ["m1"] and survivor.stats.waiting == 1
        await asyncio.sleep(0.3)  # the lease ran out
        while await survivor.run_once():
            pass
        assert sorted(seen) == ["m0", "m1"]
        assert await shared.stream.pending() == 0

    run(store_maker, body)


def test_a_slow_worker_is_not_doubled_by_the_one_that_takes_over(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        seen: list[str] = []

        async def slow(event: Event | Dispatch) -> None:
            seen.append(f"slow {key_of(event)}")
            await asyncio.sleep(0.4)  # longer than min_idle: its entries get taken over

        async def quick(event: Event | Dispatch) -> None:
            seen.append(f"quick {key_of(event)}")

        await shared.stream.publish(messages(3))
        slow_one = Worker(shared, "slow", slow, block=0.05, min_idle=0.1, lease=10)
        quick_one = Worker(shared, "quick", quick, block=0.05, min_idle=0.1, lease=10)
        running = asyncio.create_task(slow_one.run_once())
        await asyncio.sleep(0.2)
        for _ in range(20):  # taken over while the slow one works: it must wait
            await quick_one.run_once()
            await asyncio.sleep(0.05)
        await running
        while await quick_one.run_once():
            pass
        assert sorted(seen) == ["slow m0", "slow m1", "slow m2"]  # each once, all by the slow one
        assert await shared.stream.pending() == 0

    run(store_maker, body)


def test_a_handler_that_raises_is_tried_again(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        tries: list[str] = []

        async def flaky(event: Event | Dispatch) -> None:
            tries.append(key_of(event))
            if len(tries) == 1:
                raise RuntimeError("first try fails")

        worker = Worker(shared, "w", flaky, block=0.05, min_idle=0.1)
        await shared.stream.publish(messages(1))
        await worker.run_once()
        assert tries == ["m0"] and worker.stats.failed == 1 and await shared.stream.pending() == 1
        await asyncio.sleep(0.15)
        await worker.run_once()
        assert tries == ["m0", "m0"] and worker.stats.handled == 1
        assert await shared.stream.pending() == 0

    run(store_maker, body)


def test_an_unreadable_entry_is_dropped_and_counted(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        seen, handle = collector()
        await shared.stream.publish([{"frame": "not json"}, *messages(1)])
        worker = Worker(shared, "w", handle, block=0.05)
        await worker.run_once()
        assert seen == ["m0"] and worker.stats.unreadable == 1
        assert await shared.stream.pending() == 0

    run(store_maker, body)


def test_an_event_that_always_fails_is_given_up_after_max_tries(store_maker: Make) -> None:
    async def body(shared: Coordination) -> None:
        async def broken(event: Event | Dispatch) -> None:
            raise RuntimeError("always")

        worker = Worker(shared, "w", broken, block=0.02, min_idle=0.05, max_tries=3)
        await shared.stream.publish(messages(1))
        for _ in range(100):
            await worker.run_once()
            if worker.stats.given_up:
                break
            await asyncio.sleep(0.03)
        assert worker.stats.given_up == 1 and worker.stats.failed == 3
        assert await shared.stream.pending() == 0  # acknowledged: the stream can be trimmed

    run(store_maker, body)


def test_a_saved_session_says_no_more_than_what_was_published() -> None:
    """A restart resumes from the last event on the stream: the platform
    replays the rest, so nothing the gateway had but never published is lost."""
    from qqproto.adapters.feeder import Feeder
    from qqproto.qq.session import Session

    session = Session("s1", 9, (0, 1), "wss://api.sgroup.qq.com/websocket/")

    class Side:  # a gateway bot whose shard 0 is at seq 9
        def restore(self, sessions: list[Session]) -> None: ...

        def spacing(self) -> float:
            return 5.5

        async def identify_allowed(self, shard_id: int) -> None: ...

        async def sessions(self) -> dict[int, Session]:
            return {0: session}

    async def main() -> None:
        shared = Coordination.in_memory()
        feeder = Feeder(Side(), shared)
        for seq in range(1, 4):  # the gateway is at seq 9; three events reached the Feeder
            feeder.feed(
                decoded(
                    frame("GROUP_AT_MESSAGE_CREATE", {**GROUP, "id": f"m{seq}"}, seq=seq), (0, 1)
                )
            )
        await feeder.flush()
        saved = await shared.sessions.load((0, 1))
        assert saved is not None and saved.seq == 3 and saved.session_id == "s1"

    asyncio.run(main())
