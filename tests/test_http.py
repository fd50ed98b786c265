"""HttpConnection against h11's server side, and against responses written by hand.

h11 is on both ends of the first half, so those tests check that we drive it
right (framing, keep-alive, cycles). The hand-written bytes of the second half
check the parsing against what a server really sends, including the framings
h11's server never picks (close-delimited, HTTP/1.0), cut at every offset.
"""

from __future__ import annotations

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import fuzz_http as fz
from qqproto.actions import HttpRequest
from qqproto.errors import LocalProtocolError, RemoteProtocolError
from qqproto.http import (
    DEFAULT_MAX_RESPONSE_SIZE,
    MAX_HEADER_SIZE,
    HttpConnection,
    HttpResponse,
    ResponseTooLarge,
)
from qqproto.url import Origin

API = "https://api.sgroup.qq.com"
SECRET = "s3cr3t-T0KEN"


def request(
    method: str = "GET",
    url: str = f"{API}/gateway",
    headers: tuple[tuple[str, str], ...] = (("Authorization", f"QQBot {SECRET}"),),
    body: bytes = b"",
) -> HttpRequest:
    return HttpRequest(1, method, url, headers, body)


class Server:
    """h11's server end: parses what we send, writes what we answer."""

    def __init__(self) -> None:
        self.conn = h11.Connection(h11.SERVER)

    def receive(self, data: bytes) -> tuple[h11.Request, bytes]:
        self.conn.receive_data(data)
        event = self.conn.next_event()
        assert isinstance(event, h11.Request)
        body = b""
        while not isinstance(next_event := self.conn.next_event(), h11.EndOfMessage):
            assert isinstance(next_event, h11.Data)
            body += next_event.data
        return event, body

    def respond(
        self, status: int, headers: list[tuple[str, str]], body: bytes = b"", *, parts: int = 1
    ) -> bytes:
        out = self.conn.send(h11.Response(status_code=status, headers=headers)) or b""
        step = max(1, len(body) // parts)
        for k in range(0, len(body), step):
            out += self.conn.send(h11.Data(data=body[k : k + step])) or b""
        out += self.conn.send(h11.EndOfMessage()) or b""
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return out


def exchange(conn: HttpConnection, server: Server, req: HttpRequest) -> tuple[h11.Request, bytes]:
    return server.receive(conn.send(req))


# -- requests ------------------------------------------------------------------------------


def test_a_get_has_host_and_no_content_length() -> None:
    conn, server = HttpConnection(), Server()
    event, body = exchange(conn, server, request())
    assert event.method == b"GET" and event.target == b"/gateway" and body == b""
    assert dict(event.headers) == {
        b"host": b"api.sgroup.qq.com",
        b"authorization": b"QQBot " + SECRET.encode(),
    }
    assert conn.awaiting_response and not conn.reusable


def test_a_post_carries_its_body_and_length() -> None:
    data = '{"content":"你好"}'.encode()
    req = request("POST", f"{API}/v2/groups/G/messages?x=1#frag", body=data)
    event, body = exchange(HttpConnection(), Server(), req)
    assert event.target == b"/v2/groups/G/messages?x=1"  # the fragment stays home
    assert (b"content-length", str(len(data)).encode()) in event.headers
    assert body == data


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_an_empty_body_method_still_says_length_zero(method: str) -> None:
    event, _ = exchange(HttpConnection(), Server(), request(method, body=b""))
    assert (b"content-length", b"0") in event.headers


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://api.sgroup.qq.com/", b"api.sgroup.qq.com"),
        ("https://api.sgroup.qq.com:443/", b"api.sgroup.qq.com"),
        ("http://127.0.0.1:8080/", b"127.0.0.1:8080"),
        ("http://[::1]:81/", b"[::1]:81"),
        ("https://例子.测试/", b"xn--fsqu00a.xn--0zwm56d"),
    ],
)
def test_host_comes_from_the_url(url: str, host: bytes) -> None:
    event, _ = exchange(HttpConnection(), Server(), request(url=url, headers=()))
    assert event.target == b"/"
    assert dict(event.headers)[b"host"] == host


