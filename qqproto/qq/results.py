"""What the QQ OpenAPI answers, as typed values, and the parsers that read them.

Each builder of :mod:`qqproto.qq.api` attaches one parser here to its call;
:meth:`~qqproto.qq.api.ApiCall.parse` runs it on the answer's JSON once
:func:`~qqproto.qq.codes.check_response` has found no failure in it. A parser
refuses a body of the wrong shape with a :class:`RemoteProtocolError` that
says which field was missing or of the wrong type. Unknown fields are kept
(``SentMessage.raw``) or ignored, never an error.

Spec: the QQ Official Bot API v2 reference, sections 1 (gateway), 7.4 (send
answers), 8 (uploads), 11 (the session start budget) and 13 (``/users/@me``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ..url import BadUrl, Url
from .codes import as_int

__all__ = [
    "BotUser",
    "GatewayInfo",
    "SentMessage",
    "SessionLimitExceeded",
    "SessionStartLimit",
    "UploadedMedia",
    "check_session_budget",
]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A send's answer. ``id`` is for recall and ``ref_idx`` for quoting: never
    use either as a reply's ``msg_id`` (spec 7.4). ``timestamp`` comes as an
    ISO string or as an int, and is kept as it came. ``raw`` is the whole
    body (a guild send answers with a full Message object)."""

    id: str
    timestamp: str | int | None = None
    ref_idx: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class UploadedMedia:
    """An upload's answer: send ``file_info`` with :func:`send_media` within ``ttl``
    seconds (0: long-lived); ``id`` is set when the platform sent it itself."""

    file_uuid: str
    file_info: str
    ttl: int
    id: str | None = None


@dataclass(frozen=True, slots=True)
class SessionStartLimit:
    """How many gateway sessions may still start; ``reset_after`` is in **ms**,
    ``max_concurrency`` sessions may start per 5 s."""

    total: int
    remaining: int
    reset_after: int
    max_concurrency: int


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    """``/gateway`` (url only) or ``/gateway/bot`` (with shards and the start budget)."""

    url: str
    shards: int | None = None
    session_start_limit: SessionStartLimit | None = None


@dataclass(frozen=True, slots=True)
class BotUser:
    """``GET /users/@me``: the bot's own identity."""

    id: str
    username: str = ""
    avatar: str = ""
    union_openid: str | None = None
    union_user_account: str | None = None


class SessionLimitExceeded(ProtocolError):
    """More shards were asked to start than ``session_start_limit.remaining`` allows."""

    def __init__(self, shards: int, limit: SessionStartLimit):
        self.shards = shards
        self.limit = limit
        super().__init__(
            f"not enough gateway session starts left ({limit.remaining} of {limit.total}; "
            f"the count resets in {limit.reset_after / 1000:.0f} s)",
            expected=f"at most {limit.remaining} shards",
            received=f"{shards} shards",
        )


def check_session_budget(info: GatewayInfo, shards: int | None = None) -> None:
    """Raise :class:`SessionLimitExceeded` unless ``shards`` sessions may start now.

    ``shards`` defaults to the count the platform recommends. A remaining
    count of 0 refuses even one shard (nonebot-adapter-qq lets that through).
    """
    limit = info.session_start_limit
    if limit is None:
        raise LocalProtocolError(
            "no session start budget",
            expected="a GET /gateway/bot result",
            received="a /gateway result",
        )
    wanted = info.shards if shards is None else shards
    if not isinstance(wanted, int) or wanted < 1:
        raise LocalProtocolError("bad shard count", expected="at least 1", received=wanted)
    if wanted > limit.remaining:
        raise SessionLimitExceeded(wanted, limit)


# -- the parsers the builders of api.py attach -----------------------------------------------


def _need(body: dict[str, Any], key: str, what: str, kind: type[str | int] = str) -> Any:
    value = as_int(body.get(key)) if kind is int else body.get(key)
    if not isinstance(value, kind):
        expected = f"{'an integer' if kind is int else 'a string'} {key!r}"
        raise RemoteProtocolError(f"bad {what}", expected=expected, received=body)
    return value


def _object(data: object, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise RemoteProtocolError(f"bad {what}", expected="a JSON object", received=data)
    return data


def _maybe(body: object, key: str) -> str | None:
    value = body.get(key) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def parse_sent_message(data: object) -> SentMessage:
    body = _object(data, "send response")
    stamp = body.get("timestamp")
    if isinstance(stamp, bool) or not isinstance(stamp, str | int):
        stamp = None
    ref_idx = _maybe(body.get("ext_info"), "ref_idx")
    return SentMessage(_need(body, "id", "send response"), stamp, ref_idx, body)


def parse_uploaded_media(data: object) -> UploadedMedia:
    body, what = _object(data, "upload response"), "upload response"
    return UploadedMedia(
        _need(body, "file_uuid", what),
        _need(body, "file_info", what),
        _need(body, "ttl", what, int),
        _maybe(body, "id") or None,
    )


def parse_gateway_info(data: object) -> GatewayInfo:
    body, what = _object(data, "gateway response"), "gateway response"
    url = _need(body, "url", what)
    try:
        Url.parse(url, ("ws", "wss"))
    except BadUrl:
        raise RemoteProtocolError(
            f"bad {what}", expected="a ws:// or wss:// url", received=url
        ) from None
    if "session_start_limit" not in body and "shards" not in body:
        return GatewayInfo(url)  # GET /gateway
    limit = _object(body.get("session_start_limit"), "session_start_limit")
    keys = ("total", "remaining", "reset_after", "max_concurrency")
    numbers = (_need(limit, key, "session_start_limit", int) for key in keys)
    return GatewayInfo(url, _need(body, "shards", what, int), SessionStartLimit(*numbers))


def parse_bot_user(data: object) -> BotUser:
    body = _object(data, "users/@me response")
    return BotUser(
        _need(body, "id", "users/@me response"),
        _maybe(body, "username") or "",
        _maybe(body, "avatar") or "",
        _maybe(body, "union_openid"),
        _maybe(body, "union_user_account"),
    )


def no_result(data: object) -> None:
    return None
