"""Events the gateway hands to the application (through ``Deliver``).

A :class:`Dispatch` is one op 0 payload as the server sent it; typed events
for the message types are built from it. A :class:`ProtocolViolation` reports
something the server got wrong that the gateway survived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import RemoteProtocolError

__all__ = ["Dispatch", "ProtocolViolation"]


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One dispatch (op 0): event ``type`` (``t``), ``seq`` (``s``), envelope
    ``id`` and the data ``d`` exactly as received."""

    type: str
    seq: int | None
    id: str | None
    data: Any


@dataclass(frozen=True, slots=True)
class ProtocolViolation:
    """The server sent something wrong; the session went on (or resumed)."""

    error: RemoteProtocolError
