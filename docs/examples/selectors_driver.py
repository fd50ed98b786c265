"""A third I/O model for qqproto: one thread, the ``selectors`` module, no asyncio.

This is the driver contract (``docs/driver-contract.md``) carried out with
plain non-blocking sockets, to show how little a driver is: it connects,
accepts, reads, writes and closes, keeps one timer, and hands everything
else to the protocol object. It is an example, kept short on purpose: no
TLS, no backpressure, HTTP requests answered with ``http_failed``. The tests
run it against the same conformance check as the shipped drivers.

    driver = SelectorsDriver(proto, on_event=print)
    driver.run(until=lambda: done)   # returns when until() holds or the object fails
"""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable

from qqproto.actions import HttpRequest, StateChanged
from qqproto.contract import Driven, Peer, carry_out, driver_ids
from qqproto.url import Origin

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class SelectorsDriver:
    """Drives ``proto`` from :meth:`run`, in the calling thread."""

    def __init__(self, proto: Driven, *, on_event: Callable[[object], None] | None = None):
        self.proto = proto
        self.on_event = on_event
        self.failure: str | None = None
        self._sel = selectors.DefaultSelector()
        self._socks: dict[int, socket.socket] = {}  # connection id -> its socket
        self._opening: set[int] = set()  # connects under way
        self._pending: dict[int, bytearray] = {}  # bytes not yet written
        self._at_eof: set[int] = set()  # the peer closed its side: read no more
        self._servers: dict[int, socket.socket] = {}  # listener id -> its socket
        self._accept_ids = driver_ids()

    def run(self, until: Callable[[], bool], timeout: float = 60.0) -> None:
        """Carry out actions and wait for sockets and the timer until ``until()``."""
        give_up = time.monotonic() + timeout
        carry_out(self.proto, self)
        while not until() and self.failure is None:
            now = time.monotonic()
            if now >= give_up:
                raise TimeoutError("the condition did not come in time")
            deadline = self.proto.next_deadline()
            wait = min(give_up, deadline if deadline is not None else give_up) - now
            for key, events in self._sel.select(max(wait, 0.0)):
                self._ready(key.data, events)
            if deadline is not None and time.monotonic() >= deadline:
                self.proto.handle_timer(time.monotonic())
            carry_out(self.proto, self)

    def stop(self) -> None:
        """Close the object, carry out its close frames, close every socket."""
        if self.failure is None:
            self.proto.close(time.monotonic())
            carry_out(self.proto, self)
        for sock in [*self._socks.values(), *self._servers.values()]:
            sock.close()
        self._sel.close()

    # -- the sockets ----------------------------------------------------------------------

    def _ready(self, what: tuple[str, int], events: int) -> None:
        kind, ident = what
        now = time.monotonic()
        if kind == "listener":
            sock, address = self._servers[ident].accept()
            conn = next(self._accept_ids)
            self._watch(conn, sock)
            self.proto.connection_accepted(ident, conn, Peer(*address[:2]), now)
            return
        sock = self._socks.get(ident)
        if sock is None:  # closed by an earlier event of this same select
            return
        if ident in self._opening and events & WRITE:  # the connect finished, one way or another
            self._opening.discard(ident)
            if error := sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self._forget(ident)
                self.proto.connection_lost(ident, now, f"connect failed: errno {error}")
                return
            self.proto.connection_made(ident, now)
        if events & READ and ident in self._socks:
            try:
                data = sock.recv(65536)
            except ConnectionError as exc:
                self._forget(ident)
                self.proto.connection_lost(ident, now, str(exc))
                return
            if not data:
                self._at_eof.add(ident)
            self.proto.receive_data(ident, data, now)
        if events & WRITE and ident in self._socks and ident not in self._opening:
            self._flush(ident)
        self._interest(ident)

    def _watch(self, conn: int, sock: socket.socket, opening: bool = False) -> None:
        sock.setblocking(False)
        self._socks[conn], self._pending[conn] = sock, bytearray()
        if opening:
            self._opening.add(conn)
        self._interest(conn)

    def _interest(self, conn: int) -> None:
        """Watch ``conn`` for what can be done now: read (until EOF), write (while
        bytes wait, or the connect is under way)."""
        if (sock := self._socks.get(conn)) is None:
            return
        mask = 0 if conn in self._at_eof else READ
        mask |= WRITE if self._pending[conn] or conn in self._opening else 0
        key = self._sel.get_map().get(sock)
        if key is None and mask:
            self._sel.register(sock, mask, ("conn", conn))
        elif key is not None and not mask:
            self._sel.unregister(sock)
        elif key is not None and key.events != mask:
            self._sel.modify(sock, mask, ("conn", conn))

    def _flush(self, conn: int) -> None:
        sock, pending = self._socks[conn], self._pending[conn]
        try:
            del pending[: sock.send(pending)]
        except BlockingIOError:
            pass
        except ConnectionError as exc:
            self._forget(conn)
            self.proto.connection_lost(conn, time.monotonic(), f"write failed: {exc}")

    def _forget(self, conn: int) -> None:
        sock = self._socks.pop(conn)
        self._pending.pop(conn, None)
        self._opening.discard(conn)
        self._at_eof.discard(conn)
        if sock in self._sel.get_map():
            self._sel.unregister(sock)
        sock.close()

    # -- the actions (an Executor) ----------------------------------------------------------

    def connect(self, conn: int, url: str) -> None:
        origin = Origin.of(url)  # no TLS in this example: ws:// and http:// only
        family = socket.AF_INET6 if ":" in origin.host else socket.AF_INET  # no DNS here
        sock = socket.socket(family, socket.SOCK_STREAM)
        self._watch(conn, sock, opening=True)
        sock.connect_ex((origin.host, origin.port))

    def send(self, conn: int, data: bytes) -> None:
        if conn in self._pending:
            self._pending[conn] += data
            if conn not in self._opening:
                self._flush(conn)
            self._interest(conn)

    def disconnect(self, conn: int) -> None:
        if conn in self._socks:
            sock = self._socks[conn]
            if conn not in self._opening and self._pending[conn]:
                sock.setblocking(True)  # an example may take the short way: flush, then close
                sock.sendall(self._pending[conn])
            self._forget(conn)
        self.proto.connection_lost(conn, time.monotonic(), None)

    def listen(self, listener: int, host: str, port: int) -> None:
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            server = socket.create_server((host, port), family=family)
        except OSError as exc:
            self.proto.listener_lost(listener, time.monotonic(), str(exc))
            return
        server.setblocking(False)
        self._servers[listener] = server
        self._sel.register(server, READ, ("listener", listener))
        bound_host, bound_port = server.getsockname()[:2]
        self.proto.listening(listener, bound_host, bound_port, time.monotonic())

    def stop_listening(self, listener: int) -> None:
        if (server := self._servers.pop(listener, None)) is not None:
            self._sel.unregister(server)
            server.close()
        self.proto.listener_lost(listener, time.monotonic(), None)

    def http(self, request: HttpRequest) -> None:
        why = "this example driver makes no HTTP requests"
        self.proto.http_failed(request.request_id, time.monotonic(), why)

    def deliver(self, event: object) -> None:
        if self.on_event is not None:
            self.on_event(event)

    def state_changed(self, change: StateChanged) -> None:
        pass

    def failed(self, reason: str) -> None:
        self.failure = reason
