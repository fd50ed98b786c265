"""One connection of the threaded driver: a socket that exactly one thread touches.

OpenSSL does not promise that ``SSL_read`` and ``SSL_write`` may run at the
same time on one SSL object, so one thread per connection does everything
with its socket: connect, TLS handshake, read, write, shutdown and close.
Other threads only queue bytes (:meth:`Transport.write`) or ask for the end
(:meth:`Transport.close`); a byte on a socket pair wakes the owner thread.

The socket is non-blocking and the thread waits in a selector on it and on
the wake-up pair. A blocking socket with a timeout would make the one thread
choose between a ``recv()`` that holds queued writes back and a short
timeout that spins; a blocking TLS ``recv()`` can also sit on half a record
after the socket looked readable, and a blocking connect cannot be given up.

A socket a listener accepted (``accepted=``) skips the connect (and, with a
server TLS context beside it, shakes hands as the server first). The thread
reports to its caller through three callbacks, with no lock of ours held:
``on_open(t)`` (not for an accepted socket); ``on_data(t, data)`` (``b""`` at EOF); and
``on_lost(t, reason)`` when the connection failed to open or broke, never
after ``close()``. Name resolution (``getaddrinfo``) is the one step that
cannot be cut short; the resolver's own timeout bounds it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable

from qqproto.url import BadUrl, Origin

from ._common import CLOSE_GRACE, READ_SIZE, describe

__all__ = ["HIGH_WATER", "Transport"]

log = logging.getLogger(__name__)

#: While this many bytes wait to be written, nothing more is read (backpressure).
HIGH_WATER = 65536
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_BLOCKED = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class _Closed(Exception):
    """close() came while the connection was still opening."""


class Transport:
    """A connection to ``url`` (ws, wss, http or https), run by a thread of its own."""

    def __init__(
        self,
        url: str,
        ssl_context: Callable[[], ssl.SSLContext],
        connect_timeout: float,
        io_timeout: float,
        *,
        on_open: Callable[[Transport], None],
        on_data: Callable[[Transport, bytes], None],
        on_lost: Callable[[Transport, str], None],
        accepted: tuple[socket.socket, ssl.SSLContext | None] | None = None,
    ) -> None:
        self.url = url
        # A socket a listener accepted (open already), and the context to serve
        # TLS on it with (the handshake comes first), if any.
        self._accepted: socket.socket | None = accepted[0] if accepted else None
        self._server_ssl: ssl.SSLContext | None = accepted[1] if accepted else None
        self._ssl, self._connect_timeout, self._io_timeout = (
            ssl_context,
            connect_timeout,
            io_timeout,
        )
        self._on_open, self._on_data, self._on_lost = on_open, on_data, on_lost
        self._lock = threading.Lock()  # for the fields below; never held across a callback
        self._queue = bytearray()  # written by write(), taken by the thread
        self._closing: float | None = None  # close() was called: cut the link at this time
        self._ended = False  # the thread has closed the wake-up pair
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._wake_r, _READ)
        self._mask = 0  # the events the selector watches on the connection's socket
        # The state of _serve, which only the thread touches:
        self._out = memoryview(b"")  # being written; after SSLWantWriteError TLS wants them again
        self._progress = 0.0  # when the bytes being written last moved
        self._reading = True  # not at EOF, and not held back by unwritten bytes
        self._eof = self._fin = False  # the peer's FIN came; ours went
        self._read_wants_write = False  # the last TLS read must be retried once writable
        self._tls_pending = False  # TLS holds decrypted bytes not yet read
        self._thread = threading.Thread(target=self._run, name="qqproto-link")

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def write(self, data: bytes) -> bool:
        """Queue ``data`` to be written, in order (any thread); False after close()."""
        with self._lock:
            if self._closing is None:
                self._queue += data
                self._wake()
                return True
            return False

    def close(self, grace: float = CLOSE_GRACE) -> None:
        """Write what is queued, send FIN, read until the peer's EOF, close; cut it
        all after ``grace`` seconds. A connect under way is given up at once."""
        with self._lock:
            cut = time.monotonic() + grace
            self._closing = cut if self._closing is None else min(cut, self._closing)
            self._wake()

    def _wake(self) -> None:  # the lock is held
        if not self._ended:
            with contextlib.suppress(BlockingIOError):  # full: the thread is awake already
                self._wake_w.send(b"\0")

    # -- the thread ------------------------------------------------------------------

    def _run(self) -> None:
        sock: socket.socket | None = None
        try:
            if self._accepted is not None:
                sock = self._accepted
                sock.setblocking(False)
                if self._server_ssl is not None:
                    sock = self._serve_tls(sock)
            else:
                sock = self._open()
                log.info("connected to %s", self.url)
                self._on_open(self)
            self._serve(sock)
        except _Closed:
            pass
        except (OSError, ValueError, BadUrl) as exc:  # TimeoutError, ssl errors: OSErrors
            if self._closing_at() is None:
                where = "" if sock is not None else f"{self.url}: "
                self._on_lost(self, where + describe(exc))
        finally:
            if sock is not None:
                sock.close()
            with self._lock:
                self._ended = True
                self._sel.close()
                self._wake_r.close()
                self._wake_w.close()

    def _closing_at(self) -> float | None:
        with self._lock:
            return self._closing

    def _open(self) -> socket.socket:
        """Connect (and shake hands for TLS, with SNI) by ``connect_timeout``."""
        end = Origin.of(self.url)
        deadline = time.monotonic() + self._connect_timeout
        sock = self._connect(end, deadline)
        if not end.tls:
            return sock
        try:
            tls = self._ssl().wrap_socket(
                sock, server_hostname=end.host, do_handshake_on_connect=False
            )
        except BaseException:
            sock.close()
            raise
        return self._handshake(tls, deadline)

    def _serve_tls(self, sock: socket.socket) -> ssl.SSLSocket:
        """The server's side of a TLS handshake, by ``connect_timeout``."""
        assert self._server_ssl is not None
        deadline = time.monotonic() + self._connect_timeout
        tls = self._server_ssl.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return self._handshake(tls, deadline)

    def _handshake(self, tls: ssl.SSLSocket, deadline: float) -> ssl.SSLSocket:
        """Shake hands on a non-blocking TLS socket by ``deadline``; closed on failure
        (it holds the descriptor now: closing the raw socket would not do)."""
        try:
            while True:
                try:
                    tls.do_handshake()
                    return tls
                except ssl.SSLWantReadError:
                    self._wait(tls, _READ, deadline)
                except ssl.SSLWantWriteError:
                    self._wait(tls, _WRITE, deadline)
        except BaseException:
            tls.close()
            raise

    def _connect(self, end: Origin, deadline: float) -> socket.socket:
        error = OSError(f"no address for {end.host}")
        for family, kind, proto, _, address in socket.getaddrinfo(
            end.host, end.port, type=socket.SOCK_STREAM
        ):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    sock.connect(address)  # under way; writable when it is done
                self._wait(sock, _WRITE, deadline)
                if code := sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    raise OSError(code, os.strerror(code))
                return sock
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        raise error

    def _wait(self, sock: socket.socket, events: int, deadline: float) -> None:
        """Until ``sock`` is ready (opening); _Closed on close(), TimeoutError at ``deadline``."""
        self._sel.register(sock, events)
        try:
            while True:
                if self._closing_at() is not None:
                    raise _Closed
                if (left := deadline - time.monotonic()) <= 0:
                    raise TimeoutError("timed out")
                if self._select(left):
                    return
        finally:
            self._sel.unregister(sock)

    def _select(self, timeout: float | None) -> int:
        """Wait for the socket or a wake-up; the events ready on the socket (0: none)."""
        ready = 0
        for key, events in self._sel.select(timeout):
            if key.fileobj is self._wake_r:
                with contextlib.suppress(BlockingIOError):
                    while self._wake_r.recv(4096):
                        pass
            else:
                ready = events
        return ready

    def _serve(self, sock: socket.socket) -> None:
        """Read and write until closed (flushed, FIN sent, EOF seen) or cut."""
        ready = 0  # the events the last select saw on the socket
        while True:
            self._read_once(sock, ready)
            self._out = self._flush(sock, self._out)
            with self._lock:
                closing, backlog = self._closing, len(self._out) + len(self._queue)
            now = time.monotonic()
            if closing is not None:
                self._maybe_send_fin(sock, backlog)
                if (self._fin and self._eof) or now >= closing:
                    return
            self._check_stall(now)
            self._update_interest(sock, backlog)
            self._tls_pending = _holds_decrypted(sock)
            ready = self._select(self._wait_time(closing, now))

    def _read_once(self, sock: socket.socket, ready: int) -> None:
        """One ``recv`` if bytes may be there; they go to ``on_data`` unless closing."""
        # A TLS read that raised SSLWantWriteError must be retried once the socket
        # is ready at all (writable, as a rule): TLS had to write to read on.
        retry = self._read_wants_write and ready
        if not (self._reading and (ready & _READ or retry or self._tls_pending)):
            return
        self._read_wants_write = False
        try:
            data = sock.recv(READ_SIZE)
        except ssl.SSLWantWriteError:
            self._read_wants_write = True
            return
        except _BLOCKED:
            return
        self._eof = not data
        log.debug("received %d bytes", len(data))
        if self._closing_at() is None:  # after close() late bytes are nobody's
            self._on_data(self, data)

    def _maybe_send_fin(self, sock: socket.socket, backlog: int) -> None:
        """After close(), once all that was queued is written: FIN, once."""
        if not backlog and not self._fin:
            with contextlib.suppress(OSError):  # the peer may be gone already
                sock.shutdown(socket.SHUT_WR)
            self._fin = True

    def _stall_deadline(self) -> float:
        """When the bytes being written count as stuck (none: nothing waits)."""
        return self._progress + self._io_timeout if self._out else math.inf

    def _check_stall(self, now: float) -> None:
        """TimeoutError if the peer has taken none of our bytes for ``io_timeout``.

        A peer that stops reading would otherwise hold the link (and, through
        backpressure, everything it sends us) forever; a dead link on which TCP
        has not yet given up looks the same."""
        if now >= self._stall_deadline():
            raise TimeoutError("timed out")

    def _update_interest(self, sock: socket.socket, backlog: int) -> None:
        """Watch the socket for what we can use now.

        Readable only while reading: not after EOF, and not while ``backlog``
        bytes wait to be written (backpressure: each read may make the object
        write more). Writable only while bytes wait, or a TLS read waits to
        write; watching it otherwise would wake select at once, every time."""
        self._reading = not self._eof and backlog < HIGH_WATER
        want_write = bool(self._out) or self._read_wants_write
        self._watch(sock, (_READ if self._reading else 0) | (_WRITE if want_write else 0))

    def _wait_time(self, closing: float | None, now: float) -> float | None:
        """How long select may wait (None: until woken): not past a stall or
        the close deadline, and not at all while TLS holds bytes to read."""
        if self._reading and self._tls_pending:
            return 0.0  # the socket is not readable for them: select would not wake
        wait = min(self._stall_deadline(), math.inf if closing is None else closing) - now
        return None if wait == math.inf else wait

    def _flush(self, sock: socket.socket, out: memoryview) -> memoryview:
        """Write until the socket blocks or nothing is left; what is left of ``out``."""
        while True:
            if not out:
                with self._lock:
                    queued, self._queue = self._queue, bytearray()
                if not queued:
                    return out
                out, self._progress = memoryview(queued), time.monotonic()
            try:
                sent = sock.send(out)
            except _BLOCKED:
                return out
            out, self._progress = out[sent:], time.monotonic()

    def _watch(self, sock: socket.socket, mask: int) -> None:
        if mask != self._mask:
            if self._mask:
                self._sel.unregister(sock)
            if mask:
                self._sel.register(sock, mask)
            self._mask = mask


def _holds_decrypted(sock: socket.socket) -> bool:
    """Whether TLS holds decrypted bytes not yet read. They do not make the socket
    readable (they already left it), so the thread must read them without waiting."""
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
