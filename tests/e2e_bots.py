"""Both bot drivers behind one interface, for the end-to-end matrix (test_e2e_matrix.py).

A :class:`Harness` runs one bot against one simulator served on loopback:
:class:`AsyncioHarness` is ``QQBot`` on ``SimulatorServer``, :class:`ThreadedHarness`
is ``ThreadedQQBot`` on ``ThreadedSimulatorServer``. A test body written
against :class:`Harness` runs on both, synchronously:

- the asyncio harness owns a fresh event loop per test and runs it (in the
  test's thread) only inside its own calls: ``push``, ``next_event``,
  ``reply``, ``wait_until`` ... run the loop until their coroutine is done,
  with a deadline. Between calls nothing moves, so a fault and the messages
  pushed with it are atomic, as they are under the threaded server's lock.
- the threaded harness calls the blocking API directly; a thread reads
  ``events()`` into a queue, and ``close()`` joins it.

Every event the bot yields goes to :attr:`Harness.seen`, in order.
:class:`TappedSimulator` is the simulator plus a record of what clients sent
on the gateway (decoded JSON payloads and close codes), so a test can read the
bot's Identify and Resume frames.
"""

from __future__ import annotations

import asyncio
import gc
import json
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage

from qqproto.adapters.bot import QQBot
from qqproto.adapters.serve import SimulatorServer, ThreadedSimulatorServer
from qqproto.adapters.threaded_bot import ThreadedQQBot
from qqproto.qq import ApiCall, ApiResult, BotPhase, GroupAtMessageCreate
from qqproto.testing import QQSimulator, SimConnection, SimState, SimulatorConfig

__all__ = [
    "APP_ID",
    "HARNESSES",
    "SECRET",
    "WAIT",
    "AsyncioHarness",
    "Ended",
    "Harness",
    "TappedSimulator",
    "ThreadedHarness",
]

T = TypeVar("T")
E = TypeVar("E")
WAIT = 10.0  # generous: a deadline for things that take milliseconds
APP_ID, SECRET = "102000000", "simulator-secret"
POLL = 0.005  # how often wait_until looks at its condition (a poll with a deadline)


# -- the simulator, tapped ----------------------------------------------------------------------


class TapConnection(SimConnection):
    """A simulator connection that also decodes what the client sends once upgraded."""

    def __init__(self, state: SimState, sim: TappedSimulator, now: float) -> None:
        super().__init__(state, now)
        self._tapped = sim
        self._decoder: Connection | None = None  # wsproto's frame layer, once upgraded
        self._upgraded = False
        self._text: list[str] = []

    def receive_data(self, data: bytes, now: float) -> None:
        if self._decoder is not None:
            self._tap(data, now)
        super().receive_data(data, now)
        if self.gateway is not None and not self._upgraded:  # (no frame precedes Hello)
            self._upgraded = True
            self._decoder = Connection(ConnectionType.SERVER)

    def _tap(self, data: bytes, now: float) -> None:
        decoder = self._decoder
        assert decoder is not None
        try:
            decoder.receive_data(data or None)
            for event in decoder.events():
                if isinstance(event, TextMessage):
                    self._text.append(event.data)
                    if event.message_finished:
                        text, self._text = "".join(self._text), []
                        payload = json.loads(text)
                        self._tapped.client_frames.append((now, payload))
                elif isinstance(event, CloseConnection):
                    self._tapped.client_closes.append(event.code)
                    self._decoder = None
                    return
        except Exception:  # the tap must never break the simulator: it stops looking
            self._decoder = None


