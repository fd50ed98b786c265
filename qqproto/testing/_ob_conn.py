"""One accepted connection to the OneBot simulator: HTTP first, maybe a WebSocket after.

The project's own server pieces read the bytes: :class:`HttpServerConnection`
the requests (actions over HTTP: v11 ``POST /<action>``, v12 ``POST /``),
:class:`WebSocketServer` the frames once a ``GET /`` was upgraded. The
token is checked before the upgrade, ``Authorization: Bearer`` first and the
``access_token`` query only without that header (spec 1.6 and 7.1). An open
WebSocket gets the connect event first, then heartbeats on its own timer,
then whatever the simulator pushes; its text frames are actions, answered on
it. Bad bytes never raise: the HTTP piece refuses them with a status, the
WebSocket piece with a close frame.
"""

from __future__ import annotations

import json
from typing import Any, Final

from ..errors import RemoteProtocolError
from ..http_server import HttpServerConnection, Request, Upgrade
from ..ws import BytesReceived, Closed, TextReceived
from ..ws_server import WebSocketServer
from ._ob_state import V11_ACTIONS, ObState

__all__ = ["ObConnection"]

#: NapCat takes frames up to 50 MiB; the simulator takes what the client may send.
MAX_FRAME: Final = 64 * 1024 * 1024
_JSON: Final = (("Content-Type", "application/json"),)


