"""Long text in several messages, cut where a reader would not notice.

Implementations and the platform refuse or truncate long messages, so a bot
sends long text in pieces. :func:`split_text` cuts it into pieces of at most
``limit`` characters, preferring a line break, then a space, then any place,
and never cutting:

- a grapheme: a character and the marks that modify it (combining marks,
  variation selectors, emoji skin tones), a sequence joined by a zero-width
  joiner (👩‍💻), a flag (two regional indicators), or CR LF;
- a lone surrogate away from its neighbour (a Python string holds code
  points, so a well-formed pair is one character already);
- with ``cq=True``, a CQ code (``[CQ:face,id=1]``) or an escape (``&amp;``)
  of a CQ string.

A unit that is longer than ``limit`` by itself (a long CQ code, say) is a
piece of its own: it is never cut. Joining the pieces gives the text back.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Final

from ..errors import ConfigError

__all__ = ["split_text"]

_ZWJ: Final = "\u200d"
#: Code points that never start a grapheme: they attach to what comes before.
_ATTACHING_RANGES: Final = (
    (0xFE00, 0xFE0F),  # variation selectors
    (0x1F3FB, 0x1F3FF),  # emoji skin tones
    (0xE0020, 0xE007F),  # tag characters (subdivision flags)
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
_REGIONAL: Final = (0x1F1E6, 0x1F1FF)
#: Combining marks: nonspacing, enclosing, spacing.
_MARKS: Final = frozenset({"Mn", "Me", "Mc"})
_CQ_UNIT: Final = re.compile(r"\[CQ:[^\]]*\]|&(?:amp|#91|#93|#44);")


def _attaches(char: str) -> bool:
    """Whether ``char`` belongs to the grapheme before it."""
    if char == _ZWJ or unicodedata.category(char) in _MARKS:
        return True
    code = ord(char)
    return any(low <= code <= high for low, high in _ATTACHING_RANGES)


def _graphemes(text: str) -> Iterator[str]:
    """``text`` as graphemes (an approximation of UAX #29 that never cuts one)."""
    start, at, n = 0, 1, len(text)
    regional_run = 0
    while at <= n:
        if at == n:
            yield text[start:at]
            return
        prev, char = text[at - 1], text[at]
        joined = (
            _attaches(char)
            or prev == _ZWJ
            or (prev == "\r" and char == "\n")
            or ("\ud800" <= prev <= "\udbff" and "\udc00" <= char <= "\udfff")
        )
        if _REGIONAL[0] <= ord(prev) <= _REGIONAL[1]:
            regional_run += 1
            if regional_run % 2 == 1 and _REGIONAL[0] <= ord(char) <= _REGIONAL[1]:
                joined = True  # the second half of a flag
        else:
            regional_run = 0
        if not joined:
            yield text[start:at]
            start = at
        at += 1


def _units(text: str, cq: bool) -> Iterator[str]:
    """The pieces nothing may cut: graphemes, and with ``cq`` codes and escapes."""
    if not cq:
        yield from _graphemes(text)
        return
    at = 0
    for match in _CQ_UNIT.finditer(text):
        yield from _graphemes(text[at : match.start()]) if match.start() > at else ()
        yield match.group()
        at = match.end()
    if at < len(text):
        yield from _graphemes(text[at:])


def split_text(text: str, limit: int, *, cq: bool = False) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters (see the module docstring).

    Short text is one piece, and empty text none.
    """
    if type(limit) is not int or limit < 1:
        raise ConfigError("limit", "an integer >= 1", limit)
    if len(text) <= limit:
        return [text] if text else []
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for unit in _units(text, cq):
        while size + len(unit) > limit and current:  # each cut leaves less behind
            keep = _best_cut(current)
            pieces.append("".join(current[:keep]))
            current = current[keep:]
            size = sum(map(len, current))
        current.append(unit)
        size += len(unit)
    if current:
        pieces.append("".join(current))
    return pieces


def _best_cut(units: list[str]) -> int:
    """Where to end a piece: after its last line break, else its last space,
    else at its end (never cutting a unit)."""
    for wanted in ("\n", " "):
        for at in range(len(units), 0, -1):
            if units[at - 1].endswith(wanted):
                return at
    return len(units)
