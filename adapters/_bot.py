"""What every bot API shares, with no I/O: construction, routing, handlers.

A bot is a protocol object, a driver that carries it out, and a
:class:`Router`. The protocol delivers two kinds of value: the outcome of a
call (a QQ ``ApiResult``, a OneBot ``ActionResult``), which goes to whoever
awaits that call's id, and everything else (events), which goes to the
application unless ``allow_from`` says the sender is a stranger. What differs
per protocol (how a result names its call, who sent a message) the router is
told by a :class:`Routing`; the QQ bots' is in ``_qq_bot``, OneBot's in
``onebot_bot``. The loop and thread machinery is in ``_bot_async`` and
``_bot_threaded``.
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
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from qqproto.actions import StateChanged
from qqproto.contract import Driven

from ._base import DriverBase

__all__ = [
    "DRIVER_OPTIONS",
    "BotBase",
    "ConfiguredBot",
    "Handler",
    "Router",
    "Routing",
    "check_driver_options",
    "no_driver_options_in",
    "on_sigterm",
    "os_seeded",
]

log = logging.getLogger("qqproto.adapters.bot")

E = TypeVar("E")
P = TypeVar("P", bound=Driven)
D = TypeVar("D", bound=DriverBase)
#: An event handler: a plain or an async function of one event.
Handler = Callable[[E], object]
#: What ``driver_options`` may set (see :class:`~._base.DriverBase`).
DRIVER_OPTIONS = frozenset({"connect_timeout", "io_timeout", "pool_size", "server_ssl"})


class _Waiter(Protocol):
    """An ``asyncio.Future`` or a ``concurrent.futures.Future``."""

    def done(self) -> bool: ...
    def set_result(self, result: Any, /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


@dataclass(frozen=True)
class Routing:
    """What a router must know of one protocol's values.

    ``call_id`` gives the id of the call a value ends (None for an event);
    ``from_someone`` whether a value has a sender ``allow_from`` must check
    (a message, a button press); ``sender`` that sender's id (None when it
    cannot be told, which counts as a stranger's); ``empty`` whether a message
    carries nothing for a handler.
    """

    call_id: Callable[[object], int | None]
    from_someone: Callable[[object], bool]
    sender: Callable[[object], str | None]
    empty: Callable[[object], bool]


class _Seeded(Protocol):
    """A frozen config dataclass with the two sources of chance."""

    @property
    def rng(self) -> random.Random | None: ...
    @property
    def entropy(self) -> Callable[[int], bytes] | None: ...


C = TypeVar("C", bound=_Seeded)
Cfg = TypeVar("Cfg", bound=_Seeded)


def os_seeded(config: C) -> C:
    """``config`` with OS-seeded jitter and masking keys where it has none:
    ``random.Random(config.seed)`` would give every process the same jitter
    and the same WebSocket masking keys, which RFC 6455 5.3 wants
    unpredictable. (For a reproducible run, pass both explicitly.)"""
    if config.rng is None:
        config = dataclasses.replace(config, rng=random.Random())  # type: ignore[type-var]
    if config.entropy is None:
        config = dataclasses.replace(config, entropy=os.urandom)  # type: ignore[type-var]
    return config


def no_driver_options_in(options: Mapping[str, Any]) -> None:
    """A config keyword that belongs to the driver is a mistake worth naming."""
    if misplaced := DRIVER_OPTIONS & options.keys():
        raise TypeError(f"pass {', '.join(sorted(misplaced))} in driver_options={{...}}")


def check_driver_options(driver_options: Mapping[str, Any] | None) -> dict[str, Any]:
    options = dict(driver_options or {})
    if unknown := options.keys() - DRIVER_OPTIONS:
        known = ", ".join(sorted(DRIVER_OPTIONS))
        raise TypeError(f"unknown driver option {', '.join(sorted(unknown))} (known: {known})")
    return options


class BotBase(Generic[P, D]):
    """How every bot is put together, and what it shows, whatever drives it.

    ``allow_from`` holds sender ids; messages from anyone else never reach the
    application. ``on_state`` gets every ``StateChanged`` (inside the driver:
    it must not block). ``driver_options`` go to the driver:
    ``connect_timeout``, ``io_timeout`` and ``pool_size``.
    """

    protocol: P
    driver: D
    #: Unread events kept for ``events()`` and ``run()``. Events are queued from
    #: the start (none is lost while the application gets round to reading), but
    #: a bot that never reads them (one that only sends) must not grow without
    #: bound: past this many, the oldest unread event is dropped.
    max_queued_events = 10_000

    def _setup(
        self,
        protocol: P,
        router: Router,
        on_state: Callable[[StateChanged], None] | None,
        driver_options: Mapping[str, Any] | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        options = check_driver_options(driver_options)
        self.protocol = protocol
        self._router = router
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
    def failure_reason(self) -> str | None:
        reason: str | None = getattr(self.protocol, "failure_reason", None)
        return reason

    def on(self, *kinds: type[E]) -> Callable[[Handler[E]], Handler[E]]:
        """Decorate a handler for events of ``kinds`` (every event if none).

        Handlers run one at a time in arrival order; a message that carries
        nothing (a bare "@bot") reaches none. A handler that raises is logged
        and the bot goes on.
        """
        return self._router.on(*kinds)


class ConfiguredBot(BotBase[P, D], Generic[Cfg, P, D]):
    """A bot made from a config: :meth:`from_config`, and the one place a
    config becomes a protocol object with its router. A protocol's bots say
    which with :attr:`routing` and :meth:`_protocol`."""

    routing: ClassVar[Routing]
    config: Cfg

    def _protocol(self, config: Cfg) -> P:
        raise NotImplementedError

    @classmethod
    def from_config(
        cls,
        config: Cfg,
        *,
        allow_from: Iterable[str] | None = None,
        on_state: Callable[[StateChanged], None] | None = None,
        driver_options: Mapping[str, Any] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Self:
        """A bot from a ready config; one without ``rng`` or ``entropy`` gets
        OS-seeded ones, as the constructor does (:func:`os_seeded`)."""
        bot = cls.__new__(cls)
        bot._made(os_seeded(config), allow_from, on_state, driver_options, ssl_context)
        return bot

    def _made(
        self,
        config: Cfg,
        allow_from: Iterable[str] | None,
        on_state: Callable[[StateChanged], None] | None,
        driver_options: Mapping[str, Any] | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.config = config
        router = Router(self.routing, allow_from)
        self._setup(self._protocol(config), router, on_state, driver_options, ssl_context)


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

    def __init__(self, routing: Routing, allow_from: Iterable[str] | None) -> None:
        self.routing = routing
        self.allow_from = None if allow_from is None else frozenset(allow_from)
        self.waiters: dict[int, _Waiter] = {}
        self.handlers: list[tuple[tuple[type[Any], ...], Handler[Any]]] = []
        self.dropped = 0  # messages from senders not in allow_from

    def route(self, value: object) -> bool:
        """True when ``value`` is an event for the application."""
        call_id = self.routing.call_id(value)
        if call_id is not None:
            waiter = self.waiters.pop(call_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(value)
            return False
        allowed, routing = self.allow_from, self.routing
        if (
            allowed is not None
            and routing.from_someone(value)
            and routing.sender(value) not in allowed
        ):
            self.dropped += 1
            return False
        return True

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
        if self.routing.empty(event):
            return []
        return [handler for kinds, handler in self.handlers if isinstance(event, kinds)]