def test_the_origin_says_where_to_connect() -> None:
    assert Origin.of("https://api.sgroup.qq.com/x") == Origin("https", "api.sgroup.qq.com", 443)
    assert Origin.of("http://h:81").tls is False
    assert str(Origin.of("https://h:8443/p")) == "https://h:8443"


def test_a_host_header_given_by_the_caller_wins() -> None:
    event, _ = exchange(HttpConnection(), Server(), request(headers=(("Host", "other"),)))
    assert [v for k, v in event.headers if k == b"host"] == [b"other"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://h/",
        "https:///path",
        "https://h:99999/",
        "https://user:pw@h/",
        "/relative",
        "https://h/空",
    ],
)
def test_bad_urls_are_ours(url: str) -> None:
    conn = HttpConnection()
    with pytest.raises(LocalProtocolError):
        conn.send(request(url=url))
    assert conn.reusable  # nothing was sent


@pytest.mark.parametrize(
    "headers",
    [
        (("Authorization", f"QQBot {SECRET}\r\nX-Evil: 1"),),
        (("Authorization", f" {SECRET}"),),
        (("Authorization", f"QQBot {SECRET}\x00"),),
        (("Authorization", f"QQBot {SECRET}\ud800"),),
        (("Authorization", f"QQBot {SECRET}\x7f"),),
        (("Bad Name", "x"),),
        (("Content-Length", "3"),),
        (("transfer-encoding", "chunked"),),
    ],
)
def test_bad_headers_are_refused_without_showing_the_value(
    headers: tuple[tuple[str, str], ...],
) -> None:
    conn = HttpConnection()
    with pytest.raises(LocalProtocolError) as info:
        conn.send(request(headers=headers))
    assert SECRET not in str(info.value)
    assert conn.reusable


@given(value=st.text(max_size=30), body=st.binary(max_size=50))
def test_any_header_value_is_refused_or_arrives_intact(value: str, body: bytes) -> None:
    conn = HttpConnection()
    try:
        wire = conn.send(request("POST", headers=(("X-Any", value),), body=body))
    except LocalProtocolError:
        assert conn.reusable and not conn.awaiting_response
        return
    event, received = Server().receive(wire)
    assert dict(event.headers)[b"x-any"] == value.encode()
    assert received == body


def test_a_bad_method_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        HttpConnection().send(request("GE T"))


# -- against h11's server: framing and keep-alive ------------------------------------------


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_responses_over_keep_alive(framing: str) -> None:
    conn, server = HttpConnection(), Server()
    for k in range(3):
        exchange(conn, server, request("POST", body=b"{}"))
        body = b'{"id":"%d"}' % k * (k + 1)
        headers = [("X-Tps-trace-ID", f"t{k}")]
        if framing == "length":
            headers.append(("Content-Length", str(len(body))))
        responses = conn.receive_data(server.respond(200, headers, body, parts=3))
        assert responses == [
            HttpResponse(200, (("x-tps-trace-id", f"t{k}"), *_framing(framing, body)), body)
        ]
        assert conn.reusable and not conn.awaiting_response


def _framing(framing: str, body: bytes) -> tuple[tuple[str, str], ...]:
    if framing == "length":
        return (("content-length", str(len(body))),)
    return (("transfer-encoding", "chunked"),)


def test_connection_close_from_the_server_ends_reuse() -> None:
    conn, server = HttpConnection(), Server()
    exchange(conn, server, request())
    [response] = conn.receive_data(
        server.respond(200, [("Connection", "close"), ("Content-Length", "2")], b"{}")
    )
    assert response.body == b"{}"
    assert not conn.reusable and conn.error is None
    with pytest.raises(LocalProtocolError, match="cannot carry another request"):
        conn.send(request())


def test_connection_close_from_us_ends_reuse() -> None:
    conn, server = HttpConnection(), Server()
    exchange(conn, server, request(headers=(("Connection", "close"),)))
    assert conn.receive_data(server.respond(204, []))[0].status == 204
    assert not conn.reusable


