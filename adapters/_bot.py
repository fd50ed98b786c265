"""What both bot APIs share, with no I/O: configuration, routing, handlers.

A ``BotProtocol`` delivers two kinds of value: the outcome of a REST call or
reply (an ``ApiResult``, which goes to whoever awaits that call's id) and
everything else (events, which go to the application unless ``allow_from``
says the sender is a stranger).
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from qqproto.qq import ApiResult, BotConfig, Intents, Message

__all__ = ["Handler", "Router", "make_config"]

E = TypeVar("E")
#: An event handler: a plain or an async function of one event.
Handler = Callable[[E], object]


class _Waiter(Protocol):
    """An ``asyncio.Future`` or a ``concurrent.futures.Future``."""

    def done(self) -> bool: ...
    def set_result(self, result: ApiResult[Any], /) -> None: ...
    def set_exception(self, exception: BaseException, /) -> None: ...


def make_config(
    app_id: str, secret: str, intents: Intents | int | None, options: dict[str, Any]
) -> BotConfig:
    """A BotConfig for a real network: OS-seeded jitter and masking keys."""
    if intents is None:
        intents = Intents.default()
    options.setdefault("rng", random.Random())
    options.setdefault("entropy", os.urandom)
    return BotConfig(app_id, secret, intents=intents, **options)


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
        if (
            self.allow_from is not None
            and isinstance(value, Message)
            and value.sender not in self.allow_from
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
        if isinstance(event, Message) and event.empty:
            return []
        return [handler for kinds, handler in self.handlers if isinstance(event, kinds)]
