"""A real redis-server on a loopback port, started and stopped by the tests.

``.ci/run`` installs Debian's redis-server when it is missing. Elsewhere a
machine without it skips these tests, saying why; under CI (``CI`` set) a
missing server fails them instead, so CI never passes by skipping.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

__all__ = ["RedisServer"]

STARTUP = 20.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process, with no persistence unless ``persist``."""

    def __init__(self, folder: Path, *, persist: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            why = "redis-server is not installed (.ci/run installs Debian's package)"
            if os.environ.get("CI"):
                pytest.fail(why)
            pytest.skip(why)
        self.binary = binary
        self.folder = folder
        self.port = _free_port()
        self.persist = persist
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.folder), "--save", ""]
        # Persistence for the restart test: every write on disk before it is acknowledged.
        args += (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persist
            else [
                "--appendonly",
                "no",
            ]
        )
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.folder
        )
        deadline = time.monotonic() + STARTUP
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            assert self.process.poll() is None, "redis-server exited at start"
            assert time.monotonic() < deadline, "redis-server did not answer in time"
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=STARTUP)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
