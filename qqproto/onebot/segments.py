"""Message segments: one model over OneBot v11 and v12.

A message is a list of :class:`Segment` values, whatever version carried it.
Where the versions name the same thing differently, the model uses v12's
name, and the conversions rename it both ways:

=====================  =======================  ==========================
v11                    model (and v12)          notes
=====================  =======================  ==========================
``at {qq}``            ``mention {user_id}``
``at {qq: "all"}``     ``mention_all {}``
``record {file}``      ``voice {file_id}``
``image {file}``       ``image {file_id}``      ``video`` likewise
``reply {id}``         ``reply {message_id}``
``location {lat,lon}`` ``location {latitude,longitude}``
=====================  =======================  ==========================

Every other segment type (``face``, ``mface``, ``forward``, NapCat's and
Lagrange's extensions, and types nobody has seen yet) keeps its name (v12
spells QQ's with a ``qq.`` prefix, which the conversions drop and add), and
every key a conversion does not rename keeps its name and its value, of
whatever JSON type it came: unknown fields survive a round trip untouched.
A key is renamed only where its new name is free, so a segment that already
carries the other version's key keeps both.

Ids inside v11 segments are strings by the spec and numbers in some
implementations; they are kept as they came, and become strings only on the
way to v12, whose ids are strings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import msgspec
from msgspec.structs import force_setattr

from ..errors import RemoteProtocolError

__all__ = [
    "Segment",
    "plain_text",
    "read_segments",
    "segment_from_v11",
    "segment_from_v12",
    "segment_to_v11",
    "segment_to_v12",
    "segments_from_json",
]

_EMPTY: Final[Mapping[str, Any]] = {}


class Segment(msgspec.Struct, frozen=True):
    """One piece of a message: its ``type`` and its ``data``, in the model's names.

    (A ``msgspec`` struct: a message event makes one per segment, and these
    are four times cheaper to make than a frozen dataclass.)
    """

    type: str
    data: Mapping[str, Any] = msgspec.field(default_factory=dict)

    # -- the ones a bot writes ---------------------------------------------------------

    @classmethod
    def text(cls, text: str) -> Segment:
        return cls("text", {"text": text})

    @classmethod
    def mention(cls, user_id: str | int) -> Segment:
        return cls("mention", {"user_id": str(user_id)})

    @classmethod
    def mention_all(cls) -> Segment:
        return cls("mention_all", {})

    @classmethod
    def image(cls, file_id: str) -> Segment:
        """An image by what v11 calls ``file`` (a URL, ``file://`` or ``base64://``)
        and v12 a ``file_id`` (from ``upload_file``)."""
        return cls("image", {"file_id": file_id})

    @classmethod
    def reply(cls, message_id: str | int) -> Segment:
        return cls("reply", {"message_id": str(message_id)})

    # -- reading -------------------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    @property
    def plain(self) -> str:
        """The text this segment adds to :func:`plain_text`: a text segment's
        text, ``@<id>`` for a mention, ``@all`` for a mention of everyone."""
        if self.type == "text":
            text = self.data.get("text")
            return text if isinstance(text, str) else ""
        if self.type == "mention":
            return f"@{_id_text(self.data.get('user_id'))}"
        if self.type == "mention_all":
            return "@all"
        return ""


def plain_text(segments: Iterable[Segment]) -> str:
    """The message as plain text (see :attr:`Segment.plain`)."""
    return "".join(segment.plain for segment in segments)


# -- the two versions ---------------------------------------------------------------------------

#: v11 type -> (model type, {v11 key: model key}).
_FROM_V11: Final[dict[str, tuple[str, dict[str, str]]]] = {
    "at": ("mention", {"qq": "user_id"}),
    "record": ("voice", {"file": "file_id"}),
    "image": ("image", {"file": "file_id"}),
    "video": ("video", {"file": "file_id"}),
    "reply": ("reply", {"id": "message_id"}),
    "location": ("location", {"lat": "latitude", "lon": "longitude"}),
}
#: The same, read-only, for a reader that renames as it builds (:func:`qqproto.onebot.cq.parse`).
V11_NAMES: Final[Mapping[str, tuple[str, dict[str, str]]]] = MappingProxyType(_FROM_V11)
#: model type -> (v11 type, {model key: v11 key}).
_TO_V11: Final = {
    model: (v11, {new: old for old, new in keys.items()})
    for v11, (model, keys) in _FROM_V11.items()
}
#: Keys that hold ids: strings in v12.
_ID_KEYS: Final = frozenset({"user_id", "message_id", "group_id", "file_id"})


def _renamed(data: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with each key of ``keys`` renamed, where its new name is free."""
    out = dict(data)
    for old, new in keys.items():
        if old in out and new not in out:
            out[new] = out.pop(old)
    return out


def segment_from_v11(type_: str, data: Mapping[str, Any] | None) -> Segment:
    """A v11 segment (``data`` may be None) in the model."""
    return renamed_from_v11(type_, dict(data or _EMPTY))


def renamed_from_v11(type_: str, data: dict[str, Any]) -> Segment:
    """:func:`segment_from_v11` for a ``data`` the caller owns and gives up:
    it is renamed in place (a decoder's fresh dict needs no copy)."""
    rename = V11_RENAMERS.get(type_)
    return Segment(type_, data) if rename is None else rename(data)


def _renamer(model: str, keys: Mapping[str, str]) -> Callable[[dict[str, Any]], Segment]:
    """What turns one v11 type's data (owned) into the model's segment. (A
    function per type: a message event renames a segment or two, every time.)"""
    pairs = tuple(keys.items())

    def rename(data: dict[str, Any]) -> Segment:
        for old, new in pairs:
            if old in data and new not in data:
                data[new] = data.pop(old)
        return Segment(model, data)

    return rename


def _at(data: dict[str, Any]) -> Segment:
    if data.get("qq") == "all":
        del data["qq"]
        return Segment("mention_all", data)
    if "qq" in data and "user_id" not in data:
        data["user_id"] = data.pop("qq")
    return Segment("mention", data)


#: v11 type -> the function that renames its (owned) data into the model's segment.
V11_RENAMERS: Final[dict[str, Callable[[dict[str, Any]], Segment]]] = {
    v11: _renamer(model, keys) for v11, (model, keys) in _FROM_V11.items()
}
V11_RENAMERS["at"] = _at


#: :data:`_FROM_V11` with its key pairs in a tuple, for :func:`rename_v11_in_place`.
_IN_PLACE: Final = {v11: (model, tuple(keys.items())) for v11, (model, keys) in _FROM_V11.items()}


def rename_v11_in_place(segments: Iterable[Segment]) -> None:
    """:func:`renamed_from_v11` for segments a decoder just made (nobody else
    holds them, their data are dicts): each is renamed in place, its data as
    ``_at`` and :func:`_renamer` rename it, and its type set on the frozen
    struct. (A message event's segments, every time: one call for them all,
    and no new struct for a renamed segment, nor a new tuple of them.)"""
    renames = _IN_PLACE.get
    for segment in segments:
        known = renames(segment.type)
        if known is None:  # most segments: text, face, ...
            continue
        model, pairs = known
        # A decoder makes a Mapping field a dict (no cast: a call, on the hot path).
        data: dict[str, Any] = segment.data  # type: ignore[assignment]
        if model == "mention" and data.get("qq") == "all":
            del data["qq"]
            model = "mention_all"
        else:
            for old, new in pairs:
                if old in data and new not in data:
                    data[new] = data.pop(old)
        # No hash or copy of it exists yet: setting a frozen field is safe here.
        force_setattr(segment, "type", model)


def segment_to_v11(segment: Segment) -> tuple[str, dict[str, Any]]:
    """``segment`` as v11's (type, data)."""
    if segment.type == "mention_all":
        return "at", {**segment.data, "qq": "all"}
    if (known := _TO_V11.get(segment.type)) is not None:
        v11, keys = known
        return v11, _renamed(segment.data, keys)
    return segment.type, dict(segment.data)


#: v12's own segment types; any other goes with a prefix (spec 7.4).
V12_STANDARD: Final = frozenset(
    {
        "text",
        "mention",
        "mention_all",
        "image",
        "voice",
        "audio",
        "video",
        "file",
        "location",
        "reply",
    }
)
#: The prefix of QQ's extension segments in v12 (``qq.face``).
_QQ: Final = "qq."


def segment_from_v12(type_: str, data: Mapping[str, Any] | None) -> Segment:
    """A v12 segment in the model: v12's names are the model's, and QQ's
    extensions lose their prefix (``qq.face`` is v11's ``face``)."""
    if type_.startswith(_QQ) and "." not in type_[len(_QQ) :]:
        type_ = type_[len(_QQ) :]
    return Segment(type_, dict(data or _EMPTY))


def segment_to_v12(segment: Segment) -> tuple[str, dict[str, Any]]:
    """``segment`` as v12's (type, data): ids become strings, a location's
    coordinates numbers (float64), and a type v12 does not define takes the
    ``qq.`` prefix its extensions need (``face`` is ``qq.face``)."""
    data = dict(segment.data)
    for key in _ID_KEYS & data.keys():
        if isinstance(data[key], int) and not isinstance(data[key], bool):
            data[key] = str(data[key])
    if segment.type == "location":
        for key in ("latitude", "longitude"):
            if isinstance(data.get(key), str):  # not a number: as it came, for the peer
                with contextlib.suppress(ValueError):
                    data[key] = float(data[key])
    kind = segment.type
    if kind not in V12_STANDARD and "." not in kind:  # an extension: v12 wants it prefixed
        kind = _QQ + kind
    return kind, data


def segments_from_json(value: object, version: int) -> list[Segment]:
    """A message as it came in JSON (an array of ``{type, data}``, or one such
    object), in the model; a CQ string is :func:`qqproto.onebot.cq.parse`'s.

    A ``data`` that is missing or null is read as ``{}``; a message that is
    no array, or an element that is no segment, raises
    :class:`RemoteProtocolError`, naming it (:func:`read_segments` keeps the
    good elements instead).
    """
    segments, problem = read_segments(value, version)
    if problem is not None:
        raise problem
    return segments


def read_segments(value: object, version: int) -> tuple[list[Segment], RemoteProtocolError | None]:
    """:func:`segments_from_json`, keeping every good element of an array that
    has bad ones; the problem with the first bad one, if any."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        return [], RemoteProtocolError(
            "bad message", expected="an array of segments", received=value
        )
    convert = segment_from_v11 if version == 11 else segment_from_v12
    out: list[Segment] = []
    problem = None
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        data = item.get("data") if isinstance(item, dict) else None
        if isinstance(kind, str) and (data is None or isinstance(data, dict)):
            out.append(convert(kind, data))
        elif problem is None:
            expected = '{"type": str, "data": object}'
            problem = RemoteProtocolError("bad segment", expected=expected, received=item)
    return out, problem


def _id_text(value: object) -> str:
    """An id as text: a number in decimal (its sign kept), a string as it came."""
    if isinstance(value, bool) or value is None:
        return ""
    return str(value)
