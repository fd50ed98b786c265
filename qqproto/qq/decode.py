"""The decoder that turns gateway frames into typed events, and its error.

:meth:`EventDecoder.decode_frame` is the gateway's hot path: one msgspec pass
over the frame reads ``op``, ``s``, ``id`` and ``t`` and, when ``t`` names a
typed event (:data:`~qqproto.qq.events.EVENT_TYPES`), builds that event from
``d`` on the way, checking every typed field. Anything else comes back with
``d`` still undecoded (twilight's lazy ``d``, STYLE.md), and
:meth:`EventDecoder.decode` turns an unknown dispatch into a plain
:class:`~qqproto.qq.events.Dispatch`: nothing is dropped.

Why msgspec and frozen ``Struct`` types: measured in
``benchmarks/bench_events.py`` (figures in ``docs/events.md``), this decode
costs 1.3 to 1.45 times msgspec's bare typed decode, while ``orjson`` or
``json`` into dicts and then generated checks into frozen slotted
dataclasses cost 8 and 10 times it: a frozen dataclass pays one
``object.__setattr__`` per field just to be built.

Lenient with what we do not type, strict with what we do: unknown fields are
skipped (they stay in :attr:`~qqproto.qq.events.Event.raw`); a typed field of
the wrong type or a missing required one gives an :class:`EventDecodeError`
naming the event type, the field path and what came, for the gateway to
report before it delivers the dispatch raw.

What depends on more than ``d`` is set here, once, before the event leaves
the decoder: ``event_id``, ``event_seq``, ``frame`` and, for guild messages,
``bot_id``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Union

import msgspec
from msgspec.structs import force_setattr

from .._json import loads as _loads
from ..errors import RemoteProtocolError
from .events import _DECODE_ERRORS, _EVENTS, Dispatch, Event, Resumed

__all__ = [
    "MISSING",
    "Decoded",
    "EventDecodeError",
    "EventDecoder",
    "json_value",
    "untyped_event",
]


def _text(data: bytes | str | msgspec.Raw) -> bytes | str:
    return bytes(data) if isinstance(data, msgspec.Raw) else data


def _str(data: bytes | str | msgspec.Raw) -> str:
    return data if isinstance(data, str) else bytes(data).decode("utf-8", "replace")


def json_value(data: bytes | str | msgspec.Raw) -> Any:
    """JSON text (``d`` of a frame, say) as plain values; ``json`` when msgspec refuses it.

    msgspec rejects a lone UTF-16 surrogate escape (``"\\ud800"``), which
    ``json`` accepts; a truncated emoji must not cost us the message. It
    also rejects integers of more than 4300 digits, which arrive as strings
    (see :mod:`qqproto._json`).
    """
    try:
        return msgspec.json.decode(data)
    except _DECODE_ERRORS:
        return _loads(_text(data))


# -- errors ----------------------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "nothing (the field is absent)"


#: ``EventDecodeError.received`` when a required field was absent.
MISSING: Any = _Missing()

_MSGSPEC_ERROR = re.compile(r"(.*?)(?: - at `\$(.*)`)?", re.S)
_EXPECTED = re.compile(r"Expected `(.*)`, got `.*`", re.S)
_MISSING_FIELD = re.compile(r"Object missing required field `(.*)`", re.S)
_PATH_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


class EventDecodeError(RemoteProtocolError):
    """A typed field of a dispatch is wrong: ``path`` (``d.author.id``) says
    which, ``expected`` what it should be, ``received`` what came.

    ``data`` is ``d`` as plain JSON values (None when ``d`` is not JSON), so
    the gateway can still deliver the dispatch raw after reporting this.
    """

    def __init__(
        self, event_type: str, path: str, expected: str, received: object, data: Any = None
    ) -> None:
        self.event_type = event_type
        self.path = path
        self.data = data
        super().__init__(
            f"bad {event_type} payload at {path}", expected=expected, received=received
        )


def _decode_error(
    event_type: str, d: bytes | str | msgspec.Raw, exc: Exception
) -> EventDecodeError:
    """Turn msgspec's error into ours, looking up the value that came (slow path)."""
    try:
        data = json_value(d)
    except (*_DECODE_ERRORS, RecursionError):
        return EventDecodeError(event_type, "d", "valid JSON", _text(d))
    if isinstance(exc, RecursionError):
        return EventDecodeError(event_type, "d", "JSON nested less deeply", "too deep", data)
    match = _MSGSPEC_ERROR.fullmatch(str(exc))
    assert match is not None  # the pattern matches any text
    problem, path = match.group(1), match.group(2) or ""
    missing = _MISSING_FIELD.fullmatch(problem)
    if missing:
        return EventDecodeError(event_type, f"d{path}.{missing.group(1)}", "a value", MISSING, data)
    expected = _EXPECTED.fullmatch(problem)
    value: Any = data
    for key, index in _PATH_STEP.findall(path):
        try:
            value = value[int(index)] if index else value[key]
        except (LookupError, TypeError):
            value = MISSING
            break
    return EventDecodeError(
        event_type, f"d{path}", expected.group(1) if expected else problem, value, data
    )


