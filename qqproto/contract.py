"""The driver contract: one interface every protocol object answers, one
executor every driver shares.

A driver (asyncio, threads, ``selectors``, an in-memory network, a test)
does the I/O and nothing else. It calls into a protocol object when something
happens (a connection opened, bytes came, a timer is due) and then carries
out the actions the object queued, in order, with :func:`carry_out` and an
:class:`Executor` of its own. ``docs/driver-contract.md`` is this module in
prose, with a whole driver in miniature.

Ids, and who makes them (so that they never collide):

- the object numbers the connections it opens (``Connect``) and its
  listeners (``Listen``) with positive integers, from one counter;
- the driver numbers the connections it accepts, with negative integers,
  from its own counter, and tells the object with ``connection_accepted``.

A connection keeps its id until ``connection_lost``; the object never reuses
one. Several HTTP requests may be in flight at once, each under a request id
of the object's that no other request of it has; a driver must answer each
one, with ``http_response`` or ``http_failed``, within a timeout of its own
(the shipped drivers' ``io_timeout``, 30 s by default).

:class:`Driven` is the base class of every protocol object. It answers every
call with a :class:`~qqproto.errors.LocalProtocolError` saying that this
object does not use it, so a driver calls what the contract lists and never
probes an object for what it has.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from .actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    HttpRequest,
    Listen,
    SendData,
    StateChanged,
    StopListening,
)
from .errors import LocalProtocolError
from .http import HttpResponse

__all__ = ["Driven", "Executor", "Peer", "carry_out", "driver_ids"]


@dataclass(frozen=True, slots=True)
class Peer:
    """Where an accepted connection comes from."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def driver_ids() -> Iterator[int]:
    """The ids a driver gives the connections it accepts: -1, -2, -3, ..."""
    return itertools.count(-1, -1)


