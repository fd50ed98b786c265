"""A bare GatewayProtocol on each shipped driver, against a gateway written
with the ``websockets`` library (tests/e2e_servers.py).

Each test runs once per driver: :class:`GatewayOn` drives either from the
test's thread. Heartbeats are 100 ms (50 ms where they are the point), the
backoff is milliseconds, and every wait has a generous deadline.
"""

from __future__ import annotations

import asyncio
import queue
import random
import socket
from collections.abc import Callable
from typing import Any

import pytest

from qqproto.adapters import DriverFailed
from qqproto.adapters.asyncio import AsyncioDriver
from qqproto.adapters.threaded import ThreadedDriver
from qqproto.qq import GatewayConfig, GatewayProtocol, GroupAtMessageCreate, Ready, TokenWanted
from qqproto.qq import gateway as gateway_module

from .e2e_servers import GROUP, MEMBER, FakeGateway, LoopThread, group_message
from .tokens import answering_tokens

pytestmark = pytest.mark.filterwarnings("error")

WAIT = 20.0
SHIPPED = ["asyncio", "threads"]


@pytest.fixture(autouse=True)
def quick_new_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new session after op 9 waits 1-5 s on the platform; milliseconds here."""
    monkeypatch.setattr(gateway_module, "NEW_SESSION_PAUSE", (0.0, 0.01))


class GatewayOn:
    """A bare GatewayProtocol on the ``kind`` driver, used from the test's
    thread; the driver (asyncio's in the loop thread) hands its events to a queue."""

    def __init__(
        self, kind: str, loop: LoopThread, url: str, *, answer_tokens: bool = True, **config: Any
    ):
        config.setdefault("rng", random.Random(7))
        config.setdefault("backoff_base", 0.01)
        config.setdefault("backoff_cap", 0.05)
        self.proto = GatewayProtocol(GatewayConfig("102000000", gateway_url=url, **config))
        self.events: queue.Queue[object] = queue.Queue()
        on_event = (
            answering_tokens(self.proto, self.events.put) if answer_tokens else self.events.put
        )
        self.kind, self.loop = kind, loop
        if kind == "threads":
            self.threaded = ThreadedDriver(self.proto, on_event=on_event)
            self.threaded.start()
        else:
            self.driver = AsyncioDriver(self.proto, on_event=on_event)
            self.run = asyncio.run_coroutine_threadsafe(self.driver.run(), loop.loop)

    def next(self, kind: type[Any] = object) -> Any:
        while not isinstance(event := self.events.get(timeout=WAIT), kind):
            pass
        return event

    def call(self, fn: Callable[[float], Any]) -> Any:
        if self.kind == "threads":
            return self.threaded.call(fn)

        async def inside() -> Any:
            return self.driver.call(fn)

        return self.loop.run(inside())

    def ended(self) -> BaseException | None:
        """Wait for the driver's run to end on its own (it has, once this
        returns); what it raised, if anything."""
        if self.kind == "threads":
            try:
                assert self.threaded.wait(WAIT)
            except Exception as exc:
                return exc
            return None
        return self.run.exception(WAIT)

    def stop(self) -> None:
        if self.kind == "threads":
            self.threaded.stop()
        else:
            self.loop.loop.call_soon_threadsafe(self.driver.stop)
            self.run.result(WAIT)


@pytest.mark.parametrize("kind", SHIPPED)
def test_a_tcp_drop_resumes_and_delivers_each_event_once(
    kind: str, loop: LoopThread, gw: FakeGateway
) -> None:
    client = GatewayOn(kind, loop, gw.url)
    try:
        client.next(Ready)
        loop.run(gw.message(1))
        client.next(GroupAtMessageCreate)

        async def drop_missing_one() -> None:
            gw.seq += 1  # a message we will miss: the resume replays it
            event = {"op": 0, "s": gw.seq, "t": "GROUP_AT_MESSAGE_CREATE", "id": "m2"}
            gw.history.append({**event, "d": group_message(2)})
            gw.drop()

        loop.run(drop_missing_one())
        loop.run(gw.wait_for(lambda g: len(g.ops(6)) == 1))
        [resume] = gw.ops(6)
        assert resume["d"]["seq"] == 2 and resume["d"]["session_id"] == "sess-1"
        loop.run(gw.message(3))
        assert client.next(GroupAtMessageCreate).text == "hello 2"  # replayed
        assert client.next(GroupAtMessageCreate).text == "hello 3"
        loop.run(gw.message(4))  # nothing came twice: the next message is the new one
        assert client.next(GroupAtMessageCreate).text == "hello 4"
        assert len(gw.ops(2)) == 1  # one Identify: the session went on
    finally:
        client.stop()


@pytest.mark.parametrize("kind", SHIPPED)
@pytest.mark.parametrize(
    ("what", "new_session"),
    [("op7", False), ("op9", True), ("4009", False), ("4006", True), ("lost-acks", False)],
)
def test_the_session_comes_back(
    kind: str, what: str, new_session: bool, loop: LoopThread, gw: FakeGateway
) -> None:
    client = GatewayOn(kind, loop, gw.url)
    try:
        client.next(Ready)
        if what == "op7":
            loop.run(gw.send_raw({"op": 7}))
        elif what == "op9":
            loop.run(gw.send_raw({"op": 9, "d": False}))
        elif what == "lost-acks":
            gw.lose_acks = 1
        else:
            loop.run(gw.close(int(what)))
        loop.run(gw.wait_for(lambda g: len(g.connections) == 2))
        if new_session:
            assert client.next(Ready).session_id == "sess-2"
        else:
            loop.run(gw.wait_for(lambda g: len(g.ops(6)) == 1))
            assert len(gw.ops(2)) == 1
        loop.run(gw.message(9))
        assert client.next(GroupAtMessageCreate).text == "hello 9"
    finally:
        client.stop()


@pytest.mark.parametrize("kind", SHIPPED)
def test_without_a_token_answer_the_application_hears_token_wanted(
    kind: str, loop: LoopThread, gw: FakeGateway
) -> None:
    """A driver knows no protocol: a bare gateway's TokenWanted is the application's."""
    client = GatewayOn(kind, loop, gw.url, answer_tokens=False)
    try:
        assert client.next() == TokenWanted("no access token yet")
        client.call(lambda now: client.proto.token_received("tok", now + 60, now))
        assert isinstance(client.next(), Ready)
    finally:
        client.stop()


@pytest.mark.parametrize("kind", SHIPPED)
def test_identify_ready_messages_in_order_and_heartbeats_with_the_last_seq(
    kind: str, loop: LoopThread
) -> None:
    gw = loop.run(FakeGateway(heartbeat_ms=50).__aenter__())
    client = GatewayOn(kind, loop, gw.url)
    try:
        assert client.next(Ready).session_id == "sess-1"
        [identify] = gw.ops(2)
        assert identify["d"]["token"] == "QQBot t"
        assert client.proto.state.name == "READY"
        for n in range(5):  # s = 2..6
            loop.run(gw.message(n))
        got = [client.next(GroupAtMessageCreate) for _ in range(5)]
        assert [m.text for m in got] == [f"hello {n}" for n in range(5)]
        assert got[0].sender == MEMBER and got[0].group_openid == GROUP
        loop.run(gw.wait_for(lambda g: sum(p["d"] == 6 for p in g.ops(1)) >= 2))
        assert all(p["d"] in range(1, 7) for p in gw.ops(1))  # never ahead, never null
    finally:
        client.stop()
        loop.run(gw.wait_for(lambda g: g.closes == [1000]))
        loop.run(gw.__aexit__())


@pytest.mark.parametrize("kind", SHIPPED)
def test_a_fatal_close_code_ends_the_run_with_the_reason(
    kind: str, loop: LoopThread, gw: FakeGateway
) -> None:
    client = GatewayOn(kind, loop, gw.url)
    client.next(Ready)
    loop.run(gw.close(4914))
    ended = client.ended()
    assert isinstance(ended, DriverFailed)
    assert "4914" in str(ended) or "offline" in str(ended)


@pytest.mark.parametrize("kind", SHIPPED)
def test_the_attempt_cap_ends_the_run(kind: str, loop: LoopThread) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # then nobody listens there
        port = listener.getsockname()[1]
    client = GatewayOn(kind, loop, f"ws://127.0.0.1:{port}/", max_attempts=3)
    ended = client.ended()
    assert isinstance(ended, DriverFailed) and "gave up after 3" in str(ended)
