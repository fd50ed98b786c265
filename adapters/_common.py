"""What the drivers share, with no I/O: the contract as a type, URLs, errors, logging.

A driver is a loop around :func:`carry_out`: after every call into the
protocol object it drains the object's actions and hands each one to the
matching method of an :class:`Executor` (its own I/O), in order. An executor
method never drains by itself; what it causes (``connection_lost`` after a
``Disconnect``, say) is queued by the object and picked up by the same loop,
after the actions queued before it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from qqproto.actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    FetchToken,
    HttpRequest,
    SendData,
    StateChanged,
)
from qqproto.http import HttpResponse

__all__ = [
    "Driven",
    "DriverClosed",
    "DriverError",
    "DriverFailed",
    "Executor",
    "carry_out",
    "close_protocol",
    "describe",
    "http_answer",
    "lose",
    "report_http_failure",
    "report_token",
]

READ_SIZE = 65536
#: How long a closing transport may take to flush before it is cut.
CLOSE_GRACE = 2.0


class Driven(Protocol):
    """The driver contract (``docs/driver-contract.md``), as a type."""

    def connection_made(self, now: float) -> None: ...
    def receive_data(self, data: bytes, now: float) -> None: ...
    def connection_lost(self, now: float, reason: str | None = None) -> None: ...
    def handle_timer(self, now: float) -> None: ...
    def next_deadline(self) -> float | None: ...
    def http_response(self, request_id: int, response: HttpResponse, now: float) -> None: ...
    def actions(self) -> list[Action]: ...


class Executor(Protocol):
    """What a driver does for each action (its I/O)."""

    def connect(self, url: str) -> None: ...
    def send(self, data: bytes) -> None: ...
    def disconnect(self) -> None: ...
    def http(self, request: HttpRequest) -> None: ...
    def fetch_token(self, reason: str) -> None: ...
    def deliver(self, event: object) -> None: ...
    def state_changed(self, change: StateChanged) -> None: ...
    def failed(self, reason: str) -> None: ...


class DriverError(Exception):
    """The driver cannot go on (base class of the drivers' errors)."""


class DriverFailed(DriverError):
    """The protocol object gave up (a ``Failed`` action); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class DriverClosed(DriverError):
    """The driver was stopped before the answer came."""


def carry_out(proto: Driven, executor: Executor, log: logging.Logger) -> None:
    """Drain ``proto``'s actions into ``executor`` until none is left."""
    while actions := proto.actions():
        for action in actions:
            if isinstance(action, SendData):
                log.debug("sending %d bytes", len(action.data))  # frames may hold the token
                executor.send(action.data)
            elif isinstance(action, Deliver):
                log.debug("delivering %s", type(action.event).__name__)
                executor.deliver(action.event)
            elif isinstance(action, HttpRequest):
                log.debug("HTTP %s %s (#%d)", action.method, action.url, action.request_id)
                executor.http(action)
            elif isinstance(action, StateChanged):
                log.info("%s: %s -> %s: %s", action.machine, action.old, action.new, action.why)
                executor.state_changed(action)
            elif isinstance(action, Connect):
                log.info("connecting to %s", action.url)
                executor.connect(action.url)
            elif isinstance(action, Disconnect):
                log.info("disconnecting")
                executor.disconnect()
            elif isinstance(action, FetchToken):
                log.info("access token wanted: %s", action.reason)
                executor.fetch_token(action.reason)
            elif isinstance(action, Failed):
                log.error("gave up: %s", action.reason)
                executor.failed(action.reason)
            else:  # pragma: no cover - a new action type the driver does not know
                log.warning("ignoring unknown action %r", action)


def describe(exc: BaseException) -> str:
    """A one-line reason for a failed socket or HTTP exchange."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def lose(proto: Driven, reason: str) -> Callable[[float], None]:
    """``connection_lost(now, reason)`` as a function of ``now``."""
    return lambda now: proto.connection_lost(now, reason)


def http_answer(
    proto: Driven, request_id: int, outcome: HttpResponse | Exception, log: logging.Logger
) -> Callable[[float], None]:
    """What to tell the object when a REST call ended: its response, or why it failed."""
    if isinstance(outcome, HttpResponse):
        log.debug("HTTP #%d: %d", request_id, outcome.status)
        return lambda now: proto.http_response(request_id, outcome, now)
    why = describe(outcome)

    def failed(now: float) -> None:  # logged only if the driver still runs to tell it
        log.warning("HTTP request #%d failed: %s", request_id, why)
        report_http_failure(proto, request_id, why, now)

    return failed


def report_http_failure(proto: Driven, request_id: int, reason: str, now: float) -> None:
    """``http_failed`` if the object has it; without it a lost request cannot be told."""
    http_failed = getattr(proto, "http_failed", None)
    if http_failed is None:
        raise DriverError(
            f"HTTP request #{request_id} failed ({reason}) and {proto!r} "
            "has no http_failed to hear it"
        )
    http_failed(request_id, reason, now)


def report_token(proto: Driven, token: str, lifetime: float, now: float) -> None:
    """Hand a token from the user's provider to the object (``token_received``)."""
    token_received = getattr(proto, "token_received", None)
    if token_received is None:
        raise DriverError(f"{proto!r} asked for a token but has no token_received")
    token_received(token, now + lifetime, now)


def close_protocol(
    proto: Driven, executor: Executor, log: logging.Logger, now: float
) -> Exception | None:
    """Ask the object to close, if it can, and carry out at once what that asks
    (the close frame, ``Disconnect``); the error, if one was raised."""
    close = getattr(proto, "close", None)
    try:
        if close is not None and getattr(proto, "failure_reason", None) is None:
            close(now)
        carry_out(proto, executor, log)
    except Exception as exc:
        log.exception("error while closing")
        return exc
    return None
