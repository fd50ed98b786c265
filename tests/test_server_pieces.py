"""The server pieces: HTTP/1.1 requests in as values, and a WebSocket after an upgrade.

The peers are other implementations: h11's client role for HTTP, and the
``websockets`` library's client for WebSocket.
"""

from __future__ import annotations

import contextlib

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

from qqproto.errors import LocalProtocolError, RemoteProtocolError
from qqproto.http_server import Dropped, HttpServerConnection, Incoming, Refused, Request, Upgrade
from qqproto.ws import Closed, TextReceived
from qqproto.ws_server import WebSocketServer

ROUTES = {"/webhook": ("POST",), "/onebot": ("GET",)}


def post(path: str = "/webhook", body: bytes = b'{"op":0}', **headers: str) -> bytes:
    fields = [("Host", "bot.example"), ("Content-Length", str(len(body))), *headers.items()]
    return (
        f"POST {path} HTTP/1.1\r\n".encode()
        + b"".join(f"{k}: {v}\r\n".encode() for k, v in fields)
        + b"\r\n"
        + body
    )


def answers(data: bytes) -> list[h11.Response]:
    """The responses in ``data``, read by h11's client role."""
    if not data:
        return []
    client = h11.Connection(h11.CLIENT)
    client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    out = []
    while True:
        event = client.next_event()
        if isinstance(event, h11.Response):
            out.append(event)
        if event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.ConnectionClosed):
            return out
        done = client.our_state is h11.DONE and client.their_state is h11.DONE
        if isinstance(event, h11.EndOfMessage) and done:
            client.start_next_cycle()
            client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
            client.send(h11.EndOfMessage())


def test_a_request_comes_whole_and_keep_alive_carries_the_next() -> None:
    server = HttpServerConnection(ROUTES)
    [first] = server.receive_data(post(body=b'{"a":1}', X_Signature="sha1=00"))
    assert isinstance(first, Request)
    assert (first.method, first.path, first.body) == ("POST", "/webhook", b'{"a":1}')
    assert first.header("X_Signature") == "sha1=00"
    server.respond(204)
    # The second request in pieces, on the same connection.
    second = post(path="/webhook?x=1&x=2", body=b"{}")
    assert server.receive_data(second[:10]) == []
    [again] = server.receive_data(second[10:])
    assert isinstance(again, Request) and again.query == {"x": ["1", "2"]}
    server.respond(200, [("Content-Type", "application/json")], b'{"ok":true}')
    assert [r.status_code for r in answers(server.data_to_send())] == [204, 200]
    assert not server.closed


@pytest.mark.parametrize(
    ("data", "status", "closes"),
    [
        (post(path="/nowhere"), 404, False),
        (b"GET /webhook HTTP/1.1\r\nHost: x\r\n\r\n", 405, False),
        (post(body=b"x" * 2000), 413, True),
        (b"GET /webhook HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n", 431, True),
        (b"this is not HTTP\r\n\r\n", 400, True),
    ],
)
def test_what_cannot_be_served_gets_its_status(data: bytes, status: int, closes: bool) -> None:
    server = HttpServerConnection(ROUTES, max_header_size=4096, max_body_size=1000)
    [refused] = server.receive_data(data)
    assert isinstance(refused, Refused) and (refused.status, refused.close) == (status, closes)
    [answer] = answers(server.data_to_send())
    assert answer.status_code == status
    assert server.closed is closes
    if status == 405:
        assert (b"allow", b"POST") in answer.headers


def test_a_refused_request_with_a_body_does_not_derail_the_next() -> None:
    server = HttpServerConnection(ROUTES)
    came = server.receive_data(post(path="/nowhere", body=b"skip me") + post(body=b"{}"))
    assert [type(c) for c in came] == [Refused, Request]
    server.respond(204)
    assert [r.status_code for r in answers(server.data_to_send())] == [404, 204]