class ObConnection:
    """The server end of one transport: feed it bytes, write what it gives back,
    close the socket once :attr:`closed` (the same shape as the QQ simulator's)."""

    def __init__(self, state: ObState, now: float) -> None:
        self._state = state
        routes: dict[str, tuple[str, ...]] = {"/": ("GET", "POST")}
        if state.version == 11:
            routes |= {f"/{name}": ("GET", "POST") for name in V11_ACTIONS}
        self._http = HttpServerConnection(routes, max_body_size=MAX_FRAME)
        self.ws: WebSocketServer | None = None
        self._out = bytearray()
        self._dropped = False
        self.opened_at = now
        #: When the next heartbeat is due (None: none on this connection).
        self.heartbeat_due: float | None = None
        #: What the bot offered as its token on this connection (None: nothing).
        self.authorization: str | None = None

    @property
    def closed(self) -> bool:
        if self._dropped:
            return True
        if self.ws is not None:
            return not self.ws.is_open
        return self._http.closed

    @property
    def live(self) -> bool:
        """A WebSocket open for events."""
        return self.ws is not None and self.ws.is_open and not self._dropped

    def data_to_send(self) -> bytes:
        out = bytes(self._out) + self._http.data_to_send()
        self._out.clear()
        if self.ws is not None:
            out += self.ws.data_to_send()
        return out

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the bot; ``b""`` at EOF."""
        if self._dropped:
            return
        if self.ws is not None:
            self._receive_ws(data, now)
            return
        self._handle(self._http.receive_data(data), now)

    def connection_lost(self, now: float) -> None:
        self._dropped = True
        self.heartbeat_due = None

    # -- faults ----------------------------------------------------------------------------

    def drop(self) -> None:
        """Cut the transport: no close frame, no more bytes."""
        self._dropped = True
        self.heartbeat_due = None
        self._out.clear()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the WebSocket with a close frame."""
        if self.ws is not None:
            self.ws.close(code, reason)
        self.heartbeat_due = None

    # -- sending ---------------------------------------------------------------------------

    def send(self, payload: dict[str, Any] | str) -> None:
        """A text frame: a JSON object, or text as it is (for garbage)."""
        if self.live:
            assert self.ws is not None
            # ASCII JSON: a lone surrogate (an echo, a name, a text) goes escaped
            text = payload if isinstance(payload, str) else json.dumps(payload)
            self.ws.send_text(text)

    def tick(self, now: float) -> None:
        """Send a heartbeat if one is due."""
        due = self.heartbeat_due
        if due is None or due > now or not self.live:
            return
        interval = self._state.config.heartbeat_interval
        assert interval is not None  # heartbeat_due is set only when there is one
        self.heartbeat_due = now + interval
        if self._state.heartbeats_on:
            self.send(self._state.heartbeat(now))

    # -- HTTP ------------------------------------------------------------------------------

    def _handle(self, incoming: list[Any], now: float) -> None:
        while incoming:
            came = incoming.pop(0)
            if isinstance(came, Upgrade):
                self._upgrade(came, now)
                return
            if isinstance(came, Request):
                incoming += self._http_action(came, now)

    def _refusal(self, request: Request) -> int | None:
        """None when the token passes; else the status: 401 (or the configured
        one) without a token, 403 with a wrong one. ``Bearer `` with nothing
        after it is no token (spec 10.7)."""
        config = self._state.config
        header = request.header("authorization")
        scheme, _, value = (header or "").partition(" ")
        offered_header = value.strip() if scheme == "Bearer" else header
        query = (request.query.get("access_token") or [""])[-1]
        if config.query_first and query:
            offered: str | None = query
        else:
            offered = offered_header or query or None
        if config.access_token is None:
            return None
        if not offered:
            return config.missing_token_status
        return None if offered == config.access_token else 403

    def _upgrade(self, upgrade: Upgrade, now: float) -> None:
        self._state.connects += 1
        self.authorization = upgrade.request.header("authorization")
        self._state.authorizations.append(self.authorization)
        refusal = self._refusal(upgrade.request)
        if refusal is not None and self._state.config.auth_failure == "http":
            self._state.refused.append(refusal)
            self._http.respond(refusal, body=b"token refused")
            return
        try:
            ws = WebSocketServer(upgrade.raw, max_message_size=MAX_FRAME)
        except RemoteProtocolError:
            self._http.respond(400, body=b"bad upgrade")
            return
        ws.accept()
        self.ws = ws
        if refusal is not None:  # NapCat's shape: accepted, told, closed
            self._state.refused.append(refusal)
            self.send({"status": "failed", "retcode": 1403, "data": None, "echo": None} | _WORDS)
            ws.close(1000, "token refused")
            return
        for event in self._state.connect_events(now):
            self.send(event)
        interval = self._state.config.heartbeat_interval
        if interval is not None:
            self.heartbeat_due = now if self._state.config.heartbeat_at_once else now + interval
            self.tick(now)

    def _http_action(self, request: Request, now: float) -> list[Any]:
        state = self._state
        if request.method != "POST" and not (state.version == 11 and request.path != "/"):
            return self._http.respond(405, [("Allow", "POST")], b"POST only")
        refusal = self._refusal(request)
        if refusal is not None:
            return self._http.respond(refusal, body=b"token refused")
        body = self._http_body(request)
        if body is None:
            return self._http.respond(400, body=b"the body is no JSON object")
        answers = state.answers(body, "http", now)
        if not answers:  # held: the bot's request waits for ever
            return []
        answer = answers[-1]  # a stream over HTTP: its final frame
        if not (state.version == 12 and isinstance(answer.get("echo"), str) and answer["echo"]):
            answer.pop("echo", None)  # v12 returns a non-empty string echo (spec 7.3)
        return self._http.respond(200, _JSON, json.dumps(answer).encode())

    def _http_body(self, request: Request) -> dict[str, Any] | None:
        """The action request an HTTP request makes (spec 1.1 and 7.1)."""
        try:
            params = json.loads(request.body) if request.body else {}
        except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
            return None
        if not isinstance(params, dict):
            return None
        if self._state.version == 12:
            return params
        params |= {key: values[-1] for key, values in request.query.items()}
        params.pop("access_token", None)
        return {"action": request.path.lstrip("/"), "params": params}

    # -- WebSocket -------------------------------------------------------------------------

    def _receive_ws(self, data: bytes, now: float) -> None:
        assert self.ws is not None
        for event in self.ws.receive_data(data):
            if isinstance(event, Closed):
                self.heartbeat_due = None
            elif isinstance(event, TextReceived):
                self._frame(event.text, now)
            elif isinstance(event, BytesReceived):  # MessagePack: not spoken here
                self._answer_all(self._state.answers(None, "ws", now))

    def _frame(self, text: str, now: float) -> None:
        try:
            request = json.loads(text)
        except (ValueError, RecursionError):
            request = None
        self._answer_all(self._state.answers(request, "ws", now))

    def _answer_all(self, answers: list[dict[str, Any]]) -> None:
        for answer in answers:
            self.send(answer)


#: What NapCat says with its 1403.
_WORDS: Final = {"message": "token验证失败", "wording": "token验证失败"}
