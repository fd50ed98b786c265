"""Is a message addressed to the bot? Mentions, command prefixes, trigger modes.

In a private chat every message is for the bot. In a group it depends on the
bot's trigger mode:

========== ============================================================
mode       a group message triggers the bot when
========== ============================================================
mention    it mentions the bot, or everyone
command    it starts with the command prefix, or mentions the bot
always     always
========== ============================================================

The bot's own id is the event's ``self_id`` unless another is given. Ids are
compared as text: v11's ``123`` is v12's ``"123"``, and a mention carries the
id as a string while the event may carry it as a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from .events import MessageEvent
from .segments import Segment

__all__ = ["TriggerMode", "mentions", "mentions_everyone", "to_me", "triggers", "without_mention"]

TriggerMode = Literal["mention", "command", "always"]


def _text_of(value: object) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    return str(value)


def mentions(segments: Sequence[Segment], user_id: int | str | None) -> bool:
    """Whether ``segments`` mention ``user_id`` (False when it is unknown)."""
    wanted = _text_of(user_id)
    if wanted is None:
        return False
    return any(s.type == "mention" and _text_of(s.data.get("user_id")) == wanted for s in segments)


def mentions_everyone(segments: Sequence[Segment]) -> bool:
    return any(s.type == "mention_all" for s in segments)


def to_me(event: MessageEvent, self_id: int | str | None = None) -> bool:
    """A private message, or a message that mentions the bot."""
    if event.private:
        return True
    return mentions(event.segments, event.self_id if self_id is None else self_id)


def triggers(
    event: MessageEvent,
    mode: TriggerMode = "mention",
    *,
    prefix: str = "/",
    self_id: int | str | None = None,
) -> bool:
    """Whether ``event`` triggers the bot in ``mode`` (see the module docstring).

    In ``command`` mode the prefix is looked for at the start of the text once
    a leading mention of the bot and the spaces after it are left out:
    ``@bot /help`` is a command too.
    """
    if mode == "always" or to_me(event, self_id):
        return True
    if mode == "mention":
        return mentions_everyone(event.segments)
    me = event.self_id if self_id is None else self_id
    text = "".join(s.plain for s in without_mention(event.segments, me))
    return bool(prefix) and text.lstrip().startswith(prefix)


def without_mention(segments: Sequence[Segment], user_id: int | str | None) -> list[Segment]:
    """``segments`` without a leading mention of ``user_id`` (and the reply a
    quoting client puts before it): what a command reads."""
    out = list(segments)
    start = 1 if out and out[0].type == "reply" else 0
    if len(out) > start and mentions(out[start : start + 1], user_id):
        del out[start]
    return out