# -- decoding --------------------------------------------------------------------------------


class _Envelope(msgspec.Struct, frozen=True, gc=False):
    """A frame with ``d`` left as JSON text (empty when absent); the slow path."""

    op: Any = None
    s: Any = None
    t: Any = None
    id: Any = None
    d: msgspec.Raw = msgspec.Raw(b"")


_envelope = msgspec.json.Decoder(_Envelope).decode


def _parse_envelope(frame: str | bytes) -> _Envelope:
    """The envelope of any frame; RemoteProtocolError when it is not a JSON object."""
    try:
        return _envelope(frame)
    except msgspec.ValidationError:
        # Valid JSON of the wrong shape, or an object holding an integer too
        # long for an int, which json reads (see qqproto._json). The first
        # tells them apart without parsing again: an array 100,000 deep is
        # refused here, before its depth counts.
        if frame.lstrip()[:1] not in ("{", b"{"):
            raise _not_an_object(frame) from None
    except _DECODE_ERRORS:  # maybe only lone surrogates, which json accepts
        pass
    except RecursionError:
        raise RemoteProtocolError(
            "gateway payload nests too deeply", expected="a JSON object", received=frame
        ) from None
    try:
        received = _loads(frame)
    except (ValueError, RecursionError):
        raise RemoteProtocolError(
            "gateway payload is not valid JSON", expected="a JSON object", received=frame
        ) from None
    if type(received) is not dict:
        raise _not_an_object(received)
    get = received.get
    d = json.dumps(received["d"]).encode() if "d" in received else b""
    return _Envelope(get("op"), get("s"), get("t"), get("id"), msgspec.Raw(d))


def _not_an_object(received: object) -> RemoteProtocolError:
    return RemoteProtocolError(
        "gateway payload is not a JSON object", expected="a JSON object", received=received
    )


#: ``t`` -> (decode ``d`` into the class, the class).
_DECODERS: dict[str, tuple[Any, type[Event]]] = {
    cls.TYPE: (msgspec.json.Decoder(cls).decode, cls) for cls in _EVENTS
}
_DECODERS["RESUMED"] = (lambda d: Resumed(), Resumed)  # d is "", nothing to check

#: One tagged envelope per typed event but RESUMED: msgspec picks the
#: class by ``t`` and decodes ``d`` into it in the same pass over the frame.
_TYPED_FRAMES: Any = [
    msgspec.defstruct(
        f"_{cls.__name__}Frame",
        # In the order of the real frames' keys, which msgspec finds fastest.
        # Typed, so that the hot path needs no checks: anything else (a
        # string s, a missing op) takes the slow path, which reports it.
        [("op", int), ("id", str | None, None), ("s", int | None, None), ("d", cls)],
        tag_field="t",
        tag=cls.TYPE,
        frozen=True,
        kw_only=True,
        gc=False,
    )
    for cls in _EVENTS
    if cls is not Resumed
]
_typed_frame = msgspec.json.Decoder(Union[tuple(_TYPED_FRAMES)]).decode  # noqa: UP007

#: What :meth:`EventDecoder.decode_frame` returns: ``(op, s, t, id, body)``.
Decoded = tuple[Any, Any, Any, Any, "Event | EventDecodeError | msgspec.Raw"]


