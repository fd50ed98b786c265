"""What both drivers share: their options, the callbacks, the TLS context.

The actions that need no I/O of the driver's own (``Deliver``,
``StateChanged``) are carried out here; a driver adds ``connect``, ``send``,
``disconnect``, ``listen``, ``stop_listening``, ``http`` and ``failed``.

One convenience is QQ's and not the contract's: a driver given a
``token_provider`` answers a bare gateway's ``TokenWanted`` with it (a driver
adds ``fetch_token``); without one, ``TokenWanted`` reaches ``on_event``
like any other delivery.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Protocol

from qqproto.actions import StateChanged
from qqproto.contract import Driven
from qqproto.qq.gateway import GatewayProtocol, TokenWanted

from ._common import DriverError

__all__ = ["DriverBase", "TokenProvider"]

log = logging.getLogger("qqproto.adapters")
#: Returns ``(access_token, seconds_it_lives)``; for asyncio it may be async.
TokenProvider = Callable[[], "tuple[str, float] | Awaitable[tuple[str, float]]"]


class _Closable(Protocol):
    def close(self) -> None: ...


class DriverBase:
    """Options and callbacks of a driver for ``proto``.

    ``on_event`` gets every ``Deliver``-ed value and ``on_state`` every
    ``StateChanged`` (also logged at INFO), ``on_end`` the error that ended
    the driver (None after ``stop()``); they run inside the driver (in the
    loop, or with the threaded driver's lock held), so they must not block
    or call back into the driver: hand values on to a queue.
    ``token_provider`` answers ``TokenWanted`` (a bare ``GatewayProtocol``
    delivers it; ``BotProtocol`` fetches its own tokens).
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
        token_provider: TokenProvider | None = None,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = 10.0,
        io_timeout: float = 30.0,
        pool_size: int = 4,
    ) -> None:
        self.proto = proto
        self.on_event = on_event
        self.on_state = on_state
        self.on_end = on_end
        self.token_provider = token_provider
        self.connect_timeout = connect_timeout
        self.io_timeout = io_timeout
        self.pool_size = pool_size
        self._ssl_context = ssl_context
        self._setup()

    def _setup(self) -> None:
        """The driver's own state (a hook for subclasses)."""

    def ssl_context(self) -> ssl.SSLContext:
        """The context for ``wss://`` and ``https://`` (the system's CAs by default)."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def provider(self) -> TokenProvider:
        if self.token_provider is None:
            raise DriverError("the object asked for a token and no token_provider was given")
        return self.token_provider

    def let_go(self, conn: _Closable | None) -> None:
        """Close ``conn``, the transport a new Connect would replace (belt and
        braces: the object promises one at a time, so this is a bug of its own)."""
        if conn is not None:
            log.warning("connect with a transport still open; closing the old one")
            conn.close()

    def fetch_token(self, wanted: TokenWanted) -> None:
        raise NotImplementedError  # each driver's own: a task, or a worker thread

    def _token_received(self, token: str, expires_at: float, now: float) -> None:
        """Hand the provider's token to the gateway that wanted it."""
        if not isinstance(self.proto, GatewayProtocol):
            raise DriverError(f"{self.proto!r} wanted a token but takes none")
        self.proto.token_received(token, expires_at, now)

    def deliver(self, event: object) -> None:
        if isinstance(event, TokenWanted) and self.token_provider is not None:
            log.info("access token wanted: %s", event.reason)
            self.fetch_token(event)
        elif self.on_event is not None:
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