def test_a_chunked_body_over_the_limit_is_413() -> None:
    server = HttpServerConnection(ROUTES, max_body_size=10)
    head = b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    [refused] = server.receive_data(head + b"8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n")
    assert isinstance(refused, Refused) and refused.status == 413 and server.closed


def upgrade_request() -> tuple[ClientProtocol, bytes]:
    client = ClientProtocol(parse_uri("ws://bot.example/onebot?access_token=t"))
    request = client.connect()
    request.headers["Authorization"] = "Bearer t"
    client.send_request(request)
    return client, client.data_to_send()[0]


def test_an_upgrade_can_be_refused_before_it_happens() -> None:
    server = HttpServerConnection(ROUTES)
    _, data = upgrade_request()
    [upgrade] = server.receive_data(data)
    assert isinstance(upgrade, Upgrade) and upgrade.request.query == {"access_token": ["t"]}
    assert upgrade.request.header("authorization") == "Bearer t"
    server.respond(403, body=b"wrong token")
    [answer] = answers(server.data_to_send())
    assert answer.status_code == 403 and server.closed
    assert server.receive_data(b"more") == []  # HTTP is over on this connection


def test_an_accepted_upgrade_talks_websocket_with_another_library() -> None:
    server = HttpServerConnection(ROUTES)
    client, data = upgrade_request()
    [upgrade] = server.receive_data(data)
    assert isinstance(upgrade, Upgrade)
    ws = WebSocketServer(upgrade.raw)
    assert ws.request is not None and ws.request.target == "/onebot?access_token=t"
    ws.accept()
    client.receive_data(ws.data_to_send())
    assert client.handshake_exc is None and client.state.name == "OPEN"
    # Text one way, fragmented; a ping; text the other way.
    client.send_text(b"hel", fin=False)
    client.send_continuation(b"lo", fin=True)
    client.send_ping(b"p")
    events = ws.receive_data(b"".join(client.data_to_send()))
    assert events == [TextReceived("hello")]
    ws.send_text("world")
    ws.send_bytes(b"\x00")
    client.receive_data(ws.data_to_send())
    frames = [e for e in client.events_received() if isinstance(e, Frame)]
    assert [(f.opcode, bytes(f.data)) for f in frames] == [
        (Opcode.PONG, b"p"),
        (Opcode.TEXT, b"world"),
        (Opcode.BINARY, b"\x00"),
    ]
    # The client closes; the server answers and reports it.
    client.send_close(1000, "bye")
    assert ws.receive_data(b"".join(client.data_to_send())) == [Closed(1000, "bye")]
    client.receive_data(ws.data_to_send())
    assert not ws.is_open


def test_a_message_over_the_limit_closes_with_1009() -> None:
    client, data = upgrade_request()
    ws = WebSocketServer(HttpServerConnection(ROUTES).receive_data(data)[0].raw, max_message_size=4)  # type: ignore[union-attr]
    ws.accept()
    client.receive_data(ws.data_to_send())
    client.send_binary(b"12345")
    [closed] = ws.receive_data(b"".join(client.data_to_send()))
    assert isinstance(closed, Closed) and closed.code == 1009 and closed.error is not None
    client.receive_data(ws.data_to_send())
    [frame] = [e for e in client.events_received() if isinstance(e, Frame)]
    assert frame.opcode is Opcode.CLOSE and frame.data[:2] == (1009).to_bytes(2, "big")


def test_eof_without_a_close_frame_is_1006() -> None:
    _, data = upgrade_request()
    ws = WebSocketServer(HttpServerConnection(ROUTES).receive_data(data)[0].raw)  # type: ignore[union-attr]
    ws.accept()
    assert ws.receive_data(b"") == [Closed(1006, "transport closed without a close frame")]


# -- any bytes at all: the fuzz target of the server side --------------------------------------