class EventDecoder:
    """Builds typed events from gateway frames; one per gateway session.

    ``bot_id`` is READY's ``user.id``: set it when READY arrives (and keep it
    across resumes) so guild mentions of the bot leave ``text``. ``shard``
    marks each event with the shard it came on (``on_shard``; None: not a shard's).
    """

    __slots__ = ("bot_id", "shard")

    def __init__(self, bot_id: str | None = None, shard: tuple[int, int] | None = None) -> None:
        self.bot_id = bot_id
        self.shard = shard

    def decode_frame(self, frame: str | bytes) -> Decoded:
        """``(op, s, t, id, body)`` of one frame, for the gateway's hot path.

        ``op``, ``s``, ``t`` and ``id`` are the JSON values that came (the
        caller checks their types). ``body`` is the typed event when the frame
        is an op 0 dispatch of a typed ``t``; the :class:`EventDecodeError`
        when such a dispatch has a bad field; otherwise ``d`` as undecoded
        JSON (``msgspec.Raw``, empty when there is no ``d``), which
        :meth:`decode` or ``msgspec.json.decode`` reads. Raises
        :class:`~qqproto.errors.RemoteProtocolError` when the frame is not a
        JSON object.
        """
        try:
            env = _typed_frame(frame)
        except (*_DECODE_ERRORS, RecursionError):
            return self._decode_frame_slowly(frame)
        if env.op:
            return self._decode_frame_slowly(frame)
        event = env.d
        s = env.s
        event_id = env.id
        if event_id is not None:
            force_setattr(event, "event_id", event_id)
        if s is not None:
            force_setattr(event, "event_seq", s)
        force_setattr(event, "frame", frame if type(frame) is str else _str(frame))
        if event._WANTS_BOT_ID and self.bot_id:
            force_setattr(event, "bot_id", self.bot_id)
        if self.shard is not None:
            force_setattr(event, "on_shard", self.shard)
        return 0, s, event.TYPE, event_id, event

    def _decode_frame_slowly(self, frame: str | bytes) -> Decoded:
        """Control frames, unknown types, bad fields, lone surrogates."""
        env = _parse_envelope(frame)
        op, s, t, event_id, d = env.op, env.s, env.t, env.id, env.d
        if op != 0 or type(op) is not int or type(t) is not str or not d or t not in _DECODERS:
            return op, s, t, event_id, d
        seq = s if type(s) is int else None
        try:
            event = self._typed(t, seq, event_id if type(event_id) is str else None, d)
        except EventDecodeError as exc:
            return op, s, t, event_id, exc
        force_setattr(event, "frame", _str(frame))
        return op, s, t, event_id, event

    def decode(
        self, t: str, seq: int | None, event_id: str | None, d: bytes | str | msgspec.Raw
    ) -> Event | Dispatch:
        """The typed event for dispatch ``t`` whose ``d`` is the JSON text ``d``,
        or a :class:`Dispatch` with ``d`` decoded when ``t`` has no type here.

        Raises :class:`EventDecodeError` when a typed field is wrong (or, for
        an untyped event, when ``d`` is not JSON).
        """
        if t in _DECODERS:
            return self._typed(t, seq, event_id, d)
        try:
            return Dispatch(t, seq, event_id, json_value(d), self.shard)
        except (*_DECODE_ERRORS, RecursionError) as exc:
            raise _decode_error(t, d, exc) from None

    def decode_dispatch(self, frame: str | bytes) -> Event | Dispatch:
        """The event in a whole op 0 frame (a webhook body, a recorded frame).

        Raises :class:`EventDecodeError` as :meth:`decode` does, and
        :class:`~qqproto.errors.RemoteProtocolError` for any other frame.
        """
        op, s, t, event_id, body = self.decode_frame(frame)
        if op != 0 or type(op) is not int or type(t) is not str or not body:
            raise RemoteProtocolError(
                "not a dispatch", expected="op 0 with a string t and a d", received=frame
            )
        if isinstance(body, EventDecodeError):
            raise body
        if isinstance(body, Event):
            return body
        seq = s if type(s) is int else None
        return self.decode(t, seq, event_id if type(event_id) is str else None, body)

    def _typed(
        self, t: str, seq: int | None, event_id: str | None, d: bytes | str | msgspec.Raw
    ) -> Event:
        decode, cls = _DECODERS[t]
        try:
            event: Event = decode(d)
        except msgspec.ValidationError as exc:
            raise _decode_error(t, d, exc) from None
        except (*_DECODE_ERRORS, RecursionError) as exc:
            try:  # json accepts what msgspec refuses (see json_value)
                event = msgspec.convert(_loads(_text(d)), cls)
            except msgspec.ValidationError as again:
                raise _decode_error(t, d, again) from None
            except (ValueError, RecursionError):
                raise _decode_error(t, d, exc) from None
        if event_id is not None:
            force_setattr(event, "event_id", event_id)
        if seq is not None:
            force_setattr(event, "event_seq", seq)
        # The frame this event would have come in; raw reads its d.
        force_setattr(event, "frame", '{"d":' + _str(d) + "}")
        if event._WANTS_BOT_ID and self.bot_id:
            force_setattr(event, "bot_id", self.bot_id)
        if self.shard is not None:
            force_setattr(event, "on_shard", self.shard)
        return event


def untyped_event(
    decoder: EventDecoder,
    seq: int | None,
    t: Any,
    event_id: Any,
    body: EventDecodeError | msgspec.Raw,
) -> tuple[Event | Dispatch | None, RemoteProtocolError | None]:
    """What an op 0 frame becomes when :meth:`EventDecoder.decode_frame` left it
    without a good typed event: a type without a class, a typed one whose
    payload broke its type, or one without ``t`` or ``d``.

    Returns the value to deliver (None: nothing can be) and the problem to
    report (None: there is none). Nothing is lost: a payload that broke its
    type is delivered raw, as a :class:`Dispatch`, beside its report.
    """
    if type(event_id) is not str:
        event_id = None
    if type(t) is not str or (type(body) is msgspec.Raw and not body):
        what, expected = (
            ("an event type", "a string t") if type(t) is not str else ("d", "a d field")
        )
        received = {"op": 0, "s": seq, "t": t, "id": event_id}
        return None, RemoteProtocolError(
            f"dispatch without {what}", expected=expected, received=received
        )
    if isinstance(body, EventDecodeError):  # a typed event with a bad field
        return Dispatch(t, seq, event_id, body.data, decoder.shard), body
    try:  # a type without a class: d decoded as JSON
        return decoder.decode(t, seq, event_id, body), None
    except EventDecodeError as exc:
        return Dispatch(t, seq, event_id, exc.data, decoder.shard), exc
