"""QQWebhook: the platform's HTTP callbacks, served sans-IO (spec section 10).

In webhook mode the platform POSTs each event to the bot instead of pushing
it down a WebSocket: the same ``{id, op, d, s, t}`` envelope, signed with the
ed25519 key of the bot's secret (:mod:`qqproto.qq.signing`). This object is
that endpoint, on the shared server piece (:class:`~qqproto.listener.HttpService`):
the driver listens, and each request is checked and answered here:

- a request whose ``X-Signature-Ed25519`` does not sign
  ``X-Signature-Timestamp`` + the raw body: 401, and nothing else happens;
- a timestamp further than ``max_skew`` from the wall clock: 401 (a replay);
- a signed body that is no JSON object, or an op other than 0 and 13: 400;
- op 13 (the console's check of the URL): 200 with ``plain_token`` and our
  signature of ``event_ts`` + ``plain_token``;
- op 0 (a dispatch): 200 with ``{"op": 12, "d": 0}``, and the typed event (the
  gateway's very types) delivered once: the platform retries a callback, so
  an envelope id seen in the last ``dedup_ttl`` seconds is acknowledged again
  and not delivered;
- a wrong path is 404, another method 405, a body over ``max_body_size`` 413
  (the HTTP piece answers those).

Every refusal is delivered as a :class:`WebhookRefused` value, for the
application to see and log. Nothing here raises on what a client sends.

An unsigned op 13 is answered too: the platform's own example carries no
signature headers (spec 10.3). But the answer is a signature made with the
very key callbacks are checked with, so this is a signing oracle unless it is
bounded: only a ``plain_token`` of letters, digits, ``-`` and ``_`` and an
``event_ts`` of digits are signed. Their concatenation holds no ``{``, so no
signature this endpoint hands out can ever pass as a callback's.

Time: the driver's ``now`` is monotonic, and a timestamp is wall time, so
``wall_offset`` (wall time minus ``now``, set by whoever starts the service)
turns one into the other.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from ..actions import Deliver
from ..contract import Peer
from ..errors import ConfigError, ProtocolViolation, RemoteProtocolError
from ..http_server import DEFAULT_MAX_BODY_SIZE, Dropped, Refused, Request
from ..listener import HttpService
from ..ttl import TTLMap
from .decode import EventDecoder, untyped_event
from .events import Event
from .signing import CallbackKey

__all__ = ["ACK", "Handled", "QQWebhook", "WebhookConfig", "WebhookRefused"]

#: The acknowledgement of a dispatch (spec 10.4: the platform reads the status;
#: ``d: 1`` would ask it to deliver again).
ACK: Final = b'{"op":12,"d":0}'
_JSON: Final = (("Content-Type", "application/json"),)
#: What an op 13 may ask us to sign (see the module docstring).
_PLAIN_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{1,128}\Z")
_DIGITS: Final = re.compile(r"[0-9]{1,20}\Z")


@dataclass(frozen=True)
class WebhookConfig:
    """Where to serve one bot's callbacks, and how strictly."""

    app_id: str
    secret: str = field(repr=False)
    host: str = "127.0.0.1"
    #: The platform calls HTTPS on 80, 443, 8080 or 8443 only; behind a proxy, any.
    port: int = 8443
    path: str = "/"
    #: A timestamp further than this (seconds) from the wall clock is refused.
    max_skew: float = 300.0
    #: Wall time minus the driver's ``now`` (``time.time() - time.monotonic()``
    #: for the drivers); the bots fill it in, anything else must say it.
    wall_offset: float | None = None
    #: How long an envelope id is remembered (the platform retries callbacks).
    dedup_ttl: float = 3600.0
    max_body_size: int = DEFAULT_MAX_BODY_SIZE

    def __post_init__(self) -> None:
        if not self.secret:
            raise ConfigError("secret", "the bot's AppSecret", "<empty>")
        if not self.path.startswith("/"):
            raise ConfigError("path", "a path starting with /", self.path)
        if not 0 <= self.port <= 65535:
            raise ConfigError("port", "0 to 65535", self.port)
        if not self.max_skew > 0:
            raise ConfigError("max_skew", "a positive number of seconds", self.max_skew)


@dataclass(frozen=True, slots=True)
class WebhookRefused:
    """A request the endpoint refused: the HTTP status it got, and why."""

    status: int
    why: str
    peer: Peer | None = None

    def __str__(self) -> str:
        where = f" from {self.peer}" if self.peer else ""
        return f"callback refused with {self.status}{where}: {self.why}"


@dataclass(frozen=True, slots=True)
class Handled:
    """The answer to one request (``status`` and ``body``), and what it
    delivers to the application."""

    status: int
    body: bytes
    delivered: tuple[object, ...] = ()


def _refused(status: int, why: str, peer: Peer | None) -> Handled:
    return Handled(status, why.encode(), (WebhookRefused(status, why, peer),))


def _op(body: bytes) -> object:
    """The ``op`` of a body that may be anything (None when it has none)."""
    try:
        return _ENVELOPE.decode(body).op
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError):
        return None


class _Envelope(msgspec.Struct, gc=False):
    op: Any = None
    d: Any = None


_ENVELOPE: Final = msgspec.json.Decoder(_Envelope)


