"""Run any qqproto protocol object on asyncio streams.

:class:`AsyncioDriver` is the driver contract (``docs/driver-contract.md``)
and nothing more: TCP (plus TLS with SNI for ``wss://``), one timer handle on
``next_deadline()`` with ``loop.time()`` as ``now``, REST calls on a small
keep-alive pool, tokens from the caller's provider when the object asks, and
a clean shutdown: the object's close frame is flushed, tasks end, sockets close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from qqproto.actions import HttpRequest
from qqproto.errors import ProtocolError
from qqproto.http import HttpResponse

from . import _common as c
from ._base import DriverBase, TokenProvider
from ._http import AsyncHttpPool, close_writer, open_stream

__all__ = ["AsyncioDriver", "TokenProvider"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class AsyncioDriver(DriverBase):
    """Drives ``proto`` (see :class:`DriverBase` for the options) in ``run()``.

    ``run()`` returns after :meth:`stop` and raises :class:`DriverFailed` when
    the object gave up; cancelling it closes the object first, as ``stop()``.
    """

    _done: asyncio.Future[None] | None = None
    _writer: asyncio.StreamWriter | None = None  # the open transport
    _attempt: object | None = None  # the Connect being carried out
    _timer: asyncio.TimerHandle | None = None
    _timer_at: float | None = None

    async def run(self) -> None:
        if self._done is not None:
            raise c.DriverError("an AsyncioDriver runs once")
        self._done = asyncio.get_running_loop().create_future()
        self._pool = AsyncHttpPool(self.ssl_context, self.pool_size)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closers: set[asyncio.Task[None]] = set()
        self._guarded(lambda now: None)  # what the object queued before we started
        try:
            await self._done
        finally:
            if self._done.cancelled():
                self._end(None, close=True)
            await self._cleanup()

    def call(self, fn: Callable[[float], T]) -> T:
        """``fn(now)`` (a call into the object), then carry out its actions;
        exceptions from ``fn`` (a refused reply, say) reach the caller."""
        if not self.running:
            raise c.DriverClosed("the driver is not running")
        result = fn(asyncio.get_running_loop().time())
        c.carry_out(self.proto, self, log)
        self._arm_timer()
        return result

    def stop(self) -> None:
        """Close the object (its close frame goes out) and let ``run()`` return."""
        if self.running:
            self._end(None, close=True)

    @property
    def running(self) -> bool:
        return self._done is not None and not self._done.done()

    # -- the loop ------------------------------------------------------------------

    def _arm_timer(self) -> None:
        deadline = self.proto.next_deadline() if self.running else None
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at, self._timer = deadline, None
            if deadline is not None:
                self._timer = asyncio.get_running_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        when, self._timer_at, self._timer = self._timer_at or 0.0, None, None
        # call_at may fire a hair early; the object must see its deadline reached.
        self._guarded(lambda now: self.proto.handle_timer(max(now, when)))

    def _guarded(self, fn: Callable[[float], None]) -> None:
        """:meth:`call` for the driver's own callbacks: an error ends ``run()``."""
        if self.running:
            try:
                self.call(fn)
            except Exception as exc:
                log.exception("driver stopped by an unexpected error")
                self._end(exc)

    def _end(self, error: BaseException | None, *, close: bool = False) -> None:
        assert self._done is not None
        if close:  # the close frame and Disconnect, carried out at once
            closing = c.close_protocol(self.proto, self, log, asyncio.get_running_loop().time())
            error = error or closing
        if not self._done.done():
            self._done.set_result(None) if error is None else self._done.set_exception(error)
            self.ended(error)
        self._arm_timer()

    async def _cleanup(self) -> None:
        self._attempt = None
        if self._writer is not None:
            self._close(self._writer)
            self._writer = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pool.aclose()
        await asyncio.gather(*self._closers, return_exceptions=True)

    def _spawn(self, coro: Awaitable[None], tasks: set[asyncio.Task[None]] | None = None) -> None:
        tasks = self._tasks if tasks is None else tasks
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _close(self, writer: asyncio.StreamWriter) -> None:
        self._spawn(close_writer(writer), self._closers)

    # -- the actions (the Executor methods) --------------------------------------------

    def connect(self, url: str) -> None:
        self._attempt = attempt = object()
        self._spawn(self._open(url, attempt))

    async def _open(self, url: str, attempt: object) -> None:
        try:
            end = c.Endpoint.from_url(url)
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await open_stream(end.host, end.port, end.tls, self.ssl_context)
        except (OSError, ValueError) as exc:  # TimeoutError and ssl errors are OSErrors
            if self._attempt is attempt:
                self._attempt = None
                self._guarded(c.lose(self.proto, f"{url}: {c.describe(exc)}"))
            return
        if self._attempt is not attempt:  # a Disconnect (or stop) came first
            self._close(writer)
            return
        self._attempt, self._writer = None, writer
        log.info("connected to %s", url)
        self._guarded(self.proto.connection_made)
        while self._writer is writer:
            # Backpressure: while the peer is not taking our bytes, read none of its
            # own (each may make the object write more). A lost link: the read says how.
            with contextlib.suppress(OSError):
                await writer.drain()
            try:
                data = await reader.read(c.READ_SIZE)
            except OSError as exc:
                if self._writer is writer:
                    self._writer = None
                    self._close(writer)
                    self._guarded(c.lose(self.proto, c.describe(exc)))
                return
            if self._writer is not writer:
                return  # we let this transport go; its late bytes are nobody's
            log.debug("received %d bytes", len(data))
            self._guarded(partial(self.proto.receive_data, data))
            if not data:
                return

    def send(self, data: bytes) -> None:
        if self._writer is None:
            log.warning("no transport for %d bytes; dropped", len(data))
        else:
            self._writer.write(data)

    def disconnect(self) -> None:
        self._attempt = None  # an open under way closes what it opens
        if self._writer is not None:
            self._close(self._writer)
            self._writer = None
        self.proto.connection_lost(asyncio.get_running_loop().time(), None)

    def http(self, request: HttpRequest) -> None:
        self._spawn(self._http(request))

    async def _http(self, request: HttpRequest) -> None:
        try:
            async with asyncio.timeout(self.io_timeout):
                outcome: HttpResponse | Exception = await self._pool.request(request)
        except (OSError, ProtocolError) as exc:
            outcome = exc
        self._guarded(c.http_answer(self.proto, request.request_id, outcome, log))

    def fetch_token(self, reason: str) -> None:
        self._spawn(self._fetch_token())

    async def _fetch_token(self) -> None:
        try:
            answer = self.provider()()
            token, lifetime = answer if isinstance(answer, tuple) else await answer
        except Exception as exc:
            log.error("token provider failed: %s", c.describe(exc))
            self._end(exc)
            return
        self._guarded(lambda now: c.report_token(self.proto, token, lifetime, now))

    def failed(self, reason: str) -> None:
        self._end(c.DriverFailed(reason))
