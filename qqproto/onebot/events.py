"""OneBot events, v11 and v12, in one model.

:func:`decode_event` reads one JSON object an implementation pushed and gives
a :class:`MessageEvent`, :class:`NoticeEvent`, :class:`RequestEvent` or
:class:`MetaEvent`, whichever version sent it:

- ``type`` is ``message``, ``message_sent``, ``notice``, ``request`` or
  ``meta`` (v11's ``meta_event``); ``detail_type`` is v12's, or v11's
  ``message_type``/``notice_type``/``request_type``/``meta_event_type``;
  ``sub_type`` is ``""`` when absent. ``kind`` joins them: ``message.group``.
- ids (``message_id``, ``user_id``, ``group_id``, ``self_id``) are opaque:
  kept as they came, a number or a string, never computed with. NapCat
  recycles message ids, LLOneBot and Lagrange send negative ones, and their
  other ids (``message_seq``, ``real_id``, ``real_seq``) stay in ``raw``.
- ``time`` is in seconds, a float (v11's integer seconds; a v11 time in
  milliseconds, which NapCat sends when it cannot read the platform's, is
  taken as such).
- a message's ``segments`` are the model's (:mod:`qqproto.onebot.segments`):
  a v11 ``message`` that is a string is read as CQ codes, an array as it is.
- ``raw`` is the object as it came: every field the model has no name for.

Decoding is lenient where implementations differ: a field that is missing or
of another type than the spec says becomes None (or ``""``), never the loss of
the event. What cannot be read at all, an object that is no event, raises
:class:`~qqproto.errors.RemoteProtocolError`; a message whose segments cannot
be read is decoded from ``raw_message`` instead, and says so in ``problem``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from ..errors import RemoteProtocolError
from .cq import parse as parse_cq
from .segments import Segment, plain_text, read_segments

__all__ = [
    "Event",
    "MessageEvent",
    "MetaEvent",
    "NoticeEvent",
    "RequestEvent",
    "decode_event",
    "event_version",
]

Id = int | str
#: Integer ids fit 64 bits: int64 (the spec), uint32/uint64 (Lagrange).
_ID_LOW, _ID_HIGH = -(2**63), 2**64
#: A v11 ``time`` past this is in milliseconds (it is 5138 AD in seconds).
MS_TIMES: Final = 10**11
#: v11 ``post_type`` -> the model's ``type``, and the key of its ``detail_type``.
_V11_TYPES: Final = {
    "message": ("message", "message_type"),
    "message_sent": ("message_sent", "message_type"),
    "notice": ("notice", "notice_type"),
    "request": ("request", "request_type"),
    "meta_event": ("meta", "meta_event_type"),
}


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """What every event has; ``raw`` is the whole object as it came."""

    version: int
    type: str
    detail_type: str
    sub_type: str = ""
    time: float | None = None
    self_id: Id | None = None
    raw: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``type.detail_type``: ``message.group``, ``notice.group_recall``, ...
        (``type`` alone when there is no detail type)."""
        return f"{self.type}.{self.detail_type}" if self.detail_type else self.type

    def __repr__(self) -> str:
        fields = (f for f in self.__struct_fields__ if f != "raw")
        shown = ", ".join(f"{f}={getattr(self, f)!r}" for f in fields)
        return f"{type(self).__name__}({shown})"


class MessageEvent(Event, frozen=True, kw_only=True):
    """A message (or, as ``message_sent``, one the bot's account sent itself).

    ``group_id`` is None in a private chat. ``sender`` is v11's best-effort
    sender object (``{}`` in v12). ``problem`` says why the segments came
    from ``raw_message`` (v11) or ``alt_message`` (v12) instead of ``message``.
    """

    message_id: Id | None = None
    user_id: Id | None = None
    group_id: Id | None = None
    segments: tuple[Segment, ...] = ()
    sender: Mapping[str, Any] = msgspec.field(default_factory=dict)
    problem: str | None = None

    @property
    def text(self) -> str:
        """The plain text: text segments, and mentions as ``@<id>``."""
        return plain_text(self.segments)

    @property
    def private(self) -> bool:
        return self.detail_type == "private"


