"""Reading a peer's JSON with the standard library, whatever numbers it holds.

Python refuses to read an integer of more than 4300 digits (the limit of
``sys.set_int_max_str_digits``: ``json.loads`` raises ``ValueError``), and so
does msgspec. A peer can send one, and the JSON is still JSON: such an
integer is kept as the string of its digits. Whoever checks the field then
reports a value of the wrong type, and everything else in the document still
arrives. A smaller integer that is merely out of range (past int64, past
what a float holds) stays an int; the field's own check refuses it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads"]


def _int_or_digits(digits: str) -> int | str:
    try:
        return int(digits)
    except ValueError:
        return digits


def loads(text: bytes | bytearray | str) -> Any:
    """``json.loads``, with integers too long for an int kept as their digits."""
    return json.loads(text, parse_int=_int_or_digits)