VALID = [post(), post(path="/nowhere"), upgrade_request()[1], b"GET /webhook HTTP/1.1\r\n\r\n"]


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    pieces = draw(st.lists(st.one_of(st.sampled_from(VALID), st.binary(max_size=64)), max_size=4))
    data = b"".join(pieces)
    if data and draw(st.booleans()):  # a valid stream with one byte changed
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    cuts = draw(st.lists(st.integers(1, 40), max_size=8))
    return data, cuts


@given(streams(), st.booleans())
def test_any_bytes_give_requests_or_answered_refusals_never_a_crash(
    stream: tuple[bytes, list[int]], eof: bool
) -> None:
    data, cuts = stream
    server = HttpServerConnection(ROUTES, max_header_size=512, max_body_size=256)
    came: list[object] = []
    answered: list[int] = []  # every status sent, in order

    def take(events: list[Incoming]) -> None:
        for event in events:
            came.append(event)
            if isinstance(event, Dropped):
                assert server.closed and event is events[-1]
            elif isinstance(event, Refused):
                answered.append(event.status)
            elif isinstance(event, Request):
                answered.append(204)
                take(server.respond(204))
            else:  # an Upgrade: its bytes make a WebSocket server, or a typed error
                with contextlib.suppress(RemoteProtocolError):
                    WebSocketServer(event.raw).accept()

    at = 0
    for cut in [*cuts, len(data)]:
        chunk, at = data[at : at + cut], at + cut
        take(server.receive_data(chunk))
    if eof:
        take(server.receive_data(b""))
    for event in came:
        if isinstance(event, Refused):
            assert event.status in (400, 404, 405, 413, 426, 431)
    assert sum(isinstance(e, Upgrade) for e in came) <= 1
    if any(isinstance(e, Refused) and e.close for e in came):
        assert server.closed
    # Every request and refusal was answered, in order, with its own status.
    statuses = [r.status_code for r in answers(server.data_to_send())]
    assert statuses == answered[: len(statuses)] and len(statuses) >= len(answered) - 1


@pytest.mark.parametrize("request_", ["POST /nowhere", "PUT /webhook"])  # 404, 405
def test_a_client_that_hangs_up_in_a_refused_requests_body_is_dropped_unanswered(
    request_: str,
) -> None:
    """Its request was answered already: there is no second answer to give, and
    nothing the client does then makes the piece raise."""
    server = HttpServerConnection(ROUTES)
    head = f"{request_} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n".encode()
    [refused] = server.receive_data(head)
    assert isinstance(refused, Refused) and not refused.close
    assert server.receive_data(b"abc") == []  # skipped
    [dropped] = server.receive_data(b"")
    assert isinstance(dropped, Dropped) and "expected 10" in dropped.why and server.closed
    assert [r.status_code for r in answers(server.data_to_send())] == [refused.status]


def test_a_malformed_chunk_in_a_skipped_body_is_dropped_unanswered() -> None:
    server = HttpServerConnection(ROUTES)
    head = b"POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert [type(e) for e in server.receive_data(head)] == [Refused]
    [dropped] = server.receive_data(b"zz\r\nbad\r\n")
    assert isinstance(dropped, Dropped) and "chunk" in dropped.why and server.closed
    assert server.receive_data(b"more") == []
    assert [r.status_code for r in answers(server.data_to_send())] == [404]


def test_pipelined_requests_each_come_once_the_one_before_is_answered() -> None:
    server = HttpServerConnection(ROUTES)
    [first] = server.receive_data(post(body=b"1") + post(body=b"2") + post(body=b"3"))
    assert isinstance(first, Request) and first.body == b"1"
    [second] = server.respond(200)
    assert isinstance(second, Request) and second.body == b"2"
    [third] = server.respond(201)
    assert isinstance(third, Request) and third.body == b"3"
    assert server.respond(202) == []
    assert [r.status_code for r in answers(server.data_to_send())] == [200, 201, 202]


