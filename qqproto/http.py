"""HTTP requests and responses as values, and h11 to turn them into bytes.

A protocol object asks for an HTTP call with the ``HttpRequest`` action and
gets the answer back as an :class:`HttpResponse` through
``http_response(request_id, response, now)``. An embedder with its own HTTP
stack executes the request value directly; a driver without one uses
:class:`HttpConnection` here to speak HTTP/1.1 over a plain socket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import RemoteProtocolError

__all__ = ["HttpResponse"]


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """One HTTP response: status, headers (names lower-case) and body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None

    def json(self) -> Any:
        """The body parsed as JSON; a body that is not JSON is the server's error."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError) as exc:
            raise RemoteProtocolError(
                f"HTTP {self.status} body is not JSON",
                expected="a JSON body",
                received=self.body[:200],
            ) from exc

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, body=<{len(self.body)} bytes>)"
