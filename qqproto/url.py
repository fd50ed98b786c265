"""One URL parser for every connection qqproto asks for or serves.

``ws``, ``wss``, ``http`` and ``https`` URLs are read here and nowhere else:
the WebSocket client, the HTTP client, the drivers' connects and pools all
take a :class:`Url`, so a host, a port or a request target means the same
everywhere. Hosts are kept as ASCII: an internationalized name is encoded
with IDNA once, here, and an IPv6 literal is bracketed only where HTTP
wants it (the ``Host`` header).

A bad URL is the caller's mistake, so :class:`BadUrl` is a
:class:`~qqproto.errors.LocalProtocolError` that says which part is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import LocalProtocolError

__all__ = ["SCHEMES", "BadUrl", "Origin", "Url"]

#: Every scheme qqproto connects with; the ``s`` ones are TLS.
SCHEMES = ("ws", "wss", "http", "https")
_TLS = ("wss", "https")
#: A request target goes on the request line as it is: visible ASCII only.
_REQUEST_TARGET = re.compile(r"[\x21-\x7e]+")
#: A host name (after IDNA) or an IPv4 address; an IPv6 literal, unbracketed.
_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?")


class BadUrl(LocalProtocolError):
    """A URL qqproto cannot connect to; the message names the part at fault."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a URL connects: a transport's address, and the key of a pool."""

    scheme: str
    host: str  # ASCII; an IPv6 literal without brackets
    port: int

    @property
    def tls(self) -> bool:
        """Whether the transport is wrapped in TLS (with SNI for ``host``)."""
        return self.scheme in _TLS

    @property
    def host_header(self) -> str:
        """The ``Host`` header (the port only when it is not the default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.tls else 80) else f"{host}:{self.port}"

    @classmethod
    def of(cls, url: str, schemes: Collection[str] = SCHEMES) -> Origin:
        """The origin of ``url`` (read by :meth:`Url.parse`)."""
        return Url.parse(url, schemes).origin

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host_header}"


@dataclass(frozen=True, slots=True)
class Url:
    """A URL split into what a connection needs: its origin and request target."""

    origin: Origin
    target: str  # path and query, as the request line carries them

    @classmethod
    def parse(cls, url: str, schemes: Collection[str] = SCHEMES) -> Url:
        """Read ``url``; :class:`BadUrl` unless its scheme is one of ``schemes``
        and its host, port and path can go on the wire as they are."""
        if type(url) is not str:
            raise BadUrl("URL is not a string", expected="a str", received=url)
        wanted = " or ".join(f"{s}://host/path" for s in schemes)
        try:
            parts = urlsplit(url)
        except ValueError:  # an unclosed [ of an IPv6 host, say
            raise BadUrl("bad URL", expected=wanted, received=url) from None
        if parts.scheme not in schemes or not parts.hostname:
            raise BadUrl("bad URL", expected=wanted, received=url)
        if "@" in parts.netloc:
            # Credentials in a URL end up in logs; they belong in a header.
            raise BadUrl(
                "URL carries credentials",
                expected="a URL without user:password@",
                received=f"{parts.scheme}://...@{parts.netloc.rpartition('@')[2]}",
            )
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0:
            raise BadUrl("bad URL port", expected="a number from 1 to 65535", received=url)
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            host = ""
        if not (_HOST.fullmatch(host) or _IPV6.fullmatch(host)):
            raise BadUrl("bad URL host", expected="a valid host name", received=url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if not _REQUEST_TARGET.fullmatch(target):
            raise BadUrl(
                "bad URL path", expected="visible ASCII (percent-encode the rest)", received=url
            )
        tls = parts.scheme in _TLS
        return cls(Origin(parts.scheme, host, port or (443 if tls else 80)), target)

    @property
    def tls(self) -> bool:
        return self.origin.tls

    def __str__(self) -> str:
        return f"{self.origin}{self.target}"