def test_an_upgrade_after_a_served_request_keeps_its_own_bytes() -> None:
    _, upgrade = upgrade_request()
    masked = bytes(b ^ k for b, k in zip(b"early", b"\1\2\3\4\1", strict=True))
    early = bytes([0x81, 0x85, 1, 2, 3, 4]) + masked
    server = HttpServerConnection(ROUTES)
    [first] = server.receive_data(post() + upgrade + early)  # a frame sent at once
    assert isinstance(first, Request)
    [came] = server.respond(204)
    assert isinstance(came, Upgrade) and came.raw.startswith(b"GET /onebot")
    ws = WebSocketServer(came.raw)
    ws.accept()
    assert ws.receive_data(b"")[:1] == [TextReceived("early")]


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (
            b"POST /webhook HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: a2V5a2V5a2V5a2V5a2V5aw==\r\n"
            b"Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
            400,
        ),
        (
            b"GET /onebot HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
        ),
        (
            b"GET /onebot HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Sec-WebSocket-Key: a2V5a2V5a2V5a2V5a2V5aw==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            400,
        ),
        (
            b"GET /onebot HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: a2V5a2V5a2V5a2V5a2V5aw==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            426,
        ),
    ],
    ids=["a POST", "no key", "no Connection: Upgrade", "version 8"],
)
def test_a_broken_handshake_is_refused_before_any_websocket(head: bytes, status: int) -> None:
    server = HttpServerConnection(ROUTES)
    [refused] = server.receive_data(head)
    assert isinstance(refused, Refused) and refused.status == status and server.closed
    [answer] = answers(server.data_to_send())
    assert answer.status_code == status
    if status == 426:
        assert (b"sec-websocket-version", b"13") in answer.headers


def test_an_answer_goes_only_to_a_request_that_waits_for_one() -> None:
    server = HttpServerConnection(ROUTES)
    with pytest.raises(LocalProtocolError, match="no request is waiting"):
        server.respond(200)
    server.receive_data(post())
    server.respond(200)
    with pytest.raises(LocalProtocolError, match="no request is waiting"):
        server.respond(500)
    [refused] = server.receive_data(post(path="/nowhere"))
    assert isinstance(refused, Refused)
    with pytest.raises(LocalProtocolError):  # a refusal is answered already
        server.respond(200)


def test_the_body_of_a_refused_request_is_not_read_without_bound() -> None:
    server = HttpServerConnection(ROUTES, max_body_size=100)
    [refused] = server.receive_data(post(path="/nowhere", body=b"x" * 1000))
    assert isinstance(refused, Refused) and refused.close and server.closed


def test_an_upgrade_with_bytes_no_header_may_hold_is_refused_not_crashed_on() -> None:
    """Found by the fuzz target: a non-ASCII header value made wsproto raise
    UnicodeDecodeError. The HTTP piece refuses it; the WebSocket piece, given
    such bytes anyway, raises a typed error."""
    _, data = upgrade_request()
    bad = data.replace(b"Host: bot.example", b"Host:\x80bot.example")
    server = HttpServerConnection(ROUTES)
    [refused] = server.receive_data(bad)
    assert isinstance(refused, Refused) and refused.status == 400
    with pytest.raises(RemoteProtocolError, match="bad WebSocket upgrade"):
        WebSocketServer(bad)


def test_a_client_that_expects_100_continue_gets_it_before_sending_its_body() -> None:
    server = HttpServerConnection(ROUTES)
    head = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    assert server.receive_data(head) == []
    assert server.data_to_send() == b"HTTP/1.1 100 \r\n\r\n"
    [request] = server.receive_data(b"{}")
    assert isinstance(request, Request) and request.body == b"{}"


def test_bytes_sent_ahead_of_an_answer_are_bounded() -> None:
    server = HttpServerConnection(ROUTES, max_header_size=1024, max_body_size=1024)
    [request] = server.receive_data(post(body=b"{}"))
    assert isinstance(request, Request)
    assert server.receive_data(post(body=b"{}")) == []  # one pipelined request: fine
    [dropped] = server.receive_data(b"x" * 4096)
    assert isinstance(dropped, Dropped) and "ahead of an answer" in dropped.why
    assert server.closed
