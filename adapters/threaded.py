"""Run any qqproto protocol object on sockets and threads, with no event loop.

One lock guards the object; every call into it happens under that lock and is
followed by carrying out its actions. The threads: a timer that sleeps on a
condition until ``next_deadline()`` (``time.monotonic()`` is ``now``), one per
transport (:mod:`._transport`: the only thread that touches its socket), and
a small pool for REST calls and token fetches. :meth:`ThreadedDriver.stop`
sends the object's close frame and joins every one of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from qqproto.actions import HttpRequest
from qqproto.contract import carry_out
from qqproto.errors import ProtocolError
from qqproto.http import HttpResponse
from qqproto.qq.gateway import TokenWanted

from . import _common as c
from ._base import DriverBase, TokenProvider
from ._http import BlockingHttpPool
from ._transport import Transport

__all__ = ["ThreadedDriver", "TokenProvider"]

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
        self._conns: dict[int, Transport] = {}  # the ones the object knows: opening or open
        self._transports: set[Transport] = set()  # every one whose thread may still run
        self._timer = threading.Thread(target=self._timer_loop, name="qqproto-timer")
        self._started = self._done = False
        self._error: BaseException | None = None

    def start(self) -> None:
        with self._cond:
            if self._started:
                raise c.DriverError("a ThreadedDriver starts once")
            self._started = True
            self._guarded(lambda now: None)  # what the object queued before we started
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
        """Close the object (its close frame goes out), then join every thread; a
        transport has ``grace`` seconds to flush, a connect under way ends at once."""
        with self._cond:
            if self._started and not self._done:
                self._end(None, close=True)
            self._finish(None)
            transports = list(self._transports)
        for transport in transports:
            transport.close(grace)
        self._pool.close()  # cuts requests under way, so their workers end soon
        if self._timer.is_alive():
            self._timer.join()
        for transport in transports:
            transport.join()
        self._workers.shutdown(wait=True, cancel_futures=True)

    def run(self) -> None:
        """:meth:`start`, :meth:`wait` and :meth:`stop` (also on Ctrl-C)."""
        self.start()
        try:
            self.wait()
        finally:
            self.stop()

    # -- the loop (callers hold the lock) ----------------------------------------------

    def _timer_loop(self) -> None:
        with self._cond:
            while not self._done:
                deadline, now = self.proto.next_deadline(), time.monotonic()
                if deadline is None or now < deadline:
                    self._cond.wait(None if deadline is None else deadline - now)
                else:
                    self._guarded(self.proto.handle_timer)

    def _guarded(self, fn: Callable[[float], None]) -> None:
        if not self._done:
            try:
                fn(time.monotonic())
                carry_out(self.proto, self, log)
            except Exception as exc:
                log.exception("driver stopped by an unexpected error")
                self._end(exc)
        self._cond.notify_all()

    def _locked(
        self,
        fn: Callable[[float], None],
        conn: int | None = None,
        transport: Transport | None = None,
        lost: bool = False,
    ) -> None:
        """``fn(now)`` from a thread of ours; news from a ``transport`` only while the
        object has it (one we let go, when a Disconnect or stop came first, is nobody's)."""
        with self._cond:
            if conn is None or self._conns.get(conn) is transport:
                if lost and conn is not None:
                    del self._conns[conn]
                self._guarded(fn)

    def _end(self, error: BaseException | None, *, close: bool = False) -> None:
        closing = c.close_protocol(self.proto, self, log, time.monotonic()) if close else None
        self._finish(error or closing)

    def _finish(self, error: BaseException | None) -> None:
        if not self._done:
            self._done, self._error = True, error
            self.ended(error)
        self._cond.notify_all()

    # -- the actions (the Executor methods; the lock is held) ------------------------------

    def connect(self, conn: int, url: str) -> None:
        self.let_go(self._conns.get(conn))
        self._transports = {t for t in self._transports if t.alive}  # forget finished ones
        proto, news = self.proto, self._locked
        self._conns[conn] = transport = Transport(
            url,
            self.ssl_context,
            self.connect_timeout,
            self.io_timeout,
            on_open=lambda t: news(partial(proto.connection_made, conn), conn, t),
            on_data=lambda t, data: news(partial(proto.receive_data, conn, data), conn, t),
            on_lost=lambda t, why: news(
                lambda now: proto.connection_lost(conn, now, why), conn, t, lost=True
            ),
        )
        self._transports.add(transport)
        transport.start()

    def send(self, conn: int, data: bytes) -> None:
        transport = self._conns.get(conn)
        if transport is None:
            log.warning("no transport #%d for %d bytes; dropped", conn, len(data))
        else:
            transport.write(data)  # its own thread writes it

    def disconnect(self, conn: int) -> None:
        transport = self._conns.pop(conn, None)
        if transport is not None:  # it writes what it holds, then FIN; a connect is given up
            transport.close()
        self.proto.connection_lost(conn, time.monotonic(), None)

    def listen(self, listener: int, host: str, port: int) -> None:
        raise c.DriverError("this driver does not listen yet")

    def stop_listening(self, listener: int) -> None:
        raise c.DriverError("this driver does not listen yet")

    def http(self, request: HttpRequest) -> None:
        self._workers.submit(self._http, request)

    def _http(self, request: HttpRequest) -> None:
        try:
            outcome: HttpResponse | Exception = self._pool.request(request)
        except (OSError, ProtocolError) as exc:  # TimeoutError is an OSError
            outcome = exc
        except Exception as exc:  # a bug, but the object must hear of it: its caller waits
            log.exception("HTTP request #%d failed unexpectedly", request.request_id)
            outcome = exc
        self._locked(c.http_answer(self.proto, request.request_id, outcome, log))

    def fetch_token(self, wanted: TokenWanted) -> None:
        self._workers.submit(self._fetch_token)

    def _fetch_token(self) -> None:
        try:
            answer = self.provider()()
            if not isinstance(answer, tuple):
                raise c.DriverError("the threaded driver's token_provider must not be async")
        except Exception as exc:
            log.error("token provider failed: %s", c.describe(exc))
            with self._cond:
                self._end(exc)
            return
        token, lifetime = answer
        self._locked(lambda now: self._token_received(token, now + lifetime, now))

    def failed(self, reason: str) -> None:
        self._finish(c.DriverFailed(reason))
