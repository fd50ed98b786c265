"""What the drivers share, with no I/O: errors, reasons, answers to HTTP requests.

A driver is a loop around :func:`qqproto.contract.carry_out`: after every
call into the protocol object it drains the object's actions into its own
:class:`~qqproto.contract.Executor` (its I/O), in order.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from qqproto.contract import Driven, Executor, carry_out
from qqproto.http import HttpResponse

__all__ = [
    "DriverClosed",
    "DriverError",
    "DriverFailed",
    "close_protocol",
    "describe",
    "http_answer",
]

READ_SIZE = 65536
#: How long a closing transport may take to flush before it is cut.
CLOSE_GRACE = 2.0


class DriverError(Exception):
    """The driver cannot go on (base class of the drivers' errors)."""


class DriverFailed(DriverError):
    """The protocol object gave up (a ``Failed`` action); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class DriverClosed(DriverError):
    """The driver was stopped before the answer came."""


#: What the common ways a socket fails are called in a reason, for people.
_PLAIN = (
    (TimeoutError, "timed out"),
    (ConnectionRefusedError, "connection refused"),
    (ConnectionResetError, "connection reset"),
    (ConnectionAbortedError, "connection aborted"),
    (socket.gaierror, "host not found"),
)


def describe(exc: BaseException) -> str:
    """A one-line reason for a failed socket or HTTP exchange."""
    for kind, plain in _PLAIN:
        if isinstance(exc, kind):
            return plain if kind is TimeoutError else f"{plain} ({exc})"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


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
        proto.http_failed(request_id, now, why)

    return failed


def close_protocol(
    proto: Driven, executor: Executor, log: logging.Logger, now: float
) -> Exception | None:
    """Ask the object to close, unless it gave up already, and carry out at once
    what that asks (the close frame, ``Disconnect``); the error, if one was raised."""
    try:
        if proto.failure_reason is None:
            proto.close(now)
        carry_out(proto, executor, log)
    except Exception as exc:
        log.exception("error while closing")
        return exc
    return None
