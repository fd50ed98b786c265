"""What both bot APIs share, with no I/O: construction, routing, handlers.

A ``BotProtocol`` delivers two kinds of value: the outcome of a REST call or
reply (an ``ApiResult``, which goes to whoever awaits that call's id) and
everything else (events, which go to the application unless ``allow_from``
says the sender is a stranger).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import signal
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, Protocol, Self, TypeVar

from qqproto.actions import StateChanged
from qqproto.qq import (
    ApiResult,
    BotConfig,
    BotPhase,
    BotProtocol,
    Dispatch,
    Intents,
    InteractionCreate,
    Message,
)

from ._base import DriverBase

__all__ = ["DRIVER_OPTIONS", "BotBase", "Handler", "Router", "make_config", "on_sigterm"]

log = logging.getLogger("qqproto.adapters.bot")

E = TypeVar("E")
D = TypeVar("D", bound=DriverBase)
#: An event handler: a plain or an async function of one event.
Handler = Callable[[E], object]
#: What ``driver_options`` may set (see :class:`~._base.DriverBase`).
DRIVER_OPTIONS = frozenset({"connect_timeout", "io_timeout", "pool_size"})
#: Where a message that failed typed decoding names its sender, by type: the
#: author field its scene uses (what ``Message.sender`` would have said).
_RAW_SENDER = {
    "GROUP_AT_MESSAGE_CREATE": "member_openid",
    "GROUP_MESSAGE_CREATE": "member_openid",
    "C2C_MESSAGE_CREATE": "user_openid",
    "AT_MESSAGE_CREATE": "id",
    "MESSAGE_CREATE": "id",
    "DIRECT_MESSAGE_CREATE": "id",
}


class _Waiter(Protocol):
    """An ``asyncio.Future`` or a ``concurrent.futures.Future``."""

    def done(self) -> bool: ...
    def set_result(self, result: ApiResult[Any], /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


def make_config(
    app_id: str, secret: str, intents: Intents | int | None, options: dict[str, Any]
) -> BotConfig:
    """A BotConfig for a real network: OS-seeded jitter and masking keys."""
    if misplaced := DRIVER_OPTIONS & options.keys():
        raise TypeError(f"pass {', '.join(sorted(misplaced))} in driver_options={{...}}")
    if intents is None:
        intents = Intents.default()
    options.setdefault("rng", random.Random())
    options.setdefault("entropy", os.urandom)
    return BotConfig(app_id, secret, intents=intents, **options)


class BotBase(Generic[D]):
    """How both bots are made, and what they show, whatever drives them.

    ``options`` are :class:`~qqproto.qq.BotConfig` fields (``api_base``,
    ``token_url``, ``gateway_url``, ``shard``, ``max_attempts``, ...).
    ``allow_from`` holds sender ids (``Message.sender``); messages and button
    presses from anyone else never reach the application. ``on_state`` gets
    every ``StateChanged`` (inside the driver: it must not block).
    ``driver_options`` go to the driver: ``connect_timeout``, ``io_timeout``
    and ``pool_size``.
    """

    driver: D
    #: Unread events kept for ``events()`` and ``run()``. Events are queued from
    #: the start (none is lost while the application gets round to reading), but
    #: a bot that never reads them (one that only sends) must not grow without
    #: bound: past this many, the oldest unread event is dropped.
    max_queued_events = 10_000

    def __init__(
        self,
        app_id: str,
        secret: str,
        *,
        intents: Intents | int | None = None,
        allow_from: Iterable[str] | None = None,
        on_state: Callable[[StateChanged], None] | None = None,
        driver_options: Mapping[str, Any] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        **options: Any,
    ) -> None:
        config = make_config(app_id, secret, intents, options)
        self._setup(config, allow_from, on_state, driver_options, ssl_context)

    @classmethod
    def from_config(
        cls,
        config: BotConfig,
        *,
        allow_from: Iterable[str] | None = None,
        on_state: Callable[[StateChanged], None] | None = None,
        driver_options: Mapping[str, Any] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Self:
        """A bot from a ready :class:`BotConfig`.

        A config without ``rng`` (or ``entropy``) gets an OS-seeded one, as the
        constructor does: ``random.Random(config.seed)`` would give every process
        the same jitter and the same WebSocket masking keys, which RFC 6455 5.3
        wants unpredictable. For a reproducible run pass both explicitly.
        """
        if config.rng is None:
            config = dataclasses.replace(config, rng=random.Random())
        if config.entropy is None:
            config = dataclasses.replace(config, entropy=os.urandom)
        bot = cls.__new__(cls)
        bot._setup(config, allow_from, on_state, driver_options, ssl_context)
        return bot

    def _setup(
        self,
        config: BotConfig,
        allow_from: Iterable[str] | None,
        on_state: Callable[[StateChanged], None] | None,
        driver_options: Mapping[str, Any] | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        options = dict(driver_options or {})
        if unknown := options.keys() - DRIVER_OPTIONS:
            known = ", ".join(sorted(DRIVER_OPTIONS))
            raise TypeError(f"unknown driver option {', '.join(sorted(unknown))} (known: {known})")
        self.config = config
        self.protocol = BotProtocol(config)
        self._router = Router(allow_from)
        self._error: BaseException | None = None
        self.events_dropped = 0  # unread events dropped, the oldest first (max_queued_events)
        self._warned = False  # about a drop, since a reader last took an event
        self.driver = self._build(on_state=on_state, ssl_context=ssl_context, **options)

    def _build(self, **driver_options: Any) -> D:
        """The bot's own state, and its driver with these options."""
        raise NotImplementedError

    def _dropped_oldest(self, event: object) -> None:
        """The queue was full and its oldest event, ``event``, was dropped."""
        self.events_dropped += 1
        if self._warned:
            log.debug(
                "no reader: dropped %s (%d so far)", type(event).__name__, self.events_dropped
            )
        else:
            self._warned = True
            log.warning(
                "%d events wait unread; dropping the oldest (read events() or run(), "
                "or raise max_queued_events)",
                self.max_queued_events,
            )

    def _taken(self) -> None:
        """A reader took an event: the next drop is worth a warning again."""
        self._warned = False

    @property
    def state(self) -> BotPhase:
        """AUTHENTICATING, DISCOVERING, RUNNING, FAILED or CLOSED."""
        return self.protocol.phase

    @property
    def failure_reason(self) -> str | None:
        return self.protocol.failure_reason

    def on(self, *kinds: type[E]) -> Callable[[Handler[E]], Handler[E]]:
        """Decorate a handler for events of ``kinds`` (every event if none).

        Handlers run one at a time in arrival order; a message with no text
        and no attachment (``empty``) reaches none. A handler that raises is
        logged and the bot goes on.
        """
        return self._router.on(*kinds)


