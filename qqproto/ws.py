"""One client WebSocket connection, as the gateway needs it.

The upgrade goes through h11, received frames through wsproto's frame layer,
and this module adds what every client of them writes again: the upgrade
request built from a ``ws://`` or ``wss://`` URL, whole messages instead of
fragments, automatic answers to pings and to the peer's close frame, a size
limit on messages, and a single :class:`Closed` event that says how the
connection ended (the peer's close code, 1006 for a lost transport, the code
we closed with when the peer broke the protocol, or the HTTP status of a
refused upgrade).

Why not wsproto's ``WSConnection`` for the whole job: it draws the handshake
nonce and every frame's masking key from ``os.urandom``, and the core draws
no randomness on its own. Here both come from the ``entropy`` callable the
caller hands in (drivers pass ``os.urandom``; tests pass a seeded source), so
the same inputs give the same bytes. Frames we send are simple enough to
write directly (RFC 6455 section 5.2); parsing the peer's frames, the hard
part, stays with wsproto, with one exception.

The exception is the frame the gateway receives thousands of times for every
other kind: a whole, final, unmasked text frame with no RSV bits, minimal
length encoding, a payload within the size limit and valid UTF-8. Through
wsproto it cost four fifths of a typed dispatch (``benchmarks/bench_events.py``:
a generator, a commit/rollback buffer, an incremental decoder and three
objects per frame), so such frames are decoded here, in about a tenth of
that, and only when wsproto holds nothing: no partial
frame and no fragmented message. Everything else (control frames, fragments,
partial frames, anything malformed, text that is not UTF-8) goes to wsproto
in stream order, which reports it exactly as before. To know when wsproto
is idle again without reading its private buffer, the client counts the
bytes of the frame it handed over (:meth:`WebSocketClient._to_wsproto`).
``tests/test_ws.py`` feeds random frame streams, cut at random points, to a
client with and without this path and requires the same events and bytes.

It is sans-IO: bytes in through :meth:`WebSocketClient.receive_data`, events
out as its return value, bytes to write from the ``send_*`` methods and
:meth:`WebSocketClient.data_to_send`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import h11
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from .errors import (
    ConfigError,
    LocalProtocolError,
    MessageTooBig,
    RemoteProtocolError,
    WebSocketHandshakeError,
)
from .url import BadUrl, Url

__all__ = [
    "DEFAULT_MAX_MESSAGE_SIZE",
    "BytesReceived",
    "Closed",
    "Entropy",
    "Opened",
    "TextReceived",
    "WebSocketClient",
    "WsEvent",
]

DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
#: How much of a refused upgrade's body is kept for the error.
MAX_REJECT_BODY = 64 * 1024

#: ``entropy(n)`` returns ``n`` random bytes (``os.urandom`` in production).
Entropy = Callable[[int], bytes]

# Close codes we report or send (RFC 6455 section 7.4.1).
NO_STATUS = 1005
ABNORMAL_CLOSURE = 1006
MESSAGE_TOO_BIG = 1009

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_TEXT, _OP_CLOSE, _OP_PING, _OP_PONG = 0x1, 0x8, 0x9, 0xA
#: FIN set, no RSV bits, opcode text: the first byte of a frame the fast path takes.
_FINAL_TEXT = 0x80 | _OP_TEXT
# What HTTP allows in a request target (h11 checks the same, but only at connect()).


@dataclass(frozen=True, slots=True)
class Opened:
    """The server accepted the upgrade; messages may flow."""


@dataclass(frozen=True, slots=True)
class TextReceived:
    """A whole text message."""

    text: str


@dataclass(frozen=True, slots=True)
class BytesReceived:
    """A whole binary message."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Closed:
    """The connection is over; no event follows this one.

    ``code`` is the peer's close code when it sent a close frame (1005 when
    the frame had none), 1006 when the transport ended without one or the
    upgrade was refused, and 1002/1007/1009 when we closed because the peer
    broke the protocol or sent too much. ``error`` says what the peer did
    wrong, when it did.
    """

    code: int
    reason: str = ""
    error: RemoteProtocolError | None = None


WsEvent = Opened | TextReceived | BytesReceived | Closed


def _frame_size(head: bytes) -> int | None:
    """The whole size of the frame ``head`` begins (header, mask key, payload).

    ``None`` while ``head`` is too short to hold the length. Nothing is
    checked: a frame wsproto will refuse closes the connection, and then the
    size no longer matters.
    """
    n = len(head)
    if n < 2:
        return None
    second = head[1]
    size = 2 + (4 if second & 0x80 else 0)
    length = second & 0x7F
    if length == 126:
        if n < 4:
            return None
        return size + 2 + int.from_bytes(head[2:4])
    if length == 127:
        if n < 10:
            return None
        return size + 8 + int.from_bytes(head[2:10])
    return size + length


