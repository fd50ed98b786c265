"""Play the server end of a gateway WebSocket by hand.

``FakeServer`` turns what a client protocol object sends into JSON payloads
and turns payloads into the bytes a server would send back, so a test (or a
README) can drive ``GatewayProtocol`` without a network::

    server = FakeServer()
    reply = server.receive(request_bytes)   # the 101 for the upgrade
    frame = server.send({"op": 10, "d": {"heartbeat_interval": 45000}})

It is deliberately small: the full platform simulator lives beside it.
"""

from __future__ import annotations

import json
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

__all__ = ["FakeServer"]


class FakeServer:
    """The server end of one WebSocket connection, driven by hand."""

    def __init__(self) -> None:
        self._ws = WSConnection(ConnectionType.SERVER)
        self._payloads: list[dict[str, Any]] = []
        self._text: list[str] = []
        #: The close code the client sent, once it did.
        self.close_code: int | None = None

    def receive(self, data: bytes) -> bytes:
        """Take bytes from the client; return what the server answers at once
        (the 101 response to the upgrade, the answer to a close)."""
        self._ws.receive_data(data)
        reply = b""
        for event in self._ws.events():
            if isinstance(event, Request):
                reply += self._ws.send(AcceptConnection())
            elif isinstance(event, TextMessage):
                self._text.append(event.data)
                if event.message_finished:
                    self._payloads.append(json.loads("".join(self._text)))
                    self._text = []
            elif isinstance(event, CloseConnection):
                self.close_code = event.code
                if self._ws.state is ConnectionState.REMOTE_CLOSING:
                    reply += self._ws.send(event.response())  # the client closed first
        return reply

    def send(self, payload: dict[str, Any] | str) -> bytes:
        """The bytes of one text frame carrying ``payload`` (JSON-encoded)."""
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return self._ws.send(TextMessage(data=text))

    def close(self, code: int, reason: str = "") -> bytes:
        """The bytes of a close frame."""
        return self._ws.send(CloseConnection(code=code, reason=reason))

    def payloads(self) -> list[dict[str, Any]]:
        """The JSON payloads the client sent since the last call."""
        out, self._payloads = self._payloads, []
        return out