@contextlib.contextmanager
def on_sigterm(
    action: Callable[[], None], loop: asyncio.AbstractEventLoop | None = None
) -> Iterator[None]:
    """Call ``action`` on SIGTERM (``docker stop``, ``systemctl stop``) inside the block.

    Only the main thread may set signal handlers; elsewhere this does nothing.
    With a ``loop``, ``action`` runs as a callback of that loop
    (``loop.add_signal_handler``, or where the loop cannot, a plain handler that
    hands it over); without one, it runs in the signal handler itself, so it must
    only set a flag or put on a ``SimpleQueue``. The previous handler comes back
    after the block.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    on_loop = False
    if loop is not None:
        with contextlib.suppress(NotImplementedError):  # Windows' proactor loop
            loop.add_signal_handler(signal.SIGTERM, action)
            on_loop = True
    if not on_loop:
        hand_over = action if loop is None else lambda: loop.call_soon_threadsafe(action)
        signal.signal(signal.SIGTERM, lambda signum, frame: hand_over())
    try:
        yield
    finally:
        if on_loop and loop is not None:
            loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


class Router:
    """Results to their waiters; events through ``allow_from`` to the application."""

    def __init__(self, allow_from: Iterable[str] | None) -> None:
        self.allow_from = None if allow_from is None else frozenset(allow_from)
        self.waiters: dict[int, _Waiter] = {}
        self.handlers: list[tuple[tuple[type[Any], ...], Handler[Any]]] = []
        self.dropped = 0  # messages from senders not in allow_from

    def route(self, value: object) -> bool:
        """True when ``value`` is an event for the application."""
        if isinstance(value, ApiResult):
            waiter = self.waiters.pop(value.request_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(value)
            return False
        if self.allow_from is not None and self._from_a_stranger(value, self.allow_from):
            self.dropped += 1
            return False
        return True

    @staticmethod
    def _from_a_stranger(value: object, allowed: frozenset[str]) -> bool:
        """Whether ``value`` is a message or a button press whose sender is not in
        ``allowed``; one whose sender cannot be told counts as a stranger's."""
        if isinstance(value, Message):
            return value.sender not in allowed
        if isinstance(value, InteractionCreate):
            resolved = value.data.resolved if value.data else None
            guild_user = resolved.user_id if resolved else None  # chat_type 0 (guild)
            return (value.group_member_openid or value.user_openid or guild_user) not in allowed
        if isinstance(value, Dispatch) and value.type in _RAW_SENDER:  # it failed to decode
            author = value.data.get("author") if isinstance(value.data, dict) else None
            sender = author.get(_RAW_SENDER[value.type]) if isinstance(author, dict) else None
            return not isinstance(sender, str) or sender not in allowed
        return False

    def fail_waiters(self, error: BaseException) -> None:
        waiters, self.waiters = self.waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(error)

    def on(self, *kinds: type[E]) -> Callable[[Handler[E]], Handler[E]]:
        """Register the decorated function for events of ``kinds`` (all events if none)."""

        def register(handler: Handler[E]) -> Handler[E]:
            self.handlers.append((kinds or (object,), handler))
            return handler

        return register

    def handlers_for(self, event: object) -> list[Handler[Any]]:
        """The handlers ``event`` goes to; none for an empty message (a bare "@bot")."""
        if isinstance(event, Message) and event.empty:
            return []
        return [handler for kinds, handler in self.handlers if isinstance(event, kinds)]
