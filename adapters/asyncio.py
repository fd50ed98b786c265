"""Run any qqproto protocol object on asyncio streams.

:class:`AsyncioDriver` is the driver contract (``docs/driver-contract.md``)
and nothing more: connections out (TCP, plus TLS with SNI) and in, one timer
on ``next_deadline()`` with ``loop.time()`` as ``now``, REST calls on a small
keep-alive pool, and a clean shutdown: close frames are flushed, tasks end,
sockets close. Each connection is a :class:`~._link.Link`, a task that alone
reads its stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from qqproto.actions import HttpRequest
from qqproto.contract import Peer, carry_out

from . import _common as c
from ._base import DriverBase
from ._http import AsyncHttpPool, close_writer
from ._link import Link

__all__ = ["AsyncioDriver"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class AsyncioDriver(DriverBase):
    """Drives ``proto`` (see :class:`DriverBase` for the options) in ``run()``,
    which returns after :meth:`stop` and raises :class:`DriverFailed` when the
    object gave up; cancelling it closes the object first, as ``stop()``
    (``on_end`` gets None), then re-raises the cancellation."""

    _done: asyncio.Future[None] | None = None
    _timer: asyncio.TimerHandle | None = None
    _timer_at: float | None = None

    async def run(self) -> None:
        if self._done is not None:
            raise c.DriverError("an AsyncioDriver runs once")
        self._done = asyncio.get_running_loop().create_future()
        self._pool = AsyncHttpPool(
            self.ssl_context, self.pool_size, self.connect_timeout, self.io_timeout
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._links: set[Link] = set()  # every one whose task may still run
        self._news(lambda now: None)  # what the object queued before we started
        try:
            await asyncio.shield(self._done)  # a cancel reaches us, not _done
        except asyncio.CancelledError:
            self._end(None, close=True)
            raise
        finally:
            await self._cleanup()

    def call(self, fn: Callable[[float], T]) -> T:
        """``fn(now)`` (a call into the object), then carry out its actions;
        exceptions from ``fn`` (a refused reply, say) reach the caller. Once the
        driver has ended, raises what ended it (:class:`DriverFailed`, say), or
        :class:`DriverClosed` when that was :meth:`stop` or it never ran."""
        if not self.running:
            done = self._done
            if done is not None and not done.cancelled() and (error := done.exception()):
                raise error
            raise c.DriverClosed("the driver is not running")
        result = fn(self.now())
        carry_out(self.proto, self, log)
        self._arm_timer()
        return result

    def stop(self) -> None:
        """Close the object (its close frames go out) and let ``run()`` return."""
        if self.running:
            self._end(None, close=True)

    @property
    def running(self) -> bool:
        return self._done is not None and not self._done.done()

    def now(self) -> float:
        return asyncio.get_running_loop().time()

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
        self._news(lambda now: self.proto.handle_timer(max(now, when)))

    def _news(
        self,
        fn: Callable[[float], None],
        conn: int | None = None,
        of: object = None,
        lost: bool = False,
    ) -> None:
        """:meth:`call` for the driver's own callbacks: an error ends ``run()``."""
        if self.running and self._still(conn, of, lost):
            try:
                self.call(fn)
            except Exception as exc:
                log.exception("driver stopped by an unexpected error")
                self._end(exc)

    def _end(self, error: BaseException | None, *, close: bool = False) -> None:
        assert self._done is not None
        if close:  # the close frames and Disconnects, carried out at once
            error = error or c.close_protocol(self.proto, self, log, self.now())
        if not self._done.done():
            if error is None:
                self._done.set_result(None)
            else:
                self._done.set_exception(error)
            self.ended(error)
        self._arm_timer()

    async def _cleanup(self) -> None:
        for server in [s for s in self._listeners.values() if s is not None]:
            server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pool.aclose()
        await Link.close_all(self._links)

    def _spawn(self, coro: Awaitable[None]) -> None:
        self._tasks.add(task := asyncio.ensure_future(coro))
        task.add_done_callback(self._tasks.discard)

    def _track(self, link: Link) -> Link:
        self._links.add(link)  # until its task ends
        link.task.add_done_callback(lambda _: self._links.discard(link))
        return link

    # -- the actions (the Executor methods DriverBase leaves) ------------------------------

    def connect(self, conn: int, url: str) -> None:
        link = Link(url, self.ssl_context, self.connect_timeout, **self._wired(conn))
        self._opened(conn, self._track(link))

    def listen(self, listener: int, host: str, port: int) -> None:
        self._listeners[listener] = None
        self._spawn(self._serve(listener, host, port))

    async def _serve(self, listener: int, host: str, port: int) -> None:
        try:
            server = await asyncio.start_server(
                partial(self._accept, listener),
                host,
                port,
                ssl=self.server_ssl,
                ssl_handshake_timeout=self.connect_timeout if self.server_ssl else None,
            )
        except OSError as exc:
            self._bind_failed(listener, exc)
            return
        self._bound(listener, server, *server.sockets[0].getsockname()[:2])

    def _accept(self, listener: int, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        address = w.get_extra_info("peername")
        if not address:  # the peer reset before we took it: nothing to report
            self._spawn(close_writer(w))
            return
        peer = Peer(*address[:2])

        def link(conn: int) -> Link:
            wired = self._wired(conn)
            return self._track(Link(str(peer), self.ssl_context, 0, accepted=(reader, w), **wired))

        if self._accepted(listener, link, peer) is None:
            self._spawn(close_writer(w))

    def http(self, request: HttpRequest) -> None:
        async def exchange() -> None:
            outcome = await self._pool.outcome(request)
            self._news(c.http_answer(self.proto, request.request_id, outcome, log))

        self._spawn(exchange())

    def failed(self, reason: str) -> None:
        self._end(c.DriverFailed(reason))
