"""What a protocol object asks its driver to do.

Actions are plain, immutable values. A driver drains them with
``proto.actions()`` after every call into the object and carries them out in
order. Nothing here does any I/O: an action is a request, never a deed.

The driver contract (see ``docs/driver-contract.md``):

- ``Connect(url)``: open a transport to ``url`` and call
  ``connection_made(now)`` when it is open, or ``connection_lost(now, reason)``
  when opening failed. The object never asks for a second transport while one
  is open or opening.
- ``SendData(data)``: write the bytes to the open transport, in order.
- ``Disconnect()``: close the transport (after writing what was queued before
  it), then call ``connection_lost(now, None)``. Bytes that arrive after this
  action may be dropped.
- ``FetchToken(reason)``: get a fresh access token and hand it over with
  ``token_received(...)``.
- ``HttpRequest(...)``: perform the request and hand the answer to
  ``http_response(request_id, response, now)``.
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
    "FetchToken",
    "HttpRequest",
    "SendData",
    "StateChanged",
]


class Action:
    """Base class of every action. Don't subclass it outside qqproto."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Connect(Action):
    """Open a transport (TCP, plus TLS for ``wss://``) to ``url``."""

    url: str


@dataclass(frozen=True, slots=True)
class SendData(Action):
    """Write ``data`` to the open transport."""

    data: bytes

    def __repr__(self) -> str:
        # Frames may carry the access token; keep it out of logs and reprs.
        return f"SendData(<{len(self.data)} bytes>)"


@dataclass(frozen=True, slots=True)
class Disconnect(Action):
    """Close the transport, then report ``connection_lost``."""


@dataclass(frozen=True, slots=True)
class FetchToken(Action):
    """Fetch a fresh access token and pass it to ``token_received``."""

    reason: str


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
