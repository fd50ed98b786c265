"""The platform's rules for passive replies, as values (spec 7.3, 7.4, 9).

How long after an inbound message a scene takes replies, and how many
(:class:`ReplyPolicy`, :data:`DEFAULT_POLICIES`); the codes after which an
id takes no more (:data:`DEAD_CODES`) and the one that says a reply landed
already (:data:`DUPLICATE_CODE`); and why a reply is refused before it goes
out (:class:`Refusal`, :class:`ReplyRefused`). The tracker that applies them
is :class:`~qqproto.qq.replies.ReplyTracker`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Final, Protocol

from ..errors import ConfigError, LocalProtocolError
from .scenes import Scene

__all__ = [
    "DEAD_CODES",
    "DEFAULT_POLICIES",
    "DUPLICATE_CODE",
    "Answers",
    "Outcome",
    "OwnMessageAsReplyTarget",
    "Refusal",
    "ReplyPolicy",
    "ReplyRefused",
]


class Answers(Protocol):
    """What a refusal tells of the reply's context (a ``ReplyContext`` has it)."""

    @property
    def scene(self) -> Scene: ...

    @property
    def reply_to(self) -> str: ...  # the inbound msg_id or event_id


@dataclass(frozen=True, slots=True)
class ReplyPolicy:
    """How long after the inbound message replies are allowed, and how many."""

    window: float
    max_replies: int | None

    def __post_init__(self) -> None:
        if not self.window > 0:
            raise ConfigError("window", "a positive number of seconds", self.window)
        if self.max_replies is not None and self.max_replies < 1:
            raise ConfigError("max_replies", "None or an integer >= 1", self.max_replies)


#: Spec 7.3. The docs give C2C 5 replies; Tencent's own plugin budgets 4, so pass
#: ``policies={Scene.C2C: ReplyPolicy(3600.0, 4)}`` to be safe. Guild: no stated cap.
DEFAULT_POLICIES: Final[Mapping[Scene, ReplyPolicy]] = MappingProxyType(
    {
        Scene.GROUP: ReplyPolicy(300.0, 5),
        Scene.C2C: ReplyPolicy(3600.0, 5),
        Scene.GUILD_CHANNEL: ReplyPolicy(300.0, None),
        Scene.GUILD_DM: ReplyPolicy(300.0, None),
    }
)

#: (msg_id, msg_seq) already used. On a retry of a request that may have landed,
#: it means the earlier attempt was delivered.
DUPLICATE_CODE: Final = 40054005

#: Platform codes after which the msg_id/event_id can never carry a reply again (spec 7.4, 9):
#: msg_id expired (40034005, 40034031, 304103), invalid or out of scope (40034024), window
#: or count exceeded (40034128); event_id invalid, expired, not replyable (40034025-7);
#: guild: bad, expired, not replyable msg_id (304026-8), the bot's own message (50045).
_DEAD_MSG_ID = (40034005, 40034031, 304103, 40034024, 40034128, 304026, 304027, 304028, 50045)
DEAD_CODES: Final = frozenset((*_DEAD_MSG_ID, 40034025, 40034026, 40034027))


class Refusal(Enum):
    """Why a reply was refused before any request went out."""

    WINDOW_CLOSED = "window closed"
    BUDGET_SPENT = "budget spent"
    DEAD = "declared dead by the platform"
    UNKNOWN = "unknown context"
    OWN_MESSAGE = "the bot's own message"
    NOT_RETRYABLE = "not retryable"


class ReplyRefused(LocalProtocolError):
    """A request the server would refuse, refused here first; ``reason`` says why.

    ``seconds_over`` (window), ``used`` and ``cap`` (budget) and ``code`` (the
    platform code that killed the id) are set where they apply.
    """

    def __init__(
        self,
        reason: Refusal,
        detail: str,
        ctx: Answers | None = None,
        *,
        seconds_over: float | None = None,
        used: int | None = None,
        cap: int | None = None,
        code: int | None = None,
    ) -> None:
        self.reason = reason
        self.seconds_over = seconds_over
        self.used = used
        self.cap = cap
        self.code = code
        self.scene = None if ctx is None else ctx.scene
        self.reply_to = None if ctx is None else ctx.reply_to
        super().__init__(f"passive reply refused: {detail}")


class OwnMessageAsReplyTarget(ReplyRefused):
    """An id that one of the bot's own sends returned was offered as a reply target."""

    def __init__(self, message_id: str, sent_at: float) -> None:
        self.message_id, self.sent_at = message_id, sent_at
        super().__init__(
            Refusal.OWN_MESSAGE,
            f"{message_id!r} is this bot's own message (known as such since t={sent_at}), not"
            " an inbound message or event: a passive reply must answer the id the platform"
            " delivered (a sent id gets 40034024 'msg_id invalid or out of scope', AstrBot"
            " #6931)",
        )
        self.reply_to = message_id


class Outcome(Enum):
    """What :meth:`ReplyTracker.failed` concluded about the request."""

    DELIVERED = "delivered"  # an earlier attempt landed (a duplicate code on a retry)
    FAILED = "failed"  # not delivered; retry() or begin() may still work
    DEAD = "dead"  # the platform takes no more replies to this id: send proactively