class NoticeEvent(Event, frozen=True, kw_only=True):
    """A notice: its ids where it has them; the rest (``operator_id``,
    ``duration``, an extension's fields) in ``raw``."""

    user_id: Id | None = None
    group_id: Id | None = None
    message_id: Id | None = None


class RequestEvent(Event, frozen=True, kw_only=True):
    """A friend or group request; answer it with its ``flag`` (v11)."""

    user_id: Id | None = None
    group_id: Id | None = None
    flag: str | None = None
    comment: str | None = None


class MetaEvent(Event, frozen=True, kw_only=True):
    """Lifecycle, heartbeat, connect or status update.

    ``interval`` is a heartbeat's promise of the next one, in seconds.
    ``online`` is ``status.online`` where it is a bool (LLOneBot sends null):
    False means the account is offline, not that the link is dead.
    """

    interval: float | None = None
    online: bool | None = None
    status: Mapping[str, Any] | None = None


def event_version(obj: Mapping[str, Any]) -> int | None:
    """11 or 12 for an event object, None for anything else (spec 8):
    ``post_type`` makes a v11 event, ``type`` with ``detail_type`` a v12 one."""
    if "post_type" in obj:
        return 11
    if "type" in obj and "detail_type" in obj:
        return 12
    return None


def decode_event(obj: object) -> Event:
    """The event ``obj`` (a decoded JSON object) is; see the module docstring."""
    if not isinstance(obj, dict):
        raise RemoteProtocolError("bad event", expected="a JSON object", received=obj)
    version = event_version(obj)
    if version == 11:
        return _v11(obj)
    if version == 12:
        return _v12(obj)
    raise RemoteProtocolError(
        "not an event", expected="post_type (v11), or type and detail_type (v12)", received=obj
    )


def _v11(obj: dict[str, Any]) -> Event:
    post_type = obj["post_type"]
    known = _V11_TYPES.get(post_type) if isinstance(post_type, str) else None
    detail: object = ""
    if known is None:  # an extension's post type: an event all the same
        kind = _text(post_type) or "unknown"
    else:
        kind, detail = known[0], obj.get(known[1])
    common = _v11_common(
        kind, detail, obj.get("sub_type"), obj.get("time"), obj.get("self_id"), obj
    )
    if kind in ("message", "message_sent"):
        segments, problem = _v11_segments(obj)
        sender = obj.get("sender")
        return MessageEvent(
            **common,
            message_id=opaque_id(obj.get("message_id")),
            user_id=opaque_id(obj.get("user_id")),
            group_id=opaque_id(obj.get("group_id")),
            segments=segments,
            sender=sender if isinstance(sender, dict) else {},
            problem=problem,
        )
    if kind == "meta":
        return _meta(common, obj)
    return _notice_or_request(kind, common, obj)


def _v12(obj: dict[str, Any]) -> Event:
    kind, detail = _text(obj.get("type")), _text(obj.get("detail_type"))
    self_ = obj.get("self")  # legacy drafts put self_id at the top instead
    self_id = self_.get("user_id") if isinstance(self_, dict) else obj.get("self_id")
    time = _number(obj.get("time"))
    common: dict[str, Any] = {
        "version": 12,
        "type": kind,
        "detail_type": detail,
        "sub_type": _text(obj.get("sub_type")),
        "time": time,
        "self_id": opaque_id(self_id),
        "raw": obj,
    }
    if kind == "message":
        found, error = read_segments(obj.get("message"), 12)
        segments, problem = tuple(found), None if error is None else str(error)
        if error is not None and not found:
            alt = obj.get("alt_message")  # the plain text, at least
            segments = (Segment.text(alt),) if isinstance(alt, str) and alt else ()
        return MessageEvent(
            **common,
            message_id=opaque_id(obj.get("message_id")),
            user_id=opaque_id(obj.get("user_id")),
            group_id=opaque_id(obj.get("group_id")),
            segments=segments,
            problem=problem,
        )
    if kind == "meta":
        return _meta(common, obj)
    return _notice_or_request(kind, common, obj)


