"""WebSocketClient against a server that is not wsproto: the sans-IO server of
the ``websockets`` library. Everything runs in memory; a :class:`Pair` carries
bytes between the two ends, the way h11's tests use a ConnectionPair.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import itertools
import random
from collections.abc import Callable, Iterable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.frames import Close, CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from fuzz.frames import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, close_frame, frame
from qqproto.errors import (
    ConfigError,
    LocalProtocolError,
    MessageTooBig,
    RemoteProtocolError,
    WebSocketHandshakeError,
)
from qqproto.ws import (
    DEFAULT_MAX_MESSAGE_SIZE,
    BytesReceived,
    Closed,
    Opened,
    TextReceived,
    WebSocketClient,
    WsEvent,
)

# -- the in-memory pair --------------------------------------------------------


def entropy(seed: int) -> Callable[[int], bytes]:
    """A seeded source of random bytes, as the client takes it."""
    return random.Random(seed).randbytes


def make_client(url: str = "ws://h/", *, max_message_size: int = 1 << 20) -> WebSocketClient:
    return WebSocketClient(url, entropy(0), max_message_size=max_message_size)


class Pair:
    """Our client and a ``websockets`` server, wired through memory."""

    def __init__(
        self,
        url: str = "wss://api.example.com/websocket/",
        *,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        extra_headers: tuple[tuple[str, str], ...] = (),
        seed: int = 0,
    ) -> None:
        self.client = WebSocketClient(
            url, entropy(seed), max_message_size=max_message_size, extra_headers=extra_headers
        )
        self.server = ServerProtocol(max_size=None)

    def send_request(self) -> Request:
        """Write the upgrade request to the server; return it as parsed there."""
        self.server.receive_data(self.client.connect())
        events = self.server.events_received()
        assert len(events) == 1
        request = events[0]
        assert isinstance(request, Request)
        assert self.server.handshake_exc is None
        return request

    def accept(self) -> Response:
        """Have the server accept the upgrade (the 101 is queued, not yet read)."""
        response = self.server.accept(self.send_request())
        assert response.status_code == 101
        self.server.send_response(response)
        return response

    def open(self) -> None:
        """Do the whole handshake and check the client says Opened."""
        self.accept()
        assert self.to_client() == [Opened()]
        assert self.client.is_open

    def server_bytes(self) -> bytes:
        return b"".join(self.server.data_to_send())

    def to_client(self, chunk: int | None = None) -> list[WsEvent]:
        """Feed what the server wrote to the client, ``chunk`` bytes per read."""
        return feed(self.client, self.server_bytes(), chunk)

    def to_server(self) -> list[Frame]:
        """Feed what the client has to write to the server; return its frames."""
        self.server.receive_data(self.client.data_to_send())
        return self.frames()

    def frames(self) -> list[Frame]:
        frames = []
        for event in self.server.events_received():
            assert isinstance(event, Frame)
            frames.append(event)
        return frames


def feed(client: WebSocketClient, data: bytes, chunk: int | None = None) -> list[WsEvent]:
    if chunk is None:
        return client.receive_data(data)
    events: list[WsEvent] = []
    for i in range(0, len(data), chunk):
        events += client.receive_data(data[i : i + chunk])
    return events


def feed_cut(client: WebSocketClient, data: bytes, cuts: Iterable[int]) -> list[WsEvent]:
    """Feed ``data`` split at the offsets ``cuts`` (empty pieces skipped)."""
    events: list[WsEvent] = []
    start = 0
    for cut in [*sorted(set(cuts)), len(data)]:
        if cut > start:
            events += client.receive_data(data[start:cut])
            start = cut
    return events


def opened(
    url: str = "wss://api.example.com/websocket/",
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> Pair:
    pair = Pair(url, max_message_size=max_message_size)
    pair.open()
    return pair


def only_closed(events: Sequence[WsEvent]) -> Closed:
    assert len(events) == 1, events
    event = events[0]
    assert isinstance(event, Closed)
    return event


def assert_server_got_close(pair: Pair, code: int) -> None:
    frames = pair.to_server()
    assert [f.opcode for f in frames] == [Opcode.CLOSE]
    assert pair.server.close_rcvd is not None
    assert pair.server.close_rcvd.code == code


def raw_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    """An unmasked server frame with a payload under 126 bytes."""
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | rsv | opcode, len(payload)]) + payload


# -- the upgrade request ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "path", "secure", "port", "host_attr"),
    [
        ("wss://api.example.com/websocket/", "api.example.com", "/websocket/", True, 443, None),
        ("wss://api.example.com:443/ws", "api.example.com", "/ws", True, 443, None),
        ("wss://api.example.com:8443/ws", "api.example.com:8443", "/ws", True, 8443, None),
        ("ws://gw.example.com", "gw.example.com", "/", False, 80, None),
        ("ws://gw.example.com:80/", "gw.example.com", "/", False, 80, None),
        ("ws://gw.example.com:443/", "gw.example.com:443", "/", False, 443, None),
        (
            "ws://gw.example.com:8080/a/b?x=1&y=2",
            "gw.example.com:8080",
            "/a/b?x=1&y=2",
            False,
            8080,
            None,
        ),
        ("ws://gw.example.com/?token=abc", "gw.example.com", "/?token=abc", False, 80, None),
        ("ws://gw.example.com/p#frag", "gw.example.com", "/p", False, 80, None),
        ("ws://[::1]:6700/onebot", "[::1]:6700", "/onebot", False, 6700, "::1"),
        ("wss://[2001:db8::1]/", "[2001:db8::1]", "/", True, 443, "2001:db8::1"),
        ("ws://127.0.0.1:6700", "127.0.0.1:6700", "/", False, 6700, None),
        ("WSS://API.Example.COM/Path", "api.example.com", "/Path", True, 443, None),
        # The host is kept as DNS and TLS want it: IDNA, once, in qqproto.url.
        ("wss://中文.cn:8443/ws", "xn--fiq228c.cn:8443", "/ws", True, 8443, None),
        ("ws://bücher.de/", "xn--bcher-kva.de", "/", False, 80, None),
    ],
)
def test_upgrade_request_as_the_server_reads_it(
    url: str, host: str, path: str, secure: bool, port: int, host_attr: str | None
) -> None:
    pair = Pair(url)
    assert pair.client.secure is secure
    assert pair.client.port == port
    assert pair.client.host == (host_attr or host.split(":")[0])
    request = pair.send_request()
    assert request.path == path
    assert request.headers["Host"] == host
    assert request.headers["Upgrade"].lower() == "websocket"
    assert "upgrade" in request.headers["Connection"].lower()
    assert request.headers["Sec-WebSocket-Version"] == "13"
    # The server is happy with it: it answers 101.
    response = pair.server.accept(request)
    assert response.status_code == 101


def test_upgrade_request_line_and_key() -> None:
    url = "wss://api.example.com/websocket/?v=1"
    raw = WebSocketClient(url, entropy(7)).connect()
    assert raw.startswith(b"GET /websocket/?v=1 HTTP/1.1\r\n")
    assert raw.endswith(b"\r\n\r\n")
    headers = dict(line.split(b": ", 1) for line in raw.split(b"\r\n")[1:] if line)
    key = base64.b64decode(headers[b"Sec-WebSocket-Key"], validate=True)
    # The key is the first 16 bytes the entropy source gives.
    assert key == random.Random(7).randbytes(16)
    # Same entropy, same bytes; other entropy, another key.
    assert WebSocketClient(url, entropy(7)).connect() == raw
    assert WebSocketClient(url, entropy(8)).connect() != raw


def test_client_frames_are_masked_with_entropy_keys() -> None:
    pair = opened()
    source = random.Random(0)
    source.randbytes(16)  # the handshake key
    sizes = [0, 1, 125, 126, 127, 65_535, 65_536, 70_001]
    texts = ["x" * n for n in sizes] + ["é" * 100]
    for text in texts:
        frame = pair.client.send_text(text)
        pair.server.receive_data(frame)
        payload = text.encode()
        assert frame[0] == 0x81  # FIN, text
        if len(payload) < 126:
            header = bytes([0x80 | len(payload)])
        elif len(payload) < 1 << 16:
            header = bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
        else:
            header = bytes([0x80 | 127]) + len(payload).to_bytes(8, "big")
        key = source.randbytes(4)
        assert frame[1 : 1 + len(header)] == header
        rest = frame[1 + len(header) :]
        assert rest[:4] == key
        assert len(rest) == 4 + len(payload)
        if len(payload) < 200:
            unmasked = bytes(b ^ key[i % 4] for i, b in enumerate(rest[4:]))
            assert unmasked == payload
    # The server unmasks them all to the same texts.
    assert [bytes(f.data).decode() for f in pair.frames()] == texts


def test_zero_mask_frame_bytes() -> None:
    client = WebSocketClient("ws://h/", bytes)
    server = ServerProtocol()
    server.receive_data(client.connect())
    request = server.events_received()[0]
    assert isinstance(request, Request)
    server.send_response(server.accept(request))
    assert client.receive_data(b"".join(server.data_to_send())) == [Opened()]
    assert client.send_text("hi") == b"\x81\x82\x00\x00\x00\x00hi"
    assert client.send_text("") == b"\x81\x80\x00\x00\x00\x00"
    assert client.close(1000, "ok") == b"\x88\x84\x00\x00\x00\x00\x03\xe8ok"


def test_extra_headers_reach_the_server() -> None:
    pair = Pair(
        "wss://api.example.com/ws",
        extra_headers=(("Authorization", "QQBot abc.def"), ("X-Union-Appid", "102")),
    )
    request = pair.send_request()
    assert request.headers["Authorization"] == "QQBot abc.def"
    assert request.headers["X-Union-Appid"] == "102"


def test_connect_twice_raises() -> None:
    client = make_client()
    client.connect()
    with pytest.raises(LocalProtocolError, match="already sent"):
        client.connect()


def test_receive_before_connect_raises() -> None:
    client = make_client()
    with pytest.raises(LocalProtocolError, match="before connect"):
        client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "https://example.com/",
        "example.com/ws",
        "",
        "ws://",
        "ws:///path",
        "wss://:443/",
        "ws://h:99999/",
        "ws://h:0/",
        "ws://h:-1/",
        "ws://h:port/",
        "ws://h/a b",
        "ws://h/\x01",
        "ws://h/中文",
        "ws://h/?q=中",
        "ws://" + "a" * 64 + ".example/",
    ],
)
def test_bad_urls_raise_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        WebSocketClient(url, entropy(0))
    assert isinstance(info.value, ValueError)
    assert info.value.received == url


@pytest.mark.parametrize("size", [0, -1])
def test_bad_max_message_size(size: int) -> None:
    with pytest.raises(ConfigError, match="max_message_size"):
        make_client(max_message_size=size)


def test_repr_follows_the_state() -> None:
    pair = Pair("wss://api.example.com/ws")
    assert repr(pair.client) == "WebSocketClient('wss://api.example.com/ws', state='not connected')"
    pair.accept()
    assert "state='handshake in progress'" in repr(pair.client)
    pair.to_client()
    assert "state='open'" in repr(pair.client)
    pair.client.close()
    assert "state='closed'" in repr(pair.client)


# -- the 101 and messages ----------------------------------------------------------


def test_opened_then_text_and_binary() -> None:
    pair = Pair()
    assert not pair.client.is_open
    pair.open()
    assert not pair.client.is_closed
    pair.server.send_text("你好, QQ".encode())
    pair.server.send_binary(b"\x00\x01\xff")
    pair.server.send_text(b"")
    pair.server.send_binary(b"")
    assert pair.to_client() == [
        TextReceived("你好, QQ"),
        BytesReceived(b"\x00\x01\xff"),
        TextReceived(""),
        BytesReceived(b""),
    ]
    assert pair.client.data_to_send() == b""


def test_frames_in_the_same_read_as_the_101() -> None:
    pair = Pair()
    pair.accept()
    pair.server.send_text(b"hello")
    pair.server.send_ping(b"p1")
    pair.server.send_binary(b"\x01\x02")
    events = pair.to_client()
    assert events == [Opened(), TextReceived("hello"), BytesReceived(b"\x01\x02")]
    # The ping that came with the 101 is answered too.
    frames = pair.to_server()
    assert [(f.opcode, f.data) for f in frames] == [(Opcode.PONG, b"p1")]


def test_close_in_the_same_read_as_the_101() -> None:
    pair = Pair()
    pair.accept()
    pair.server.send_close(1000, "bye")
    assert pair.to_client() == [Opened(), Closed(1000, "bye")]
    assert_server_got_close(pair, 1000)


def test_fragmented_messages_are_reassembled() -> None:
    pair = opened()
    pair.server.send_text(b"frag", fin=False)
    pair.server.send_continuation(b"men", fin=False)
    pair.server.send_continuation(b"ted", fin=True)
    pair.server.send_binary(b"\x00", fin=False)
    pair.server.send_continuation(b"", fin=False)
    pair.server.send_continuation(b"\x01", fin=True)
    # A UTF-8 character cut between two frames.
    snowman = "☃".encode()
    pair.server.send_text(b"a" + snowman[:1], fin=False)
    pair.server.send_continuation(snowman[1:] + b"b", fin=True)
    assert pair.to_client() == [
        TextReceived("fragmented"),
        BytesReceived(b"\x00\x01"),
        TextReceived("a☃b"),
    ]


def test_ping_between_fragments_is_answered_and_message_is_whole() -> None:
    pair = opened()
    pair.server.send_text(b"one ", fin=False)
    pair.server.send_ping(b"mid")
    pair.server.send_continuation(b"message", fin=True)
    assert pair.to_client() == [TextReceived("one message")]
    frames = pair.to_server()
    assert [(f.opcode, f.data) for f in frames] == [(Opcode.PONG, b"mid")]


def test_ping_answered_with_pong() -> None:
    pair = opened()
    pair.server.send_ping(b"are you there")
    pair.server.send_ping(b"")
    assert pair.to_client() == []
    frames = pair.to_server()
    assert [(f.opcode, f.data) for f in frames] == [
        (Opcode.PONG, b"are you there"),
        (Opcode.PONG, b""),
    ]
    # Taken once: data_to_send() empties the buffer.
    assert pair.client.data_to_send() == b""


def test_unsolicited_pong_is_ignored() -> None:
    pair = opened()
    pair.server.send_pong(b"heartbeat")
    pair.server.send_text(b"after")
    assert pair.to_client() == [TextReceived("after")]
    assert pair.client.data_to_send() == b""


def test_send_text_reaches_the_server() -> None:
    pair = opened()
    long_text = "长" * 70_000
    pair.server.receive_data(pair.client.send_text('{"op":1,"d":null}'))
    pair.server.receive_data(pair.client.send_text(long_text))
    pair.server.receive_data(pair.client.send_text(""))
    frames = pair.frames()
    assert [f.opcode for f in frames] == [Opcode.TEXT] * 3
    assert [bytes(f.data).decode() for f in frames] == ['{"op":1,"d":null}', long_text, ""]
    assert all(f.fin for f in frames)


# -- byte boundaries ---------------------------------------------------------------

_SCRIPT_EVENTS: list[WsEvent] = [
    Opened(),
    TextReceived("héllo"),
    BytesReceived(bytes(range(200))),
    TextReceived("片段消息"),
    Closed(1000, "done"),
]


def _scripted_stream() -> tuple[Pair, bytes]:
    """A 101, a text, a 200-byte binary, a ping, a fragmented text, a close."""
    pair = Pair()
    pair.accept()
    pair.server.send_text("héllo".encode())
    pair.server.send_binary(bytes(range(200)))
    pair.server.send_ping(b"ping!")
    body = "片段消息".encode()
    pair.server.send_text(body[:4], fin=False)
    pair.server.send_continuation(body[4:7], fin=False)
    pair.server.send_continuation(body[7:], fin=True)
    pair.server.send_close(1000, "done")
    return pair, pair.server_bytes()


def test_one_byte_at_a_time() -> None:
    pair, stream = _scripted_stream()
    assert feed(pair.client, stream, chunk=1) == _SCRIPT_EVENTS
    frames = pair.to_server()
    assert (frames[0].opcode, frames[0].data) == (Opcode.PONG, b"ping!")
    assert frames[-1].opcode is Opcode.CLOSE
    assert pair.server.close_rcvd is not None
    assert pair.server.close_rcvd.code == 1000


def test_split_at_every_offset() -> None:
    _, stream = _scripted_stream()
    for cut in range(len(stream) + 1):
        pair, same = _scripted_stream()
        assert len(same) == len(stream)  # the same script, so every offset is covered
        events = feed_cut(pair.client, same, [cut])
        assert events == _SCRIPT_EVENTS, cut


# -- closing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1000, ""), (1000, "normal"), (1001, "going away"), (4009, "会话超时"), (3000, "x" * 123)],
)
def test_peer_close_is_reported_and_answered(code: int, reason: str) -> None:
    pair = opened()
    pair.server.send_close(code, reason)
    assert pair.to_client() == [Closed(code, reason)]
    assert not pair.client.is_open
    assert pair.client.is_closed
    assert_server_got_close(pair, code)
    # The server started the closing handshake and we finished it.
    assert pair.server.close_rcvd_then_sent is False


def test_peer_close_without_status_code_is_1005() -> None:
    pair = opened()
    pair.server.send_close()
    closed = only_closed(pair.to_client())
    assert closed == Closed(1005, "")
    assert closed.error is None
    assert_server_got_close(pair, CloseCode.NO_STATUS_RCVD)


def test_eof_is_1006() -> None:
    pair = opened()
    closed = only_closed(pair.client.receive_data(b""))
    assert closed.code == 1006
    assert closed.error is None
    assert closed.reason
    assert pair.client.data_to_send() == b""
    assert pair.client.is_closed


def test_eof_in_the_middle_of_a_message_is_1006() -> None:
    pair = opened()
    pair.server.send_text(b"abcdef", fin=False)
    data = pair.server_bytes()
    assert pair.client.receive_data(data[:-2]) == []
    assert only_closed(pair.client.receive_data(b"")).code == 1006


def test_nothing_after_closed() -> None:
    pair = opened()
    pair.server.send_close(1000, "")
    closing = pair.server_bytes()
    more = raw_frame(0x1, b"late") + raw_frame(0x9, b"p")
    # Bytes after the close frame in the same read are dropped ...
    assert pair.client.receive_data(closing + more) == [Closed(1000, "")]
    reply = pair.client.data_to_send()
    # ... and so is everything fed later, EOF included.
    assert pair.client.receive_data(more) == []
    assert pair.client.receive_data(b"") == []
    assert pair.client.data_to_send() == b""
    # Only our close reply went out, no pong.
    pair.server.receive_data(reply)
    assert [f.opcode for f in pair.frames()] == [Opcode.CLOSE]


def test_send_text_when_not_open_raises() -> None:
    client = make_client()
    with pytest.raises(LocalProtocolError, match="not connected"):
        client.send_text("x")
    client.connect()
    with pytest.raises(LocalProtocolError, match="handshake in progress"):
        client.send_text("x")


def test_send_text_after_peer_close_raises() -> None:
    pair = opened()
    pair.server.send_close(1000, "")
    pair.to_client()
    with pytest.raises(LocalProtocolError, match="closed"):
        pair.client.send_text("x")


def test_send_text_after_eof_raises() -> None:
    pair = opened()
    pair.client.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        pair.client.send_text("x")


def test_our_close() -> None:
    pair = opened()
    data = pair.client.close(4000, "reconnect")
    assert pair.client.is_closed
    assert not pair.client.is_open
    pair.server.receive_data(data)
    assert [f.opcode for f in pair.frames()] == [Opcode.CLOSE]
    assert pair.server.close_rcvd == Close(4000, "reconnect")
    with pytest.raises(LocalProtocolError, match="closed"):
        pair.client.send_text("x")
    # A second close has nothing to send, and the server's reply is ignored.
    assert pair.client.close() == b""
    assert pair.to_client() == []


@pytest.mark.parametrize(
    "reason",
    ["é" * 100, "会" * 60, "x" * 200, "😀" * 40],
    ids=["2-byte", "3-byte", "ascii", "4-byte"],
)
def test_our_close_reason_is_cut_to_valid_utf8(reason: str) -> None:
    # A close frame's reason is at most 123 bytes, and must stay valid UTF-8.
    pair = opened()
    pair.server.receive_data(pair.client.close(4000, reason))
    assert [f.opcode for f in pair.frames()] == [Opcode.CLOSE]
    assert pair.server.parser_exc is None
    close = pair.server.close_rcvd
    assert close is not None
    assert close.code == 4000
    assert reason.startswith(close.reason)
    assert 120 <= len(close.reason.encode()) <= 123


def test_close_default_code_is_1000() -> None:
    pair = opened()
    pair.server.receive_data(pair.client.close())
    assert pair.server.close_rcvd == Close(1000, "")


def test_close_before_open_sends_nothing() -> None:
    client = make_client()
    assert client.close() == b""
    assert client.is_closed
    pair = Pair()
    pair.accept()
    assert pair.client.close() == b""
    assert pair.to_client() == []


# -- refused and broken handshakes -----------------------------------------------------


@pytest.mark.parametrize(
    ("status", "text"),
    [(401, "invalid token"), (403, ""), (503, "service unavailable, retry later " * 20)],
)
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_rejected_handshake(status: int, text: str, chunk: int | None) -> None:
    pair = Pair()
    pair.send_request()
    response = pair.server.reject(status, text)
    assert response.body == text.encode()
    pair.server.send_response(response)
    closed = only_closed(pair.to_client(chunk))
    assert closed.code == 1006
    assert str(status) in closed.reason
    error = closed.error
    assert isinstance(error, WebSocketHandshakeError)
    assert isinstance(error, RemoteProtocolError)
    assert error.status == status
    assert error.body == text.encode()
    assert not pair.client.is_open
    assert pair.client.is_closed
    assert pair.client.data_to_send() == b""
    assert pair.client.receive_data(b"") == []
    with pytest.raises(LocalProtocolError):
        pair.client.send_text("x")


def test_rejected_body_is_kept_up_to_64_kib() -> None:
    pair = Pair()
    pair.send_request()
    pair.server.send_response(pair.server.reject(503, "z" * 100_000))
    closed = only_closed(pair.to_client(4096))
    assert isinstance(closed.error, WebSocketHandshakeError)
    assert closed.error.body == b"z" * (64 * 1024)


def test_rejected_with_body_until_eof() -> None:
    client = make_client()
    client.connect()
    head = b"HTTP/1.1 502 Bad Gateway\r\nConnection: close\r\n\r\n"
    assert client.receive_data(head + b"upstream ") == []
    assert client.receive_data(b"down") == []
    closed = only_closed(client.receive_data(b""))
    assert isinstance(closed.error, WebSocketHandshakeError)
    assert (closed.error.status, closed.error.body) == (502, b"upstream down")


def test_rejected_with_chunked_body() -> None:
    client = make_client()
    client.connect()
    raw = (
        b"HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nslow \r\n4\r\ndown\r\n0\r\n\r\n"
    )
    closed = only_closed(feed(client, raw, 3))
    assert isinstance(closed.error, WebSocketHandshakeError)
    assert (closed.error.status, closed.error.body) == (429, b"slow down")


def test_rejected_with_truncated_body_keeps_the_status() -> None:
    client = make_client()
    client.connect()
    assert client.receive_data(b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\n\r\nabc") == []
    closed = only_closed(client.receive_data(b""))
    assert closed.code == 1006
    assert isinstance(closed.error, WebSocketHandshakeError)
    assert (closed.error.status, closed.error.body) == (503, b"abc")


def test_rejected_without_body() -> None:
    client = make_client()
    client.connect()
    closed = only_closed(
        client.receive_data(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    )
    assert isinstance(closed.error, WebSocketHandshakeError)
    assert (closed.error.status, closed.error.body) == (404, b"")


def test_plain_200_is_a_refusal() -> None:
    client = make_client()
    client.connect()
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    closed = only_closed(client.receive_data(raw))
    assert isinstance(closed.error, WebSocketHandshakeError)
    assert closed.error.status == 200


@pytest.mark.parametrize(
    "before_eof",
    [b"", b"HTTP/1.1 101 Switching", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"],
)
def test_eof_during_the_handshake(before_eof: bytes) -> None:
    client = make_client()
    client.connect()
    if before_eof:
        assert client.receive_data(before_eof) == []
    closed = only_closed(client.receive_data(b""))
    assert closed.code == 1006
    assert closed.reason == "the server closed the connection during the upgrade"
    assert isinstance(closed.error, RemoteProtocolError)
    assert not isinstance(closed.error, WebSocketHandshakeError)
    assert client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n\r\n") == []
    assert not client.is_open


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"HTTP/1.1 abc Nope\r\n\r\n",
        # A 101 without the headers an upgrade needs.
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        # A 101 with a wrong accept key.
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ],
)
def test_garbage_instead_of_a_101(garbage: bytes) -> None:
    client = make_client()
    client.connect()
    closed = only_closed(client.receive_data(garbage))
    assert closed.code == 1006
    assert isinstance(closed.error, RemoteProtocolError)
    assert not isinstance(closed.error, WebSocketHandshakeError)
    assert not client.is_open
    assert client.receive_data(b"more") == []


def test_endless_garbage_without_a_line_end() -> None:
    # Frames where the 101 should be: no line ends, so the HTTP parser waits,
    # but not forever; a head over h11's 16 KiB limit is an error.
    client = make_client()
    client.connect()
    events: list[WsEvent] = []
    for _ in range(40):
        events += client.receive_data(b"\x81\x05hello" * 100)
    closed = only_closed(events)
    assert closed.code == 1006
    assert isinstance(closed.error, RemoteProtocolError)


def test_garbage_without_a_line_end_then_eof() -> None:
    client = make_client()
    client.connect()
    assert client.receive_data(b"\x81\x05hello") == []
    closed = only_closed(client.receive_data(b""))
    assert closed.code == 1006
    assert isinstance(closed.error, RemoteProtocolError)


def accept_token(request: bytes) -> bytes:
    """The Sec-WebSocket-Accept value that answers ``request`` (RFC 6455 section 4.2.2)."""
    headers = dict(line.split(b": ", 1) for line in request.split(b"\r\n")[1:] if line)
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    return base64.b64encode(hashlib.sha1(headers[b"Sec-WebSocket-Key"] + guid).digest())


def handmade_101(request: bytes, *lines: bytes) -> bytes:
    return b"\r\n".join([b"HTTP/1.1 101 Switching Protocols", *lines, b"", b""]).replace(
        b"{accept}", accept_token(request)
    )


@pytest.mark.parametrize(
    "lines",
    [
        (b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Accept: {accept}"),
        (
            b"upgrade: WebSocket",
            b"connection: keep-alive, upgrade",
            b"sec-websocket-accept: {accept}",
        ),
        (b"Sec-WebSocket-Accept: {accept}", b"Connection: Upgrade", b"Upgrade: websocket", b"X: y"),
    ],
)
def test_handmade_101_is_accepted(lines: tuple[bytes, ...]) -> None:
    client = make_client()
    response = handmade_101(client.connect(), *lines)
    assert client.receive_data(response + raw_frame(0x1, b"hi")) == [Opened(), TextReceived("hi")]


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param((b"Connection: Upgrade", b"Sec-WebSocket-Accept: {accept}"), id="no-upgrade"),
        pytest.param(
            (b"Upgrade: h2c", b"Connection: Upgrade", b"Sec-WebSocket-Accept: {accept}"),
            id="upgrade-h2c",
        ),
        pytest.param(
            (b"Upgrade: websocket", b"Sec-WebSocket-Accept: {accept}"), id="no-connection"
        ),
        pytest.param(
            (b"Upgrade: websocket", b"Connection: keep-alive", b"Sec-WebSocket-Accept: {accept}"),
            id="connection-without-upgrade",
        ),
        pytest.param((b"Upgrade: websocket", b"Connection: Upgrade"), id="no-accept"),
        pytest.param(
            (
                b"Upgrade: websocket",
                b"Connection: Upgrade",
                b"Sec-WebSocket-Accept: {accept}",
                b"Sec-WebSocket-Extensions: permessage-deflate",
            ),
            id="extension-not-offered",
        ),
    ],
)
def test_handmade_101_is_refused(lines: tuple[bytes, ...]) -> None:
    client = make_client()
    response = handmade_101(client.connect(), *lines)
    closed = only_closed(client.receive_data(response + raw_frame(0x1, b"hi")))
    assert closed.code == 1006
    assert isinstance(closed.error, RemoteProtocolError)
    assert not isinstance(closed.error, WebSocketHandshakeError)
    assert not client.is_open
    with pytest.raises(LocalProtocolError):
        client.send_text("x")


def test_100_continue_before_the_101() -> None:
    pair = Pair()
    pair.accept()
    data = b"HTTP/1.1 100 Continue\r\n\r\n" + pair.server_bytes()
    assert pair.client.receive_data(data) == [Opened()]


def test_101_with_a_wrong_accept_key_from_the_server() -> None:
    pair = Pair()
    response = pair.server.accept(pair.send_request())
    good = response.headers["Sec-WebSocket-Accept"]
    del response.headers["Sec-WebSocket-Accept"]
    response.headers["Sec-WebSocket-Accept"] = base64.b64encode(
        bytes(b ^ 1 for b in base64.b64decode(good))
    ).decode()
    pair.server.send_response(response)
    closed = only_closed(pair.to_client())
    assert isinstance(closed.error, RemoteProtocolError)
    assert not pair.client.is_open


# -- limits and malformed frames ---------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_message_at_the_limit_passes(chunk: int | None) -> None:
    pair = opened(max_message_size=12)
    pair.server.send_binary(b"x" * 12)
    pair.server.send_text(b"a" * 12)
    pair.server.send_text("中文字".encode() + b"abc")  # 9 + 3 bytes
    pair.server.send_text("中".encode(), fin=False)
    pair.server.send_continuation("文字".encode(), fin=False)
    pair.server.send_continuation(b"abc", fin=True)
    assert pair.to_client(chunk) == [
        BytesReceived(b"x" * 12),
        TextReceived("a" * 12),
        TextReceived("中文字abc"),
        TextReceived("中文字abc"),
    ]


def _too_big_single_binary(pair: Pair) -> None:
    pair.server.send_binary(b"x" * 13)


def _too_big_single_text(pair: Pair) -> None:
    pair.server.send_text(b"a" * 13)


def _too_big_single_cjk(pair: Pair) -> None:
    pair.server.send_text("中文字".encode() + b"abcd")  # 13 bytes, 7 characters


def _too_big_fragmented_binary(pair: Pair) -> None:
    pair.server.send_binary(b"x" * 7, fin=False)
    pair.server.send_continuation(b"x" * 6, fin=True)


def _too_big_fragmented_text(pair: Pair) -> None:
    pair.server.send_text(b"a" * 5, fin=False)
    pair.server.send_continuation(b"b" * 5, fin=False)
    pair.server.send_continuation(b"c" * 5, fin=True)


def _too_big_fragmented_cjk(pair: Pair) -> None:
    # 2 + 2 characters of 3 bytes each plus one more byte: 13 bytes, but no
    # fragment is long enough in characters to look big on its own.
    pair.server.send_text("中文".encode(), fin=False)
    pair.server.send_continuation("字符".encode(), fin=False)
    pair.server.send_continuation(b"!", fin=True)


def _too_big_huge_frame(pair: Pair) -> None:
    pair.server.send_binary(b"z" * 100_000)


TOO_BIG: list[Callable[[Pair], None]] = [
    _too_big_single_binary,
    _too_big_single_text,
    _too_big_single_cjk,
    _too_big_fragmented_binary,
    _too_big_fragmented_text,
    _too_big_fragmented_cjk,
    _too_big_huge_frame,
]


@pytest.mark.parametrize("send", TOO_BIG)
@pytest.mark.parametrize("chunk", [None, 1, 4])
def test_message_over_the_limit(send: Callable[[Pair], None], chunk: int | None) -> None:
    pair = opened(max_message_size=12)
    send(pair)
    pair.server.send_text(b"after")
    data = pair.server_bytes()
    if chunk == 1 and len(data) > 1000:
        chunk = 997
    closed = only_closed(feed(pair.client, data, chunk))
    assert closed.code == 1009
    assert isinstance(closed.error, MessageTooBig)
    assert closed.error.limit == 12
    assert closed.error.size > 12
    assert_server_got_close(pair, 1009)
    assert pair.client.receive_data(raw_frame(0x1, b"later")) == []


def test_cjk_text_over_the_limit_in_one_frame_read_in_pieces() -> None:
    # One frame of 40 CJK characters (120 bytes) under a 100-byte limit, read
    # 20 bytes at a time as TCP might deliver it: wsproto hands over partial
    # text, each piece short in characters, and the limit is still on bytes.
    pair = opened(max_message_size=100)
    pair.server.send_text(("中" * 40).encode())
    closed = only_closed(pair.to_client(20))
    assert isinstance(closed.error, MessageTooBig)
    assert closed.code == 1009


def test_limit_resets_between_messages() -> None:
    pair = opened(max_message_size=10)
    for _ in range(5):
        pair.server.send_text(b"12345", fin=False)
        pair.server.send_continuation(b"67890", fin=True)
    assert pair.to_client() == [TextReceived("1234567890")] * 5


def test_default_limit_is_four_mib() -> None:
    assert DEFAULT_MAX_MESSAGE_SIZE == 4 * 1024 * 1024
    pair = opened()
    pair.server.send_binary(b"\x00" * DEFAULT_MAX_MESSAGE_SIZE)
    assert pair.to_client() == [BytesReceived(b"\x00" * DEFAULT_MAX_MESSAGE_SIZE)]
    pair.server.send_binary(b"\x00" * (DEFAULT_MAX_MESSAGE_SIZE + 1))
    assert only_closed(pair.to_client()).code == 1009


MASK = b"\x01\x02\x03\x04"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        pytest.param(raw_frame(0x1, b"hi", rsv=0x40), 1002, id="rsv1"),
        pytest.param(raw_frame(0x1, b"hi", rsv=0x20), 1002, id="rsv2"),
        pytest.param(raw_frame(0x2, b"hi", rsv=0x10), 1002, id="rsv3"),
        pytest.param(
            b"\x81\x82" + MASK + bytes(a ^ b for a, b in zip(b"hi", MASK, strict=False)),
            1002,
            id="masked",
        ),
        pytest.param(raw_frame(0x1, b"\xff\xfe"), 1007, id="bad-utf8"),
        pytest.param(raw_frame(0x1, b"\xed\xa0\x80"), 1007, id="surrogate"),
        pytest.param(raw_frame(0x3, b""), 1002, id="reserved-opcode"),
        pytest.param(raw_frame(0xB, b""), 1002, id="reserved-control-opcode"),
        pytest.param(raw_frame(0x9, b"", fin=False), 1002, id="fragmented-ping"),
        pytest.param(raw_frame(0x0, b"hi"), 1002, id="bare-continuation"),
        pytest.param(
            raw_frame(0x1, b"a", fin=False) + raw_frame(0x1, b"b"), 1002, id="text-inside-text"
        ),
        pytest.param(b"\x89\x7e\x00\x7e" + b"x" * 126, 1002, id="long-ping"),
        pytest.param(raw_frame(0x8, b"\x03"), 1002, id="close-one-byte"),
        pytest.param(raw_frame(0x8, b"\x03\xe7"), 1002, id="close-code-999"),
        pytest.param(raw_frame(0x8, b"\x03\xed"), 1002, id="close-code-1005"),
        pytest.param(raw_frame(0x8, b"\x03\xe8\xff"), 1007, id="close-bad-utf8"),
    ],
)
@pytest.mark.parametrize("chunk", [None, 1])
def test_malformed_frames(raw: bytes, code: int, chunk: int | None) -> None:
    pair = opened()
    closed = only_closed(feed(pair.client, raw + raw_frame(0x1, b"after"), chunk))
    assert closed.code == code
    assert isinstance(closed.error, RemoteProtocolError)
    assert not isinstance(closed.error, MessageTooBig)
    assert closed.reason
    assert not pair.client.is_open
    assert pair.client.is_closed
    # We close with the code we report, and the server reads it.
    assert_server_got_close(pair, code)
    assert pair.client.receive_data(raw_frame(0x1, b"later")) == []
    assert pair.client.receive_data(b"") == []
    with pytest.raises(LocalProtocolError):
        pair.client.send_text("x")


def test_malformed_frame_after_good_messages() -> None:
    pair = opened()
    pair.server.send_text(b"good")
    data = pair.server_bytes() + raw_frame(0x1, b"bad", rsv=0x40)
    events = pair.client.receive_data(data)
    assert events[0] == TextReceived("good")
    assert isinstance(events[1], Closed)
    assert events[1].code == 1002
    assert len(events) == 2


# -- any messages, any fragmentation, any reads ---------------------------------------------

Message = str | bytes


@st.composite
def fragmented(draw: st.DrawFn) -> tuple[Message, list[bytes], list[bool]]:
    """A message, its payload cut into fragments, and where pings go in between."""
    message: Message = draw(st.one_of(st.text(max_size=40), st.binary(max_size=40)))
    payload = message.encode() if isinstance(message, str) else message
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=4)))
    bounds = [0, *cuts, len(payload)]
    parts = [payload[a:b] for a, b in itertools.pairwise(bounds)]
    pings = [draw(st.booleans()) for _ in parts[1:]]
    return message, parts, pings


@settings(max_examples=150, deadline=None)
@given(messages=st.lists(fragmented(), max_size=6), data=st.data())
def test_any_messages_any_fragmentation_any_reads(
    messages: list[tuple[Message, list[bytes], list[bool]]], data: st.DataObject
) -> None:
    pair = Pair()
    pair.accept()
    pings: list[bytes] = []
    for message, parts, ping_after in messages:
        send_first = pair.server.send_text if isinstance(message, str) else pair.server.send_binary
        send_first(parts[0], fin=len(parts) == 1)
        for i, part in enumerate(parts[1:]):
            if ping_after[i]:
                payload = b"%d" % len(pings)
                pings.append(payload)
                pair.server.send_ping(payload)
            pair.server.send_continuation(part, fin=i == len(parts) - 2)
    pair.server.send_close(1000, "end")
    stream = pair.server_bytes()
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")

    events = feed_cut(pair.client, stream, cuts)

    expected: list[WsEvent] = [Opened()]
    for message, _, _ in messages:
        expected.append(
            TextReceived(message) if isinstance(message, str) else BytesReceived(message)
        )
    expected.append(Closed(1000, "end"))
    assert events == expected
    frames = pair.to_server()
    assert [f.data for f in frames if f.opcode is Opcode.PONG] == pings
    assert frames[-1].opcode is Opcode.CLOSE
    assert pair.server.close_rcvd is not None
    assert pair.server.close_rcvd.code == 1000


# -- the fast path: the same as wsproto alone, byte for byte ---------------------------------
#
# WebSocketClient decodes whole, final, unmasked text frames itself while
# wsproto holds nothing, and hands everything else to wsproto (see the
# module docstring). These tests run the same server bytes, cut the same
# way, through a client with that path and one without, and require the
# same events from every read, the same bytes to write after every read and
# the same state. The frames are drawn to sit at both sides of every line
# the fast path draws: the first byte, the three length encodings (minimal
# and not), the mask bit, the size limit, UTF-8 validity, fragments, control
# frames between them, and frames cut anywhere, headers included.

_TEXTS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "中文", "😀", "a" * 125, "a" * 126, "é" * 70, "x" * 300]),
)
_UTF8_TRAPS = (b"\xff", b"\xc3", b"\xe4\xb8", b"\xed\xa0\x80", b"\xf0\x9f\x98", b"\xc3\x28")
_BAD_OPCODES = (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)
_GOOD_101 = (b"Upgrade: websocket", b"Connection: Upgrade", b"Sec-WebSocket-Accept: {accept}")


@st.composite
def _payload(draw: st.DrawFn) -> bytes:
    """Text that is UTF-8, or is not, or stops inside a character."""
    text: bytes = draw(_TEXTS).encode()
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(_UTF8_TRAPS)) + text[at:]
    return text


#: Frames that hold frame-like bytes: cut inside one, and the rest looks like a
#: whole text frame ("ā" is c4 81 in UTF-8), which is not where a frame starts.
_DECOYS = (
    frame(OP_TEXT, "ā\x02hi".encode()),
    frame(OP_BINARY, frame(OP_TEXT, b"decoy")),
    frame(OP_PING, frame(OP_TEXT, b"")),
    frame(OP_TEXT, b"z" * 0x8100),  # a 16-bit length that begins with 0x81 0x00
    frame(OP_TEXT, b"ok", fin=False) + frame(OP_CONT, "ā\x00".encode()),
)


@st.composite
def _server_frame(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 17))
    if kind < 5:  # the common case, the one the fast path takes
        return frame(OP_TEXT, draw(_payload()))
    if kind == 5:  # the 64-bit length: at least 65536 bytes
        size = draw(st.sampled_from([1 << 16, (1 << 16) + 3]))
        body = draw(st.sampled_from([b"a", "中".encode()])) * (size // 3 + 1)
        return frame(OP_TEXT, body[:size] if draw(st.booleans()) else body[: size - 1] + b"\xff")
    if kind == 6:  # a length in more bytes than it needs, which RFC 6455 forbids
        payload = draw(_payload())
        if len(payload) < 126 and draw(st.booleans()):  # the 16-bit form, padded
            return bytes((0x81, 126)) + len(payload).to_bytes(2, "big") + payload
        return frame(OP_TEXT, payload, wide_length=True)
    if kind == 7:  # a 64-bit length with the top bit set
        return bytes((0x81, 127)) + ((1 << 63) | 5).to_bytes(8, "big") + b"hello"
    if kind == 8:
        return frame(OP_TEXT, draw(_payload()), mask=b"\x01\x02\x03\x04")
    if kind == 9:
        return frame(OP_TEXT, draw(_payload()), rsv=draw(st.integers(1, 7)))
    if kind == 10:
        return frame(OP_BINARY, draw(st.binary(max_size=20)))
    if kind == 11:  # a fragment: first, continuation or last (good or bad order)
        opcode = draw(st.sampled_from([OP_TEXT, OP_BINARY, OP_CONT, OP_CONT]))
        fragment = frame(opcode, draw(_payload()), fin=draw(st.booleans()))
        if draw(st.booleans()):  # then a whole text frame, which the fast path must not take
            fragment += frame(OP_TEXT, draw(_payload()))
        return fragment
    if kind == 12:
        return frame(draw(st.sampled_from([OP_PING, OP_PONG])), draw(st.binary(max_size=8)))
    if kind == 13:
        return frame(OP_PING, b"x" * 126)  # a control frame over 125 bytes
    if kind == 14:
        return close_frame(draw(st.sampled_from([None, 1000, 1001, 1005, 4009, 999])), b"bye")
    if kind == 15:
        return frame(draw(st.sampled_from(_BAD_OPCODES)), b"", fin=draw(st.booleans()))
    if kind == 16:
        return draw(st.sampled_from(_DECOYS))
    return draw(st.binary(min_size=1, max_size=6))  # any bytes at all


def _risky_cuts(stream: bytes) -> list[int]:
    """Where a cut tests the most: just after a 0x81 byte or just before one."""
    return [i + k for i, byte in enumerate(stream) if byte == 0x81 for k in (0, 1, 2, 3)]


def _wsproto_idle(client: WebSocketClient) -> bool:
    """What the fast path must not look at: wsproto holds no frame and no message."""
    conn = client._conn
    assert conn is not None
    decoder = conn._proto._frame_decoder
    message = conn._proto._message_decoder
    return decoder.header is None and not len(decoder.buffer) and message.opcode is None


def _comparable(events: list[WsEvent]) -> list[object]:
    """Events with their errors as (type, text): exceptions compare by identity."""
    out: list[object] = []
    for event in events:
        if isinstance(event, Closed) and event.error is not None:
            out.append((event.code, event.reason, type(event.error), str(event.error)))
        else:
            out.append(event)
    return out


@settings(max_examples=500, deadline=None)
@given(
    frames=st.lists(_server_frame(), max_size=12),
    # Each at the size of a payload _TEXTS draws: at the limit passes, over it fails.
    limit=st.sampled_from([DEFAULT_MAX_MESSAGE_SIZE, 126, 140, 4, 1]),
    with_101=st.booleans(),
    eof=st.booleans(),
    data=st.data(),
)
def test_the_fast_path_changes_nothing_wsproto_would_report(
    frames: list[bytes], limit: int, with_101: bool, eof: bool, data: st.DataObject
) -> None:
    fast = WebSocketClient("ws://h/", entropy(7), max_message_size=limit)
    slow = WebSocketClient("ws://h/", entropy(7), max_message_size=limit)
    slow._fast_path = False
    request = fast.connect()
    assert slow.connect() == request
    response = handmade_101(request, *_GOOD_101)
    stream = b"".join(frames)
    if with_101:  # the frames also come in the reads that carry the 101
        stream = response + stream
    else:
        assert fast.receive_data(response) == slow.receive_data(response) == [Opened()]
    anywhere = st.integers(0, len(stream))
    risky = _risky_cuts(stream)
    where = st.one_of(anywhere, st.sampled_from(risky)) if risky else anywhere
    cuts = data.draw(st.lists(where, max_size=10), label="cuts")
    start = 0
    for cut in [*sorted(set(cuts)), len(stream), *([-1] if eof else [])]:
        if cut == -1:
            piece = b""  # EOF
        elif cut > start:
            piece, start = stream[start:cut], cut
        else:
            continue
        got = fast.receive_data(piece)
        assert _comparable(got) == _comparable(slow.receive_data(piece))
        assert fast.data_to_send() == slow.data_to_send()
        assert (fast.is_open, fast.is_closed) == (slow.is_open, slow.is_closed)
        if fast.is_open and not (fast._owed or fast._head or fast._parts):
            assert _wsproto_idle(fast)  # so the fast path may take the next frame
    if fast.is_open:
        assert fast.send_text("end") == slow.send_text("end")


def test_the_fast_path_takes_final_text_frames_and_leaves_wsproto_idle() -> None:
    client = make_client(max_message_size=1 << 17)
    assert client.receive_data(handmade_101(client.connect(), *_GOOD_101)) == [Opened()]
    texts = ["", "hi", "é" * 100, "x" * 70_000]
    stream = b"".join(frame(OP_TEXT, t.encode()) for t in texts)
    assert client.receive_data(stream) == [TextReceived(t) for t in texts]
    assert _wsproto_idle(client)
    conn = client._conn
    assert conn is not None
    # None of those bytes went to wsproto: its buffer never saw them.
    assert conn._proto._frame_decoder.buffer.buffer == bytearray()


def test_any_bytes_like_input_is_taken_on_the_fast_path_too() -> None:
    client = make_client()
    assert client.receive_data(handmade_101(client.connect(), *_GOOD_101)) == [Opened()]
    data = frame(OP_TEXT, "你好".encode()) + frame(OP_TEXT, b"x")
    # The type says bytes; an embedder's buffer of another kind must not crash it.
    got = client.receive_data(memoryview(data))  # type: ignore[arg-type]
    assert got == [TextReceived("你好"), TextReceived("x")]
    got = client.receive_data(bytearray(frame(OP_TEXT, b"y")))  # type: ignore[arg-type]
    assert got == [TextReceived("y")]


def test_a_frame_cut_in_its_header_goes_to_wsproto_then_the_fast_path_resumes() -> None:
    client = make_client()
    assert client.receive_data(handmade_101(client.connect(), *_GOOD_101)) == [Opened()]
    big = frame(OP_TEXT, b"y" * 300)  # a 16-bit length
    events = client.receive_data(frame(OP_TEXT, b"a") + big[:3])  # the length half here
    assert events == [TextReceived("a")]
    assert client._head == big[:3]
    assert client.receive_data(big[3:10]) == []  # wsproto holds 6 bytes of the message
    assert client._owed == len(big) - 10
    rest = big[10:] + frame(OP_TEXT, b"b")
    assert client.receive_data(rest) == [TextReceived("y" * 300), TextReceived("b")]
    assert _wsproto_idle(client)
    assert not (client._owed or client._head or client._parts)


def _run_both(stream: bytes, cuts: Iterable[int], limit: int = 1 << 20) -> None:
    """``stream`` cut at ``cuts`` through a client with the fast path and one without."""
    fast = WebSocketClient("ws://h/", entropy(7), max_message_size=limit)
    slow = WebSocketClient("ws://h/", entropy(7), max_message_size=limit)
    slow._fast_path = False
    response = handmade_101(fast.connect(), *_GOOD_101)
    slow.connect()
    assert fast.receive_data(response) == slow.receive_data(response) == [Opened()]
    start = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        if cut > start:
            got = fast.receive_data(stream[start:cut])
            assert _comparable(got) == _comparable(slow.receive_data(stream[start:cut])), cut
            assert fast.data_to_send() == slow.data_to_send()
            start = cut


_MASKED_THEN_ASCII = (
    # With the mask bit read as part of the length, this masked frame would be
    # 138 bytes of ASCII text: its key and payload, then fragment headers.
    frame(OP_TEXT, b"a" * 10, mask=b"AAAA")
    + frame(OP_TEXT, b"x" * 100, fin=False)
    + frame(OP_CONT, b"y" * 100, fin=False)
    + frame(OP_CONT, b"")
)


@pytest.mark.parametrize(
    "frames",
    [
        pytest.param((frame(OP_TEXT, b"hi"), *_DECOYS, frame(OP_TEXT, b"end")), id="decoys"),
        pytest.param((_MASKED_THEN_ASCII,), id="masked-then-ascii"),
        pytest.param(  # wsproto holds a message: a whole text frame inside it is an error
            (frame(OP_TEXT, b"a", fin=False), frame(OP_TEXT, b"b"), frame(OP_CONT, b"c")),
            id="text-inside-a-message",
        ),
        pytest.param(
            (frame(OP_TEXT, b"a" * 200), frame(OP_TEXT, b"b" * 70_000), frame(OP_PING, b"p")),
            id="lengths",
        ),
        pytest.param(
            (frame(OP_TEXT, b"12345678"), frame(OP_TEXT, b"123456789"), frame(OP_TEXT, b"1")),
            id="at-and-over-the-limit",
        ),
    ],
)
def test_the_fast_path_at_every_header_cut(frames: tuple[bytes, ...]) -> None:
    """Every cut in and just after each header, and around every 0x81 byte."""
    stream = b"".join(frames)
    starts = list(itertools.accumulate((len(f) for f in frames[:-1]), initial=0))
    cuts = {s + k for s in starts for k in range(16)} | set(_risky_cuts(stream))
    for limit in (1 << 20, 8):
        _run_both(stream, (), limit)
        for cut in sorted(cuts):
            _run_both(stream, (cut,), limit)
        if len(stream) < 600:
            _run_both(stream, range(len(stream)), limit)


def _text_frame(size: int, form: int) -> bytes:
    """A final text frame of ``size`` bytes, its length in the ``form``-bit field
    (7, 16 or 64), however short the length: the field need not be the shortest."""
    payload = b"a" * size
    if form == 7:
        return bytes((0x81, size)) + payload
    if form == 16:
        return bytes((0x81, 126)) + size.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + size.to_bytes(8, "big") + payload


@pytest.mark.parametrize(
    ("size", "form", "limit", "outcome"),
    [
        (125, 7, 1 << 20, "text"),
        (125, 16, 1 << 20, 1002),  # not the shortest form: wsproto refuses it
        (126, 16, 1 << 20, "text"),
        (65535, 16, 1 << 20, "text"),
        (65535, 64, 1 << 20, 1002),
        (65536, 64, 1 << 20, "text"),
        (100, 7, 100, "text"),  # the size limit exactly
        (101, 7, 100, 1009),  # the limit + 1
        (300, 16, 300, "text"),
        (301, 16, 300, 1009),
        (65536, 64, 65536, "text"),
        (65537, 64, 65536, 1009),
    ],
)
def test_the_fast_path_at_each_length_boundary_answers_as_wsproto(
    size: int, form: int, limit: int, outcome: str | int
) -> None:
    """Each boundary of the fast path, pinned: what it takes, wsproto takes too;
    what wsproto refuses (a length not in its shortest form, a message over the
    limit), it leaves to wsproto, which closes with its code."""
    stream = _text_frame(size, form) + frame(OP_TEXT, b"after")
    client = WebSocketClient("ws://h/", entropy(7), max_message_size=limit)
    client.receive_data(handmade_101(client.connect(), *_GOOD_101))
    conn = client._conn
    assert conn is not None
    to_wsproto: list[bytes | None] = []
    hand_over = conn.receive_data

    def spy(data: bytes | None) -> None:
        to_wsproto.append(data)
        hand_over(data)

    conn.receive_data = spy  # type: ignore[method-assign]
    got = client.receive_data(stream)
    if outcome == "text":
        assert got == [TextReceived("a" * size), TextReceived("after")]
        assert to_wsproto == [], "the fast path must take this frame itself"
    else:
        [closed] = got
        assert isinstance(closed, Closed) and closed.code == outcome, closed
        assert to_wsproto, "the fast path must leave this frame to wsproto"
    _run_both(stream, (), limit)
    _run_both(stream, (1, 2, 3, 4, 9, 10, 11), limit)


#: A 64-bit-length text frame whose payload is full of what looks like frames
#: ("ā" is c4 81 in UTF-8): if a cut in its length field made the fast path
#: lose count of the bytes still owed, it would read "hi" frames out of it.
_LONG_DECOY = frame(OP_TEXT, ("ā\x02hi" * 12_000).encode())


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(_LONG_DECOY + frame(OP_TEXT, b"end"), id="64-bit-length-decoys"),
        pytest.param(  # masked with no payload: 0x80 is the mask bit, not a length of 128
            frame(OP_TEXT, b"", mask=b"AAAA") + b"a" * 200, id="masked-empty-then-ascii"
        ),
    ],
)
def test_the_fast_path_at_every_cut_in_a_header(stream: bytes) -> None:
    for cut in range(16):
        _run_both(stream, (cut,))
        _run_both(stream, (cut, cut + 1, cut + 7))


def test_the_fast_path_resumes_after_frames_it_leaves_to_wsproto() -> None:
    client = make_client()
    assert client.receive_data(handmade_101(client.connect(), *_GOOD_101)) == [Opened()]
    data = frame(OP_PING, b"p") + frame(OP_BINARY, b"b") + frame(OP_TEXT, b"t")
    assert client.receive_data(data) == [BytesReceived(b"b"), TextReceived("t")]
    assert _wsproto_idle(client) and client._head == b"" and client._owed == 0
    assert client.data_to_send()  # the pong
    conn = client._conn
    assert conn is not None
    to_wsproto: list[bytes | None] = []
    hand_over = conn.receive_data

    def spy(data: bytes | None) -> None:
        to_wsproto.append(data)
        hand_over(data)

    conn.receive_data = spy  # type: ignore[method-assign]
    assert client.receive_data(frame(OP_TEXT, b"fast")) == [TextReceived("fast")]
    assert to_wsproto == []  # the fast path took it: nothing was left owed


@pytest.mark.parametrize("event", [Opened(), TextReceived("t"), BytesReceived(b"b"), Closed(1000)])
def test_events_are_frozen_slotted_values(event: WsEvent) -> None:
    assert not hasattr(event, "__dict__")  # slotted: small, and no stray attributes
    for name in dataclasses.fields(event):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(event, name.name, None)
