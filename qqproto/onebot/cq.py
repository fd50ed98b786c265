"""CQ codes: the string form of a OneBot v11 message, read and written.

A string message is text with codes in it, ``[CQ:face,id=178]``. Text
escapes ``&``, ``[`` and ``]``; values escape ``,`` too; ``&`` is escaped
first and unescaped last, so ``&amp;#91;`` reads back as ``&#91;``.

:func:`parse` follows the semantics most Python bots on OneBot share
(nonebot's and aiocqhttp's): a code is ``[CQ:`` and a type of ASCII letters,
digits, ``-``, ``_`` or ``.``, then ``,key=value`` pairs (a value runs to the
next ``,`` or ``]``), an optional trailing ``,``, and ``]``; a repeated key
keeps its last value. Unlike them, it never drops or garbles input:

- whatever is not a code stays text (unescaped), so an unterminated code, a
  code with a space in it or a key without ``=`` reads as the text it is;
- ``[CQ:text,text=hi]`` is the text ``hi`` (they make it ``text=hi``), and
  a text code with other keys stays a segment of its own, keys and all;
- adjacent text is one text segment.

:func:`format` writes segments back; for string-valued data, parsing what it
wrote gives the segments back. Array form is the main path: a bot that can
choose should ask its implementation for arrays (NapCat's string mode drops
empty values). The segments are :class:`~qqproto.onebot.segments.Segment`
values in the model's names (``at`` is ``mention``), as
:func:`~qqproto.onebot.segments.segment_from_v11` makes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Final

from ..errors import LocalProtocolError
from .segments import V11_NAMES, Segment, renamed_from_v11, segment_to_v11

__all__ = ["escape_text", "escape_value", "format", "parse", "unescape"]

_NAME = r"[A-Za-z0-9_.\-]+"
#: A code, split out of its message in one pass (:func:`parse`): its type;
#: its first key and value, if any; the ``,key=value`` pairs after them (most
#: codes have one pair, which thus needs no splitting); and its ``]`` or
#: ``,]``. Possessive throughout, the close too: whatever starts with ``[CQ:``
#: and a name matches, as far as a code could go, closed or not, and nothing
#: is ever tried again. An unclosed one (no last group) is text, and every
#: ``[CQ:`` inside it would have failed at the same place, so reading stays
#: linear in the message.
_CODE: Final = re.compile(
    rf"\[CQ:({_NAME}+)(?:,({_NAME}+)=([^,\]]*+))?+((?:,{_NAME}+=[^,\]]*+)*+)(,?+\])?+"
)
_NAME_ONLY: Final = re.compile(rf"{_NAME}\Z")


def escape_text(text: str) -> str:
    """Text as it goes between codes: ``&``, ``[`` and ``]`` escaped."""
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "[" in text or "]" in text:
        text = text.replace("[", "&#91;").replace("]", "&#93;")
    return text


def escape_value(value: str) -> str:
    """A value as it goes inside a code: ``,`` escaped too."""
    return escape_text(value).replace(",", "&#44;")


def unescape(text: str) -> str:
    """Undo all four escapes, ``&amp;`` last (in text as in values)."""
    if "&" not in text:
        return text
    text = text.replace("&#44;", ",").replace("&#91;", "[").replace("&#93;", "]")
    return text.replace("&amp;", "&")


def parse(message: str) -> list[Segment]:
    """A CQ string as segments; nothing in it is lost (see the module docstring)."""
    if "[CQ:" not in message:  # most messages: text only
        return [Segment("text", {"text": unescape(message)})] if message else []
    # One split, then one loop with no call per code but the struct's: text,
    # then (type, key, value, more pairs, close, text after) for each match.
    pieces = iter(_CODE.split(message))
    text = next(pieces)  # the text before the code at hand, as it came
    out: list[Segment] = []
    append, names = out.append, V11_NAMES.get
    text_codes = False
    # Six at a time off one iterator. (No strict=: split makes 1 + 6n pieces,
    # and a keyword costs zip its fast call, a tenth of the whole parse.)
    codes = zip(pieces, pieces, pieces, pieces, pieces, pieces)  # noqa: B905
    for kind, key, value, more, close, after in codes:
        if close is None:  # no code, nor anywhere inside what was read: text
            text += f"[CQ:{kind}{'' if key is None else f',{key}={value}'}{more}{after}"
            continue
        if text:
            append(Segment("text", {"text": unescape(text) if "&" in text else text}))
        text = after
        if key is not None and "&" in value:
            value = unescape(value)
        if more or kind == "text":  # pairs to split, or a text code: the general way
            data = {} if key is None else {key: value}
            if more:
                _more_params(data, more)
            if kind == "text" and data.keys() <= {"text"}:  # a text code is its text
                text_codes = True
                append(Segment("text", {"text": data.get("text", "")}))
            else:
                append(renamed_from_v11(kind, data))
            continue
        # One pair at most (most codes), renamed as it is built: renamed_from_v11's
        # rules, where a lone key's new name is always free.
        known = names(kind)
        if known is None:  # face, and the rest v11 and the model name alike
            append(Segment(kind, {} if key is None else {key: value}))
        elif key is None:
            append(Segment(known[0], {}))
        elif kind == "at" and key == "qq" and value == "all":
            append(Segment("mention_all", {}))
        else:
            model, keys = known
            append(Segment(model, {keys.get(key, key): value}))
    if text:
        append(Segment("text", {"text": unescape(text) if "&" in text else text}))
    return _joined(out) if text_codes else out


def _joined(segments: list[Segment]) -> list[Segment]:
    """Adjacent plain text as one segment, and no empty one (text codes make both)."""
    out: list[Segment] = []
    for segment in segments:
        if segment.type == "text" and segment.data.keys() == {"text"}:
            if not segment.data["text"]:
                continue
            if out and out[-1].type == "text" and out[-1].data.keys() == {"text"}:
                out[-1] = Segment("text", {"text": out[-1].data["text"] + segment.data["text"]})
                continue
        out.append(segment)
    return out


def _more_params(data: dict[str, str], pairs: str) -> None:
    """Add ``,key=value,...`` (as the code pattern matched them) to ``data``."""
    for pair in pairs[1:].split(","):  # the pattern made every pair key=value
        key, _, value = pair.partition("=")
        data[key] = unescape(value) if "&" in value else value  # a repeated key: the last wins


def format(segments: Iterable[Segment]) -> str:
    """Segments as a CQ string.

    Values that are not strings are written as CQ readers expect them: numbers
    in decimal, booleans as ``true``/``false``, objects and arrays as compact
    JSON; a None value is left out. A type or key CQ cannot carry (anything
    but ASCII letters, digits, ``-``, ``_`` and ``.``) raises
    :class:`LocalProtocolError`: the code would not read back.
    """
    out: list[str] = []
    for segment in segments:
        kind, data = segment_to_v11(segment)
        if kind == "text" and data.keys() <= {"text"}:  # else a code keeps its other keys
            text = data.get("text")
            out.append(escape_text(text if isinstance(text, str) else _value(text)))
            continue
        _check_name(kind, "segment type")
        code = ["[CQ:", kind]
        for key, value in data.items():
            if value is None:
                continue
            _check_name(key, f"key of a {kind} segment")
            code += [",", key, "=", escape_value(_value(value))]
        code.append("]")
        out.append("".join(code))
    return "".join(out)


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if isinstance(value, float) else str(value)
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _check_name(name: str, what: str) -> None:
    if not _NAME_ONLY.match(name):
        raise LocalProtocolError(
            f"a {what} CQ codes cannot carry",
            expected="ASCII letters, digits, '-', '_' or '.'",
            received=name,
        )
