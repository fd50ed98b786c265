"""A OneBotProtocol against a scripted implementation, in memory, on a fake clock.

:class:`Impl` is the implementation's side of one connection, built on the
server pieces (``HttpServerConnection`` reads the upgrade, ``WebSocketServer``
the frames); :class:`World` carries bytes between it and the protocol
object and keeps what the object delivered.
"""

from __future__ import annotations

import json
from typing import Any

from qqproto.actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    HttpRequest,
    SendData,
    StateChanged,
)
from qqproto.http_server import HttpServerConnection, Upgrade
from qqproto.onebot import ActionResult, OneBotConfig, OneBotProtocol
from qqproto.ws import TextReceived
from qqproto.ws_server import WebSocketServer

URL = "ws://127.0.0.1:3001/"
TOKEN = "s3cret"


class Impl:
    """The implementation's end of one connection."""

    def __init__(
        self, *, status: int = 101, token: str | None = TOKEN, silent: bool = False
    ) -> None:
        self.silent = silent  # it reads nothing and answers nothing (a hung server)
        self.http = HttpServerConnection({"/": ("GET",)})
        self.ws: WebSocketServer | None = None
        self.status, self.token = status, token
        self.authorization: str | None = None
        self.received: list[dict[str, Any]] = []  # the frames the client sent, parsed
        self.out = bytearray()
        self.closed = False

    def feed(self, data: bytes) -> None:
        if self.silent:
            return
        if self.ws is not None:
            for event in self.ws.receive_data(data):
                if isinstance(event, TextReceived):
                    self.received.append(json.loads(event.text))
            self.out += self.ws.data_to_send()
            return
        for came in self.http.receive_data(data):
            if isinstance(came, Upgrade):
                self.authorization = dict(came.request.headers).get("authorization")
                if self.status != 101:
                    self.http.respond(self.status, body=b"no")
                    self.out += self.http.data_to_send()
                    self.closed = True
                    return
                self.ws = WebSocketServer(came.raw)
                self.ws.accept()
                self.out += self.ws.data_to_send()

    def send(self, payload: object) -> None:
        assert self.ws is not None
        self.ws.send_text(payload if isinstance(payload, str) else json.dumps(payload))
        self.out += self.ws.data_to_send()

    def close(self, code: int = 1000) -> None:
        assert self.ws is not None
        self.ws.close(code)
        self.out += self.ws.data_to_send()
        self.closed = True

    def take(self) -> bytes:
        data, self.out = bytes(self.out), bytearray()
        return data


class World:
    """Drives one OneBotProtocol; every new connection gets a fresh :class:`Impl`."""

    def __init__(self, *, impl: dict[str, Any] | None = None, **config: Any) -> None:
        config.setdefault("access_token", TOKEN)
        self.proto = OneBotProtocol(OneBotConfig(URL, **config))
        self.now = 0.0
        self.impl: Impl | None = None
        self.impls: list[Impl] = []
        self.conn = 0
        self.delivered: list[object] = []
        self.log: list[Action] = []
        self.next_impl: dict[str, Any] = impl or {}  # how each connection's Impl behaves
        self.refuse_connect = False
        self.gone: set[int] = set()  # connections whose loss was reported
        self.requests: list[HttpRequest] = []  # actions sent over HTTP, unanswered
        self.pump()

    def pump(self) -> None:
        for action in self.proto.actions():
            self.log.append(action)
            if isinstance(action, Connect):
                self.conn = action.conn
                if self.refuse_connect:
                    self._lost(action.conn, "connection refused")
                    continue
                self.impl = Impl(**self.next_impl)
                self.impls.append(self.impl)
                self.proto.connection_made(action.conn, self.now)
            elif isinstance(action, SendData) and self.impl is not None:
                self.impl.feed(action.data)
                self.flush()
            elif isinstance(action, Disconnect):
                self.impl = None
                self._lost(action.conn, None)
            elif isinstance(action, Deliver):
                self.delivered.append(action.event)
            elif isinstance(action, HttpRequest):
                self.requests.append(action)
        if self.proto._out:  # what the calls above asked for
            self.pump()

    def flush(self) -> None:
        """What the implementation wrote, to the protocol object."""
        impl = self.impl
        if impl is not None and (data := impl.take()):
            self.proto.receive_data(self.conn, data, self.now)
            if impl.closed and self.impl is impl:
                self.impl = None
                self._lost(self.conn, "closed by the peer")
        self.pump()

    def send(self, payload: object) -> None:
        assert self.impl is not None
        self.impl.send(payload)
        self.flush()

    def drop(self) -> None:
        """The TCP connection dies."""
        self.impl = None
        self._lost(self.conn, "connection reset")
        self.pump()

    def _lost(self, conn: int, reason: str | None) -> None:
        """The transport is gone: said once per connection, as a driver says it."""
        if conn not in self.gone:
            self.gone.add(conn)
            self.proto.connection_lost(conn, self.now, reason)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while (deadline := self.proto.next_deadline()) is not None and deadline <= end:
            self.now = max(self.now, deadline)
            self.proto.handle_timer(self.now)
            self.pump()
        self.now = end

    def call(self, action: Any) -> int:
        call_id = self.proto.call(action, self.now)
        self.pump()
        return call_id

    def results(self) -> list[ActionResult]:
        return [e for e in self.delivered if isinstance(e, ActionResult)]

    def states(self) -> list[tuple[str, str]]:
        return [(a.old, a.new) for a in self.log if isinstance(a, StateChanged)]

    def failed(self) -> list[str]:
        return [a.reason for a in self.log if isinstance(a, Failed)]