class QQWebhook(HttpService):
    """One bot's callback endpoint (see the module docstring)."""

    name = "webhook"

    def __init__(self, config: WebhookConfig, *, ids: Any = None) -> None:
        if config.wall_offset is None:
            raise ConfigError(
                "wall_offset",
                "wall time minus the driver's clock (time.time() - time.monotonic())",
                None,
            )
        self.config = config
        #: Wall time minus the driver's clock. Whoever runs the endpoint may set
        #: it again as the host's clock moves (an NTP step, a suspend); the
        #: ``qqproto qq serve`` command does so every minute.
        self.wall_offset: float = config.wall_offset
        self.key = CallbackKey(config.secret)
        self._decoder = EventDecoder()
        self._seen: TTLMap[str, None] = TTLMap(config.dedup_ttl)
        #: Dispatches acknowledged again and not delivered (the platform retried them).
        self.redeliveries = 0
        super().__init__(
            config.host,
            config.port,
            {config.path: ("POST",)},
            max_body_size=config.max_body_size,
            ids=ids,
        )

    @property
    def bot_id(self) -> str | None:
        """The bot's user id: guild messages @ it, and it leaves their text
        as the gateway's decoder leaves it (set it once known: ``GET /users/@me``,
        or the gateway's READY; a ``BotProtocol`` does)."""
        return self._decoder.bot_id

    @bot_id.setter
    def bot_id(self, bot_id: str | None) -> None:
        self._decoder.bot_id = bot_id

    # -- requests --------------------------------------------------------------------------

    def on_request(self, conn: int, request: Request, now: float) -> None:
        handled = self.handle(request, now, self.peers.get(conn))
        self._out += [Deliver(value) for value in handled.delivered]  # before what follows
        headers = _JSON if handled.status == 200 else ()
        self.respond(conn, handled.status, headers, handled.body)

    def handle(self, request: Request, now: float, peer: Peer | None = None) -> Handled:
        """What one request gets: the answer, and the values for the application
        (the table of the module docstring). No I/O: :meth:`on_request` writes it."""
        signature = request.header("x-signature-ed25519")
        timestamp = request.header("x-signature-timestamp")
        if signature is None or timestamp is None:
            if _op(request.body) == 13:  # only op 13 may come unsigned (spec 10.3)
                return self._validate(request.body, peer)
            return _refused(401, "no X-Signature-Ed25519 and X-Signature-Timestamp", peer)
        if not self.key.verify(signature, timestamp.encode() + request.body):
            why = "the signature does not match the body"
            app = request.header("x-bot-appid")
            if app is not None and app != self.config.app_id:  # the likeliest cause: say it
                why += f" (X-Bot-Appid {app[:24]!r} names another bot)"
            return _refused(401, why, peer)
        wall = now + self.wall_offset
        if not _DIGITS.match(timestamp) or abs(wall - int(timestamp)) > self.config.max_skew:
            return _refused(401, f"timestamp {timestamp[:24]!r} is outside the window", peer)
        try:
            op, s, t, event_id, body = self._decoder.decode_frame(request.body)
        except RemoteProtocolError:
            return _refused(400, "the body is no JSON object", peer)
        if op == 13 and type(op) is int:
            return self._validate(request.body, peer)
        if op == 0 and type(op) is int:
            return Handled(200, ACK, self._dispatch(s, t, event_id, body, now))
        return _refused(400, f"op {op!r} is no callback op (0 or 13)", peer)

    def _validate(self, body: bytes, peer: Peer | None) -> Handled:
        try:
            d = _ENVELOPE.decode(body).d
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, RecursionError):
            d = None  # a body json reads and msgspec does not (a lone surrogate): no token
        token = d.get("plain_token") if isinstance(d, dict) else None
        event_ts = d.get("event_ts") if isinstance(d, dict) else None
        if not (isinstance(token, str) and _PLAIN_TOKEN.match(token)):
            return _refused(400, "op 13 without a plain_token of letters and digits", peer)
        if not (isinstance(event_ts, str) and _DIGITS.match(event_ts)):
            return _refused(400, "op 13 without an event_ts of digits", peer)
        signature = self.key.sign((event_ts + token).encode()).hex()
        return Handled(200, json.dumps({"plain_token": token, "signature": signature}).encode())

    def _dispatch(self, s: Any, t: Any, event_id: Any, body: Any, now: float) -> tuple[object, ...]:
        """What a dispatch delivers: its event once per envelope id (and, for a
        payload that broke its type, the problem beside the raw dispatch)."""
        if type(event_id) is str and not self._seen.add(event_id, None, now):
            self.redeliveries += 1  # acknowledged again, delivered once
            return ()
        if isinstance(body, Event):
            return (body,)
        seq = s if type(s) is int else None
        event, problem = untyped_event(self._decoder, seq, t, event_id, body)
        values: list[object] = []
        if problem is not None:
            values.append(ProtocolViolation(problem))
        if event is not None:
            values.append(event)
        return tuple(values)

    # -- refusals --------------------------------------------------------------------------

    def on_refused(self, conn: int, refused: Refused | Dropped, now: float) -> None:
        status = refused.status if isinstance(refused, Refused) else 400
        self._out.append(Deliver(WebhookRefused(status, refused.why, self.peers.get(conn))))

    def __repr__(self) -> str:
        return (
            f"QQWebhook({self.config.host}:{self.port}{self.config.path}, "
            f"state={self.state.name}, redeliveries={self.redeliveries})"
        )
