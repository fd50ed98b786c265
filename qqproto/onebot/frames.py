"""From a frame's JSON text to an event, fast on the path that carries the load.

A connection receives events as JSON text. :func:`event_from_json` reads
one and gives what :func:`~qqproto.onebot.events.decode_event` gives for the
object the text holds: the same event, field for field. The difference is
speed, where it counts. A v11 message event is decoded by msgspec straight
into the fields the model reads, its segments straight into
:class:`~qqproto.onebot.segments.Segment` values. ``raw`` is then a
:class:`LazyJson`: the whole object, read from the text when first asked for.
Everything else (notices, meta events, v12, and any message a typed decode
refuses, say one with ``data: null`` in a segment) takes the general path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Final

import msgspec

from .._json import loads
from ..errors import RemoteProtocolError
from .actions import Answer, is_answer, read_answer
from .cq import parse as parse_cq
from .events import MS_TIMES, Event, MessageEvent, decode_event, event_version
from .segments import Segment, rename_v11_in_place

__all__ = ["LazyJson", "event_from_json", "read_frame"]


class LazyJson(Mapping[str, Any]):
    """A JSON object's text, read when first looked into (a read-only mapping).

    It is a ``Mapping``, not a ``dict``: an encoder that wants a dict (``json``,
    ``msgspec``) takes ``dict(event.raw)``.
    """

    __slots__ = ("_obj", "_text")

    def __init__(self, text: bytes | str) -> None:
        self._text = text
        self._obj: dict[str, Any] | None = None

    def _read(self) -> dict[str, Any]:
        if self._obj is None:
            self._obj = loads(self._text)  # the fast path read it: it is an object
        return self._obj

    def __getitem__(self, key: str) -> Any:
        return self._read()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())

    def __repr__(self) -> str:
        return f"LazyJson({self._read()!r})"


#: An id as the fast path takes it: only what :func:`~.events.opaque_id` keeps
#: as it came, so the fast path need not call it. An empty string, a bool or a
#: float is the general path's to read (as None); so is an integer past int64
#: (msgspec bounds no wider), which opaque_id keeps up to 2**64: the general
#: path keeps it too, and no QQ id comes near 2**63.
_Id = (
    Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
    | Annotated[str, msgspec.Meta(min_length=1)]
)


class _V11Message(msgspec.Struct, gc=False):
    """What the model reads of a v11 message, typed as the model keeps it: a
    message whose fields are of other types takes the general path. (It lives
    only while its event is made, in no cycle: the collector need not track it.)"""

    post_type: str = ""
    message_type: str = ""
    sub_type: str = ""
    time: float | None = None
    self_id: _Id | None = None
    message_id: _Id | None = None
    user_id: _Id | None = None
    group_id: _Id | None = None
    #: A tuple: the event's own, once its segments are renamed in place.
    message: tuple[Segment, ...] | str | None = None
    sender: dict[str, Any] = {}


_FAST: Final = msgspec.json.Decoder(_V11Message)
_MESSAGES: Final = frozenset({"message", "message_sent"})


def read_frame(text: bytes | str) -> Event | Answer:
    """What a frame's text holds: an event, or an action's answer (spec 8's
    classifier); :class:`RemoteProtocolError` for text that is neither."""
    event = _fast_event(text)
    if event is not None:
        return event
    obj = _loads(text)
    if isinstance(obj, dict) and event_version(obj) is None and is_answer(obj):
        return read_answer(obj)
    return decode_event(obj)


def event_from_json(text: bytes | str) -> Event:
    """The event a frame's text holds; :class:`RemoteProtocolError` for text
    that is no JSON, or JSON that is no event."""
    event = _fast_event(text)
    return event if event is not None else decode_event(_loads(text))


def _loads(text: bytes | str) -> Any:
    try:
        return loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        raise RemoteProtocolError(
            "frame is no JSON", expected="a JSON object", received=text
        ) from None


def _fast_event(text: bytes | str) -> MessageEvent | None:
    """A v11 message event read the fast way, or None for the general path.
    (One function: on this path a call more is a few percent more.)"""
    try:
        fast = _FAST.decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError, RecursionError):
        # Not an object, a field typed otherwise, no JSON, a lone surrogate
        # (UnicodeError is a ValueError), nesting past the decoder's depth:
        # the general path reads it, or says what it is.
        return None
    message = fast.message
    if message is None or fast.post_type not in _MESSAGES:
        return None
    if isinstance(message, str):
        segments = tuple(parse_cq(message))
    else:  # the decoder's own segments, data dicts and all: renamed in place
        rename_v11_in_place(message)
        segments = message
    time = fast.time
    return MessageEvent(
        version=11,
        type=fast.post_type,
        detail_type=fast.message_type,
        sub_type=fast.sub_type,
        # msgspec made it a finite float: only events._v11_time's millisecond rule is left.
        time=None if time is None else time / 1000 if time > MS_TIMES else time,
        self_id=fast.self_id,  # _Id: opaque_id would keep each as it is
        raw=LazyJson(text),
        message_id=fast.message_id,
        user_id=fast.user_id,
        group_id=fast.group_id,
        segments=segments,
        sender=fast.sender,
    )
