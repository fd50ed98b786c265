"""The server side of a WebSocket, sans-IO, over wsproto's server connection.

A serving protocol object (OneBot's reverse WebSocket server, say) reads
HTTP with :class:`~qqproto.http_server.HttpServerConnection` until it gives an
:class:`~qqproto.http_server.Upgrade`, checks the request (a token, the self
id), and then either refuses it there (401, 403) or makes a
:class:`WebSocketServer` of the upgrade's ``raw`` bytes and :meth:`accepts
<WebSocketServer.accept>` it. From then on the connection's bytes go to
:meth:`WebSocketServer.receive_data`, which gives the same events as the
client (:mod:`qqproto.ws`): whole text and binary messages, and one
:class:`~qqproto.ws.Closed` at the end. Pings are answered, fragments joined,
and a message over ``max_message_size`` closes the connection with 1009.

A server draws no randomness (it does not mask its frames), so this piece
takes none.
"""

from __future__ import annotations

from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError as WsprotoError

from .errors import LocalProtocolError, MessageTooBig, RemoteProtocolError
from .ws import DEFAULT_MAX_MESSAGE_SIZE, BytesReceived, Closed, TextReceived, WsEvent

__all__ = ["WebSocketServer"]

_TOO_BIG = 1009
_PROTOCOL_ERROR = 1002


class WebSocketServer:
    """The server end of one WebSocket, from the upgrade request's ``raw`` bytes."""

    def __init__(self, raw: bytes, *, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self.max_message_size = max_message_size
        self._ws = WSConnection(ConnectionType.SERVER)
        self._out = bytearray()
        self._parts: list[Any] = []  # the pieces of one message: all str, or all bytes
        self._size = 0
        self._closed = False
        self._accepted = False
        self.request: Request | None = None
        # wsproto reads the request and drops what follows it in the same
        # bytes: the frames a client sent at once are kept for after accept().
        end = raw.find(b"\r\n\r\n")
        head, self._early = (raw, b"") if end < 0 else (raw[: end + 4], raw[end + 4 :])
        try:
            self._ws.receive_data(head)
            self.request = next((e for e in self._ws.events() if isinstance(e, Request)), None)
        except (WsprotoError, UnicodeError, ValueError) as exc:  # wsproto reads heads as ASCII
            raise RemoteProtocolError(
                "bad WebSocket upgrade", expected="a WebSocket handshake", received=str(exc)
            ) from None
        if self.request is None:
            raise LocalProtocolError(
                "no WebSocket upgrade request in these bytes",
                expected="the raw bytes of an Upgrade",
                received=raw[:200],
            )

    @property
    def is_open(self) -> bool:
        return self._accepted and not self._closed

    def accept(self, subprotocol: str | None = None) -> None:
        """Switch protocols: the 101 answer waits in :meth:`data_to_send`."""
        if self._accepted:
            raise LocalProtocolError("upgrade accepted twice", expected="one accept()")
        self._accepted = True
        self._out += self._ws.send(AcceptConnection(subprotocol=subprotocol))

    def early_events(self) -> list[WsEvent]:
        """The messages that came in the same bytes as the upgrade (read them
        right after :meth:`accept`: no more bytes may ever come)."""
        if not self._accepted:
            raise LocalProtocolError("early_events() before accept()", expected="accept() first")
        early, self._early = self._early, b""
        return self._read(early) if early else []

    def receive_data(self, data: bytes) -> list[WsEvent]:
        """Feed the connection's bytes (``b""`` at EOF); whole messages, in order
        (the first call gives those that came with the upgrade request too)."""
        if not self._accepted:
            raise LocalProtocolError("data before accept()", expected="accept() first")
        early, self._early = self._early, b""
        events = self._read(early) if early else []
        return events + self._read(data)

    def _read(self, data: bytes) -> list[WsEvent]:
        if self._closed:
            return []
        out: list[WsEvent] = []
        try:
            self._ws.receive_data(data if data else None)
            for event in self._ws.events():
                if isinstance(event, Message):
                    if (whole := self._message(event)) is not None:
                        out.append(whole)
                elif isinstance(event, Ping):
                    self._out += self._ws.send(event.response())
                elif isinstance(event, CloseConnection):
                    if self._ws.state is not ConnectionState.CLOSED:
                        self._out += self._ws.send(event.response())
                    self._closed = True
                    code = int(event.code)
                    if code == 1006:  # wsproto's word for EOF without a close frame
                        out.append(Closed(1006, "transport closed without a close frame"))
                    else:
                        out.append(Closed(code, event.reason or ""))
                    return out
        except WsprotoError as exc:
            return [*out, self._fail(_PROTOCOL_ERROR, RemoteProtocolError(str(exc)))]
        except MessageTooBig as exc:
            return [*out, self._fail(_TOO_BIG, exc)]
        if not data and not self._closed:  # EOF without a close frame
            self._closed = True
            out.append(Closed(1006, "transport closed without a close frame"))
        return out

    def _message(self, event: Message[Any]) -> TextReceived | BytesReceived | None:
        self._size += len(event.data)
        if self._size > self.max_message_size:
            raise MessageTooBig(self._size, self.max_message_size)
        self._parts.append(event.data)
        if not event.message_finished:
            return None
        parts, self._parts, self._size = self._parts, [], 0
        if isinstance(event, TextMessage):
            return TextReceived("".join(parts))
        return BytesReceived(b"".join(parts))

    def _fail(self, code: int, error: RemoteProtocolError) -> Closed:
        self.close(code, "message too big" if code == _TOO_BIG else "protocol error")
        return Closed(code, str(error), error)

    def send_text(self, text: str) -> None:
        self._send(TextMessage(data=text))

    def send_bytes(self, data: bytes) -> None:
        self._send(BytesMessage(data=data))

    def _send(self, message: Message[Any] | Ping) -> None:
        if not self.is_open:
            raise LocalProtocolError("the WebSocket is not open", expected="an open WebSocket")
        self._out += self._ws.send(message)

    def ping(self, payload: bytes = b"") -> None:
        """A ping (the peer's pong is bytes like any others: a sign of life)."""
        self._send(Ping(payload=payload))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (once); then close the transport after data_to_send()."""
        if self._accepted and not self._closed and self._ws.state is ConnectionState.OPEN:
            self._out += self._ws.send(CloseConnection(code=code, reason=reason))
        self._closed = True

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out
