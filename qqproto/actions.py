"""What a protocol object asks its driver to do.

Actions are plain, immutable values. A driver drains them with
``proto.actions()`` after every call into the object and carries them out in
order (:func:`qqproto.contract.carry_out`). Nothing here does any I/O: an
action is a request, never a deed. Every action about a connection names it
by its id, so one object can hold several connections and listeners.

The whole contract, with the calls the driver makes back into the object, is
``docs/driver-contract.md`` and :mod:`qqproto.contract`:

- ``Connect(conn, url)``: open a transport to ``url`` and call
  ``connection_made(conn, now)``, or ``connection_lost(conn, now, reason)``
  when opening failed.
- ``SendData(conn, data)``: write the bytes to that transport, in order.
- ``Disconnect(conn)``: close it (after writing what was queued before), then
  call ``connection_lost(conn, now, None)``. Bytes that arrive after this
  action may be dropped.
- ``Listen(listener, host, port)``: accept connections there; report
  ``listening(listener, host, port, now)``, then each connection with
  ``connection_accepted(listener, conn, peer, now)``.
- ``StopListening(listener)``: accept no more; then ``listener_lost(listener,
  now, None)``. Connections accepted before stay open.
- ``HttpRequest(...)``: perform the request and hand the answer to
  ``http_response(request_id, response, now)``, or say why none came with
  ``http_failed(request_id, now, reason)``.
- ``Deliver(event)``: hand the event to the application.
- ``StateChanged(machine, old, new, why)``: for logs and observers; nothing to do.
- ``Failed(reason)``: the object gave up for good; stop driving it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Action",
    "Connect",
    "Deliver",
    "Disconnect",
    "Failed",
    "HttpRequest",
    "Listen",
    "SendData",
    "StateChanged",
    "StopListening",
]


class Action:
    """Base class of every action. Don't subclass it outside qqproto."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Connect(Action):
    """Open connection ``conn``: TCP to ``url``'s host and port, plus TLS for
    ``wss://`` and ``https://``."""

    conn: int
    url: str


@dataclass(frozen=True, slots=True)
class SendData(Action):
    """Write ``data`` to connection ``conn``."""

    conn: int
    data: bytes

    def __repr__(self) -> str:
        # Frames may carry the access token; keep it out of logs and reprs.
        return f"SendData({self.conn}, <{len(self.data)} bytes>)"


@dataclass(frozen=True, slots=True)
class Disconnect(Action):
    """Close connection ``conn``, then report ``connection_lost``."""

    conn: int


@dataclass(frozen=True, slots=True)
class Listen(Action):
    """Accept connections on ``host``:``port`` (0: any free port) as ``listener``."""

    listener: int
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class StopListening(Action):
    """Close ``listener``, then report ``listener_lost``."""

    listener: int


@dataclass(frozen=True, slots=True)
class HttpRequest(Action):
    """Perform an HTTP request; answer with ``http_response(request_id, ...)``."""

    request_id: int
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def __repr__(self) -> str:
        # Authorization headers carry the token; show only the header names.
        names = ", ".join(name for name, _ in self.headers)
        return (
            f"HttpRequest(request_id={self.request_id}, method={self.method!r}, "
            f"url={self.url!r}, headers=[{names}], body=<{len(self.body)} bytes>)"
        )


@dataclass(frozen=True, slots=True)
class Deliver(Action):
    """Hand ``event`` to the application."""

    event: object


@dataclass(frozen=True, slots=True)
class StateChanged(Action):
    """The lifecycle ``machine`` (``"gateway"``, ``"bot"``, ``"token"``) moved
    from state ``old`` to ``new`` because of ``why``."""

    machine: str
    old: str
    new: str
    why: str


@dataclass(frozen=True, slots=True)
class Failed(Action):
    """The object gave up; ``reason`` says why. No action follows this one."""

    reason: str
