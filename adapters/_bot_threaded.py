"""The thread machinery every bot without an event loop shares.

The driver's threads do the I/O; events wait in a ``SimpleQueue`` for
``events()`` and ``run_forever()``; a call blocks on a
``concurrent.futures.Future`` the :class:`~._bot.Router` resolves. Every
method is thread-safe.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Self, TypeVar

from qqproto.contract import Driven

from ._bot import BotBase, on_sigterm
from ._common import DriverClosed
from .threaded import ThreadedDriver

__all__ = ["ThreadedBotBase"]

log = logging.getLogger("qqproto.adapters.bot")
P = TypeVar("P", bound=Driven)
_END = object()  # the driver ended: no more events
_WAKE = object()  # SIGTERM came: a blocked reader looks at _terminated


class ThreadedBotBase(BotBase[P, ThreadedDriver]):
    """A bot driven by threads: ``with``, ``events()``, ``run_forever()``, ``stop()``."""

    def _build(self, **driver_options: Any) -> ThreadedDriver:
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        # start() and stop() from any thread: one at a time, and a stop() that finds
        # another under way returns only once that one has joined every thread.
        self._lifecycle = threading.Lock()
        self._started = self._stopped = False
        self._terminated = False  # SIGTERM came during run_forever()
        return ThreadedDriver(
            self.protocol, on_event=self._on_event, on_end=self._on_end, **driver_options
        )

    # -- starting and stopping ---------------------------------------------------------

    def start(self) -> None:
        with self._lifecycle:
            if not self._started:
                self._started = True
                self.driver.start()

    def stop(self) -> None:
        """Close the connection, join every thread; blocked ``events()`` readers end.
        A second call, from any thread, returns once the first is done."""
        with self._lifecycle:
            if self._stopped or not self._started:
                return
            self._stopped = True
            self.driver.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- events ------------------------------------------------------------------------

    def _on_event(self, value: object) -> None:  # with the driver's lock held
        if self._router.route(value):
            if self._queue.qsize() >= self.max_queued_events:
                with contextlib.suppress(queue.Empty):  # a reader may have taken it
                    self._dropped_oldest(self._queue.get_nowait())
            self._queue.put(value)

    def _on_end(self, error: BaseException | None) -> None:  # with the driver's lock held
        self._error = error
        self._router.fail_waiters(error or DriverClosed("the bot was stopped"))
        self._queue.put(_END)

    def events(self) -> Iterator[object]:
        """Every event, in order, until the bot stops; raises DriverFailed if it gave up."""
        self.start()
        while not self._terminated:
            event = self._queue.get()
            if event is _WAKE:
                continue
            if event is _END:
                self._queue.put(_END)
                if self._error is not None:
                    raise self._error
                return
            self._taken()
            yield event

    def run_forever(self) -> None:
        """Feed events to the handlers in this thread until stop(), Ctrl-C, SIGTERM
        (in the main thread) or failure; then stop (close frame, threads joined)."""
        try:
            with on_sigterm(self._terminate):
                for event in self.events():
                    for handler in self._router.handlers_for(event):
                        try:
                            handler(event)
                        except Exception:
                            log.exception("handler %s failed on %s", handler, type(event).__name__)
            if self._terminated:
                log.info("SIGTERM: stopping")
        except KeyboardInterrupt:
            log.info("interrupted")
        finally:
            self.stop()

    def _terminate(self) -> None:
        """SIGTERM, in the signal handler: a flag, and a wake-up for a blocked reader
        (``SimpleQueue.put`` may be called from a signal handler)."""
        self._terminated = True
        self._queue.put(_WAKE)

    # -- calls ---------------------------------------------------------------------------

    def _wait(self, start: Callable[[float], int], timeout: float | None) -> Any:
        """Start a call inside the driver and block for the value that ends it
        (``TimeoutError`` after ``timeout`` seconds)."""
        self.start()
        waiter: Future[Any] = Future()

        def begin(now: float) -> None:
            self._router.waiters[start(now)] = waiter

        self.driver.call(begin)
        return waiter.result(timeout)
