"""The server side of HTTP/1.1, sans-IO: requests in as values, answers out as bytes.

One :class:`HttpServerConnection` per accepted connection, over h11's server
role. A protocol object that serves (a webhook endpoint, the reverse
WebSocket server before its upgrade) feeds it what the connection read and
gets back what came:

- :class:`Request`: a whole request (head and body), for a route the
  connection was told of and a method that route allows. Answer it with
  :meth:`HttpServerConnection.respond`, which returns what came after it
  meanwhile (a client may send its next request before the answer: with
  keep-alive it follows on the same connection).
- :class:`Upgrade`: a request to switch to WebSocket, checked like any other
  (route, method) and as a WebSocket handshake (GET, ``Connection: Upgrade``,
  a key, version 13), then the connection stops reading HTTP: the owner
  checks the request (a token, say) and either refuses it with
  :meth:`~HttpServerConnection.respond` (401, 403) or hands ``raw`` (the
  request and every byte after it) to :class:`~qqproto.ws_server.WebSocketServer`.
- :class:`Refused`: what could not be served, already answered here, with
  the right status: 400 (malformed, or a broken handshake), 404 (no such
  route), 405 (with ``Allow``), 413 (body over ``max_body_size``), 426 (a
  WebSocket version other than 13), 431 (head over ``max_header_size``). The
  answer is queued in :meth:`data_to_send`, and the connection closes after
  it when the request could not be read to its end (``close`` says so).

Nothing here reads a clock or a socket: idle timeouts are the owner's.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import h11

from .errors import LocalProtocolError

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_HEADER_SIZE",
    "Dropped",
    "HttpServerConnection",
    "Incoming",
    "Refused",
    "Request",
    "Upgrade",
]

#: Our states in which a request is still to be answered: a server may answer
#: one it could not read (IDLE: h11 never saw it whole) as any other.
_MAY_ANSWER = (h11.IDLE, h11.SEND_RESPONSE)
#: The largest request head (request line and headers) read by default.
DEFAULT_MAX_HEADER_SIZE = 16 * 1024
#: The largest request body read by default.
DEFAULT_MAX_BODY_SIZE = 1024 * 1024

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
}


@dataclass(frozen=True, slots=True)
class Request:
    """One whole request. Header names are lower-case; ``query`` maps each
    parameter to its values, in order."""

    method: str
    target: str
    path: str
    query: Mapping[str, list[str]]
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def __repr__(self) -> str:
        # Authorization and signatures stay out of logs: header names only.
        names = ", ".join(name for name, _ in self.headers)
        return (
            f"Request({self.method} {self.path}, headers=[{names}], body=<{len(self.body)} bytes>)"
        )


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A request to switch the connection to WebSocket; ``raw`` is the
    request's bytes and every byte read after it, for the WebSocket server to
    read again."""

    request: Request
    raw: bytes


@dataclass(frozen=True, slots=True)
class Refused:
    """A request answered here with ``status``, and why; ``close`` when the
    connection closes after the answer."""

    status: int
    why: str
    close: bool


@dataclass(frozen=True, slots=True)
class Dropped:
    """The connection ends with no answer: the client broke HTTP, or hung up,
    inside the body of a request that was answered already (a refused one,
    whose body is being skipped). ``why`` is what h11 found."""

    why: str


Incoming = Request | Upgrade | Refused | Dropped


