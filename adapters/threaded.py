"""Run any qqproto protocol object on sockets and threads, with no event loop.

One lock guards the object; every call into it happens under that lock and is
followed by carrying out its actions. The threads: a timer that sleeps on a
condition until ``next_deadline()`` (``time.monotonic()`` is ``now``), one per
connection (:mod:`._transport`: the only thread that touches its socket), one
per listener (:mod:`._listener`), and a small pool for REST calls.
:meth:`ThreadedDriver.stop` sends the object's close frames and joins every
one of them.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from qqproto.actions import HttpRequest
from qqproto.contract import Peer, carry_out

from . import _common as c
from ._base import DriverBase
from ._http import BlockingHttpPool
from ._listener import Listener
from ._transport import Transport

__all__ = ["ThreadedDriver"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class ThreadedDriver(DriverBase):
    """Drives ``proto`` (see :class:`DriverBase`) from :meth:`start` to :meth:`stop`."""

    def _setup(self) -> None:
        self._pool = BlockingHttpPool(
            self.ssl_context, self.pool_size, self.connect_timeout, self.io_timeout
        )
        self._workers = ThreadPoolExecutor(4, thread_name_prefix="qqproto-http")
        self._cond = threading.Condition()
        self._threads: set[Transport | Listener] = set()  # each whose thread may still run
        self._timer = threading.Thread(target=self._timer_loop, name="qqproto-timer")
        self._started = self._done = False
        self._error: BaseException | None = None

    def start(self) -> None:
        with self._cond:
            if self._started:
                raise c.DriverError("a ThreadedDriver starts once")
            self._started = True
            self._news(lambda now: None)  # what the object queued before we started
        self._timer.start()

    def call(self, fn: Callable[[float], T]) -> T:
        """``fn(now)`` under the lock, then carry out its actions (thread-safe).
        Once the driver has ended, raises what ended it (:class:`DriverFailed`,
        say), or :class:`DriverClosed` when that was :meth:`stop` or it never started."""
        with self._cond:
            if self._done and self._error is not None:
                raise self._error
            if not self._started or self._done:
                raise c.DriverClosed("the driver is not running")
            result = fn(time.monotonic())
            carry_out(self.proto, self, log)
            self._cond.notify_all()  # the deadline may have moved
            return result

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the driver ends (True) or ``timeout`` passes (False);
        raises :class:`DriverFailed` (or what broke it) if it did not end cleanly."""
        with self._cond:
            ended = self._cond.wait_for(lambda: self._done, timeout)
        if ended and self._error is not None:
            raise self._error
        return ended

    def stop(self, grace: float = c.CLOSE_GRACE) -> None:
        """Close the object (its close frames go out), then join every thread; a
        connection has ``grace`` seconds to flush, a connect under way ends at once."""
        with self._cond:
            if self._started and not self._done:
                self._end(None, close=True)
            self._finish(None)
            threads = list(self._threads)
        for thread in threads:
            thread.close(grace)
        self._pool.close()  # cuts requests under way, so their workers end soon
        if self._timer.is_alive():
            self._timer.join()
        for thread in threads:
            thread.join()
        self._workers.shutdown(wait=True, cancel_futures=True)

    def run(self) -> None:
        """:meth:`start`, :meth:`wait` and :meth:`stop` (also on Ctrl-C)."""
        self.start()
        try:
            self.wait()
        finally:
            self.stop()

    def now(self) -> float:
        return time.monotonic()

    # -- the loop ----------------------------------------------------------------------

    def _timer_loop(self) -> None:
        with self._cond:
            while not self._done:
                deadline, now = self.proto.next_deadline(), time.monotonic()
                if deadline is None or now < deadline:
                    self._cond.wait(None if deadline is None else deadline - now)
                else:
                    self._news(self.proto.handle_timer)

    def _news(
        self,
        fn: Callable[[float], None],
        conn: int | None = None,
        of: object = None,
        lost: bool = False,
    ) -> None:
        with self._cond:  # re-entrant: the lock may be held already
            if not self._done and self._still(conn, of, lost):
                try:
                    fn(time.monotonic())
                    carry_out(self.proto, self, log)
                except Exception as exc:
                    log.exception("driver stopped by an unexpected error")
                    self._end(exc)
            self._cond.notify_all()

    def _end(self, error: BaseException | None, *, close: bool = False) -> None:
        closing = c.close_protocol(self.proto, self, log, time.monotonic()) if close else None
        self._finish(error or closing)

    def _finish(self, error: BaseException | None) -> None:
        if not self._done:
            self._done, self._error = True, error
            self.ended(error)
        self._cond.notify_all()

    def _locked(self, fn: Callable[[], None]) -> None:
        with self._cond:  # news of a listener: it calls into the object itself
            if not self._done:
                fn()

    def _run(self, thread: Transport | Listener) -> None:
        self._threads = {t for t in self._threads if t.alive} | {thread}  # forget ended ones
        thread.start()

    # -- the actions (the Executor methods DriverBase leaves; the lock is held) -------------

    def connect(self, conn: int, url: str) -> None:
        wired = self._wired(conn)
        transport = Transport(url, self.ssl_context, self.connect_timeout, self.io_timeout, **wired)
        self._opened(conn, transport)
        self._run(transport)

    def listen(self, listener: int, host: str, port: int) -> None:
        self._listeners[listener] = None
        self._run(
            Listener(
                host,
                port,
                on_bound=lambda *bound: self._locked(partial(self._bound, listener, *bound)),
                on_accept=partial(self._accept, listener),
                on_failed=lambda exc: self._locked(partial(self._bind_failed, listener, exc)),
            )
        )

    def _accept(self, listener: int, sock: socket.socket, address: tuple[str, int]) -> None:
        peer, timeouts = Peer(*address), (self.connect_timeout, self.io_timeout)

        def transport(conn: int) -> Transport:
            wired, tls = self._wired(conn), self.server_ssl
            return Transport(str(peer), self.ssl_context, *timeouts, accepted=(sock, tls), **wired)

        with self._cond:
            if accepted := None if self._done else self._accepted(listener, transport, peer):
                self._run(accepted)
            else:
                sock.close()

    def http(self, request: HttpRequest) -> None:
        def exchange() -> None:
            outcome = self._pool.outcome(request)
            self._news(c.http_answer(self.proto, request.request_id, outcome, log))

        self._workers.submit(exchange)

    def failed(self, reason: str) -> None:
        self._finish(c.DriverFailed(reason))
