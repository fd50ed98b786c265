"""HTTP requests and responses as values, and h11 to turn them into bytes.

A protocol object asks for an HTTP call with the ``HttpRequest`` action and
gets the answer back as an :class:`HttpResponse` through
``http_response(request_id, response, now)``. An embedder with its own HTTP
stack executes the request value directly; a driver without one uses
:class:`HttpConnection` here to speak HTTP/1.1 over a plain socket (plus TLS
for ``https://``, which :attr:`~qqproto.url.Origin.tls` tells it).

:class:`HttpConnection` is deliberately small: one request at a time (no
pipelining: a server that answers out of order or drops a pipelined request
gives failures nobody can debug), keep-alive when both sides allow it, a cap
on what a response may make us buffer, and errors that say what was expected
and what came instead. h11 does the parsing; this class decides what to do
with what h11 reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import h11

from ._json import loads
from .actions import HttpRequest
from .errors import LocalProtocolError, RemoteProtocolError
from .url import Origin, Url

__all__ = [
    "DEFAULT_MAX_RESPONSE_SIZE",
    "MAX_HEADER_SIZE",
    "HttpConnection",
    "HttpResponse",
    "ResponseTooLarge",
]

#: The largest response body :class:`HttpConnection` buffers by default.
DEFAULT_MAX_RESPONSE_SIZE = 8 * 1024 * 1024
#: The largest status line plus headers (or chunk header, or trailer) accepted.
MAX_HEADER_SIZE = 64 * 1024

_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
# RFC 9110 field-value: visible bytes (and obs-text), inner spaces and tabs only.
_FIELD_VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?")
# Framing is ours to write: a caller's value could only contradict the body.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_SHOWN = 200  # bytes of a bad response kept for the error message


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """One HTTP response: status, headers (names lower-case) and body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None.

        Names are matched without regard to case on both sides, so a response
        an embedder built with ``X-Tps-trace-ID`` is found as well.
        """
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def json(self) -> Any:
        """The body parsed as JSON; a body that is not JSON is the server's error."""
        try:
            return loads(self.body)
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError(
                f"HTTP {self.status} body is not JSON",
                expected="a JSON body",
                received=self.body[:200],
            ) from exc

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, body=<{len(self.body)} bytes>)"


class ResponseTooLarge(RemoteProtocolError):
    """The server sent more than the connection agreed to buffer."""

    def __init__(self, what: str, size: int, limit: int):
        self.what = what
        self.size = size
        self.limit = limit
        super().__init__(
            f"HTTP response {what} over the size limit",
            expected=f"at most {limit} bytes",
            received=f"{size} bytes or more",
        )


def _header_fields(request: HttpRequest, origin: Origin) -> list[tuple[bytes, bytes]]:
    """The request's headers checked, plus Host and Content-Length.

    The values are checked here rather than by h11 because h11's error quotes
    the bad value, and an ``Authorization`` value is a secret.
    """
    fields: list[tuple[bytes, bytes]] = []
    for name, value in request.headers:
        if not _TOKEN.fullmatch(name):
            raise LocalProtocolError(
                "bad request header name", expected="an HTTP token", received=name
            )
        if name.lower() in _FRAMING_HEADERS:
            raise LocalProtocolError(
                "request sets its own framing header",
                expected="no Content-Length or Transfer-Encoding (the connection writes it)",
                received=name,
            )
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError:
            raw = b"\n"  # a lone surrogate: refused just below
        if not _FIELD_VALUE.fullmatch(raw):
            raise LocalProtocolError(
                f"request header {name!r} has a value HTTP does not allow",
                expected="visible characters and inner spaces, no CR, LF or NUL",
                received=f"<{len(value)} characters, not shown>",
            )
        fields.append((name.encode("ascii"), raw))
    if not any(name.lower() == b"host" for name, _ in fields):
        fields.insert(0, (b"Host", origin.host_header.encode()))
    if request.body or request.method.upper() in _BODY_METHODS:
        fields.append((b"Content-Length", str(len(request.body)).encode()))
    return fields


