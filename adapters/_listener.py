"""One listening socket of the threaded driver, and the thread that accepts on it.

The asyncio driver has ``asyncio.start_server``; threads need this. The
thread binds, reports ``on_bound(listener, host, port)`` (the real port), then
waits in a selector on the socket and on a wake-up pair, and hands each
connection to ``on_accept(socket, peer)``. Running out of descriptors or
memory is passing trouble: the thread logs it, waits
:data:`ACCEPT_RETRY_DELAY` and accepts again (as ``asyncio`` does). Binding
or accepting that fails otherwise is reported with ``on_failed(exc)``, and
the listener ends.
:meth:`Listener.close` wakes the thread, which closes the socket and ends; no
callback comes after it. Accepted sockets are the caller's to close.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import threading
from collections.abc import Callable

__all__ = ["ACCEPT_RETRY_DELAY", "Listener"]

log = logging.getLogger("qqproto.adapters")

#: Seconds to wait before accepting again when the process is out of
#: descriptors or memory (asyncio's own choice, ``ACCEPT_RETRY_DELAY``).
ACCEPT_RETRY_DELAY = 1.0
#: Accept errors that pass once other connections close.
_PASSING = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Listener:
    """Accepts on ``host``:``port`` in a thread of its own."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        on_bound: Callable[[Listener, str, int], None],
        on_accept: Callable[[socket.socket, tuple[str, int]], None],
        on_failed: Callable[[OSError], None],
    ) -> None:
        self._address = (host, port)
        self._on_bound, self._on_accept, self._on_failed = on_bound, on_accept, on_failed
        self._closed = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="qqproto-listener")

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self, grace: float = 0.0) -> None:
        """Stop accepting (any thread); the thread ends soon after. (``grace``
        is for connections: a listener has nothing to flush.)"""
        if not self._closed.is_set():
            self._closed.set()
            with contextlib.suppress(OSError):  # the thread may have closed the pair
                self._wake_w.send(b"\0")

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        try:
            try:
                family = socket.AF_INET6 if ":" in self._address[0] else socket.AF_INET
                server = socket.create_server(self._address, family=family, backlog=128)
            except OSError as exc:
                if not self._closed.is_set():
                    self._on_failed(exc)
                return
            with server, selectors.DefaultSelector() as sel:
                server.setblocking(False)
                sel.register(server, selectors.EVENT_READ)
                sel.register(self._wake_r, selectors.EVENT_READ)
                host, port = server.getsockname()[:2]
                if not self._closed.is_set():
                    self._on_bound(self, host, port)
                try:
                    while not self._closed.is_set():
                        if any(key.fileobj is server for key, _ in sel.select()):
                            self._accept(server)
                except OSError as exc:  # the socket itself is broken: the listener is lost
                    if not self._closed.is_set():
                        self._on_failed(exc)
        finally:
            self._wake_r.close()
            self._wake_w.close()

    def _accept(self, server: socket.socket) -> None:
        try:
            sock, peer = server.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # the peer gave up before we took it
        except OSError as exc:
            if exc.errno not in _PASSING:
                raise  # the listener is lost (see _run)
            log.warning("listener on %s:%s: %s; accepting again soon", *self._address, exc)
            self._closed.wait(ACCEPT_RETRY_DELAY)  # woken at once by close()
            return
        if self._closed.is_set():
            sock.close()
        else:
            self._on_accept(sock, peer[:2])
