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
from .segments import V11_RENAMERS, Segment, segment_to_v11

__all__ = ["escape_text", "escape_value", "format", "parse", "unescape"]

_NAME = r"[A-Za-z0-9_.\-]+"
#: What a code holds before its ``]`` (or ``,]``): its type; its first key and
#: value, if any; and the ``,key=value`` pairs after them (most codes have one
#: pair, which thus needs no splitting). Possessive throughout: a prefix that
#: ends in anything but ``]`` fails without backtracking, and every ``[CQ:``
#: inside it fails at the same place, so parsing stays linear in the message.
_PREFIX: Final = re.compile(
    rf"\[CQ:({_NAME}+)(?:,({_NAME}+)=([^,\]]*+))?+((?:,{_NAME}+=[^,\]]*+)*+)"
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
    out: list[Segment] = []
    append, rename, find, match = out.append, V11_RENAMERS.get, message.find, _PREFIX.match
    text_codes = False
    done = 0  # what is read, as text or codes
    at = find("[CQ:")
    while at != -1:
        code = match(message, at)
        end = code.end() if code is not None else at + 4
        if code is not None and message.startswith("]", end):
            close = end + 1
        elif code is not None and message.startswith(",]", end):
            close = end + 2
        else:  # no code starts here, nor anywhere inside what was tried
            at = find("[CQ:", max(end, at + 1))
            continue
        if at > done:
            text = message[done:at]
            append(Segment("text", {"text": unescape(text) if "&" in text else text}))
        kind, key, value, more = code.groups()
        if key is None:
            data = {}
        else:
            data = {key: unescape(value) if "&" in value else value}
            if more:
                _more_params(data, more)
        if kind == "text" and data.keys() <= {"text"}:  # a text code is its text
            text_codes = True
            append(Segment("text", {"text": data.get("text", "")}))
        else:
            renamer = rename(kind)
            append(Segment(kind, data) if renamer is None else renamer(data))
        done = close
        at = find("[CQ:", close)
    if done < len(message):
        last = message[done:]
        append(Segment("text", {"text": unescape(last) if "&" in last else last}))
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
