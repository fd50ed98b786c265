"""An in-memory QQ gateway server and a fake clock, for driving GatewayProtocol.

The server side speaks WebSocket through the sans-IO protocol of the
``websockets`` library, not wsproto, so our framing is checked against an
independent implementation. Nothing here sleeps or opens a socket: time is
a number the test moves, and bytes are handed across by method calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from qqproto.actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    SendData,
    StateChanged,
)
from qqproto.errors import ProtocolViolation
from qqproto.qq.config import GatewayConfig
from qqproto.qq.events import Dispatch, Event
from qqproto.qq.gateway import GatewayProtocol
from qqproto.qq.lifecycle import GatewayState
from qqproto.qq.session import Session, TokenWanted

from .timers import fire_deadlines

HELLO_MS = 45_000
BOT_ID = "6158788878435714165"  # READY's user.id
MEMBER = "0BA1C3D5E7F90B1D3F5A7C9E1B3D7F13"
GROUP = "82B3C5D7E9FA1B3C5D7E9F0A1B2C6064"


class ServerEnd:
    """The server end of one WebSocket connection."""

    def __init__(self) -> None:
        self.ws = ServerProtocol()
        self.received: list[dict[str, Any]] = []  # JSON payloads from the client
        self.raw_received: list[Frame | str] = []
        self.handshake_done = False
        self.closed_by_client: int | None = None

    def feed(self, data: bytes) -> bytes:
        """Bytes from the client; returns the bytes the server answers with."""
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Request):
                self.ws.send_response(self.ws.accept(event))
                self.handshake_done = True
            elif isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    text = bytes(event.data).decode()
                    self.raw_received.append(text)
                    self.received.append(json.loads(text))
                elif event.opcode is Opcode.CLOSE:
                    self.closed_by_client = (
                        int.from_bytes(event.data[:2], "big") if event.data else 1005
                    )
                    self.raw_received.append(event)
        return self.out()

    def out(self) -> bytes:
        return b"".join(chunk for chunk in self.ws.data_to_send() if chunk)

    def text(self, payload: dict[str, Any] | str) -> bytes:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.ws.send_text(text.encode())
        return self.out()

    def close(self, code: int, reason: str = "") -> bytes:
        self.ws.send_close(code, reason)
        return self.out()


@dataclass
class Harness:
    """A GatewayProtocol wired to fake time and a fake server."""

    config: GatewayConfig = field(default_factory=lambda: GatewayConfig(app_id="102000000"))
    session: Session | None = None
    now: float = 1000.0
    token: str = "tok-1"
    token_life: float = 7200.0
    auto_token: bool = True

    def __post_init__(self) -> None:
        self.proto = GatewayProtocol(self.config, self.session)
        self.server: ServerEnd | None = None
        self.connects: list[str] = []
        self.connect_times: list[float] = []
        self.pending_connect = False
        self.disconnects = 0
        self.token_requests: list[str] = []
        self.stale_tokens: list[bool] = []  # each TokenWanted's stale
        self.conn = 0  # the connection id of the last Connect
        self.events: list[object] = []
        self.states: list[StateChanged] = []
        self.failed: list[str] = []
        self.all_actions: list[Action] = []
        self.pump()

    # -- actions ----------------------------------------------------------------

    def pump(self) -> None:
        """Carry out every queued action, like a driver would."""
        while True:
            actions = self.proto.actions()
            if not actions:
                return
            for action in actions:
                self.all_actions.append(action)
                self._carry_out(action)

    def _carry_out(self, action: Action) -> None:
        if isinstance(action, Connect):
            assert not self.pending_connect and self.server is None, "two transports at once"
            assert action.conn > self.conn, "a connection id used again"
            self.conn = action.conn
            self.connects.append(action.url)
            self.connect_times.append(self.now)
            self.pending_connect = True
        elif isinstance(action, SendData):
            assert self.server is not None, "SendData without a transport"
            assert action.conn == self.conn, f"SendData on {action.conn}, not {self.conn}"
            reply = self.server.feed(action.data)
            if reply:
                self._to_client(reply)
        elif isinstance(action, Disconnect):
            assert action.conn == self.conn, f"Disconnect of {action.conn}, not {self.conn}"
            self.disconnects += 1
            self.pending_connect = False
            self.server = None
            self.proto.connection_lost(self.conn, self.now, None)
        elif isinstance(action, Deliver) and isinstance(action.event, TokenWanted):
            self.token_requests.append(action.event.reason)
            self.stale_tokens.append(action.event.stale)
            if self.auto_token:
                self.proto.token_received(self.token, self.now + self.token_life, self.now)
        elif isinstance(action, Deliver):
            self.events.append(action.event)
        elif isinstance(action, StateChanged):
            self.states.append(action)
        elif isinstance(action, Failed):
            self.failed.append(action.reason)

    def _to_client(self, data: bytes) -> None:
        if self.server is not None:
            self.proto.receive_data(self.conn, data, self.now)

    # -- the network -----------------------------------------------------------

    def accept(self) -> ServerEnd:
        """Let the pending Connect succeed and complete the WebSocket upgrade."""
        assert self.pending_connect, "no Connect to accept"
        self.pending_connect = False
        self.server = ServerEnd()
        self.proto.connection_made(self.conn, self.now)
        self.pump()
        assert self.server is not None and self.server.handshake_done
        return self.server

    def refuse(self, reason: str = "connection refused") -> None:
        assert self.pending_connect
        self.pending_connect = False
        self.proto.connection_lost(self.conn, self.now, reason)
        self.pump()

    def send(self, payload: dict[str, Any] | str) -> None:
        assert self.server is not None
        self.proto.receive_data(self.conn, self.server.text(payload), self.now)
        self.pump()

    def send_raw(self, data: bytes) -> None:
        self.proto.receive_data(self.conn, data, self.now)
        self.pump()

    def close_from_server(self, code: int, reason: str = "") -> None:
        assert self.server is not None
        self.proto.receive_data(self.conn, self.server.close(code, reason), self.now)
        self.pump()

    def drop(self) -> None:
        """The transport dies under us."""
        assert self.server is not None
        self.server = None
        self.proto.connection_lost(self.conn, self.now, "connection reset")
        self.pump()

    def hello(self, interval_ms: int = HELLO_MS) -> None:
        self.send({"op": 10, "d": {"heartbeat_interval": interval_ms}})

    def dispatch(self, seq: int, kind: str = "GROUP_AT_MESSAGE_CREATE", d: Any = None) -> None:
        """A dispatch; by default a well-formed group @bot message."""
        data = d
        if d is None:
            data = {
                "id": f"msg-{seq}",
                "content": f" hello {seq}",
                "author": {"member_openid": MEMBER},
                "group_openid": GROUP,
            }
        self.send({"op": 0, "s": seq, "t": kind, "id": f"{kind}:{seq}", "d": data})

    def ready(self, session_id: str = "sess-1", seq: int = 1) -> None:
        self.send(
            {
                "op": 0,
                "s": seq,
                "t": "READY",
                "d": {
                    "version": 1,
                    "session_id": session_id,
                    "user": {"id": BOT_ID, "username": "bot", "bot": True},
                    "shard": [0, 0],
                },
            }
        )

    def resumed(self, seq: int) -> None:
        self.send({"op": 0, "s": seq, "t": "RESUMED", "d": ""})

    def connect_and_ready(self, session_id: str = "sess-1") -> ServerEnd:
        server = self.accept()
        self.hello()
        self.ready(session_id)
        assert self.proto.state is GatewayState.READY
        return server

    # -- time -------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every deadline on the way in order."""
        target = self.now + seconds
        fire_deadlines(self.proto, self.now, target, self._fire)
        self.now = target

    def _fire(self, now: float) -> None:
        self.now = now
        self.proto.handle_timer(now)
        self.pump()

    # -- reading ------------------------------------------------------------------

    def sent(self) -> list[dict[str, Any]]:
        """Payloads the current server received, and forget them."""
        assert self.server is not None
        out, self.server.received = self.server.received, []
        return out

    def dispatches(self) -> list[Dispatch]:
        """Every dispatch delivered, typed events seen through ``as_dispatch()``."""
        return [
            e.as_dispatch() if isinstance(e, Event) else e
            for e in self.events
            if isinstance(e, Dispatch | Event)
        ]

    def typed(self) -> list[Event]:
        """The typed events delivered."""
        return [e for e in self.events if isinstance(e, Event)]

    def violations(self) -> list[ProtocolViolation]:
        return [e for e in self.events if isinstance(e, ProtocolViolation)]
