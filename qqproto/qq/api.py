"""The QQ OpenAPI (REST) as values: the calls to make.

A builder (:func:`send_text`, :func:`upload_media`, :func:`get_gateway_bot`,
...) returns an :class:`ApiCall`: method, path and JSON body, and the parser
of its answer. Nothing here knows the access token or performs the call, so
a call can be built, logged, compared and retried freely; the token joins only
in :meth:`ApiCall.to_request`, which makes the ``HttpRequest`` action, and it
never shows in a repr. The answer goes back through :meth:`ApiCall.parse`:
a typed result (from :mod:`qqproto.qq.results`), or an :class:`ApiError`
(from :mod:`qqproto.qq.codes`) that says what the platform refused and
whether trying again can help.

Spec: the QQ Official Bot API v2 reference (the "spec" of these modules'
comments), sections 1 (hosts, headers, gateway), 7 (sending), 8 (media
upload), 9 (errors) and 13 (other calls).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, NoReturn, Protocol, TypeVar
from urllib.parse import quote, urlsplit

from ..actions import HttpRequest
from ..errors import ConfigError, LocalProtocolError, ProtocolError
from ..http import HttpResponse
from ..url import BadUrl, Url
from .codes import check_response
from .results import (
    BotUser,
    GatewayInfo,
    SentMessage,
    UploadedMedia,
    no_result,
    parse_bot_user,
    parse_gateway_info,
    parse_sent_message,
    parse_uploaded_media,
)
from .scenes import Scene

__all__ = [
    "PRODUCTION_BASE_URL",
    "SANDBOX_BASE_URL",
    "ApiCall",
    "ApiConfig",
    "ApiResult",
    "FileType",
    "InteractionCode",
    "MsgType",
    "ReplyTicketLike",
    "ReplyTo",
    "Target",
    "acknowledge_interaction",
    "get_gateway",
    "get_gateway_bot",
    "get_me",
    "recall_message",
    "send_markdown",
    "send_media",
    "send_message",
    "send_text",
    "upload_media",
]

PRODUCTION_BASE_URL = "https://api.sgroup.qq.com"
SANDBOX_BASE_URL = "https://sandbox.api.sgroup.qq.com"

T = TypeVar("T")
_VISIBLE = frozenset(map(chr, range(0x21, 0x7F)))


def _refuse(problem: str, expected: str, received: object) -> NoReturn:
    """The caller asked for something the API does not allow: say what, and why."""
    raise LocalProtocolError(problem, expected=expected, received=received)


# -- configuration, targets, field values ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """Who calls (``app_id``, sent as ``X-Union-Appid``) and where (``base_url``).

    The base is configurable because the platform has more than one: the
    production host, the sandbox, and since 2026 ``https://api.bot.qq.com``.
    A trailing ``/`` is dropped.
    """

    app_id: str
    base_url: str = PRODUCTION_BASE_URL

    def __post_init__(self) -> None:
        if not isinstance(self.app_id, str) or not self.app_id or set(self.app_id) - _VISIBLE:
            raise ConfigError("app_id", "the bot's AppID (visible ASCII)", self.app_id)
        url = self.base_url
        expected = "http(s)://host[:port][/prefix]"
        try:  # the one URL parser checks the scheme, host, port and characters
            parsed = Url.parse(url, ("http", "https"))
        except BadUrl as bad:
            raise ConfigError("base_url", expected, url) from bad
        if "?" in parsed.target or "#" in url:  # calls' paths are appended to it
            raise ConfigError("base_url", expected, url)
        # Kept in ASCII (an IDN host IDNA-encoded), as it goes into every request.
        origin = parsed.origin
        ascii_url = f"{origin.scheme}://{origin.host_header}{parsed.target}"
        object.__setattr__(self, "base_url", ascii_url.rstrip("/"))

    @classmethod
    def sandbox(cls, app_id: str) -> ApiConfig:
        """The sandbox environment (``sandbox.api.sgroup.qq.com``)."""
        return cls(app_id, SANDBOX_BASE_URL)


#: Each scene's conversation path prefix.
_PATH_PREFIX = {
    Scene.GROUP: "/v2/groups/",
    Scene.C2C: "/v2/users/",
    Scene.GUILD_CHANNEL: "/channels/",
    Scene.GUILD_DM: "/dms/",
}


_V2 = (Scene.GROUP, Scene.C2C)
_GUILD_PAYLOAD = ("content", "embed", "ark", "image", "markdown")


def _segment(value: object, what: str) -> str:
    """``value`` percent-encoded as one path segment (``/``, ``?``, ``#`` included).

    ``.`` and ``..`` are refused: a server or proxy that normalizes paths
    would send them to another endpoint.
    """
    if not isinstance(value, str) or value in ("", ".", ".."):
        _refuse(f"bad {what}", "a non-empty id string", value)
    try:
        return quote(value, safe="")
    except UnicodeEncodeError:
        _refuse(f"bad {what}", "valid text", value)


@dataclass(frozen=True, slots=True)
class Target:
    """A conversation: a group, a user (C2C), a guild channel, or a guild DM session.

    ``id`` is the ``group_openid``, the ``user_openid``, the ``channel_id``, or
    the ``guild_id`` of the DM session (not ``src_guild_id``).
    """

    scene: Scene
    id: str

    def __post_init__(self) -> None:
        _segment(self.id, f"{self.scene.name.lower()} id")

    @classmethod
    def group(cls, group_openid: str) -> Target:
        return cls(Scene.GROUP, group_openid)

    @classmethod
    def c2c(cls, user_openid: str) -> Target:
        return cls(Scene.C2C, user_openid)

    @classmethod
    def channel(cls, channel_id: str) -> Target:
        return cls(Scene.GUILD_CHANNEL, channel_id)

    @classmethod
    def dm(cls, guild_id: str) -> Target:
        return cls(Scene.GUILD_DM, guild_id)

    @property
    def path(self) -> str:
        """The conversation's path, percent-encoded (``/v2/groups/<id>``)."""
        return _PATH_PREFIX[self.scene] + _segment(self.id, "id")


class MsgType(IntEnum):
    """``msg_type`` of a group/C2C message (guild bodies have none)."""

    TEXT = 0
    MARKDOWN = 2
    ARK = 3
    EMBED = 4
    MEDIA = 7


class FileType(IntEnum):
    """``file_type`` of a media upload: png/jpg, mp4, silk, any file."""

    IMAGE = 1
    VIDEO = 2
    VOICE = 3
    FILE = 4


class InteractionCode(IntEnum):
    """The ``code`` that acknowledges a button click (``INTERACTION_CREATE``)."""

    OK = 0
    FAILED = 1
    TOO_FREQUENT = 2
    DUPLICATE = 3
    NO_PERMISSION = 4
    ADMIN_ONLY = 5


def _member(kind: type[IntEnum], value: int) -> int:
    try:
        return int(kind(value))
    except ValueError:
        _refuse(f"bad {kind.__name__}", ", ".join(f"{m.name}={m.value}" for m in kind), value)


class ReplyTicketLike(Protocol):
    """What a passive reply references: any object with these three attributes.

    ``qqproto.qq.replies``' tickets fit, and so does :class:`ReplyTo`.
    ``msg_id`` must be the id of an *inbound* user message, never one the bot
    sent (spec 7.4); ``None`` for both ids makes the send proactive.
    """

    @property
    def msg_id(self) -> str | None: ...
    @property
    def event_id(self) -> str | None: ...
    @property
    def msg_seq(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class ReplyTo:
    """A hand-made reply ticket, for callers that keep their own ``msg_seq``."""

    msg_id: str | None = None
    event_id: str | None = None
    msg_seq: int | None = 1


# -- the call value ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiCall(Generic[T]):
    """One REST call, without the token: turn it into an action with
    :meth:`to_request`, and its answer into a result with :meth:`parse`.
    ``body`` is ``json_body`` encoded (compact UTF-8), fixed when built."""

    method: str
    path: str
    json_body: Mapping[str, Any] | None
    parser: Callable[[Any], T] = field(repr=False, compare=False)
    body: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        body = b""
        if self.json_body is not None:
            try:
                body = json.dumps(
                    self.json_body, ensure_ascii=False, allow_nan=False, separators=(",", ":")
                ).encode()
            except (TypeError, ValueError, RecursionError) as exc:  # incl. UnicodeEncodeError
                _refuse("request body is not JSON", "JSON values (no NaN, no lone surrogate)", exc)
        object.__setattr__(self, "body", body)

    def to_request(self, request_id: int, token: str, config: ApiConfig) -> HttpRequest:
        """The ``HttpRequest`` action, with ``Authorization: QQBot <token>`` and
        ``X-Union-Appid`` (and ``Content-Type`` when there is a JSON body)."""
        if not isinstance(token, str) or not token or set(token) - _VISIBLE:
            shown = f"<{len(token)} characters>" if isinstance(token, str) else type(token)
            _refuse("bad access token", "the bare token (no 'QQBot ' prefix, no spaces)", shown)
        headers = [("Authorization", f"QQBot {token}"), ("X-Union-Appid", config.app_id)]
        if self.json_body is not None:
            headers.append(("Content-Type", "application/json"))
        url = config.base_url + self.path
        return HttpRequest(request_id, self.method, url, tuple(headers), self.body)

    def parse(self, response: HttpResponse) -> T:
        """The typed result; :class:`ApiError` when the platform reports a failure,
        :class:`RemoteProtocolError` when the answer has the wrong shape."""
        return self.parser(check_response(response))

    def __repr__(self) -> str:
        return f"ApiCall({self.method} {self.path}, body=<{len(self.body)} bytes>)"


@dataclass(frozen=True, slots=True)
class ApiResult(Generic[T]):
    """What became of a REST call started with :meth:`BotProtocol.call`.

    ``delivered_earlier`` is True for a reply whose retry was answered with
    40054005 (that ``msg_id`` and ``msg_seq`` were used): an earlier attempt,
    whose answer never came, posted it. The call succeeded (``ok``), but the
    platform answered with no message, so ``result`` is None: the id of the
    message that landed is unknown. Otherwise ``result`` is what the call's
    answer parsed to, and None only on an error.
    """

    request_id: int
    call: ApiCall[T]
    result: T | None = None
    error: ProtocolError | None = None
    delivered_earlier: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


# -- builders ------------------------------------------------------------------------------


def get_gateway() -> ApiCall[GatewayInfo]:
    """``GET /gateway``: the WebSocket URL."""
    return ApiCall("GET", "/gateway", None, parse_gateway_info)


def get_gateway_bot() -> ApiCall[GatewayInfo]:
    """``GET /gateway/bot``: the URL, recommended shards and the session start budget."""
    return ApiCall("GET", "/gateway/bot", None, parse_gateway_info)


def get_me() -> ApiCall[BotUser]:
    """``GET /users/@me``: the bot's identity."""
    return ApiCall("GET", "/users/@me", None, parse_bot_user)


def _reply_fields(to: Target, reply: ReplyTicketLike) -> dict[str, Any]:
    # A ticket that knows its conversation (replies.ReplyTicket.target) must be
    # sent to it: another conversation's msg_id is 40034024 (spec 7.4).
    target = getattr(reply, "target", None)
    if isinstance(target, str) and target != to.id:
        _refuse("reply ticket for another conversation", f"a ticket for {to.id!r}", target)
    fields: dict[str, Any] = {}
    for key in ("msg_id", "event_id"):
        value = getattr(reply, key)
        if value is not None:
            if not isinstance(value, str) or not value:
                _refuse(f"bad {key}", "a non-empty string", value)
            fields[key] = value
    seq = reply.msg_seq
    if to.scene in _V2 and seq is not None:  # guild bodies have no msg_seq
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            _refuse("bad msg_seq", "an integer >= 1", seq)
        fields["msg_seq"] = seq
    return fields


def send_message(
    to: Target,
    *,
    content: str | None = None,
    markdown: str | Mapping[str, Any] | None = None,
    media: str | UploadedMedia | None = None,
    msg_type: MsgType | None = None,
    reply: ReplyTicketLike | None = None,
    reference: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ApiCall[SentMessage]:
    """``POST <target>/messages``, the general form of the ``send_*`` builders.

    ``msg_type`` follows from what is given (media, else markdown, else
    text) unless set, e.g. to ``ARK`` with the ark in ``extra``. ``reply``
    adds ``msg_id``/``event_id``/``msg_seq`` (a passive reply), ``reference``
    a quote (``message_reference``). ``extra`` adds fields such as
    ``keyboard``; it may not overwrite what the builder set. Guild scenes
    take no ``msg_type``, ``msg_seq`` or ``file_info`` media (send an
    ``image`` URL in ``extra``).
    """
    v2 = to.scene in _V2
    body: dict[str, Any] = {}
    if content is not None:
        if not isinstance(content, str):
            _refuse("bad content", "a string", content)
        body["content"] = content
    if markdown is not None:
        if not markdown or not isinstance(markdown, str | Mapping):
            _refuse("bad markdown", "text or a template object", markdown)
        body["markdown"] = {"content": markdown} if isinstance(markdown, str) else dict(markdown)
    if media is not None:
        info = media.file_info if isinstance(media, UploadedMedia) else media
        if not v2:
            _refuse("file_info media in a guild", "a group or C2C target", to.scene.name)
        if not isinstance(info, str) or not info:
            _refuse("bad media", "a file_info string", info)
        body["media"] = {"file_info": info}
    if v2:
        kind = msg_type
        if kind is None:
            kind = MsgType.MEDIA if media else MsgType.MARKDOWN if markdown else MsgType.TEXT
        if (kind == MsgType.MEDIA) != (media is not None):
            _refuse("msg_type and media disagree", "media exactly with MEDIA", (kind, media))
        if kind == MsgType.MEDIA and not (content or "").strip():
            body["content"] = " "  # spec 7.2: a media message's content may not be empty
        if kind == MsgType.TEXT and not content:
            _refuse("empty text message", "some content", content)
        body["msg_type"] = _member(MsgType, kind)
    elif msg_type is not None:
        _refuse("msg_type in a guild message", "no msg_type", msg_type)
    if reference is not None:
        if not isinstance(reference, str) or not reference:
            _refuse("bad reference", "a message id or REFIDX_ index", reference)
        body["message_reference"] = {"message_id": reference}
    if reply is not None:
        body.update(_reply_fields(to, reply))
    for key, value in (extra or {}).items():
        if key in body:
            _refuse("extra overwrites a field the builder set", "a new field", key)
        body[key] = value
    if not v2 and not any(body.get(key) for key in _GUILD_PAYLOAD):
        _refuse("empty guild message", "content, embed, ark, image or markdown", sorted(body))
    return ApiCall("POST", f"{to.path}/messages", body, parse_sent_message)


def send_text(
    to: Target,
    text: str,
    *,
    reply: ReplyTicketLike | None = None,
    reference: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ApiCall[SentMessage]:
    """A text message (``msg_type 0``)."""
    return send_message(to, content=text, reply=reply, reference=reference, extra=extra)


def send_markdown(
    to: Target,
    markdown: str | Mapping[str, Any],
    *,
    reply: ReplyTicketLike | None = None,
    reference: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ApiCall[SentMessage]:
    """A markdown message: native text, or ``{"custom_template_id": ..., "params": [...]}``."""
    return send_message(to, markdown=markdown, reply=reply, reference=reference, extra=extra)


def send_media(
    to: Target,
    media: str | UploadedMedia,
    *,
    content: str | None = None,
    reply: ReplyTicketLike | None = None,
    reference: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ApiCall[SentMessage]:
    """A media message (``msg_type 7``) with the ``file_info`` of an upload."""
    return send_message(
        to, content=content, media=media, reply=reply, reference=reference, extra=extra
    )


def upload_media(
    to: Target,
    file_type: FileType,
    *,
    url: str | None = None,
    data: bytes | None = None,
    srv_send_msg: bool = False,
    file_name: str | None = None,
) -> ApiCall[UploadedMedia]:
    """``POST <target>/files``: upload from ``url`` or inline ``data`` (base64-encoded here).

    ``srv_send_msg=True`` makes the platform send it at once, as a
    *proactive* message; the default only uploads, for :func:`send_media`.
    """
    if to.scene not in _V2:
        _refuse("media upload in a guild", "a group or C2C target", to.scene.name)
    if (url is None) == (data is None):
        _refuse("media upload needs one source", "url or data", "both" if url else "neither")
    body: dict[str, Any] = {"file_type": _member(FileType, file_type)}
    if url is not None:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            _refuse("bad media url", "an http(s) URL", url)
        body["url"] = url
    elif isinstance(data, bytes | bytearray | memoryview):
        body["file_data"] = base64.b64encode(data).decode("ascii")
    else:
        _refuse("bad media data", "bytes", type(data))
    body["srv_send_msg"] = bool(srv_send_msg)
    if file_name is not None:
        body["file_name"] = file_name
    return ApiCall("POST", f"{to.path}/files", body, parse_uploaded_media)


def recall_message(to: Target, message_id: str, *, hidetip: bool = False) -> ApiCall[None]:
    """``DELETE <target>/messages/<id>`` (group/C2C: within 2 minutes of sending).
    ``hidetip`` hides the "message recalled" tip; only guild channels take it."""
    path = f"{to.path}/messages/{_segment(message_id, 'message id')}"
    if to.scene is Scene.GUILD_CHANNEL:
        path += f"?hidetip={'true' if hidetip else 'false'}"
    return ApiCall("DELETE", path, None, no_result)


def acknowledge_interaction(
    interaction_id: str, code: InteractionCode = InteractionCode.OK
) -> ApiCall[None]:
    """``PUT /interactions/<id>``: until it is acknowledged, the user's client spins."""
    path = f"/interactions/{_segment(interaction_id, 'interaction id')}"
    return ApiCall("PUT", path, {"code": _member(InteractionCode, code)}, no_result)