def test_a_second_request_before_the_response_is_pipelining() -> None:
    conn = HttpConnection()
    conn.send(request())
    with pytest.raises(LocalProtocolError, match="no pipelining"):
        conn.send(request("POST", body=b"{}"))
    assert conn.awaiting_response


def test_one_connection_serves_one_origin() -> None:
    conn, server = HttpConnection(), Server()
    exchange(conn, server, request())
    conn.receive_data(server.respond(204, []))
    with pytest.raises(LocalProtocolError, match="another origin"):
        conn.send(request(url="https://sandbox.api.sgroup.qq.com/gateway"))
    assert conn.reusable


def test_a_head_response_has_no_body() -> None:
    conn, server = HttpConnection(max_response_size=10), Server()
    exchange(conn, server, request("HEAD"))
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    assert conn.receive_data(raw) == [HttpResponse(200, (("content-length", "1000"),))]
    assert conn.reusable
    conn.send(request())  # the limit counts bodies, not what a 304 says one would be
    raw = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n"
    assert conn.receive_data(raw) == [HttpResponse(304, (("content-length", "1000"),))]


# -- hand-written responses ----------------------------------------------------------------

#: (name, bytes, the response, reusable after it). EOF follows only where needed.
SAMPLES = [
    (
        "content-length",
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{"a": 1}\n',
        HttpResponse(
            200, (("content-type", "application/json"), ("content-length", "9")), b'{"a": 1}\n'
        ),
        True,
    ),
    (
        "chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Tps-Trace-Id: ab\r\n\r\n"
        b'4;ext=1\r\n{"id\r\n6\r\n": "x"\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n',
        HttpResponse(
            200,
            (("transfer-encoding", "chunked"), ("x-tps-trace-id", "ab"), ("x-trailer", "t")),
            b'{"id": "x"}',
        ),
        True,
    ),
    (
        "close-delimited",
        b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n<html>oops</html>",
        HttpResponse(500, (("connection", "close"),), b"<html>oops</html>"),
        False,
    ),
    (
        "http/1.0",
        b"HTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nnot",
        HttpResponse(404, (("content-length", "3"),), b"not"),
        False,
    ),
    (
        "204",
        b"HTTP/1.1 204 No Content\r\nX-Tps-trace-ID: T\r\n\r\n",
        HttpResponse(204, (("x-tps-trace-id", "T"),)),
        True,
    ),
    (
        "304",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n",
        HttpResponse(304, (("content-length", "50"),)),
        True,
    ),
    (
        "100-continue first",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}",
        HttpResponse(202, (("content-length", "2"),), b"{}"),
        True,
    ),
    (
        "header values",
        b"HTTP/1.1 401 Unauthorized\r\nX-Msg: \xe4\xb8\xad\r\nX-Old: caf\xe9\r\n"
        b"Content-Length: 0\r\n\r\n",
        HttpResponse(401, (("x-msg", "中"), ("x-old", "café"), ("content-length", "0"))),
        True,
    ),
]


def _run(
    req: HttpRequest, pieces: list[bytes], *, eof: bool = False
) -> tuple[HttpConnection, list[HttpResponse]]:
    """Feed the non-empty pieces (b"" would be EOF), then EOF if asked."""
    conn = HttpConnection()
    conn.send(req)
    out: list[HttpResponse] = []
    for piece in [p for p in pieces if p] + [b""] * eof:
        out += conn.receive_data(piece)
    return conn, out


@pytest.mark.parametrize(
    ("name", "raw", "expected", "reusable"), SAMPLES, ids=[s[0] for s in SAMPLES]
)
def test_hand_written_responses_cut_at_every_offset(
    name: str, raw: bytes, expected: HttpResponse, reusable: bool
) -> None:
    eof = not reusable  # a close-delimited body needs its EOF
    for cut in range(len(raw) + 1):
        conn, out = _run(request(), [raw[:cut], raw[cut:]], eof=eof)
        assert out == [expected], cut
        assert conn.reusable is reusable
    conn, out = _run(request(), [raw[k : k + 1] for k in range(len(raw))], eof=eof)
    assert out == [expected]


