"""What OneBot's serving side is told and tells: its configuration, its values,
and the checks a request passes before anything else happens.

:class:`~qqproto.onebot.reverse.OneBotServer` uses them; they stand apart so
that a reader (or a port) finds the rules in one short place:

- :func:`check_token`: ``Authorization: Bearer <t>`` (or go-cqhttp's
  ``Token <t>``), or the ``access_token`` query only without a header; none
  is 401, a wrong one 403; an empty ``Bearer `` is none (spec 1.6, 7.1);
- :func:`check_signature`: v11's ``X-Signature: sha1=<hex HMAC-SHA1>`` of the
  raw body (spec 1.2); missing 401, wrong 403.

Both compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Final, Literal

from ..contract import Peer
from ..errors import ConfigError
from ..http_server import Request
from .config import DEFAULT_MAX_MESSAGE_SIZE
from .http_api import HttpApi

__all__ = [
    "IMPL_NAME",
    "ROLES",
    "Connected",
    "Disconnected",
    "Role",
    "ServeConfig",
    "ServeRefused",
    "check_signature",
    "check_token",
]

Role = Literal["universal", "event", "api"]
ROLES: Final[dict[str, Role]] = {"universal": "universal", "event": "event", "api": "api"}
#: v12's grammar for implementation names (``walle-q``, ``go-cqhttp.v2.3``).
IMPL_NAME: Final = re.compile(r"[a-z][\-a-z0-9]*(\.[\-a-z0-9]+)*")


@dataclass(frozen=True)
class ServeConfig:
    """Where to listen for implementations, and what to ask of them."""

    host: str = "127.0.0.1"
    port: int = 8080
    #: The token implementations must present; None lets everyone in.
    access_token: str | None = field(default=None, repr=False)
    #: The path reverse WebSockets dial.
    ws_path: str = "/"
    #: The path implementations POST events to (v11 HTTP POST, v12 webhook).
    event_path: str = "/onebot/event"
    #: v11 HTTP POST: the HMAC-SHA1 key of ``X-Signature`` (None: unsigned).
    secret: str | None = field(default=None, repr=False)
    #: Seconds a POSTed event's answer waits for the application's quick
    #: operation (:meth:`OneBotServer.quick_reply`); 0: 204 at once.
    quick_window: float = 0.0
    #: The implementation's HTTP API (v11 ``POST /<action>``, v12 ``POST /``),
    #: for actions to an account with no WebSocket here; None: none.
    api_url: str | None = None
    #: The API's version; None: the version the account's events speak (11
    #: before any came).
    api_version: Literal[11, 12] | None = None
    #: Seconds an action waits for its answer.
    call_timeout: float = 30.0
    #: A connection is dead after this many heartbeat intervals without a byte.
    heartbeat_factor: float = 2.5
    #: Without heartbeats: a ping after this many seconds of silence (None: never)...
    ping_interval: float | None = 30.0
    #: ...and dead when nothing comes this many seconds after it.
    ping_timeout: float = 20.0
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: The largest event body POSTed (read whole before its signature is checked).
    max_body_size: int = 1024 * 1024
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("ws_path", "event_path"):
            if not getattr(self, name).startswith("/"):
                raise ConfigError(name, "a path starting with /", getattr(self, name))
        if self.ws_path == self.event_path:
            raise ConfigError("event_path", "a path other than ws_path", self.event_path)
        if self.api_url is not None:
            HttpApi(self.api_url, self.api_version or 11)  # checked now, named api_url
        if not 0 <= self.quick_window <= 60:
            raise ConfigError("quick_window", "0 to 60 seconds", self.quick_window)
        if self.access_token == "":
            raise ConfigError("access_token", "a token, or None for none", "<empty>")
        if self.secret == "":
            raise ConfigError("secret", "a secret, or None for none", "<empty>")
        if not self.call_timeout > 0:
            raise ConfigError("call_timeout", "a positive number of seconds", self.call_timeout)
        if not 1 < self.heartbeat_factor <= 3:
            raise ConfigError("heartbeat_factor", "above 1, at most 3", self.heartbeat_factor)


@dataclass(frozen=True, slots=True)
class Connected:
    """An implementation's WebSocket was accepted for ``self_id`` (None: a v12
    one that has not said yet) in ``role``; ``replaced`` when it pushed out an
    older one."""

    conn: int
    self_id: str | None
    role: Role
    version: int
    peer: Peer
    replaced: bool = False
    #: The implementation's name, as a v12 one says it (``12.<impl>``, or ``X-Impl``).
    impl: str | None = None


@dataclass(frozen=True, slots=True)
class Disconnected:
    """A connection ended, and why; its actions in flight ended with it."""

    conn: int
    self_id: str | None
    role: Role
    why: str


@dataclass(frozen=True, slots=True)
class ServeRefused:
    """A request or upgrade refused with ``status``, and why."""

    status: int
    why: str
    peer: Peer | None = None

    def __str__(self) -> str:
        where = f" from {self.peer}" if self.peer else ""
        return f"refused with {self.status}{where}: {self.why}"


def check_token(request: Request, token: str | None) -> tuple[int, str]:
    """(0, "") when the request's token passes (or none is asked for); else
    the status and why: 401 when it presents none, 403 when it presents a
    wrong one. ``Authorization: Bearer <t>`` (or go-cqhttp's ``Token <t>``)
    counts first; an empty one (NapCat's ``Bearer ``) counts as none, and
    the ``access_token`` query is read then."""
    if token is None:
        return 0, ""
    offered = ""
    header = (request.header("authorization") or "").strip()
    if header:
        scheme, _, rest = header.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return 403, f"Authorization scheme {scheme[:20]!r} (Bearer or Token)"
        offered = rest.strip()
    if not offered:
        offered = (request.query.get("access_token") or [""])[-1]
    if not offered:
        return 401, "no access token"
    if not hmac.compare_digest(offered.encode(), token.encode()):
        return 403, "wrong access token"
    return 0, ""


def check_signature(request: Request, secret: str | None) -> tuple[int, str]:
    """(0, "") when the body is signed with ``secret`` (or none is set); else
    the status and why."""
    if secret is None:
        return 0, ""
    signature = request.header("x-signature")
    if signature is None:
        return 401, "no X-Signature"
    expected = "sha1=" + hmac.new(secret.encode(), request.body, hashlib.sha1).hexdigest()
    if not hmac.compare_digest(signature.strip().lower().encode(), expected.encode()):
        return 403, "X-Signature does not match the body"
    return 0, ""
