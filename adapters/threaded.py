"""Run any qqproto protocol object on blocking sockets and threads.

:class:`ThreadedDriver` is the driver contract for programs without an event
loop. One lock guards the object; every call into it happens under that lock
and is followed by carrying out its actions. The threads: a timer that sleeps
on a condition until ``next_deadline()`` (``time.monotonic()`` is ``now``),
one per transport (it connects, then reads), and a small pool for REST calls
and token fetches. :meth:`ThreadedDriver.stop` sends the object's close frame
and joins every one of them.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from qqproto.actions import HttpRequest
from qqproto.errors import ProtocolError

from . import _common as c
from ._base import DriverBase, TokenProvider
from ._http import BlockingHttpPool, open_socket

__all__ = ["ThreadedDriver", "TokenProvider"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class ThreadedDriver(DriverBase):
    """Drives ``proto`` (see :class:`DriverBase`) from :meth:`start` to :meth:`stop`."""

    def _setup(self) -> None:
        self._pool = BlockingHttpPool(self.ssl_context, self.pool_size, self.io_timeout)
        self._workers = ThreadPoolExecutor(4, thread_name_prefix="qqproto-http")
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None  # the open transport
        self._attempt: object | None = None  # the Connect being carried out
        self._links: set[threading.Thread] = set()
        self._socks: set[socket.socket] = set()
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
        """``fn(now)`` under the lock, then carry out its actions (thread-safe)."""
        with self._cond:
            if not self._started or self._done:
                raise c.DriverClosed("the driver is not running")
            result = fn(time.monotonic())
            c.carry_out(self.proto, self, log)
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
        """Close the object (its close frame goes out), then join every thread."""
        with self._cond:
            if self._started and not self._done:
                self._end(None, close=True)
            self._finish(None)
        if self._timer.is_alive():
            self._timer.join()
        deadline = time.monotonic() + grace
        for thread in list(self._links):  # let the peer answer our close frame
            thread.join(max(0.0, deadline - time.monotonic()))
        for sock in list(self._socks):
            _shutdown(sock, socket.SHUT_RDWR)
        for thread in list(self._links):
            thread.join()
        self._pool.close()
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
                c.carry_out(self.proto, self, log)
            except Exception as exc:
                log.exception("driver stopped by an unexpected error")
                self._end(exc)
        self._cond.notify_all()

    def _locked(self, fn: Callable[[float], None]) -> None:
        with self._cond:
            self._guarded(fn)

    def _end(self, error: BaseException | None, *, close: bool = False) -> None:
        try:
            if close:
                c.close_protocol(self.proto, time.monotonic())
                c.carry_out(self.proto, self, log)
        except Exception as exc:
            log.exception("error while closing")
            error = error or exc
        self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        self._attempt = None
        if not self._done:
            self._done, self._error = True, error
            self.ended(error)
        self._cond.notify_all()

    # -- the actions (the Executor methods; the lock is held) ------------------------------

    def connect(self, url: str) -> None:
        self._attempt = attempt = object()
        thread = threading.Thread(target=self._link, args=(url, attempt), name="qqproto-link")
        self._links.add(thread)
        thread.start()

    def _link(self, url: str, attempt: object) -> None:
        try:
            end = c.Endpoint.from_url(url)
            sock = open_socket(end.host, end.port, end.tls, self.ssl_context, self.connect_timeout)
        except (OSError, ValueError) as exc:
            with self._cond:
                if self._attempt is attempt:
                    self._attempt = None
                    self._guarded(c.lose(self.proto, f"{url}: {c.describe(exc)}"))
            self._links.discard(threading.current_thread())
            return
        with sock:
            sock.settimeout(self.io_timeout)
            with self._cond:
                attached = self._attempt is attempt and not self._done
                if attached:  # else a Disconnect (or stop) came first
                    self._attempt, self._sock = None, sock
                    self._socks.add(sock)
                    log.info("connected to %s", url)
                    self._guarded(self.proto.connection_made)
            while attached and self._read(sock):
                pass
            self._socks.discard(sock)
        self._links.discard(threading.current_thread())

    def _read(self, sock: socket.socket) -> bool:
        """One read; False when this transport is done with."""
        data, lost = None, None
        try:
            data = sock.recv(c.READ_SIZE)
        except TimeoutError:
            pass  # a quiet link; the object's heartbeats judge it
        except OSError as exc:
            lost = c.describe(exc)
        with self._cond:
            if self._sock is not sock or self._done:
                return False  # we let this transport go; its late bytes are nobody's
            if lost is not None:
                self._sock = None
                self._guarded(c.lose(self.proto, lost))
                return False
            if data is not None:
                log.debug("received %d bytes", len(data))
                self._guarded(partial(self.proto.receive_data, data))
            return data != b""

    def send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            log.warning("no transport for %d bytes; dropped", len(data))
            return
        try:
            sock.sendall(data)
        except OSError as exc:
            self._sock = None
            _shutdown(sock, socket.SHUT_RDWR)
            self.proto.connection_lost(time.monotonic(), f"send failed: {c.describe(exc)}")

    def disconnect(self) -> None:
        self._attempt = None  # a connect under way closes what it opens
        sock, self._sock = self._sock, None
        if sock is not None:
            _shutdown(sock, socket.SHUT_WR)  # our bytes, then FIN; the reader sees the end
        self.proto.connection_lost(time.monotonic(), None)

    def http(self, request: HttpRequest) -> None:
        self._workers.submit(self._http, request)

    def _http(self, request: HttpRequest) -> None:
        rid = request.request_id
        try:
            response = self._pool.request(request)
        except (OSError, ProtocolError) as exc:
            why = c.describe(exc)
            log.warning("HTTP request #%d failed: %s", rid, why)
            self._locked(lambda now: c.report_http_failure(self.proto, rid, why, now))
            return
        log.debug("HTTP #%d: %d", rid, response.status)
        self._locked(lambda now: self.proto.http_response(rid, response, now))

    def fetch_token(self, reason: str) -> None:
        self._workers.submit(self._fetch_token)

    def _fetch_token(self) -> None:
        try:
            answer = self.provider()()
            if not isinstance(answer, tuple):
                raise c.DriverError("the threaded driver's token_provider must not be async")
            token, lifetime = answer
        except Exception as exc:
            log.error("token provider failed: %s", c.describe(exc))
            with self._cond:
                self._end(exc)
            return
        self._locked(lambda now: c.report_token(self.proto, token, lifetime, now))

    def failed(self, reason: str) -> None:
        self._finish(c.DriverFailed(reason))


def _shutdown(sock: socket.socket, how: int) -> None:
    with contextlib.suppress(OSError):  # already gone
        sock.shutdown(how)