class TappedSimulator(QQSimulator):
    """QQSimulator plus what clients sent on its gateway connections."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        #: (server now, JSON payload) of every text frame a client sent, in order.
        self.client_frames: list[tuple[float, Any]] = []
        #: The code of every close frame a client sent.
        self.client_closes: list[int] = []

    def accept(self, now: float) -> SimConnection:
        return TapConnection(self.state, self, now)

    def ops(self, op: int) -> list[dict[str, Any]]:
        """The payloads with ``op`` that clients sent, in order."""
        return [p for _, p in self.client_frames if isinstance(p, dict) and p.get("op") == op]


# -- the harnesses ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ended:
    """The end of ``events()``: ``error`` is what it raised (None: it just ended)."""

    error: BaseException | None


class Harness(ABC):
    """One bot on one driver against one served simulator; see the module docstring."""

    driver: str

    def __init__(self, config: SimulatorConfig) -> None:
        self.sim = TappedSimulator(config)
        self.seen: list[object] = []
        self.end: Ended | None = None
        self.closed = False

    # -- what each driver implements --------------------------------------------------------

    @abstractmethod
    def start(self, **options: Any) -> None:
        """Serve the simulator, start the bot (``options``: QQBot keyword arguments)."""

    @abstractmethod
    def push(self, fn: Callable[[float], T]) -> T:
        """``fn(now)`` into the simulator (a user or a fault); what it caused is written."""

    @abstractmethod
    def _next_item(self, timeout: float) -> object:
        """The next value from ``events()`` or an :class:`Ended` (TimeoutError: none came)."""

    @abstractmethod
    def reply(self, event: object, text: str) -> ApiResult[Any]:
        """``bot.reply(event, text)``: its result; ReplyRefused and the rest raise."""

    @abstractmethod
    def call(self, api_call: ApiCall[Any]) -> ApiResult[Any]:
        """``bot.call(api_call)``."""

    @abstractmethod
    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        """Let the bot and the simulator run until ``condition()`` holds."""

    @abstractmethod
    def close_while_replying(
        self, event: object, texts: Sequence[str]
    ) -> list[ApiResult[Any] | BaseException]:
        """Start one reply per text, close the bot once the first reached the platform,
        then close everything; each reply's result or exception, in order."""

    @abstractmethod
    def close(self) -> None:
        """Stop the bot and the server; raise if anything was left running."""

    @property
    @abstractmethod
    def state(self) -> BotPhase: ...

    @property
    @abstractmethod
    def failure_reason(self) -> str | None: ...

    # -- shared -----------------------------------------------------------------------------

    def next_event(self, kind: type[E], timeout: float = WAIT) -> E:
        """The next event of ``kind``; the ones before it stay in :attr:`seen`."""
        deadline = time.monotonic() + timeout
        while True:
            item = self._item(deadline, f"a {kind.__name__}")
            if isinstance(item, kind):
                return item

    def ended(self, timeout: float = WAIT) -> BaseException | None:
        """Wait for ``events()`` to end; what it raised (None if it just ended)."""
        deadline = time.monotonic() + timeout
        while self.end is None:
            self._item(deadline, "the end of events()")
        return self.end.error

    def _item(self, deadline: float, wanted: str) -> object:
        if self.end is not None:
            raise AssertionError(f"events() ended ({self.end.error!r}) while waiting for {wanted}")
        try:
            item = self._next_item(max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(f"no {wanted} in time; saw {self.seen}") from None
        if isinstance(item, Ended):
            self.end = item
            if wanted == "the end of events()":
                return item
            raise AssertionError(f"events() ended ({item.error!r}) while waiting for {wanted}")
        self.seen.append(item)
        return item

    def group_message(
        self, text: str, **kwargs: Any
    ) -> tuple[dict[str, Any], GroupAtMessageCreate]:
        """A user @-mentions the bot in a group; the ``d`` sent and the event it became."""
        d = self.push(lambda now: self.sim.group_at_message(text, now, **kwargs))
        while (event := self.next_event(GroupAtMessageCreate)).id != d["id"]:
            pass
        return d, event

    def messages(self) -> list[GroupAtMessageCreate]:
        return [e for e in self.seen if isinstance(e, GroupAtMessageCreate)]


class AsyncioHarness(Harness):
    """QQBot and SimulatorServer on a loop of this harness, run inside its calls."""

    driver = "asyncio"

    def __init__(self, config: SimulatorConfig) -> None:
        super().__init__(config)
        self.loop = asyncio.new_event_loop()
        self.loop_errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda loop, context: self.loop_errors.append(context))
        self.server: SimulatorServer | None = None
        self.bot: QQBot | None = None
        self._events: asyncio.Queue[object] | None = None
        self._consumer: asyncio.Task[None] | None = None

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        async def bounded() -> T:
            async with asyncio.timeout(timeout):
                return await coro

        return self.loop.run_until_complete(bounded())

    def start(self, **options: Any) -> None:
        async def go() -> None:
            self.server = await SimulatorServer(self.sim).__aenter__()
            options.setdefault("identify_window", self.sim.config.identify_window)
            self.bot = QQBot(APP_ID, SECRET, **self.server.bot_options(**options))
            self._events = asyncio.Queue()
            await self.bot.start()
            self._consumer = asyncio.create_task(self._consume(self.bot, self._events))

        self._run(go())

    @staticmethod
    async def _consume(bot: QQBot, events: asyncio.Queue[object]) -> None:
        try:
            async for event in bot.events():
                events.put_nowait(event)
        except Exception as exc:
            events.put_nowait(Ended(exc))
        else:
            events.put_nowait(Ended(None))

    def push(self, fn: Callable[[float], T]) -> T:
        async def go() -> T:
            assert self.server is not None
            result: T = self.server.call(fn)
            return result

        return self._run(go())

    def _next_item(self, timeout: float) -> object:
        assert self._events is not None
        return self._run(self._events.get(), timeout)

    def reply(self, event: object, text: str) -> ApiResult[Any]:
        assert self.bot is not None
        return self._run(self.bot.reply(event, text))

    def call(self, api_call: ApiCall[Any]) -> ApiResult[Any]:
        assert self.bot is not None
        return self._run(self.bot.call(api_call))

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        async def go() -> None:
            while not condition():
                await asyncio.sleep(POLL)

        try:
            self._run(go(), timeout)
        except TimeoutError:
            raise AssertionError(f"not within {timeout} s: {what}") from None

    def close_while_replying(
        self, event: object, texts: Sequence[str]
    ) -> list[ApiResult[Any] | BaseException]:
        bot = self.bot
        assert bot is not None

        async def go() -> list[ApiResult[Any] | BaseException]:
            replies = [asyncio.create_task(bot.reply(event, text)) for text in texts]
            # One loop step at a time: when the first reply landed, the rest are under way.
            while not self.sim.sent and not all(task.done() for task in replies):
                await asyncio.sleep(0)
            async with asyncio.timeout(WAIT):
                await bot.close()
                outcomes: list[ApiResult[Any] | BaseException]
                outcomes = await asyncio.gather(*replies, return_exceptions=True)
                return outcomes

        return self._run(go())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self._run(self._aclose())
            gc.collect()  # a task or transport left to the collector speaks up now
            left = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
            for task in left:
                task.cancel()
            if left:
                self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()
        assert not left, f"tasks left running: {left}"
        assert not self.loop_errors, f"errors on the loop: {self.loop_errors}"

    async def _aclose(self) -> None:
        if self.bot is not None:
            await self.bot.close()
        if self._consumer is not None:
            await self._consumer
        if self.server is not None:
            await self.server.__aexit__(None, None, None)

    @property
    def state(self) -> BotPhase:
        assert self.bot is not None
        state: BotPhase = self.bot.state
        return state

    @property
    def failure_reason(self) -> str | None:
        assert self.bot is not None
        reason: str | None = self.bot.failure_reason
        return reason