def _text(value: bytes) -> str:
    """A header value as text: UTF-8 when it is, else Latin-1 (nothing is lost)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


class HttpConnection:
    """One HTTP/1.1 client connection: requests in as values, bytes out and in.

    Call :meth:`send` with an ``HttpRequest`` and write the bytes; feed what
    the server sends to :meth:`receive_data` (``b""`` at EOF) until it returns
    the response. Then, if :attr:`reusable`, the next request may go on the
    same transport; else close it.

    A malformed or oversized response raises :class:`RemoteProtocolError`
    (:class:`ResponseTooLarge` for size); the connection is then dead and
    raises the same error again if fed more. When a response completes and
    bad bytes follow it in the same read, the response is returned and the
    error is raised by the next call, so nothing good is lost to what came
    after it.
    """

    def __init__(self, *, max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE) -> None:
        if max_response_size < 0:
            raise LocalProtocolError(
                "bad max_response_size", expected="a size in bytes", received=max_response_size
            )
        self.max_response_size = max_response_size
        #: Where this connection goes, fixed by the first request.
        self.origin: Origin | None = None
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_SIZE)
        self._pending: str | None = None  # "METHOD target" of the outstanding request
        self._error: RemoteProtocolError | None = None
        self._eof = False
        # The response being received.
        self._head = bytearray()  # its first bytes, for error messages
        self._status: int | None = None
        self._headers: list[tuple[str, str]] = []
        self._body = bytearray()
        self._framing = ""

    # -- state ---------------------------------------------------------------

    @property
    def reusable(self) -> bool:
        """True when :meth:`send` may be called now: no request outstanding,
        no error, no EOF, and neither side asked to close after the last one."""
        return (
            self._error is None
            and self._pending is None
            and not self._eof
            and self._h11.our_state is h11.IDLE
            and self._h11.their_state is h11.IDLE
        )

    @property
    def error(self) -> RemoteProtocolError | None:
        """Why the connection failed, if it did; set as soon as it is known, which
        for bytes after a complete response is before :meth:`receive_data` raises it."""
        return self._error

    @property
    def awaiting_response(self) -> bool:
        """True from :meth:`send` until its response is complete (or fails)."""
        return self._pending is not None

    # -- sending -------------------------------------------------------------

    def send(self, request: HttpRequest) -> bytes:
        """The bytes of ``request``: request line, headers and body."""
        where = Url.parse(request.url, ("http", "https"))
        origin, target = where.origin, where.target
        line = f"{request.method} {target}"
        if self._pending is not None:
            raise LocalProtocolError(
                "a request is already outstanding on this connection",
                expected=f"the response to {self._pending} first (no pipelining)",
                received=line,
            )
        if not self.reusable:
            raise LocalProtocolError(
                "this connection cannot carry another request",
                expected="a new connection",
                received=self._why_not_reusable(),
            )
        if self.origin is not None and origin != self.origin:
            raise LocalProtocolError(
                "request for another origin", expected=str(self.origin), received=str(origin)
            )
        if not _TOKEN.fullmatch(request.method):
            raise LocalProtocolError(
                "bad method", expected="an HTTP token", received=request.method
            )
        fields = _header_fields(request, origin)
        try:
            event = h11.Request(method=request.method, target=target, headers=fields)
            data = self._h11.send(event) or b""
            if request.body:
                data += self._h11.send(h11.Data(data=request.body)) or b""
            data += self._h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError as exc:  # pragma: no cover - checked above
            raise LocalProtocolError(f"h11 refused the request: {exc}") from None
        self.origin = origin
        self._pending = line
        self._head.clear()
        self._status = None
        self._headers = []
        self._body = bytearray()
        self._framing = ""
        return data

    def _why_not_reusable(self) -> str:
        if self._error is not None:
            return f"an earlier error ({self._error})"
        if self._eof:
            return "the server closed the connection"
        return "Connection: close (or HTTP/1.0) on the last exchange"

    # -- receiving -----------------------------------------------------------

    def receive_data(self, data: bytes) -> list[HttpResponse]:
        """Feed bytes from the server (``b""`` at EOF); complete responses come back."""
        if self._error is not None:
            raise self._error
        if self._eof:
            if data:
                raise LocalProtocolError(
                    "bytes fed after EOF", expected="nothing after b''", received=data[:_SHOWN]
                )
            return []
        if not data:
            self._eof = True
        if self._pending is None:
            if data:
                raise self._fail(
                    RemoteProtocolError(
                        "the server sent bytes with no request outstanding",
                        expected="nothing until the next request",
                        received=data[:_SHOWN],
                    )
                )
            return []
        if len(self._head) < _SHOWN:
            self._head += data[: _SHOWN - len(self._head)]
        self._h11.receive_data(data)
        try:
            return self._events(data)
        except h11.RemoteProtocolError as exc:
            raise self._fail(self._describe(exc, data)) from None

    def _events(self, data: bytes) -> list[HttpResponse]:
        conn = self._h11
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return []
            if isinstance(event, h11.Response):
                self._start(event)
            elif isinstance(event, h11.Data):
                self._body += event.data
                if len(self._body) > self.max_response_size:
                    raise self._fail(
                        ResponseTooLarge("body", len(self._body), self.max_response_size)
                    )
            elif isinstance(event, h11.EndOfMessage):
                return [self._finish(event)]
            # InformationalResponse (100 Continue and the like) is skipped;
            # ConnectionClosed cannot come while a response is outstanding.

    def _start(self, event: h11.Response) -> None:
        self._status = event.status_code
        self._headers = [(name.decode("ascii"), _text(value)) for name, value in event.headers]
        length = next((v for k, v in event.headers if k == b"content-length"), None)
        if self._pending is not None and self._pending.startswith("HEAD "):
            self._framing = "no body (a HEAD response)"
        elif event.status_code in (204, 304):
            self._framing = f"no body (a {event.status_code} response)"
        elif any(k == b"transfer-encoding" for k, _ in event.headers):
            self._framing = "a chunked body ending in a zero-size chunk"
        elif length is not None:
            self._framing = f"{int(length)} body bytes (Content-Length)"
            if int(length) > self.max_response_size:  # fail now, not after 8 MiB
                raise self._fail(ResponseTooLarge("body", int(length), self.max_response_size))
        else:
            self._framing = "a body up to the end of the stream"

    def _finish(self, event: h11.EndOfMessage) -> HttpResponse:
        assert self._status is not None
        trailers = [(name.decode("ascii"), _text(value)) for name, value in event.headers]
        response = HttpResponse(self._status, (*self._headers, *trailers), bytes(self._body))
        self._pending = None
        self._body = bytearray()
        conn = self._h11
        leftover = conn.trailing_data[0]
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        if leftover:
            # Kept for the next call: the response itself is good.
            self._fail(
                RemoteProtocolError(
                    "the server sent bytes after its response",
                    expected="nothing until the next request",
                    received=bytes(leftover[:_SHOWN]),
                )
            )
        return response

    def _describe(self, exc: h11.RemoteProtocolError, data: bytes) -> RemoteProtocolError:
        """h11's complaint, with what we were waiting for and what came."""
        if "Receive buffer too long" in str(exc):
            what = "head" if self._status is None else "chunk header or trailer"
            return ResponseTooLarge(what, MAX_HEADER_SIZE + 1, MAX_HEADER_SIZE)
        if self._status is None:
            expected = "an HTTP/1.1 status line and headers"
            received: object = bytes(self._head)
        else:
            expected = self._framing
            received = data[-_SHOWN:]
        if not data:
            got = len(self._head) if self._status is None else len(self._body)
            part = "bytes" if self._status is None else "body bytes"
            return RemoteProtocolError(
                f"the server closed the connection before the response to {self._pending} "
                "was complete",
                expected=expected,
                received=f"end of stream after {got} {part}",
            )
        return RemoteProtocolError(
            f"malformed HTTP response ({exc})", expected=expected, received=received
        )

    def _fail(self, error: RemoteProtocolError) -> RemoteProtocolError:
        self._error = error
        self._pending = None
        self._body = bytearray()
        return error

    def __repr__(self) -> str:
        if self._error is not None:
            state = "failed"
        elif self._pending is not None:
            state = f"awaiting response to {self._pending}"
        else:
            state = "reusable" if self.reusable else "closed"
        return f"HttpConnection(origin={self.origin}, {state})"
