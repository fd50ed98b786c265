"""Run any qqproto protocol object on asyncio streams.

:class:`AsyncioDriver` is the driver contract (``docs/driver-contract.md``)
and nothing more: TCP (plus TLS with SNI for ``wss://``), one timer handle on
``next_deadline()`` with ``loop.time()`` as ``now``, REST calls on a small
keep-alive pool, tokens from the caller's provider when the object asks, and
a clean shutdown: the object's close frame is flushed, tasks end, sockets close.
Each connection is a :class:`~._link.Link`, a task that alone reads its stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

from qqproto.actions import HttpRequest
from qqproto.contract import carry_out
from qqproto.errors import ProtocolError
from qqproto.http import HttpResponse
from qqproto.qq.gateway import TokenWanted

from . import _common as c
from ._base import DriverBase, TokenProvider
from ._http import AsyncHttpPool
from ._link import Link

__all__ = ["AsyncioDriver", "TokenProvider"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class AsyncioDriver(DriverBase):
    """Drives ``proto`` (see :class:`DriverBase` for the options) in ``run()``.

    ``run()`` returns after :meth:`stop` and raises :class:`DriverFailed` when
    the object gave up; cancelling it closes the object first, as ``stop()``
    (``on_end`` gets None), then re-raises the cancellation.
    """

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
        self._conns: dict[int, Link] = {}  # the ones the object knows: opening or open
        self._links: set[Link] = set()  # every one whose task may still run
        self._guarded(lambda now: None)  # what the object queued before we started
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
        result = fn(asyncio.get_running_loop().time())
        carry_out(self.proto, self, log)
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

    def _from(self, conn: int, link: Link, fn: Callable[[float], None], lost: bool = False) -> None:
        """News from ``link``, only while the object has it (one we let go is nobody's)."""
        if self._conns.get(conn) is link:
            if lost:
                del self._conns[conn]
            self._guarded(fn)

    def _end(self, error: BaseException | None, *, close: bool = False) -> None:
        assert self._done is not None
        if close:  # the close frame and Disconnect, carried out at once
            closing = c.close_protocol(self.proto, self, log, asyncio.get_running_loop().time())
            error = error or closing
        if not self._done.done():
            if error is None:
                self._done.set_result(None)
            else:
                self._done.set_exception(error)
            self.ended(error)
        self._arm_timer()

    async def _cleanup(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pool.aclose()
        links = list(self._links)
        for link in links:
            link.close()
        await asyncio.gather(*(link.task for link in links), return_exceptions=True)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the actions (the Executor methods) --------------------------------------------

    def connect(self, conn: int, url: str) -> None:
        self.let_go(self._conns.get(conn))
        proto, news = self.proto, self._from
        self._conns[conn] = link = Link(
            url,
            self.ssl_context,
            self.connect_timeout,
            on_open=lambda link: news(conn, link, partial(proto.connection_made, conn)),
            on_data=lambda link, data: news(conn, link, partial(proto.receive_data, conn, data)),
            on_lost=lambda link, why: news(
                conn, link, lambda now: proto.connection_lost(conn, now, why), lost=True
            ),
        )
        self._links.add(link)
        link.task.add_done_callback(lambda _: self._links.discard(link))

    def send(self, conn: int, data: bytes) -> None:
        link = self._conns.get(conn)
        if link is None or not link.write(data):
            log.warning("no transport #%d for %d bytes; dropped", conn, len(data))

    def disconnect(self, conn: int) -> None:
        link = self._conns.pop(conn, None)
        if link is not None:  # it flushes what it holds, then closes; a connect is given up
            link.close()
        self.proto.connection_lost(conn, asyncio.get_running_loop().time(), None)

    def listen(self, listener: int, host: str, port: int) -> None:
        raise c.DriverError("this driver does not listen yet")

    def stop_listening(self, listener: int) -> None:
        raise c.DriverError("this driver does not listen yet")

    def http(self, request: HttpRequest) -> None:
        self._spawn(self._http(request))

    async def _http(self, request: HttpRequest) -> None:
        try:
            outcome: HttpResponse | Exception = await self._pool.request(request)
        except (OSError, ProtocolError) as exc:  # TimeoutError is an OSError
            outcome = exc
        except Exception as exc:  # a bug, but the object must hear of it: its caller waits
            log.exception("HTTP request #%d failed unexpectedly", request.request_id)
            outcome = exc
        self._guarded(c.http_answer(self.proto, request.request_id, outcome, log))

    def fetch_token(self, wanted: TokenWanted) -> None:
        self._spawn(self._fetch_token())

    async def _fetch_token(self) -> None:
        try:
            answer = self.provider()()
            token, lifetime = answer if isinstance(answer, tuple) else await answer
        except Exception as exc:
            log.error("token provider failed: %s", c.describe(exc))
            self._end(exc)
            return
        self._guarded(lambda now: self._token_received(token, now + lifetime, now))

    def failed(self, reason: str) -> None:
        self._end(c.DriverFailed(reason))
