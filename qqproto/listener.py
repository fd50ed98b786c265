"""A server's lifecycle and its HTTP connections: what every serving object shares.

A webhook endpoint (QQ's callbacks, OneBot's HTTP POST) and OneBot's reverse
WebSocket server are the same thing at the bottom: one listening socket, many
accepted connections, HTTP/1.1 on each, and answers written back.
:class:`HttpService` is that bottom. It asks the driver to ``Listen`` when
made, keeps an :class:`~qqproto.http_server.HttpServerConnection` per
accepted connection, and hands each whole request to :meth:`HttpService.on_request`
and each upgrade to :meth:`HttpService.on_upgrade`. What the piece answers
itself (404, 405, 413, a malformed request) comes to
:meth:`HttpService.on_refused`, already answered. A subclass writes its
answers with :meth:`HttpService.respond`, and a connection that switched to
WebSocket is the subclass's to read from then on
(:meth:`HttpService.on_upgraded_data`).

Its lifecycle is a table (:data:`TABLE`):

``STARTING``
    ``Listen`` is asked for; the socket is not bound yet.
``LISTENING``
    Bound (``port`` says where, useful with port 0); connections come.
``FAILED``
    Terminal: the socket could not be bound, or was lost.
``CLOSED``
    Terminal: the application closed the service.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from enum import Enum
from typing import Final

from .actions import Disconnect, Failed, Listen, SendData, StopListening
from .contract import Driven, Peer
from .errors import LocalProtocolError
from .http_server import (
    DEFAULT_MAX_BODY_SIZE,
    Dropped,
    HttpServerConnection,
    Incoming,
    Refused,
    Request,
    Upgrade,
)
from .machine import Row, Table

__all__ = ["TABLE", "HttpService", "ListenerInput", "ListenerState"]


class ListenerState(Enum):
    STARTING = "STARTING"
    LISTENING = "LISTENING"
    FAILED = "FAILED"
    CLOSED = "CLOSED"


class ListenerInput(Enum):
    BOUND = "bound"  # the driver says the socket listens
    LOST = "lost"  # the socket could not be bound, or went
    CLOSE = "close"  # the application closed the service


S = ListenerState
_LIVE: Final = (S.STARTING, S.LISTENING)

#: A server's lifecycle: there is nothing to retry in it (a port taken stays
#: taken), so a lost socket is final.
TABLE: Final[Table[ListenerState, ListenerInput, None]] = Table(
    "listener",
    ListenerState,
    (
        Row(ListenerInput.BOUND, (S.STARTING,), S.LISTENING),
        Row(ListenerInput.LOST, _LIVE, S.FAILED),
        Row(ListenerInput.CLOSE, _LIVE, S.CLOSED),
    ),
    starts={S.STARTING: ""},
)


class HttpService(Driven):
    """One listening socket and the HTTP connections it accepts (see the module docstring).

    ``routes`` maps each path served to its methods (an upgrade is a GET).
    """

    #: Machine name in ``StateChanged``; a subclass names its own.
    name = "listener"

    def __init__(
        self,
        host: str,
        port: int,
        routes: Mapping[str, Collection[str]],
        *,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        idle_timeout: float = 60.0,
        max_connections: int = 1024,
        ids: Iterator[int] | None = None,
    ) -> None:
        super().__init__(ids=ids)
        #: A connection that brings no whole request for this long (a keep-alive
        #: gone quiet, a client that sends a byte a minute) is let go.
        self.idle_timeout = idle_timeout
        #: Connections past this many (HTTP and taken over) are let go at once.
        self.max_connections = max_connections
        self._idle_since: dict[int, float] = {}  # conn -> when it last had an answer
        self.host, self.port = host, port
        self.routes = routes
        self.max_body_size = max_body_size
        self.failure_reason: str | None = None
        self._lifecycle = TABLE.lifecycle(ListenerState.STARTING)
        self._http: dict[int, HttpServerConnection] = {}
        self.peers: dict[int, Peer] = {}
        self._letting_go: set[int] = set()  # HTTP closed them; the driver has yet to say
        self._now = 0.0  # of the driver call under way (a pipelined request's)
        # What came on a connection and waits its turn: a loop, not a recursion,
        # serves pipelined requests (a thousand in one read must not nest).
        self._queue: dict[int, list[Incoming]] = {}
        self._serving: set[int] = set()
        self.listener = next(self._ids)
        self._out.append(Listen(self.listener, host, port))

    @property
    def state(self) -> ListenerState:
        return self._lifecycle.state

    # -- for subclasses --------------------------------------------------------------------

    def on_request(self, conn: int, request: Request, now: float) -> None:
        """A whole request came on ``conn``: answer it with :meth:`respond`."""
        self.respond(conn, 404, body=b"not served here")

    def on_upgrade(self, conn: int, upgrade: Upgrade, now: float) -> None:
        """A WebSocket upgrade came on ``conn``: refuse it with :meth:`respond`,
        or take the connection over (:meth:`take_over`)."""
        self.respond(conn, 404, body=b"no WebSocket here")

    def on_refused(self, conn: int, refused: Refused | Dropped, now: float) -> None:
        """The HTTP piece answered (or dropped) a request it could not serve."""

    def on_upgraded_data(self, conn: int, data: bytes, now: float) -> None:
        """Bytes on a connection :meth:`take_over` took."""

    def on_closed(self, conn: int, now: float) -> None:
        """``conn`` is gone (after the driver said so)."""

    def respond(
        self, conn: int, status: int, headers: Collection[tuple[str, str]] = (), body: bytes = b""
    ) -> None:
        """Answer the request (or refuse the upgrade) ``conn`` handed out last.
        On a connection being let go (a client that broke its bounds), the
        answer has nowhere to go and is dropped."""
        http = self._http.get(conn)
        if http is None and conn in self._letting_go:
            return
        if http is None:
            raise LocalProtocolError(
                "no HTTP connection to answer on",
                expected="a connection with a request waiting",
                received=conn,
            )
        following = http.respond(status, headers, body)
        self._idle_since[conn] = self._now  # the next request's time starts now
        self._flush(conn, http)
        if following:  # pipelined: the next requests, in turn, after this one's own work
            self._queue.setdefault(conn, []).extend(following)
            if conn not in self._serving:  # an answer given later (a timer): serve them now
                self._serve(conn, [], self._now)

    def take_over(self, conn: int) -> None:
        """``conn`` is the subclass's now (an accepted upgrade): its bytes go to
        :meth:`on_upgraded_data`, its answers to :meth:`send`."""
        self._http.pop(conn, None)
        self._idle_since.pop(conn, None)

    def send(self, conn: int, data: bytes) -> None:
        if data:
            self._out.append(SendData(conn, data))

    def disconnect(self, conn: int) -> None:
        self._out.append(Disconnect(conn))

    # -- the driver contract ---------------------------------------------------------------

    def listening(self, listener: int, host: str, port: int, now: float) -> None:
        self._check_listener(listener, "listening")
        self.host, self.port = host, port
        self._fire(ListenerInput.BOUND, f"listening on {Peer(host, port)}")

    def listener_lost(self, listener: int, now: float, reason: str | None = None) -> None:
        self._check_listener(listener, "listener_lost")
        if self.state is ListenerState.CLOSED:
            return
        why = f"could not listen on {Peer(self.host, self.port)}: {reason or 'closed'}"
        self.failure_reason = why
        self._fire(ListenerInput.LOST, why)
        self._out.append(Failed(why))

    def connection_accepted(self, listener: int, conn: int, peer: Peer, now: float) -> None:
        self._check_listener(listener, "connection_accepted")
        if self.state is not ListenerState.LISTENING:
            self.disconnect(conn)
            return
        if len(self.peers) >= self.max_connections:
            self.disconnect(conn)
            self.on_refused(conn, Dropped(f"over {self.max_connections} connections"), now)
            return
        self._http[conn] = HttpServerConnection(self.routes, max_body_size=self.max_body_size)
        self.peers[conn] = peer
        self._idle_since[conn] = now

    def receive_data(self, conn: int, data: bytes, now: float) -> None:
        self._now = now
        http = self._http.get(conn)
        if http is None:
            if conn in self.peers:  # taken over by the subclass
                self.on_upgraded_data(conn, data, now)
            return  # a connection already let go: its last bytes are nobody's
        self._serve(conn, http.receive_data(data), now)

    def connection_lost(self, conn: int, now: float, reason: str | None = None) -> None:
        self._http.pop(conn, None)
        self._queue.pop(conn, None)
        self._idle_since.pop(conn, None)
        self._letting_go.discard(conn)
        if self.peers.pop(conn, None) is not None:
            self.on_closed(conn, now)

    def next_deadline(self) -> float | None:
        """When a quiet HTTP connection is to be let go (a subclass adds its own)."""
        quiet = [since for c, since in self._idle_since.items() if not self._answering(c)]
        return min(quiet) + self.idle_timeout if quiet else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        for conn, since in list(self._idle_since.items()):
            if now >= since + self.idle_timeout and not self._answering(conn):
                why = f"no whole request in {self.idle_timeout:g} s"
                self._idle_since.pop(conn, None)
                self._http.pop(conn, None)
                self.disconnect(conn)
                self.on_refused(conn, Dropped(why), now)

    def _answering(self, conn: int) -> bool:
        """A request of ``conn`` is with the subclass (its answer may take a while)."""
        http = self._http.get(conn)
        return http is not None and http.awaiting_answer

    def close(self, now: float) -> None:
        """Stop listening and let every connection go."""
        if self.state not in _LIVE:
            return
        self._fire(ListenerInput.CLOSE, "closed by the application")
        self._out.append(StopListening(self.listener))
        for conn in list(self.peers):
            self.disconnect(conn)

    # -- inside ----------------------------------------------------------------------------

    def _serve(self, conn: int, incoming: list[Incoming], now: float) -> None:
        queue = self._queue.setdefault(conn, [])
        queue.extend(incoming)
        if conn in self._serving:  # the loop below, further up the stack, takes them
            return
        self._serving.add(conn)
        try:
            while queue:
                came = queue.pop(0)
                if isinstance(came, Request):
                    self.on_request(conn, came, now)
                elif isinstance(came, Upgrade):
                    self.on_upgrade(conn, came, now)
                else:
                    self.on_refused(conn, came, now)
        finally:
            self._serving.discard(conn)
            if not queue:
                self._queue.pop(conn, None)
        http = self._http.get(conn)
        if http is not None:
            self._flush(conn, http)

    def _flush(self, conn: int, http: HttpServerConnection) -> None:
        self.send(conn, http.data_to_send())
        if http.closed:
            self._http.pop(conn, None)
            self._letting_go.add(conn)
            self.disconnect(conn)

    def _check_listener(self, listener: int, call: str) -> None:
        if listener != self.listener:
            raise LocalProtocolError(
                f"{call} for a listener this service never asked for",
                expected=f"listener {self.listener}",
                received=listener,
            )

    def _fire(self, trigger: ListenerInput, why: str) -> None:
        change = self._lifecycle.fire(trigger, why, None)
        if change is not None:
            self._out.append(change)