class Driven:
    """Base class of every protocol object: the calls a driver makes.

    A subclass overrides the calls it uses; the rest raise
    :class:`LocalProtocolError` (the driver asked for what this object never
    set in motion). :meth:`actions` drains ``_out``, where a subclass queues
    its actions; ``_ids`` numbers its connections and listeners. (Request ids
    are another namespace: ``http_response`` never meets ``receive_data``, so
    an object may number its requests with a counter of its own.)
    """

    #: Why the object gave up, once it has (after its ``Failed`` action).
    failure_reason: str | None = None

    def __init__(self, *, ids: Iterator[int] | None = None) -> None:
        self._out: list[Action] = []
        #: Positive ids for connections and listeners; objects built inside
        #: another share its counter, so that ids never collide.
        self._ids = ids if ids is not None else itertools.count(1)

    # -- always answered -----------------------------------------------------------

    def actions(self) -> list[Action]:
        """Drain the actions to carry out now, in order."""
        out, self._out = self._out, []
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` is due next, or None."""
        return None

    def handle_timer(self, now: float) -> None:
        """The time from :meth:`next_deadline` has come (early calls do nothing)."""

    def close(self, now: float) -> None:
        """Stop for good: close what is open; nothing opens again."""

    # -- answered by the objects that use them -----------------------------------------

    def connection_made(self, conn: int, now: float) -> None:
        """The transport ``Connect(conn, ...)`` asked for is open."""
        raise self._unused("connection_made", f"connection {conn}")

    def connection_accepted(self, listener: int, conn: int, peer: Peer, now: float) -> None:
        """``listener`` accepted a connection from ``peer``; the driver named it ``conn``."""
        raise self._unused("connection_accepted", f"connection {conn} on listener {listener}")

    def receive_data(self, conn: int, data: bytes, now: float) -> None:
        """Bytes from ``conn``; ``b""`` means the peer closed its side (EOF)."""
        raise self._unused("receive_data", f"{len(data)} bytes on connection {conn}")

    def connection_lost(self, conn: int, now: float, reason: str | None = None) -> None:
        """``conn`` is gone: it failed to open, broke, or was closed after ``Disconnect``."""
        raise self._unused("connection_lost", f"connection {conn}: {reason}")

    def listening(self, listener: int, host: str, port: int, now: float) -> None:
        """``Listen(listener, ...)`` is bound to ``host``:``port`` (the real port)."""
        raise self._unused("listening", f"listener {listener} on {host}:{port}")

    def listener_lost(self, listener: int, now: float, reason: str | None = None) -> None:
        """``listener`` could not bind, broke, or was closed after ``StopListening``."""
        raise self._unused("listener_lost", f"listener {listener}: {reason}")

    def http_response(self, request_id: int, response: HttpResponse, now: float) -> None:
        """The answer to ``HttpRequest(request_id, ...)``."""
        raise self._unused("http_response", f"request {request_id}")

    def http_failed(self, request_id: int, now: float, reason: str) -> None:
        """``HttpRequest(request_id, ...)`` got no answer (DNS, connect, TLS, timeout)."""
        raise self._unused("http_failed", f"request {request_id}: {reason}")

    def _unused(self, call: str, received: str) -> LocalProtocolError:
        return LocalProtocolError(
            f"{type(self).__name__} has nothing that {call} could answer",
            expected="only calls for what its actions set in motion",
            received=received,
        )


class Executor(Protocol):
    """What a driver does for each action: its I/O."""

    def connect(self, conn: int, url: str) -> None: ...
    def send(self, conn: int, data: bytes) -> None: ...
    def disconnect(self, conn: int) -> None: ...
    def listen(self, listener: int, host: str, port: int) -> None: ...
    def stop_listening(self, listener: int) -> None: ...
    def http(self, request: HttpRequest) -> None: ...
    def deliver(self, event: object) -> None: ...
    def state_changed(self, change: StateChanged) -> None: ...
    def failed(self, reason: str) -> None: ...


def carry_out(proto: Driven, executor: Executor, log: logging.Logger | None = None) -> None:
    """Drain ``proto``'s actions into ``executor`` until none is left, in order.

    An executor method never drains by itself: what it causes (the
    ``connection_lost`` a ``Disconnect`` brings, say) is queued by the object
    and carried out by this same loop, after what was queued before it.
    """
    log = log or logging.getLogger("qqproto.driver")
    debug = log.isEnabledFor(logging.DEBUG)
    while actions := proto.actions():
        for action in actions:
            # The hot path (an event per inbound message): most frequent first,
            # by exact type, no logging call unless DEBUG is on.
            kind = type(action)
            if kind is Deliver:
                event = action.event  # type: ignore[attr-defined]
                if debug:
                    log.debug("delivering %s", type(event).__name__)
                executor.deliver(event)
            elif kind is SendData:
                conn, data = action.conn, action.data  # type: ignore[attr-defined]
                if debug:
                    log.debug("sending %d bytes on #%d", len(data), conn)  # may hold a token
                executor.send(conn, data)
            else:
                _carry_out_rare(action, executor, log)


def _carry_out_rare(action: Action, executor: Executor, log: logging.Logger) -> None:
    match action:
        case HttpRequest():
            log.debug("HTTP %s %s (#%d)", action.method, action.url, action.request_id)
            executor.http(action)
        case StateChanged(machine, old, new, why):
            log.info("%s: %s -> %s: %s", machine, old, new, why)
            executor.state_changed(action)
        case Connect(conn, url):
            log.info("connecting #%d to %s", conn, url)
            executor.connect(conn, url)
        case Disconnect(conn):
            log.info("disconnecting #%d", conn)
            executor.disconnect(conn)
        case Listen(listener, host, port):
            log.info("listening as #%d on %s:%d", listener, host, port)
            executor.listen(listener, host, port)
        case StopListening(listener):
            log.info("no longer listening as #%d", listener)
            executor.stop_listening(listener)
        case Failed(reason):
            log.error("gave up: %s", reason)
            executor.failed(reason)
        case Deliver(event):  # a subclass of Deliver or SendData: not ours, but served
            executor.deliver(event)
        case SendData(conn, data):
            executor.send(conn, data)
        case _:
            raise LocalProtocolError(
                "an action no driver knows", expected="a qqproto action", received=action
            )