class ThreadedHarness(Harness):
    """ThreadedQQBot and ThreadedSimulatorServer; a thread reads ``events()``."""

    driver = "threaded"

    def __init__(self, config: SimulatorConfig) -> None:
        super().__init__(config)
        self.server: ThreadedSimulatorServer | None = None
        self.bot: ThreadedQQBot | None = None
        self._events: queue.Queue[object] = queue.Queue()
        self._consumer: threading.Thread | None = None

    def start(self, **options: Any) -> None:
        self.server = ThreadedSimulatorServer(self.sim).__enter__()
        options.setdefault("identify_window", self.sim.config.identify_window)
        self.bot = ThreadedQQBot(APP_ID, SECRET, **self.server.bot_options(**options))
        self.bot.start()
        self._consumer = threading.Thread(
            target=self._consume, args=(self.bot,), name="test-events"
        )
        self._consumer.start()

    def _consume(self, bot: ThreadedQQBot) -> None:
        try:
            for event in bot.events():
                self._events.put(event)
        except Exception as exc:
            self._events.put(Ended(exc))
        else:
            self._events.put(Ended(None))

    def push(self, fn: Callable[[float], T]) -> T:
        assert self.server is not None
        result: T = self.server.call(fn)
        return result

    def _next_item(self, timeout: float) -> object:
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError from None

    def reply(self, event: object, text: str) -> ApiResult[Any]:
        assert self.bot is not None
        result: ApiResult[Any] = self.bot.reply(event, text, timeout=WAIT)
        return result

    def call(self, api_call: ApiCall[Any]) -> ApiResult[Any]:
        assert self.bot is not None
        result: ApiResult[Any] = self.bot.call(api_call, timeout=WAIT)
        return result

    def wait_until(self, condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not self.push(lambda now: condition()):  # under the server's lock
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout} s: {what}")
            time.sleep(POLL)

    def close_while_replying(
        self, event: object, texts: Sequence[str]
    ) -> list[ApiResult[Any] | BaseException]:
        bot = self.bot
        assert bot is not None
        outcomes: list[ApiResult[Any] | BaseException | None] = [None] * len(texts)

        def one(i: int, text: str) -> None:
            try:
                outcomes[i] = bot.reply(event, text, timeout=WAIT)
            except BaseException as exc:
                outcomes[i] = exc

        threads = [
            threading.Thread(target=one, args=(i, text), name=f"test-reply-{i}")
            for i, text in enumerate(texts)
        ]
        for thread in threads:
            thread.start()
        self.wait_until(lambda: bool(self.sim.sent), "a reply reached the platform")
        stopper = threading.Thread(target=bot.stop, name="test-stop")
        stopper.start()
        stopper.join(WAIT)
        assert not stopper.is_alive(), "stop() hangs"
        for thread in threads:
            thread.join(WAIT)
            assert not thread.is_alive(), "a reply still waits after stop()"
        assert all(outcome is not None for outcome in outcomes)
        return [outcome for outcome in outcomes if outcome is not None]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.bot is not None:
            self.bot.stop()
        if self._consumer is not None:
            self._consumer.join(WAIT)
            assert not self._consumer.is_alive(), "events() did not end after stop()"
        if self.server is not None:
            self.server.__exit__(None, None, None)

    @property
    def state(self) -> BotPhase:
        assert self.bot is not None
        state: BotPhase = self.bot.state
        return state

    @property
    def failure_reason(self) -> str | None:
        assert self.bot is not None
        reason: str | None = self.bot.failure_reason
        return reason


HARNESSES: dict[str, type[Harness]] = {"asyncio": AsyncioHarness, "threaded": ThreadedHarness}
