"""The QQ OpenAPI business error codes as data, and the error that carries them.

An error body carries ``code`` (old) and ``err_code`` (new), and the two can
differ (``code: 850026`` with ``err_code: 40034001``), so :class:`ApiError`
keeps both and :meth:`ApiError.matches` checks either. :func:`check_response`
tells a failed answer from a good one (spec 9: 201/202 and a 2xx body with a
nonzero ``err_code`` are failures). :mod:`qqproto.qq.api` re-exports both.

Every row is in the protocol reference (the QQ Official Bot API v2 "spec",
sections 1.2, 7.3, 7.4, 8 and 9). The names follow the official table's names where it has
one (``PUSH_MSG_ASYNC_OK``); where the reference lumps several codes under one
meaning and no source tells them apart, the names carry the number instead of
an invented distinction.

The flags are the decisions a client takes on a code, so that no caller has
to keep its own list of numbers:

- ``AUTH``: drop the cached access token, fetch a new one, retry once.
- ``RETRYABLE``: a transient failure; the same request may succeed later.
- ``RATE_LIMITED``: too fast; slow down and retry later.
- ``DEAD_MSG_ID``: the ``msg_id``/``event_id`` cannot be replied to (unknown,
  expired, out of scope, the bot's own message, or its reply budget spent);
  retrying it is pointless: drop the reply or send it proactively.
- ``DUPLICATE``: this ``(msg_id, msg_seq)`` was used already; when it answers
  a *retry*, the first attempt was most likely delivered.
- ``AUDIT_PENDING``: accepted but held for manual review; the result arrives
  as a ``MESSAGE_AUDIT_PASS``/``MESSAGE_AUDIT_REJECT`` event with the
  ``audit_id`` of the body.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .._json import loads
from ..errors import RemoteProtocolError
from ..http import HttpResponse

__all__ = ["CODES", "ApiCode", "ApiError", "CodeFlag", "as_int", "check_response", "lookup"]

_DECIMAL = re.compile(r"-?[0-9]{1,20}")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


class CodeFlag(enum.Flag):
    """What a client does about a code (see the module docstring)."""

    NONE = 0
    AUTH = enum.auto()
    RETRYABLE = enum.auto()
    RATE_LIMITED = enum.auto()
    DEAD_MSG_ID = enum.auto()
    DUPLICATE = enum.auto()
    AUDIT_PENDING = enum.auto()


_AUTH = CodeFlag.AUTH
_RETRY = CodeFlag.RETRYABLE
_RATE = CodeFlag.RATE_LIMITED
_DEAD = CodeFlag.DEAD_MSG_ID
_NONE = CodeFlag.NONE


class ApiCode(enum.IntEnum):
    """A known business code: ``ApiCode(40034024).name == "MSG_ID_INVALID"``.

    Each member also has ``meaning`` (English, for logs) and ``flags``.
    """

    meaning: str
    flags: CodeFlag

    def __new__(cls, code: int, meaning: str = "", flags: CodeFlag = CodeFlag.NONE) -> ApiCode:
        # The defaults only let type checkers accept ApiCode(40034024), a lookup.
        # (Enum calls this with all three, once per member, at class creation.)
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        member.flags = flags
        return member

    # -- token and app identity (spec 1.2, 1.3, 9) --------------------------------------
    TOKEN_MISSING = 11241, "access token missing", _AUTH
    TOKEN_CHECK_FAILED = 11242, "token check failed (system error; retry once)", _RETRY
    TOKEN_WRONG = 11243, "access token wrong", _AUTH
    TOKEN_EXPIRED = 11244, "access token expired or does not exist; fetch a new one", _AUTH
    APPID_WRONG = 11251, "appid wrong", _NONE
    APPID_MISSING = 11261, "appid missing", _NONE
    NO_APPID = 11275, "no appid", _NONE
    NO_API_PERMISSION = 11253, "the app lacks permission for this API", _NONE
    API_BANNED = 11254, "this API is banned for the app", _NONE
    BOT_BANNED = 11265, "the bot is banned", _NONE
    INVALID_APPID_OR_SECRET = 100016, "token endpoint: invalid appid or secret", _NONE
    # -- rate limits ----------------------------------------------------------------------
    CHANNEL_WRITE_RATE_LIMIT = 20028, "guild channel write rate limit", _RATE
    MSG_LIMIT_EXCEED = 22009, "message send frequency limit", _RATE
    PROACTIVE_RATE_LIMIT = 40034100, "proactive message frequency limit", _RATE
    # -- guild send rules -----------------------------------------------------------------
    SESSION_NOT_EXIST = 304018, "the bot is not connected to the gateway", _NONE
    PUSH_TIME = 304022, "push time restriction (no proactive pushes now)", _NONE
    PUSH_MSG_ASYNC_OK = 304023, "proactive message held for manual audit", CodeFlag.AUDIT_PENDING
    REPLY_MSG_ASYNC_OK = 304024, "reply held for manual audit", CodeFlag.AUDIT_PENDING
    MSG_ID = 304026, "guild: the replied msg_id is wrong", _DEAD
    MSG_EXPIRE = 304027, "guild: the replied message expired", _DEAD
    MSG_PROTECT = 304028, "guild: a message that did not @ the bot cannot be replied to", _DEAD
    CANNOT_REPLY_TO_BOT_MESSAGE = 50045, "cannot reply to the bot's own message", _DEAD
    EMPTY_MESSAGE = 50006, "the message is empty", _NONE
    # -- markdown -------------------------------------------------------------------------
    NO_MARKDOWN_TEMPLATE_PERMISSION = 304036, "no permission for the markdown template", _NONE
    MARKDOWN_40034124 = 40034124, "markdown permission or parameter problem", _NONE
    MARKDOWN_40034127 = 40034127, "markdown permission or parameter problem", _NONE
    MARKDOWN_CONTENT_INVALID = 50055, "invalid markdown content", _NONE
    MARKDOWN_CONTENT_NOT_ALLOWED = 50056, "markdown content is not allowed", _NONE
    MARKDOWN_NATIVE_OR_TEMPLATE = 50057, "markdown is either native or a template", _NONE
    # -- passive replies (spec 7.3, 7.4) --------------------------------------------------
    REPLY_MSG_ID_EXPIRED = 40034005, "the replied msg_id expired", _DEAD
    MSG_ID_EXPIRED = 40034031, "msg_id expired", _DEAD
    MESSAGE_ID_EXPIRED = 304103, "message id expired", _DEAD
    MSG_ID_INVALID = 40034024, "msg_id invalid or out of scope (not an inbound user message)", _DEAD
    EVENT_ID_INVALID = 40034025, "event_id invalid", _DEAD
    EVENT_ID_EXPIRED = 40034026, "event_id expired", _DEAD
    EVENT_NOT_REPLYABLE = 40034027, "the event does not support replies", _DEAD
    PASSIVE_REPLY_LIMIT = 40034128, "passive reply time window or count exceeded", _DEAD
    DUPLICATE_MSG_SEQ = 40054005, "duplicate (msg_id, msg_seq)", CodeFlag.DUPLICATE
    # -- group and C2C sends --------------------------------------------------------------
    CONTENT_VIOLATION = 40034006, "the content violates the rules", _NONE
    BOT_NOT_IN_GROUP_40034101 = 40034101, "the bot is not a member of the group", _NONE
    BOT_NOT_IN_GROUP_40054003 = 40054003, "the bot is not a member of the group", _NONE
    PROACTIVE_NO_PERMISSION = 40034105, "proactive message: no permission", _NONE
    BOT_MUTED = 40054002, "the bot is muted in the group", _NONE
    MESSAGE_TOO_LONG_40054007 = 40054007, "the message is too long", _NONE
    MESSAGE_TOO_LONG_40054018 = 40054018, "the message is too long", _NONE
    URL_NOT_ALLOWED = 40054010, "URL not allowed (register it in the console)", _NONE
    BOT_OFFLINE = 40054016, "the bot is offline", _NONE
    SEND_RETRY_LATER_50055001 = 50055001, "transient send failure, retry later", _RETRY
    SEND_RETRY_LATER_50055002 = 50055002, "transient send failure, retry later", _RETRY
    SECURITY_1100100 = 1100100, "security / anti-spam hit", _NONE
    SECURITY_1100101 = 1100101, "security / anti-spam hit", _NONE
    SECURITY_1100102 = 1100102, "security / anti-spam hit", _NONE
    SECURITY_1100103 = 1100103, "security / anti-spam hit", _NONE
    SECURITY_1100104 = 1100104, "security / anti-spam hit", _NONE
    # -- rich media (spec 8) --------------------------------------------------------------
    MEDIA_DOWNLOAD_FAILED = 40034001, "rich media download failed", _NONE
    MEDIA_FORMAT_UNSUPPORTED = 40034002, "rich media format not supported", _NONE
    RICH_MEDIA_DOWNLOAD_FAILED = 850026, "rich media download failed (old code)", _NONE
    RICH_MEDIA_FORMAT_UNSUPPORTED = 850019, "rich media format not supported (old code)", _NONE
    RICH_MEDIA_TOO_LARGE = 850031, "rich media file too large", _NONE
    RICH_MEDIA_FETCH_FAILED = 304082, "rich media fetch failed", _NONE
    RICH_MEDIA_CONVERT_FAILED = 304083, "rich media convert failed", _NONE


#: Every known code, by number (read-only).
CODES: Mapping[int, ApiCode] = MappingProxyType({member.value: member for member in ApiCode})


def lookup(code: int | None) -> ApiCode | None:
    """The known code ``code``, or None for an unknown code (or no code at all)."""
    if code is None:
        return None
    return CODES.get(code)


# -- errors -------------------------------------------------------------------------------


def as_int(value: object) -> int | None:
    """An int64 from an int or a decimal string (bodies use both), else None.

    The platform's codes and counts are int64: a larger number a body carries
    is no code, and could reach float arithmetic (``reset_after / 1000``).
    """
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        number = int(value)
    else:
        return None
    return number if _INT64_MIN <= number <= _INT64_MAX else None


def _code_text(number: int | None, known: ApiCode | None) -> str:
    return f"{number} {known.name}" if known is not None else str(number)


class ApiError(RemoteProtocolError):
    """The platform refused a call (or answered 201/202, "async success", which
    still carries an error body and is a failure until an event says otherwise).

    ``code`` and ``err_code`` are both kept: they differ on some errors
    (``850026`` / ``40034001``), so :meth:`matches` checks either. ``name``
    is the known code's name (``err_code``'s first), ``flags`` what the
    known codes tell a client to do (:class:`CodeFlag`).
    """

    def __init__(
        self,
        status: int,
        *,
        code: int | None = None,
        err_code: int | None = None,
        message: str = "",
        trace_id: str | None = None,
        audit_id: str | None = None,
        data: object = None,
    ):
        self.status = status
        self.code = code
        self.err_code = err_code
        self.message = message
        self.trace_id = trace_id
        self.audit_id = audit_id
        self.data = data
        main = err_code if err_code not in (None, 0) else code
        known = [k for k in (lookup(err_code), lookup(code)) if k is not None]
        self.known: ApiCode | None = known[0] if known else None
        self.flags = CodeFlag.NONE
        for k in known:
            self.flags |= k.flags
        text = f"QQ API error: HTTP {status}"
        if main is not None:
            text += f", code {_code_text(main, lookup(main))}"
            other = code if main == err_code else None
            if other not in (None, 0, main):
                text += f" (old code {_code_text(other, lookup(other))})"
        if message:
            text += f": {message}"
        if audit_id:
            text += f" [audit_id {audit_id}]"
        if trace_id:
            text += f" [trace {trace_id}]"
        super().__init__(text)

    @property
    def name(self) -> str | None:
        """The known code's NAME (``MSG_ID_INVALID``), or None for an unknown code."""
        return self.known.name if self.known is not None else None

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed later: HTTP 429 and 5xx, and codes
        the table marks transient or rate-limited; other 4xx are not."""
        if self.status == 429 or self.status >= 500:
            return True
        return bool(self.flags & (CodeFlag.RETRYABLE | CodeFlag.RATE_LIMITED))

    @property
    def token_rejected(self) -> bool:
        """True on HTTP 401 or a token code: fetch a new token, retry once."""
        return self.status == 401 or bool(self.flags & CodeFlag.AUTH)

    def matches(self, *codes: int) -> bool:
        """True when ``code`` or ``err_code`` is one of ``codes``."""
        return any(c is not None and c in codes for c in (self.code, self.err_code))

    @classmethod
    def from_response(cls, response: HttpResponse, data: object) -> ApiError:
        """The error an error answer carries; ``data`` is its parsed JSON, if any."""
        trace = response.header("x-tps-trace-id")
        if not isinstance(data, dict):
            text = response.body[:200].decode("utf-8", "replace").strip()
            return cls(response.status, message=text, trace_id=trace, data=data)
        message = data.get("message", "")
        audit = data.get("data")
        audit = audit.get("message_audit") if isinstance(audit, dict) else None
        audit_id = audit.get("audit_id") if isinstance(audit, dict) else None
        trace_body = data.get("trace_id")
        return cls(
            response.status,
            code=as_int(data.get("code")),
            err_code=as_int(data.get("err_code")),
            message=message if isinstance(message, str) else json.dumps(message),
            trace_id=trace or (str(trace_body) if trace_body not in (None, "") else None),
            audit_id=str(audit_id) if audit_id not in (None, "") else None,
            data=data,
        )


def _is_error_body(data: dict[str, Any]) -> bool:
    if "err_code" in data:
        return as_int(data["err_code"]) != 0
    return "message" in data and as_int(data.get("code")) not in (None, 0)


def check_response(response: HttpResponse) -> Any:
    """The JSON of a successful answer (None when empty), or raise :class:`ApiError`.

    Success is 2xx except 201/202, and a body without a nonzero ``err_code``
    (nor, lacking ``err_code``, a nonzero ``code`` beside a ``message``).
    """
    status = response.status
    if 200 <= status < 300 and status not in (201, 202):
        if not response.body.strip():
            return None
        data = response.json()
        if isinstance(data, dict) and _is_error_body(data):
            raise ApiError.from_response(response, data)
        return data
    try:
        data = loads(response.body) if response.body.strip() else None
    except (ValueError, RecursionError):
        data = None
    raise ApiError.from_response(response, data)