def test_keep_alive_reuse_with_hand_written_responses() -> None:
    conn = HttpConnection()
    for name, raw, expected, reusable in SAMPLES:
        if not reusable:
            continue
        conn.send(request("POST", body=b"{}"))
        assert conn.receive_data(raw) == [expected], name
    assert conn.reusable


def test_eof_on_an_idle_connection_is_quiet() -> None:
    conn, out = _run(request(), [SAMPLES[0][1]])
    assert len(out) == 1
    assert conn.receive_data(b"") == []
    assert not conn.reusable and conn.error is None
    assert conn.receive_data(b"") == []
    with pytest.raises(LocalProtocolError, match="after EOF"):
        conn.receive_data(b"x")
    with pytest.raises(LocalProtocolError, match="closed the connection"):
        conn.send(request())


# -- malformed and oversized responses -----------------------------------------------------

BAD = [
    ("status line", [b"HTTP/1.1 2x0 OK\r\n\r\n"], "illegal status line", "status line and headers"),
    ("not http", [b"<html>hello</html>\r\n\r\n"], "illegal status line", "status line and headers"),
    ("http/2", [b"HTTP/2 200\r\n\r\n"], "illegal status line", "status line and headers"),
    ("header line", [b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"], "illegal header line", "headers"),
    (
        "two lengths",
        [b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"],
        "conflicting",
        "headers",
    ),
    ("gzip framing", [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"], "chunked", "headers"),
    (
        "chunk size",
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"],
        "chunk header",
        "chunked body",
    ),
    (
        "eof in head",
        [b"HTTP/1.1 200 OK\r\nContent-Le", b""],
        "closed the connection",
        "end of stream after 27 bytes",
    ),
    ("eof at once", [b""], "closed the connection", "end of stream after 0 bytes"),
    (
        "eof in body",
        [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", b""],
        "closed the connection",
        "5 body bytes (Content-Length), got 'end of stream after 2 body bytes'",
    ),
    (
        "eof in chunks",
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", b""],
        "closed the connection",
        "zero-size chunk",
    ),
    ("unasked upgrade", [b"HTTP/1.1 101 Switching Protocols\r\n\r\n"], "malformed", "status line"),
]


@pytest.mark.parametrize(("name", "pieces", "problem", "detail"), BAD, ids=[b[0] for b in BAD])
def test_malformed_responses_say_what_was_expected(
    name: str, pieces: list[bytes], problem: str, detail: str
) -> None:
    conn = HttpConnection()
    conn.send(request())
    for piece in pieces[:-1]:
        assert conn.receive_data(piece) == []
    with pytest.raises(RemoteProtocolError) as info:
        conn.receive_data(pieces[-1])
    message = str(info.value)
    assert problem in message and detail in message and "expected" in message
    assert conn.error is info.value
    assert not conn.reusable and not conn.awaiting_response
    with pytest.raises(RemoteProtocolError) as again:  # a failed connection stays failed
        conn.receive_data(b"more")
    assert again.value is info.value
    with pytest.raises(LocalProtocolError, match="earlier error"):
        conn.send(request())


def test_bytes_with_no_request_outstanding_are_an_error() -> None:
    conn = HttpConnection()
    with pytest.raises(RemoteProtocolError, match="no request outstanding"):
        conn.receive_data(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
    assert not conn.reusable


def test_bytes_after_a_response_keep_the_response_and_fail_next() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n"
    conn, [response] = _run(request(), [raw])
    assert response.body == b"{}"
    assert not conn.reusable
    assert isinstance(conn.error, RemoteProtocolError)
    assert "after its response" in str(conn.error) and "HTTP/1.1 200 OK" in str(conn.error)
    with pytest.raises(RemoteProtocolError, match="after its response"):
        conn.receive_data(b"")


def test_a_declared_length_over_the_limit_fails_before_the_body() -> None:
    conn = HttpConnection(max_response_size=10)
    conn.send(request())
    with pytest.raises(ResponseTooLarge) as info:
        conn.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
    assert (info.value.size, info.value.limit, info.value.what) == (11, 10, "body")
    assert "at most 10 bytes" in str(info.value)


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_an_undeclared_body_over_the_limit_fails_as_it_grows(framing: str) -> None:
    conn = HttpConnection(max_response_size=10)
    conn.send(request())
    head = b"Transfer-Encoding: chunked\r\n" if framing == "chunked" else b"Connection: close\r\n"
    conn.receive_data(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n")
    piece = b"5\r\nabcde\r\n" if framing == "chunked" else b"abcde"
    conn.receive_data(piece)
    conn.receive_data(piece)  # 10 bytes: at the limit is fine
    with pytest.raises(ResponseTooLarge, match="over the size limit"):
        conn.receive_data(piece)


def test_the_body_limit_is_8_mib_by_default() -> None:
    assert HttpConnection().max_response_size == DEFAULT_MAX_RESPONSE_SIZE == 8 * 1024 * 1024
    conn = HttpConnection()
    conn.send(request())
    body = b"x" * DEFAULT_MAX_RESPONSE_SIZE
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    assert conn.receive_data(head + body)[0].body == body


def test_a_huge_head_fails_with_its_own_limit() -> None:
    conn = HttpConnection()
    conn.send(request())
    conn.receive_data(b"HTTP/1.1 200 OK\r\n")
    pad = b"X-Pad: " + b"p" * 991 + b"\r\n"
    for _ in range(MAX_HEADER_SIZE // len(pad)):
        assert conn.receive_data(pad) == []
    with pytest.raises(ResponseTooLarge) as info:
        conn.receive_data(pad)
    assert info.value.what == "head"


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        HttpConnection(max_response_size=-1)


# -- HttpResponse --------------------------------------------------------------------------


def test_header_lookup_ignores_case_on_both_sides() -> None:
    response = HttpResponse(200, (("X-Tps-trace-ID", "a"), ("x-tps-trace-id", "b")))
    assert response.header("x-tps-trace-id") == "a"
    assert response.header("X-TPS-TRACE-ID") == "a"
    assert response.header("missing") is None


def test_a_body_that_is_not_json_is_the_servers_error() -> None:
    with pytest.raises(RemoteProtocolError, match="not JSON"):
        HttpResponse(502, (), b"<html>Bad Gateway</html>").json()
    assert HttpResponse(200, (), b'{"a":[1]}').json() == {"a": [1]}


def test_a_body_with_a_number_no_int_can_read_is_still_json() -> None:
    body = b'{"code": ' + b"9" * 5000 + b', "big": 1' + b"0" * 400 + b', "message": "m"}'
    # The 5000 digits come as a string (Python reads at most 4300), the rest as they were.
    assert HttpResponse(400, (), body).json() == {
        "code": "9" * 5000,
        "big": 10**400,
        "message": "m",
    }


def test_reprs_keep_secrets_out() -> None:
    conn = HttpConnection()
    conn.send(request())
    assert SECRET not in repr(conn) and "awaiting response to GET /gateway" in repr(conn)
    assert SECRET not in repr(request())


# -- the fuzz target, briefly --------------------------------------------------------------

QUICK = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


@QUICK
@given(fz.cases())
def test_fuzz_structured(case: fz.Case) -> None:
    fz.run_case(case)


@QUICK
@given(st.binary(max_size=300))
def test_fuzz_raw_bytes(raw: bytes) -> None:
    fz.run_case(fz.decode_input(raw))


def test_fuzz_seeds_run_and_round_trip() -> None:
    seeds = fz.seed_inputs()
    outcomes = [fz.run_case(fz.decode_input(seed)) for seed in seeds]
    assert any(o.response is not None and o.error is None for o in outcomes)
    assert any(o.error is ResponseTooLarge for o in outcomes)
    case = fz.Case("HEAD", b"xyz", (5, 9), eof=False, limit=64)
    assert fz.decode_input(fz.encode_input(case)) == case
