"""What becomes of an action sent on a OneBot connection, as values.

Each action ends exactly once, as an :class:`ActionResult`; an answer in
several frames (NapCat's stream actions) comes first as one
:class:`StreamFrame` per frame before the last.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ProtocolError
from .actions import Action, Answer

__all__ = ["ActionResult", "StreamFrame"]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What became of an action: its ``answer`` (whose ``result()`` may still
    raise :class:`~qqproto.onebot.actions.ActionFailed`), or the ``error``
    that says why none came."""

    call_id: int
    action: Action
    answer: Answer | None = None
    error: ProtocolError | None = None

    @property
    def ok(self) -> bool:
        return self.answer is not None and self.answer.ok


@dataclass(frozen=True, slots=True)
class StreamFrame:
    """One frame of an answer that comes in several (NapCat's stream actions);
    the last one comes as the :class:`ActionResult`."""

    call_id: int
    action: Action
    answer: Answer
