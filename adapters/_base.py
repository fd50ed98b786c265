"""What both drivers share: their options, the callbacks, the TLS context,
and the books of open connections and listeners.

The actions that need no I/O of the driver's own (``Deliver``,
``StateChanged``) and those that only look a connection up (``SendData``,
``Disconnect``, ``StopListening``) are carried out here; a driver adds
``connect``, ``listen``, ``http`` and ``failed``, the clock (:meth:`now`)
and how news from its own threads or tasks reaches the object (:meth:`_news`).

Nothing here knows a protocol: a bare gateway's ``TokenWanted`` reaches
``on_event`` like any other delivery, and the application answers it (see
``docs/drivers.md``).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, TypedDict, TypeVar

from qqproto.actions import StateChanged
from qqproto.contract import Driven, Peer, driver_ids
from qqproto.link import Retry

from ._common import describe

__all__ = ["DriverBase"]

log = logging.getLogger("qqproto.adapters")


class _Closable(Protocol):
    def close(self) -> None: ...


class _Conn(_Closable, Protocol):
    def write(self, data: bytes) -> bool: ...


C = TypeVar("C", bound=_Conn)


class Wired(TypedDict):
    """The callbacks a connection (a Link or a Transport) reports through."""

    on_open: Callable[[Any], None]
    on_data: Callable[[Any, bytes], None]
    on_lost: Callable[[Any, str], None]


class DriverBase:
    """Options and callbacks of a driver for ``proto``.

    ``on_event`` gets every ``Deliver``-ed value and ``on_state`` every
    ``StateChanged`` (also logged at INFO), ``on_end`` the error that ended
    the driver (None after ``stop()``); they run inside the driver (in the
    loop, or with the threaded driver's lock held), so they must not block
    or call back into the driver: hand values on to a queue.
    ``connect_timeout`` bounds a connect (TCP and TLS); ``io_timeout`` a whole
    HTTP exchange after it and, for threads, a write the peer does not take.
    """

    def __init__(
        self,
        proto: Driven,
        *,
        on_event: Callable[[object], None] | None = None,
        on_state: Callable[[StateChanged], None] | None = None,
        on_end: Callable[[BaseException | None], None] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        server_ssl: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
        io_timeout: float = 30.0,
        pool_size: int = 4,
    ) -> None:
        self.proto = proto
        self.on_event = on_event
        self.on_state = on_state
        self.on_end = on_end
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout
        self.pool_size = pool_size
        self._ssl_context = ssl_context
        #: Serve TLS on every listener with this context (its certificate and key).
        self.server_ssl = server_ssl
        #: The connections the object knows (opening or open), and its listeners.
        self._conns: dict[int, _Conn] = {}
        self._listeners: dict[int, _Closable | None] = {}  # None: not bound yet
        self._accept_ids = driver_ids()
        self._setup()

    def _setup(self) -> None:
        """The driver's own state (a hook for subclasses)."""

    def ssl_context(self) -> ssl.SSLContext:
        """The context for ``wss://`` and ``https://`` (the system's CAs by default)."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def let_go(self, conn: _Closable | None) -> None:
        """Close ``conn``, the transport a new Connect would replace (belt and
        braces: the object promises one at a time, so this is a bug of its own)."""
        if conn is not None:
            log.warning("connect with a transport still open; closing the old one")
            conn.close()

    # -- each driver's own -------------------------------------------------------------

    def now(self) -> float:
        raise NotImplementedError  # the loop's clock, or time.monotonic()

    def _news(
        self,
        fn: Callable[[float], None],
        conn: int | None = None,
        of: object = None,
        lost: bool = False,
    ) -> None:
        """Call ``fn(now)`` on the object from the driver's own task or thread,
        then carry out what it asks. News ``of`` connection ``conn`` comes only
        while the object still has it (one it let go is nobody's); after news
        that it was ``lost``, it has it no more."""
        raise NotImplementedError

    def _still(self, conn: int | None, of: object, lost: bool) -> bool:
        """For :meth:`_news`: whether news of ``conn`` may reach the object."""
        if conn is None or self._conns.get(conn) is not of:
            return conn is None
        if lost:
            del self._conns[conn]
        return True

    # -- connections and listeners ---------------------------------------------------------

    def _wired(self, conn: int) -> Wired:
        """The callbacks of connection ``conn`` (a Link or a Transport)."""
        proto, news = self.proto, self._news

        def lost(link: object, why: str) -> None:
            news(lambda now: proto.connection_lost(conn, now, why), conn, link, lost=True)

        return {
            "on_open": lambda link: news(partial(proto.connection_made, conn), conn, link),
            "on_data": lambda link, data: news(partial(proto.receive_data, conn, data), conn, link),
            "on_lost": lost,
        }

    def _opened(self, conn: int, link: _Conn) -> None:
        self.let_go(self._conns.get(conn))
        self._conns[conn] = link

    def _bound(self, listener: int, server: _Closable, host: str, port: int) -> None:
        """``listener`` is bound (from the driver's own task or thread)."""
        if listener not in self._listeners:  # stopped while binding
            server.close()
            return
        self._listeners[listener] = server
        self._news(lambda now: self.proto.listening(listener, host, port, now))

    def _bind_failed(self, listener: int, exc: BaseException) -> None:
        """``listener`` could not bind, or broke after: lost, unless stopped meanwhile."""
        if listener in self._listeners:
            if (server := self._listeners.pop(listener)) is not None:
                server.close()
            why = describe(exc)
            self._news(lambda now: self.proto.listener_lost(listener, now, why))

    def _accepted(self, listener: int, link_for: Callable[[int], C], peer: Peer) -> C | None:
        """A connection ``listener`` accepted (from the driver's own task or thread):
        named, kept, and told to the object before its first byte. None when the
        listener was stopped meanwhile: the caller closes what it accepted."""
        if listener not in self._listeners:
            return None
        conn = next(self._accept_ids)
        self._conns[conn] = link = link_for(conn)
        log.info("accepted #%d from %s on listener #%d", conn, peer, listener)
        self._news(lambda now: self.proto.connection_accepted(listener, conn, peer, now))
        return link

    def send(self, conn: int, data: bytes) -> None:
        link = self._conns.get(conn)
        if link is None or not link.write(data):
            log.warning("no transport #%d for %d bytes; dropped", conn, len(data))

    def disconnect(self, conn: int) -> None:
        link = self._conns.pop(conn, None)
        if link is not None:  # it flushes what it holds, then closes; a connect is given up
            link.close()
        self.proto.connection_lost(conn, self.now(), None)

    def stop_listening(self, listener: int) -> None:
        if (server := self._listeners.pop(listener, None)) is not None:
            server.close()
        self.proto.listener_lost(listener, self.now(), None)

    # -- what needs no I/O -----------------------------------------------------------------

    def deliver(self, event: object) -> None:
        if isinstance(event, Retry):  # a failed attempt is never silent
            log.warning("%s", event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("on_event failed for %s", type(event).__name__)

    def ended(self, error: BaseException | None) -> None:
        if self.on_end is not None:
            try:
                self.on_end(error)
            except Exception:
                log.exception("on_end failed")

    def state_changed(self, change: StateChanged) -> None:
        if self.on_state is not None:
            try:
                self.on_state(change)
            except Exception:
                log.exception("on_state failed")