def _meta(common: dict[str, Any], obj: dict[str, Any]) -> MetaEvent:
    status = obj.get("status")
    # In ms in both versions (walle-core's v12 sends seconds, against its spec:
    # a watch then runs early and reconnects, which is safe). Only a positive
    # interval is one; 0 or less says nothing about the next heartbeat.
    interval = _number(obj.get("interval"))
    return MetaEvent(
        **common,
        interval=interval / 1000 if interval is not None and interval > 0 else None,
        online=_online(status),
        status=status if isinstance(status, dict) else None,
    )


def _v11_common(
    kind: str,
    detail: object,
    sub_type: object,
    time: object,
    self_id: object,
    raw: Mapping[str, Any],
) -> dict[str, Any]:
    """The fields every v11 event has, read from their JSON values."""
    return {
        "version": 11,
        "type": kind,
        "detail_type": _text(detail),
        "sub_type": _text(sub_type),
        "time": _v11_time(time),
        "self_id": opaque_id(self_id),
        "raw": raw,
    }


def _notice_or_request(kind: str, common: dict[str, Any], obj: dict[str, Any]) -> Event:
    if kind not in ("notice", "request"):  # a type no spec has: an event, nothing more
        return Event(**common)
    if kind == "request":
        flag, comment = obj.get("flag"), obj.get("comment")
        return RequestEvent(
            **common,
            user_id=opaque_id(obj.get("user_id")),
            group_id=opaque_id(obj.get("group_id")),
            flag=flag if isinstance(flag, str) else None,
            comment=comment if isinstance(comment, str) else None,  # Lagrange: null
        )
    return NoticeEvent(
        **common,
        user_id=opaque_id(obj.get("user_id")),
        group_id=opaque_id(obj.get("group_id")),
        message_id=opaque_id(obj.get("message_id")),
    )


def _v11_segments(obj: dict[str, Any]) -> tuple[tuple[Segment, ...], str | None]:
    """The segments of ``message``; an array's good elements when some are
    bad; ``raw_message`` read as CQ when nothing good is left of ``message``."""
    message = obj.get("message")
    if isinstance(message, str):
        return tuple(parse_cq(message)), None
    segments, problem = read_segments(message, 11)
    if problem is None:
        return tuple(segments), None
    if not segments:
        raw = obj.get("raw_message")
        segments = parse_cq(raw) if isinstance(raw, str) else []
    return tuple(segments), str(problem)


def opaque_id(value: object) -> Id | None:
    """An id as it came, if it is one: a non-empty string, or an integer (not a
    bool) that fits 64 bits, signed or not, as every implementation's ids do."""
    if type(value) is str and value:
        return value
    if type(value) is int and _ID_LOW <= value < _ID_HIGH:
        return value
    return None


def _text(value: object) -> str:
    return value if type(value) is str else ""


def _number(value: object) -> float | None:
    """A JSON number as a finite float; None for anything else (NaN, infinity,
    an integer past a float's range)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            number = float(value)
        except OverflowError:  # an integer of more than 308 digits
            return None
        return number if math.isfinite(number) else None
    return None


def _v11_time(value: object) -> float | None:
    """A v11 ``time`` in seconds: a finite number, milliseconds read as such."""
    seconds = _number(value)
    if seconds is not None and seconds > MS_TIMES:
        return seconds / 1000
    return seconds


def _online(status: object) -> bool | None:
    online = status.get("online") if isinstance(status, dict) else None
    return online if isinstance(online, bool) else None
