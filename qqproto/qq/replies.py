"""Passive-reply bookkeeping: which inbound id a reply answers, its msg_seq, its window.

A passive reply carries the ``msg_id`` (or ``event_id``) the platform delivered
and a ``msg_seq`` that must never repeat for it, within the scene's window and
budget (spec 7.3). QQ bot stacks got each part wrong: constant or random
``msg_seq`` (40054005; botpy #235, AstrBot #4382), no windows (AstrBot #7904),
and the id of the bot's own send reused as ``msg_id`` (40034024; AstrBot #6931).

So a reply answers a :class:`ReplyContext`, which only
:meth:`ReplyTracker.inbound` makes (the event decoder calls it for every inbound
message or event) and which refuses ids the bot's own sends returned; a ``str``
cannot stand in for one. :meth:`ReplyTracker.begin` hands out the msg_seq, or
refuses locally, saying why, what the server would refuse (the rules, and
the refusals, are values of :mod:`qqproto.qq.reply_rules`). Contexts live in
:class:`~qqproto.ttl.TTLMap` s for their window: memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

import msgspec

from ..errors import ConfigError, LocalProtocolError
from ..ttl import TTLMap
from .reply_rules import (
    DEAD_CODES,
    DEFAULT_POLICIES,
    DUPLICATE_CODE,
    Outcome,
    OwnMessageAsReplyTarget,
    Refusal,
    ReplyPolicy,
    ReplyRefused,
)
from .scenes import Scene

__all__ = ["ReplyContext", "ReplyTicket", "ReplyTracker"]


#: What a reply answers: the name of the request body field that carries it.
IdKind = Literal["msg_id", "event_id"]


class _Owner:
    """Proof that a tracker made a value; there is no supported way to make one."""

    __slots__ = ()


def _check_owner(value: object, owner: object) -> None:
    if not isinstance(owner, _Owner):
        raise LocalProtocolError(
            f"{type(value).__name__} is made by ReplyTracker only",
            expected="a value from inbound(), begin() or retry()",
            received="one built by hand",
        )


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """An inbound message or event that replies may answer; ``inbound()`` makes it."""

    scene: Scene
    target: str  # group_openid, user_openid, channel_id, or guild_id of the DM
    kind: IdKind
    reply_to: str  # the inbound msg_id or event_id
    received_at: float
    closes_at: float  # the end of the window, less the safety margin
    _owner: _Owner = field(repr=False)

    def __post_init__(self) -> None:
        _check_owner(self, self._owner)

    @property
    def msg_id(self) -> str | None:
        return self.reply_to if self.kind == "msg_id" else None

    @property
    def event_id(self) -> str | None:
        return self.reply_to if self.kind == "event_id" else None


@dataclass(frozen=True, slots=True)
class ReplyTicket:
    """One attempt at one reply, from ``begin()`` or ``retry()``: what the request needs.

    Post to ``target`` (the conversation the inbound came from: another one's URL
    gets 40034024) with ``body()`` in the JSON body.
    """

    context: ReplyContext
    msg_seq: int
    attempt: int
    _owner: _Owner = field(repr=False)

    def __post_init__(self) -> None:
        _check_owner(self, self._owner if self._owner is self.context._owner else None)

    @property
    def target(self) -> str:
        return self.context.target

    @property
    def msg_id(self) -> str | None:
        return self.context.msg_id

    @property
    def event_id(self) -> str | None:
        return self.context.event_id

    def body(self) -> dict[str, str | int]:
        """The passive-reply fields of the request body; guild bodies have no msg_seq."""
        body: dict[str, str | int] = {self.context.kind: self.context.reply_to}
        if self.context.scene in (Scene.GROUP, Scene.C2C):
            body["msg_seq"] = self.msg_seq
        return body


@dataclass(slots=True)
class _Slot:
    """A msg_seq not yet delivered: its latest attempt and whether it counts on the budget."""

    attempt: int = 1
    pending: bool = True
    charged: bool = True
    maybe_landed: bool = False  # some attempt got no clear answer


class _LedgerEntry(msgspec.Struct, gc=False):
    """The ledger of one inbound id, and the fields of its context.

    One is made for every inbound message, so it is a Struct: made in C at a
    third of a slotted class's cost, and with ``gc=False`` never tracked by the
    cyclic GC, which the maps of a busy bot would otherwise keep walking. That
    is safe: an entry refers to strings, numbers, its context and its slots,
    none of which refers back, so it is never part of a cycle.

    Its :class:`ReplyContext` is made the first time something asks for it: a
    frozen dataclass with a checked ``__init__`` costs several times as much,
    and a bot replies to few of the messages it sees. It is made once, so every
    caller gets the same object.
    """

    scene: Scene
    target: str
    kind: IdKind
    reply_to: str
    received_at: float
    closes_at: float
    owner: _Owner
    made_ctx: ReplyContext | None = None
    next_seq: int = 1
    charged: int = 0  # replies counting against the budget
    dead: int | None = None  # the code that killed the id
    slots: dict[int, _Slot] = msgspec.field(default_factory=dict)

    @property
    def ctx(self) -> ReplyContext:
        """The context of this id, made on first use."""
        ctx = self.made_ctx
        if ctx is None:
            ctx = self.made_ctx = ReplyContext(
                self.scene,
                self.target,
                self.kind,
                self.reply_to,
                self.received_at,
                self.closes_at,
                self.owner,
            )
        return ctx


class ReplyTracker:
    """The passive-reply ledger of one bot: inbound ids, msg_seqs, windows, budgets.

    ``margin`` seconds come off every window, since the server measures it by its
    own clock. Ids the bot's sends returned are kept ``sent_ttl`` seconds (by
    default the longest window plus the margin). Each scene holds at most
    ``max_contexts`` contexts, and only for its window plus the margin.
    """

    __slots__ = ("_entries", "_now", "_owner", "_sent", "margin", "policies")

    def __init__(
        self,
        policies: Mapping[Scene, ReplyPolicy] | None = None,
        *,
        margin: float = 2.0,
        max_contexts: int = 100_000,
        sent_ttl: float | None = None,
        max_sent: int = 100_000,
    ) -> None:
        merged = {**DEFAULT_POLICIES, **(policies or {})}
        for scene, policy in merged.items():
            if not 0 <= margin < policy.window:
                raise ConfigError("margin", f"0 <= margin < the {scene.value} window", margin)
        self.policies: Mapping[Scene, ReplyPolicy] = MappingProxyType(merged)
        self.margin = margin
        self._owner = _Owner()
        self._now = float("-inf")  # the latest now given, for len()
        # scene -> (its contexts by (kind, id), how long replies may start after inbound)
        self._entries = {
            scene: (
                TTLMap[tuple[str, str], _LedgerEntry](p.window + margin, max_contexts),
                p.window - margin,
            )
            for scene, p in merged.items()
        }
        longest = max(policy.window for policy in merged.values()) + margin
        self._sent = TTLMap[str, float](sent_ttl or longest, max_sent)

    def inbound(
        self,
        scene: Scene,
        target: str,
        now: float,
        *,
        msg_id: str | None = None,
        event_id: str | None = None,
    ) -> ReplyContext:
        """Register an inbound message (``msg_id``) or event (``event_id``, the envelope id).

        A redelivery of the same id returns the same context, window and budget
        untouched. An id the bot's own send returned raises
        :class:`OwnMessageAsReplyTarget`.
        """
        kind: IdKind = "msg_id" if event_id is None else "event_id"
        ident = msg_id if event_id is None else event_id
        if (msg_id is None) == (event_id is None) or not isinstance(ident, str) or not ident:
            raise LocalProtocolError(
                "inbound() registers one id",
                expected="exactly one non-empty str: msg_id= or event_id=",
                received={"msg_id": msg_id, "event_id": event_id},
            )
        return self._register(scene, target, kind, ident, now).ctx

    def _register(
        self, scene: Scene, target: str, kind: IdKind, ident: str, now: float
    ) -> _LedgerEntry:
        """``inbound()`` once its arguments are checked: the entry of ``ident``, made or found.

        :class:`~qqproto.qq.conversation.Conversations` calls it for every
        inbound message (``ident`` a non-empty str) and keeps the entry: the
        context is made only if a reply asks for it.
        """
        if now > self._now:  # not max(): this is the hot path
            self._now = now
        sent_at = self._sent.get(ident, now)
        if sent_at is not None:
            raise OwnMessageAsReplyTarget(ident, sent_at)
        entries, open_for = self._entries[scene]
        key = (kind, ident)
        entry = _LedgerEntry(scene, target, kind, ident, now, now + open_for, self._owner)
        if entries.add(key, entry, now):  # one map call for a new id, the common case
            return entry
        known = entries.get(key, now)  # a redelivery: the entry it made
        assert known is not None  # add() found it live at this `now`
        if known.target != target:
            raise LocalProtocolError(
                f"{kind} {ident!r} is already registered",
                expected=f"{scene.value} {known.target!r} again",
                received=f"{scene.value} {target!r}",
            )
        return known

    def sent(self, message_id: str, now: float) -> None:
        """Remember the id of one of the bot's own messages: one its sends returned
        (``delivered()`` calls this), or one delivered with the bot as its author."""
        self._now = max(self._now, now)
        self._sent.set(message_id, now, now)

    def begin(self, ctx: ReplyContext, now: float, *, msg_seq: int | None = None) -> ReplyTicket:
        """The next msg_seq for a new reply to ``ctx``, or :class:`ReplyRefused` saying why.

        ``msg_seq`` is one handed out elsewhere: by a counter that several
        processes answering the same message share (``qqproto.adapters.redis``).
        It is then the count of replies to this message everywhere, so the
        scene's budget is checked against it too."""
        entry = self._live(ctx, now)
        if msg_seq is not None:
            if type(msg_seq) is not int or msg_seq < 1 or msg_seq in entry.slots:
                raise LocalProtocolError(
                    "bad shared msg_seq", expected="a new integer >= 1", received=msg_seq
                )
            cap = self.policies[entry.scene].max_replies
            if cap is not None and msg_seq > cap:
                noun = "message" if entry.kind == "msg_id" else "event"
                why = f"{msg_seq - 1} of {cap} replies to this {noun} used (shared count)"
                raise ReplyRefused(Refusal.BUDGET_SPENT, why, ctx, used=msg_seq - 1, cap=cap)
        self._charge(entry)
        seq = entry.next_seq if msg_seq is None else msg_seq
        entry.next_seq = max(entry.next_seq, seq + 1)
        entry.slots[seq] = _Slot()
        return ReplyTicket(ctx, seq, 1, self._owner)

    def retry(self, ticket: ReplyTicket, now: float) -> ReplyTicket:
        """The same request again, same msg_seq, once ``failed()`` reported the attempt."""
        self._check_ticket(ticket)
        entry = self._live(ticket.context, now)
        slot = entry.slots.get(ticket.msg_seq)
        why = (
            f"msg_seq {ticket.msg_seq} was delivered; a retry would post it twice"
            if slot is None
            else f"attempt {ticket.attempt} was superseded by attempt {slot.attempt}"
            if slot.attempt != ticket.attempt
            else f"attempt {ticket.attempt} has no result yet: report it with failed() first"
            if slot.pending
            else None
        )
        if slot is None or why is not None:
            raise ReplyRefused(Refusal.NOT_RETRYABLE, why or "", ticket.context)
        if not slot.charged:
            self._charge(entry)
            slot.charged = True
        slot.attempt += 1
        slot.pending = True
        return ReplyTicket(ticket.context, ticket.msg_seq, slot.attempt, self._owner)

    def can_reply(self, ctx: ReplyContext, now: float) -> bool:
        """Whether ``begin(ctx, now)`` would hand out a ticket (if not, send proactively)."""
        try:
            entry = self._live(ctx, now)
        except ReplyRefused:
            return False
        cap = self.policies[ctx.scene].max_replies
        return cap is None or entry.charged < cap

    def delivered(self, ticket: ReplyTicket, sent_message_id: str | None, now: float) -> None:
        """The platform accepted the request; ``sent_message_id`` is the id it returned."""
        if sent_message_id:
            self.sent(sent_message_id, now)
        entry = self._entry_of(ticket, now)
        slot = None if entry is None else entry.slots.pop(ticket.msg_seq, None)
        if entry is not None and slot is not None and not slot.charged:
            entry.charged += 1

    def failed(
        self, ticket: ReplyTicket, now: float, *, code: int | None, may_have_landed: bool
    ) -> Outcome:
        """The request failed with platform ``code`` (None: no answer, e.g. a timeout).

        ``may_have_landed``: the server may have posted it anyway. A definite
        failure frees its budget (never its msg_seq) unless some earlier attempt
        of the same msg_seq may have landed.
        """
        entry = self._entry_of(ticket, now)
        if entry is None:  # expired (or evicted): only the code still matters
            return Outcome.DEAD if code in DEAD_CODES else Outcome.FAILED
        if code in DEAD_CODES and entry.dead is None:
            entry.dead = code
        slot = entry.slots.get(ticket.msg_seq)
        if slot is None:
            return Outcome.DELIVERED  # another attempt of this msg_seq was delivered
        if slot.attempt != ticket.attempt or not slot.pending:  # a stale report
            return Outcome.DEAD if entry.dead is not None else Outcome.FAILED
        earlier_may_have_landed = slot.maybe_landed
        slot.pending = False
        slot.maybe_landed = earlier_may_have_landed or may_have_landed
        if code == DUPLICATE_CODE and ticket.attempt > 1 and earlier_may_have_landed:
            self.delivered(ticket, None, now)
            return Outcome.DELIVERED
        if entry.dead is not None:
            return Outcome.DEAD
        # A duplicate on a first attempt: someone used this pair, so it stays charged.
        if slot.charged and not slot.maybe_landed and code != DUPLICATE_CODE:
            slot.charged = False
            entry.charged -= 1
        return Outcome.FAILED

    def expire(self, now: float) -> int:
        """Drop the contexts and sent ids whose time is up; return how many went."""
        self._now = max(self._now, now)
        dropped = self._sent.expire(self._now)
        return dropped + sum(m.expire(self._now) for m, _ in self._entries.values())

    def __len__(self) -> int:
        """Live contexts as of the latest ``now`` the tracker was given."""
        self.expire(self._now)
        return sum(len(m) for m, _ in self._entries.values())

    @property
    def sent_ids(self) -> int:
        """Live remembered ids of the bot's own sends."""
        self._sent.expire(self._now)
        return len(self._sent)

    def _refuse_own(self, ident: str, now: float) -> None:
        sent_at = self._sent.get(ident, now)
        if sent_at is not None:
            raise OwnMessageAsReplyTarget(ident, sent_at)

    def _live(self, ctx: ReplyContext, now: float) -> _LedgerEntry:
        """The entry a new request for ``ctx`` may use, or the reason none may."""
        if not isinstance(ctx, ReplyContext):
            raise TypeError(
                f"a reply answers the ReplyContext inbound() returned, not {ctx!r}: a stored"
                " message id is how AstrBot #6931 replied to its own message"
            )
        self._now = max(self._now, now)
        if ctx._owner is not self._owner:
            raise ReplyRefused(Refusal.UNKNOWN, "the context is another tracker's", ctx)
        self._refuse_own(ctx.reply_to, now)
        entry = self._entries[ctx.scene][0].get((ctx.kind, ctx.reply_to), now)
        if entry is not None and entry.ctx is not ctx and entry.ctx != ctx:
            raise ReplyRefused(Refusal.UNKNOWN, "the context was altered after inbound()", ctx)
        if now >= ctx.closes_at:
            over, window = now - ctx.closes_at, self.policies[ctx.scene].window
            raise ReplyRefused(
                Refusal.WINDOW_CLOSED,
                f"the {ctx.scene.value} reply window of {window:g} s closed {over:.1f} s ago"
                f" ({self.margin:g} s safety margin included)",
                ctx,
                seconds_over=over,
            )
        if entry is None:
            why = f"{ctx.kind} {ctx.reply_to!r} was evicted: over max_contexts in its window"
            raise ReplyRefused(Refusal.UNKNOWN, why, ctx)
        if entry.dead is not None:
            why = f"the platform answered {entry.dead}: no reply to {ctx.reply_to!r} can succeed"
            raise ReplyRefused(Refusal.DEAD, why, ctx, code=entry.dead)
        return entry

    def _charge(self, entry: _LedgerEntry) -> None:
        cap = self.policies[entry.scene].max_replies
        if cap is not None and entry.charged >= cap:
            noun = "message" if entry.kind == "msg_id" else "event"
            why = f"{entry.charged} of {cap} replies to this {noun} used"
            raise ReplyRefused(Refusal.BUDGET_SPENT, why, entry.ctx, used=entry.charged, cap=cap)
        entry.charged += 1

    def _check_ticket(self, ticket: ReplyTicket) -> None:
        if not isinstance(ticket, ReplyTicket) or ticket._owner is not self._owner:
            raise LocalProtocolError(
                "not a ticket of this tracker",
                expected="a ReplyTicket from this tracker's begin() or retry()",
                received=ticket,
            )

    def _entry_of(self, ticket: ReplyTicket, now: float) -> _LedgerEntry | None:
        """The entry a result belongs to; None once it expired (the result is moot)."""
        self._check_ticket(ticket)
        self._now = max(self._now, now)
        ctx = ticket.context
        entry = self._entries[ctx.scene][0].get((ctx.kind, ctx.reply_to), now)
        return entry if entry is not None and entry.ctx == ctx else None
