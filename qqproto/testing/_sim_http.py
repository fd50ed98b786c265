"""One accepted TCP connection to the simulator: HTTP/1.1 first, maybe a WebSocket after.

h11 reads requests (several per connection with keep-alive) and writes the
answers; a ``GET /websocket`` with a valid upgrade is answered 101 and the
rest of the connection belongs to a :class:`~._sim_gateway.GatewayLink`,
wsproto's server frame layer under it. Bad bytes never raise: they get a 400
(HTTP) or a close frame (WebSocket), and the connection is done.
"""

from __future__ import annotations

import json

import h11
from wsproto.utilities import generate_accept_token

from ._sim_gateway import GatewayLink
from ._sim_rest import BAD_REQUEST, Reply, handle
from ._sim_state import SimState

__all__ = ["SimConnection"]

#: The largest request body the simulator reads.
MAX_REQUEST_BODY = 16 * 1024 * 1024
_GATEWAY_PATHS = ("/websocket", "/websocket/")


class SimConnection:
    """The server end of one transport. Feed it bytes, write what it gives back.

    ``receive_data(data, now)`` takes the client's bytes (``b""`` at EOF);
    ``data_to_send()`` drains what to write; once :attr:`closed` is true,
    write that last output and close the socket; ``connection_lost(now)``
    says the socket went away (without it, the simulator only learns from
    EOF or a close frame).
    """

    def __init__(self, state: SimState, now: float) -> None:
        self._state = state
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
        self._out = bytearray()
        self._request: h11.Request | None = None
        self._body = bytearray()
        self._closed = False
        self._method = ""
        self.opened_at = now
        #: The gateway on this connection, once it was upgraded.
        self.gateway: GatewayLink | None = None

    @property
    def closed(self) -> bool:
        """The server is done with this transport: write what :meth:`data_to_send`
        gives, then close the socket."""
        if self.gateway is not None:
            return self.gateway.ended
        return self._closed

    def data_to_send(self) -> bytes:
        """The bytes to write now (``b""`` when there are none); draining them
        is what counts a dispatch as delivered."""
        data = bytes(self._out)
        self._out.clear()
        if self.gateway is not None:
            data += self.gateway.take_output()
        return data

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the client; ``b""`` means it closed its side (EOF)."""
        with self._state.entered(self):
            if self.gateway is not None:
                self.gateway.receive(data, now)
            elif not self._closed:
                self._receive_http(data, now)

    def connection_lost(self, now: float) -> None:
        """The socket is gone (closed by either side, or broken)."""
        with self._state.entered(self):
            if self.gateway is not None:
                self.gateway.end(now)
            self._closed = True

    # -- HTTP ------------------------------------------------------------------------------

    def _receive_http(self, data: bytes, now: float) -> None:
        conn = self._h11
        try:
            conn.receive_data(data)
        except RuntimeError:  # bytes after the client's own EOF
            self._closed = True
            return
        while not self._closed and self.gateway is None:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse_bytes(exc.error_status_hint)
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self._request, self._body = event, bytearray()
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > MAX_REQUEST_BODY:
                    self._refuse_bytes(413)
                    return
            elif isinstance(event, h11.EndOfMessage):
                self._answer(now)
            elif isinstance(event, h11.ConnectionClosed):
                self._closed = True

    def _answer(self, now: float) -> None:
        request = self._request
        assert request is not None
        self._request = None
        method = self._method = request.method.decode("ascii", "replace")
        target = request.target.decode("ascii", "replace")
        headers: dict[str, str] = {}
        for name, value in request.headers:
            headers.setdefault(name.decode("ascii", "replace"), value.decode("utf-8", "replace"))
        body, self._body = bytes(self._body), bytearray()
        if target.split("?", 1)[0] in _GATEWAY_PATHS:
            self._upgrade(method, headers, now)
        else:
            self._respond(handle(self._state, method, target, headers, body, now))

    def _upgrade(self, method: str, headers: dict[str, str], now: float) -> None:
        key = headers.get("sec-websocket-key", "")
        upgrade = "websocket" in headers.get("upgrade", "").lower()
        if (
            method != "GET"
            or not upgrade
            or not key
            or headers.get("sec-websocket-version") != "13"
        ):
            payload = {"code": BAD_REQUEST, "message": "expected a WebSocket upgrade (version 13)"}
            self._respond(Reply(400, payload))
            return
        accept = generate_accept_token(key.encode("ascii", "replace"))
        response = h11.InformationalResponse(
            status_code=101,
            headers=[
                (b"Upgrade", b"websocket"),
                (b"Connection", b"Upgrade"),
                (b"Sec-WebSocket-Accept", accept),
            ],
        )
        try:
            self._out += self._h11.send(response) or b""
        except h11.LocalProtocolError:  # the request did not ask to switch (no Connection: Upgrade)
            self._respond(Reply(400, {"code": BAD_REQUEST, "message": "no Connection: Upgrade"}))
            return
        trailing, _ = self._h11.trailing_data
        gateway = self.gateway = GatewayLink(self._state, self, now)
        self._state.links.append(gateway)
        if trailing:
            gateway.receive(bytes(trailing), now)

    def _respond(self, reply: Reply) -> None:
        headers = [(b"Server", b"qqproto-simulator")]
        body = b""
        if reply.payload is not None:
            body = json.dumps(reply.payload, ensure_ascii=False, separators=(",", ":")).encode()
            headers.append((b"Content-Type", b"application/json"))
        if isinstance(reply.payload, dict) and "trace_id" in reply.payload:
            headers.append((b"X-Tps-trace-ID", str(reply.payload["trace_id"]).encode()))
        if reply.status != 204:
            headers.append((b"Content-Length", str(len(body)).encode()))
        conn = self._h11
        try:
            self._out += conn.send(h11.Response(status_code=reply.status, headers=headers)) or b""
            if body and self._method != "HEAD":
                self._out += conn.send(h11.Data(data=body)) or b""
            self._out += conn.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:  # a request h11 will not let us answer this way
            self._closed = True
            return
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            self._closed = True
        elif conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()

    def _refuse_bytes(self, status: int) -> None:
        """Bytes that are not HTTP: a 4xx when h11 still lets us answer, then close."""
        body = json.dumps({"code": BAD_REQUEST, "message": "malformed HTTP request"}).encode()
        headers = [
            (b"Content-Type", b"application/json"),
            (b"Content-Length", str(len(body)).encode()),
            (b"Connection", b"close"),
        ]
        try:
            self._out += self._h11.send(h11.Response(status_code=status, headers=headers)) or b""
            self._out += self._h11.send(h11.Data(data=body)) or b""
            self._out += self._h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            pass  # mid-response or after one: nothing can be said any more
        self._closed = True

    def __repr__(self) -> str:
        kind = "gateway" if self.gateway is not None else "http"
        return f"SimConnection({kind}, closed={self.closed})"