class HttpServerConnection:
    """The server end of one HTTP/1.1 connection. ``routes`` maps each path
    served to the methods it allows (an upgrade is a GET)."""

    def __init__(
        self,
        routes: Mapping[str, Collection[str]],
        *,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        self.routes = {
            path: frozenset(m.upper() for m in methods) for path, methods in routes.items()
        }
        self.max_header_size = max_header_size
        self.max_body_size = max_body_size
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=max_header_size)
        self._out = bytearray()
        self._head: h11.Request | None = None
        self._body = bytearray()
        self._answer_due = False  # a Request or Upgrade was handed out, not yet answered
        self._ahead = 0  # bytes read while an answer is due (h11 holds them)
        self._skipping: int | None = None  # bytes of a refused request's body skipped
        self.upgraded = False  # an Upgrade was given: HTTP is over on this connection
        self.closed = False  # the connection is to be closed after data_to_send()

    # -- reading ------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> list[Incoming]:
        """Feed what the connection read (``b""`` at EOF); what came, in order."""
        if self.upgraded or self.closed:
            return []
        if self._answer_due:  # pipelined: bounded, or a client could fill memory
            self._ahead += len(data)
            if self._ahead > self.max_header_size + self.max_body_size:
                self.closed = True
                return [Dropped(f"over {self._ahead} bytes sent ahead of an answer")]
        self._h11.receive_data(data)
        return self._events()

    def _events(self) -> list[Incoming]:
        """What h11 holds, as values, until it needs more bytes or our answer."""
        out: list[Incoming] = []
        while not (self.upgraded or self.closed):
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                why = str(exc) or "malformed request"
                if self._h11.our_state not in _MAY_ANSWER:  # answered already: nothing to say
                    self.closed = True
                    out.append(Dropped(why))
                    break
                status = exc.error_status_hint if exc.error_status_hint in (413, 431) else 400
                out.append(self._refuse(status, why, close=True))
                break
            if isinstance(event, h11.ConnectionClosed):
                self.closed = True
                break
            if not isinstance(event, h11.Event):  # NEED_DATA, or PAUSED for our answer
                break
            if (came := self._on(event)) is not None:
                out.append(came)
                if isinstance(came, Request | Upgrade):
                    self._answer_due = True
                    break  # the next one comes once this one is answered
        return out

    def _on(self, event: h11.Event) -> Incoming | None:
        if isinstance(event, h11.Request):
            return self._on_head(event)
        if isinstance(event, h11.Data):
            if self._skipping is not None:  # a refused request's body: skipped, within bounds
                self._skipping += len(event.data)
                if self._skipping > self.max_body_size:
                    self.closed = True  # no answer is owed: the refusal went out
                return None
            self._body += event.data
            if len(self._body) > self.max_body_size:
                return self._refuse(413, f"body over {self.max_body_size} bytes", close=True)
            return None
        if isinstance(event, h11.EndOfMessage):
            if self._skipping is not None:  # the refused request's body is read: carry on
                self._skipping = None
                self._next_cycle()
                return None
            assert self._head is not None
            request = _request(self._head, bytes(self._body))
            self._head, self._body = None, bytearray()
            return request
        return None

    def _on_head(self, head: h11.Request) -> Incoming | None:
        # h11 bounds a head that comes in pieces; one that came whole is measured here.
        size = len(head.target) + sum(len(k) + len(v) + 4 for k, v in head.headers)
        if size > self.max_header_size:
            return self._refuse(431, f"a head of {size} bytes", close=True)
        target = head.target.decode("ascii", "replace")
        path = urlsplit(target).path
        length = _header(head, b"content-length")
        too_big = length is not None and length.isdigit() and int(length) > self.max_body_size
        methods = self.routes.get(path)
        if methods is None:
            return self._refuse(404, f"no route for {path}", close=too_big)
        method = head.method.decode("ascii", "replace")
        if method not in methods:
            allow = ", ".join(sorted(methods))
            return self._refuse(405, f"{method} on {path}", close=too_big, allow=allow)
        if too_big:
            return self._refuse(413, f"a {length}-byte body", close=True)
        if (_header(head, b"upgrade") or "").lower() == "websocket":
            return self._upgrade(head, method)
        self._head = head
        if self._h11.they_are_waiting_for_100_continue:  # curl waits 1 s for this otherwise
            self._out += self._h11.send(h11.InformationalResponse(status_code=100, headers=[]))
        return None

    def _upgrade(self, head: h11.Request, method: str) -> Incoming:
        """A WebSocket handshake (RFC 6455 4.2.1), or the status that refuses it."""
        connection = (_header(head, b"connection") or "").lower()
        if method != "GET" or "upgrade" not in (t.strip() for t in connection.split(",")):
            return self._refuse(
                400, "a WebSocket upgrade must be a GET with Connection: Upgrade", close=True
            )
        if not _header(head, b"sec-websocket-key"):
            return self._refuse(400, "a WebSocket upgrade without Sec-WebSocket-Key", close=True)
        if not all(value.isascii() for _, value in head.headers):
            return self._refuse(400, "a WebSocket upgrade with non-ASCII headers", close=True)
        if _header(head, b"sec-websocket-version") != "13":
            why = "WebSocket version 13 only"
            return self._refuse(426, why, close=True, extra=[("Sec-WebSocket-Version", "13")])
        self.upgraded = True
        rest, _ = self._h11.trailing_data
        return Upgrade(_request(head, b""), _head_bytes(head) + bytes(rest))

    def _refuse(
        self,
        status: int,
        why: str,
        *,
        close: bool,
        allow: str = "",
        extra: list[tuple[str, str]] | None = None,
    ) -> Refused:
        headers = [("Allow", allow)] if allow else []
        headers += extra or []
        if not close and self._h11.their_state is h11.SEND_BODY:
            self._skipping = 0  # skip its body, then go on
        self._send_answer(status, headers, why.encode(), close=close)
        return Refused(status, why, close)

    @property
    def awaiting_answer(self) -> bool:
        """A request (or upgrade) was handed out and waits for :meth:`respond`."""
        return self._answer_due

    # -- writing ------------------------------------------------------------------------

    def respond(
        self, status: int, headers: Collection[tuple[str, str]] = (), body: bytes = b""
    ) -> list[Incoming]:
        """Answer the request handed out last (or refuse an :class:`Upgrade`: the
        connection closes after). The bytes wait in :meth:`data_to_send`; what
        the client sent after that request comes back now, to be answered in turn."""
        if not self._answer_due:
            raise LocalProtocolError(
                "no request is waiting for an answer",
                expected="a Request or Upgrade from receive_data, answered once",
                received=f"respond({status})",
            )
        self._answer_due, self._ahead = False, 0
        self._send_answer(status, list(headers), body, close=self.upgraded)
        return [] if self.closed else self._events()

    def _send_answer(
        self, status: int, headers: list[tuple[str, str]], body: bytes, *, close: bool
    ) -> None:
        fields = [*headers, ("Content-Length", str(len(body)))]
        if close:
            fields.append(("Connection", "close"))
        # h11 lets a server answer a request it could not read (its state for
        # the client is then ERROR) as it answers any other.
        conn = self._h11
        reason = _REASONS.get(status, "").encode()
        self._out += conn.send(h11.Response(status_code=status, headers=fields, reason=reason))
        self._out += conn.send(h11.Data(data=body)) if body else b""
        self._out += conn.send(h11.EndOfMessage())
        if close or conn.our_state is h11.MUST_CLOSE:
            self.closed = True
            return
        self._next_cycle()

    def _next_cycle(self) -> None:
        """Keep-alive: once both sides are done, the next request may come."""
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()

    def data_to_send(self) -> bytes:
        """What to write to the connection now; close it after if :attr:`closed`."""
        out, self._out = bytes(self._out), bytearray()
        return out


def _header(head: h11.Request, name: bytes) -> str | None:
    for key, value in head.headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _head_bytes(head: h11.Request) -> bytes:
    """The request line and headers again, as a server reading them needs them."""
    lines = [b"%s %s HTTP/1.1" % (head.method, head.target)]
    lines += [name + b": " + value for name, value in head.headers.raw_items()]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _request(head: h11.Request, body: bytes) -> Request:
    target = head.target.decode("ascii", "replace")
    parts = urlsplit(target)
    return Request(
        head.method.decode("ascii", "replace"),
        target,
        parts.path,
        parse_qs(parts.query, keep_blank_values=True),
        tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in head.headers),
        body,
    )