def _mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` repeated (RFC 6455 section 5.3)."""
    n = len(payload)
    if not n:
        return b""
    keystream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keystream, "little")).to_bytes(
        n, "little"
    )


class WebSocketClient:
    """The client end of one WebSocket connection.

    >>> import random
    >>> ws = WebSocketClient("wss://api.sgroup.qq.com/websocket/", random.Random(0).randbytes)
    >>> ws.connect().split(b"\\r\\n")[0]
    b'GET /websocket/ HTTP/1.1'
    """

    def __init__(
        self,
        url: str,
        entropy: Entropy,
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        extra_headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        try:
            where = Url.parse(url, ("ws", "wss"))
        except BadUrl as exc:
            raise ConfigError("WebSocket URL", exc.expected or "ws:// or wss://", url) from None
        if max_message_size < 1:
            raise ConfigError("max_message_size", "a positive number of bytes", max_message_size)
        self.url = url
        self.secure = where.tls
        self.host = where.origin.host
        self.port = where.origin.port
        self.target = where.target
        self._host_header = where.origin.host_header
        self._extra_headers = extra_headers
        self._entropy = entropy
        self.max_message_size = max_message_size

        self._http = h11.Connection(h11.CLIENT)
        self._nonce = b""
        self._conn: Connection | None = None  # the frame layer, once open
        # The frame wsproto is in the middle of: bytes of it still to hand
        # over once its size is known, or its first bytes while it is not.
        # Both empty (and no message in ``_parts``) means wsproto is idle.
        self._owed = 0
        self._head = b""
        # Tests turn this off to compare against wsproto alone.
        self._fast_path = True
        self._started = False
        self._closed = False
        self._outgoing = bytearray()
        # Reassembly of fragmented messages.
        self._parts: list[str] | list[bytes] = []
        self._size = 0
        # A refused upgrade: the status and as much of the body as we keep.
        self._rejected: tuple[int, bytearray] | None = None

    # -- state ---------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True between :class:`Opened` and the moment either side closes."""
        return self._conn is not None and not self._closed

    @property
    def is_closed(self) -> bool:
        """True once :class:`Closed` was reported or :meth:`close` was called."""
        return self._closed

    # -- sending -------------------------------------------------------------

    def connect(self) -> bytes:
        """The HTTP upgrade request; write it first on a new transport."""
        if self._started:
            raise LocalProtocolError(
                "WebSocket upgrade already sent", expected="one connect() per connection"
            )
        self._started = True
        self._nonce = base64.b64encode(self._entropy(16))
        headers = [
            ("Host", self._host_header),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self._nonce.decode()),
            ("Sec-WebSocket-Version", "13"),
            *self._extra_headers,
        ]
        request = h11.Request(method="GET", target=self.target, headers=headers)
        return self._http.send(request) + (self._http.send(h11.EndOfMessage()) or b"")

    def send_text(self, text: str) -> bytes:
        """Bytes of one text message; raises if the connection is not open."""
        if not self.is_open:
            raise LocalProtocolError(
                "cannot send on this WebSocket",
                expected="an open connection",
                received=self._state_name(),
            )
        return self._frame(_OP_TEXT, text.encode())

    def ping(self, payload: bytes = b"") -> bytes:
        """Bytes of a ping frame (its payload at most 125 bytes); the peer's pong
        comes back as bytes like any others, which is all a liveness check needs."""
        if not self.is_open:
            raise LocalProtocolError(
                "cannot ping on this WebSocket",
                expected="an open connection",
                received=self._state_name(),
            )
        if len(payload) > 125:
            raise LocalProtocolError(
                "ping payload too long", expected="at most 125 bytes", received=len(payload)
            )
        return self._frame(_OP_PING, payload)

    def close(self, code: int = 1000, reason: str = "") -> bytes:
        """Bytes of our close frame, or ``b""`` when there is nothing to close.

        After this call the connection is over for us: later bytes are ignored.
        """
        was_open = self.is_open
        self._closed = True
        if not was_open:
            return b""
        return self._close_frame(code, reason)

    def data_to_send(self) -> bytes:
        """Automatic replies (pongs, the answer to a close) to write now."""
        if not self._outgoing:  # the usual case, once per read
            return b""
        data = bytes(self._outgoing)
        self._outgoing.clear()
        return data

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        """One final, masked client frame (RFC 6455 section 5.2)."""
        n = len(payload)
        if n < 126:
            header = bytes((0x80 | opcode, 0x80 | n))
        elif n < 1 << 16:
            header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
        else:
            header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
        key = self._entropy(4)
        return header + key + _mask(payload, key)

    def _close_frame(self, code: int, reason: str = "") -> bytes:
        if code in (NO_STATUS, ABNORMAL_CLOSURE):
            return self._frame(_OP_CLOSE, b"")  # these codes never go on the wire
        # At most 123 bytes of reason, cut on a character boundary: the peer
        # fails the connection on a reason that is not valid UTF-8.
        reason_bytes = reason.encode()[:123].decode("utf-8", "ignore").encode()
        return self._frame(_OP_CLOSE, code.to_bytes(2, "big") + reason_bytes)

    # -- receiving -----------------------------------------------------------

    def receive_data(self, data: bytes) -> list[WsEvent]:
        """Feed bytes from the server; ``b""`` means the transport hit EOF."""
        if self._closed:
            return []
        conn = self._conn
        if conn is not None:
            if data and self._fast_path:
                return self._receive_frames(conn, data)
            conn.receive_data(data or None)
            return self._frame_events(conn)
        if not self._started:
            raise LocalProtocolError("bytes received before connect()", expected="connect() first")
        return self._handshake_events(data)

    def _handshake_events(self, data: bytes) -> list[WsEvent]:
        http = self._http
        http.receive_data(data)
        try:
            while True:
                event = http.next_event()
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    break
                if isinstance(event, h11.InformationalResponse) and event.status_code == 101:
                    return self._accept(event, http.trailing_data[0])
                if isinstance(event, h11.Response):
                    self._rejected = (event.status_code, bytearray())
                elif isinstance(event, h11.Data) and self._rejected is not None:
                    body = self._rejected[1]
                    body += event.data[: MAX_REJECT_BODY - len(body)]
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return self._reject()
        except h11.RemoteProtocolError as exc:
            # (h11 raises too for the end of the stream before a whole response.)
            if self._rejected is not None:
                return self._reject()
            if not data:
                return self._fail_handshake(
                    "the server closed the connection during the upgrade", "end of stream"
                )
            return self._fail_handshake("the upgrade response is not valid HTTP", str(exc))
        return []

    def _accept(self, response: h11.InformationalResponse, trailing: bytes) -> list[WsEvent]:
        headers = {name.lower(): value for name, value in response.headers}
        expected = base64.b64encode(hashlib.sha1(self._nonce + _GUID).digest())
        if headers.get(b"upgrade", b"").lower() != b"websocket":
            return self._fail_handshake("101 without 'Upgrade: websocket'", response.headers)
        connection = headers.get(b"connection", b"").lower()
        if b"upgrade" not in (token.strip() for token in connection.split(b",")):
            return self._fail_handshake("101 without 'Connection: Upgrade'", response.headers)
        if headers.get(b"sec-websocket-accept") != expected:
            return self._fail_handshake("101 with a wrong Sec-WebSocket-Accept", response.headers)
        if b"sec-websocket-extensions" in headers:
            return self._fail_handshake("101 with extensions we did not offer", response.headers)
        self._conn = Connection(ConnectionType.CLIENT)
        # Frames that came in the same read as the 101 (b"" would mean EOF).
        return [Opened(), *self.receive_data(trailing)] if trailing else [Opened()]

    def _fail_handshake(self, problem: str, received: object) -> list[WsEvent]:
        error = RemoteProtocolError(
            f"WebSocket upgrade failed: {problem}",
            expected="an HTTP/1.1 101 Switching Protocols response",
            received=received,
        )
        return self._finish(ABNORMAL_CLOSURE, problem, error)

    def _reject(self) -> list[WsEvent]:
        assert self._rejected is not None
        status, body = self._rejected
        error = WebSocketHandshakeError(status, bytes(body))
        return self._finish(ABNORMAL_CLOSURE, f"upgrade refused with HTTP {status}", error)

    def _receive_frames(self, conn: Connection, data: bytes) -> list[WsEvent]:
        """Frames from an open connection: the fast path, and wsproto for the rest."""
        out: list[WsEvent] = []
        pos, end = 0, len(data)
        limit = self.max_message_size
        while pos < end:
            if not (self._owed or self._head or self._parts):
                # wsproto holds nothing: take whole final text frames while they come.
                # Every "break" leaves the frame at ``pos`` to wsproto, unread.
                while pos + 1 < end and data[pos] == _FINAL_TEXT:
                    length = data[pos + 1]  # mask bit 0: the 7-bit length itself
                    start = pos + 2
                    if length == 126:
                        start += 2
                        length = int.from_bytes(data[pos + 2 : start]) if start <= end else 0
                        if length < 126:  # not all here, or not minimal (wsproto refuses it)
                            break
                    elif length == 127:
                        start += 8
                        length = int.from_bytes(data[pos + 2 : start]) if start <= end else 0
                        # (A length with the top bit set, which wsproto refuses,
                        # is more than any read holds: "partial" below sends it there.)
                        if length < 1 << 16:  # as above
                            break
                    elif length > 127:  # masked, which a server must not do
                        break
                    stop = start + length
                    if stop > end or length > limit:  # partial, or for the 1009 path
                        break
                    try:
                        text = str(data[start:stop], "utf-8")  # any bytes-like input
                    except UnicodeDecodeError:  # wsproto closes with 1007, in its words
                        break
                    out.append(TextReceived(text))
                    pos = stop
                if pos == end:
                    break
            pos = self._to_wsproto(conn, data, pos, out)
            if self._closed:
                break
        return out

    def _to_wsproto(self, conn: Connection, data: bytes, pos: int, out: list[WsEvent]) -> int:
        """Hand wsproto the bytes at ``pos`` that belong to its current frame.

        That is the rest of the frame it is in, or the next frame whole, or
        as much of either as ``data`` holds; the new ``pos`` is returned and
        the events go to ``out``. Cutting the stream at frame boundaries
        changes nothing wsproto reports, and it tells us when wsproto has
        consumed every byte it was given, so the fast path may resume.
        """
        if not self._owed:  # a frame starts here, or its header began in an earlier read
            head = self._head + data[pos : pos + 14]  # 14: the longest header
            size = _frame_size(head)
            if size is None:  # then ``head`` holds all of ``data`` from ``pos``
                self._head = head
                conn.receive_data(data[pos:])
                out += self._frame_events(conn)
                return len(data)
            self._owed = size - len(self._head)
            self._head = b""
        take = min(self._owed, len(data) - pos)
        self._owed -= take
        conn.receive_data(data[pos : pos + take])
        out += self._frame_events(conn)
        return pos + take

    def _frame_events(self, conn: Connection) -> list[WsEvent]:
        out: list[WsEvent] = []
        for event in conn.events():
            if isinstance(event, TextMessage | BytesMessage):
                message = self._reassemble(event)
                if message is not None:
                    out.append(message)
                elif self._closed:  # over the size limit
                    self._outgoing += self._close_frame(MESSAGE_TOO_BIG, "message too big")
                    error = MessageTooBig(self._size, self.max_message_size)
                    return [*out, Closed(MESSAGE_TOO_BIG, "message too big", error)]
            elif isinstance(event, Ping):
                self._outgoing += self._frame(_OP_PONG, bytes(event.payload))
            elif isinstance(event, CloseConnection):
                return [*out, *self._peer_closed(conn, event)]
        return out

    def _reassemble(self, event: TextMessage | BytesMessage) -> WsEvent | None:
        data = event.data
        # Text arrives decoded; a character is at most 4 bytes of UTF-8, so
        # a short whole message needs no byte count. Pieces of a message
        # (fragments, or a frame read in parts) always do: the limit is on
        # the bytes of their sum.
        size = len(data)
        if isinstance(data, str) and (
            size * 4 > self.max_message_size or self._parts or not event.message_finished
        ):
            size = len(data.encode())
        if event.message_finished and not self._parts and size <= self.max_message_size:
            return TextReceived(data) if isinstance(data, str) else BytesReceived(bytes(data))
        self._size += size
        if self._size > self.max_message_size:
            self._closed = True
            self._parts = []
            return None
        self._parts.append(data)  # type: ignore[arg-type]
        if not event.message_finished:
            return None
        parts, self._parts, self._size = self._parts, [], 0
        if isinstance(data, str):
            return TextReceived("".join(parts))  # type: ignore[arg-type]
        return BytesReceived(b"".join(parts))  # type: ignore[arg-type]

    def _peer_closed(self, conn: Connection, event: CloseConnection) -> list[WsEvent]:
        code = int(event.code)
        reason = event.reason or ""
        state = conn.state
        if state is ConnectionState.OPEN:
            # wsproto reports bytes it cannot parse as a close event while the
            # connection stays open: we are the side that closes, with its code.
            self._outgoing += self._close_frame(code, reason)
            error = RemoteProtocolError(
                "malformed WebSocket frame", expected="valid RFC 6455 frames", received=reason
            )
            return self._finish(code, reason, error)
        if state is ConnectionState.REMOTE_CLOSING:
            # The peer's close frame: answer it with its code, as RFC 6455 asks.
            self._outgoing += self._close_frame(code)
        elif code == ABNORMAL_CLOSURE and not reason:
            reason = "transport closed without a close frame"
        return self._finish(code, reason, None)

    def _finish(self, code: int, reason: str, error: RemoteProtocolError | None) -> list[WsEvent]:
        self._closed = True
        return [Closed(code, reason, error)]

    def _state_name(self) -> str:
        if self._closed:
            return "closed"
        if self._conn is None:
            return "handshake in progress" if self._started else "not connected"
        return "open"

    def __repr__(self) -> str:
        return f"WebSocketClient({self.url!r}, state={self._state_name()!r})"
