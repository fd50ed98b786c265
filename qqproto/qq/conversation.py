"""The bot's side of passive replies: inbound registration, redelivery de-dup, reply calls.

:class:`~qqproto.qq.bot.BotProtocol` owns one :class:`Conversations`. Every
typed inbound message (and the events that take an ``event_id`` reply) is
registered with its :class:`~qqproto.qq.replies.ReplyTracker` as the gateway
delivers it, and its :class:`~qqproto.qq.replies.ReplyContext` is kept here, by
id, for the longest reply window: the application replies to the *event* and
never handles a context. The same message id (or envelope id) delivered again
(spec 14, quirk 7) in the same dispatch type is reported as a redelivery, to
be dropped. In another type it is not: a guild bot subscribed to both gets one
message as MESSAGE_CREATE and as AT_MESSAGE_CREATE, and each type reaches the
application once. Both share the message's one reply context, and so its
budget: the message is never answered more often than its scene allows.

A dispatch the gateway delivers raw, as a :class:`~qqproto.qq.events.Dispatch`
(a type without a class, or a typed one whose payload broke its type), is
de-duplicated too: by its envelope ``id``, and for the message types also by
``d.id`` when that is a string, since a redelivered message may come in a new
envelope (as typed messages, which are keyed on their message id alone). A
raw dispatch is dropped when either id came typed or raw before, but it never
hides a typed delivery that comes after it: that one is the form the
application can act on (and reply to). Its
:class:`~qqproto.qq.events.ProtocolViolation` is not de-duplicated: it
reports bytes that came, and a server that sends a broken payload twice did
so twice.

A raw dispatch takes no passive reply, even of a message type. Its payload
failed the checks that make a reply safe: the conversation (``group_openid``,
``author.user_openid``, ``channel_id``) and the ``id`` a reply names are
unchecked values, so a reply could go to the wrong place or name an id the
platform refuses, and the ledger would hold a context it cannot trust. The
application can still answer with an active message (:func:`.api.send_text`
without ``reply``) once it has checked the fields itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import LocalProtocolError
from ..ttl import TTLMap
from .api import ApiCall, Target, send_markdown, send_media, send_text
from .codes import ApiError
from .events import (
    EVENT_TYPES,
    MESSAGE_TYPES,
    AtMessageCreate,
    C2CMessageCreate,
    C2CMsgReceive,
    DirectMessageCreate,
    Dispatch,
    FriendAdd,
    GroupAddRobot,
    GroupMessage,
    GroupMsgReceive,
    GuildMessage,
    InteractionCreate,
    MessageCreate,
)
from .replies import IdKind, ReplyContext, ReplyTicket, ReplyTracker, _LedgerEntry
from .reply_rules import DEAD_CODES, DUPLICATE_CODE, Refusal, ReplyPolicy, ReplyRefused
from .results import SentMessage, UploadedMedia
from .scenes import Scene

__all__ = ["Conversations", "reply_code"]

#: Where an event can be answered: (scene, target, "msg_id" or "event_id", the id).
_Where = tuple[Scene, str, IdKind, str]

#: INTERACTION_CREATE ``chat_type``: 0 guild, 1 group, 2 C2C.
_INTERACTION_SCENES = {1: Scene.GROUP, 2: Scene.C2C}


def _group(event: GroupMessage) -> _Where:
    return Scene.GROUP, event.group_openid, "msg_id", event.id


def _c2c(event: C2CMessageCreate) -> _Where:
    return Scene.C2C, event.author.user_openid, "msg_id", event.id


def _guild_dm(event: DirectMessageCreate) -> _Where:
    return Scene.GUILD_DM, event.guild_id, "msg_id", event.id


def _channel(event: AtMessageCreate | MessageCreate) -> _Where:
    return Scene.GUILD_CHANNEL, event.channel_id, "msg_id", event.id


#: Where a message is answered, by its class or a base of it.
_MESSAGE_WHERE: tuple[tuple[type, Callable[[Any], _Where]], ...] = (
    (GroupMessage, _group),
    (C2CMessageCreate, _c2c),
    (DirectMessageCreate, _guild_dm),
    (AtMessageCreate, _channel),
    (MessageCreate, _channel),
)


def _message_where(cls: type) -> Callable[[Any], _Where] | None:
    for base, where_of in _MESSAGE_WHERE:
        if issubclass(cls, base):
            return where_of
    return None


#: The same for the classes the decoder makes: every inbound message is looked
#: up here, one dict lookup where the issubclass checks take up to five.
_WHERE_BY_CLASS: dict[type, Callable[[Any], _Where]] = {
    cls: f for cls in EVENT_TYPES.values() if (f := _message_where(cls))
}


def _where(event: object) -> _Where | None:
    """The conversation and id a passive reply to ``event`` uses; None if it takes none."""
    where_of = _WHERE_BY_CLASS.get(type(event)) or _message_where(type(event))
    if where_of is not None:
        return where_of(event)
    event_id = getattr(event, "event_id", None)
    if not event_id:
        return None
    target: str | None = None
    scene = Scene.GROUP
    if isinstance(event, InteractionCreate):
        if event.chat_type in _INTERACTION_SCENES:
            scene = _INTERACTION_SCENES[event.chat_type]
            target = event.group_openid if scene is Scene.GROUP else event.user_openid
        elif event.chat_type == 0:
            scene, target = Scene.GUILD_CHANNEL, event.channel_id
    elif isinstance(event, GroupAddRobot | GroupMsgReceive):
        target = event.group_openid
    elif isinstance(event, FriendAdd | C2CMsgReceive):
        scene, target = Scene.C2C, event.openid
    return None if not target else (scene, target, "event_id", event_id)


#: Ids delivered lately, each with the dispatch type (or types) it came as. A
#: redelivery is the same id in the same type: one message may come as two
#: types (a guild bot subscribed to both gets MESSAGE_CREATE and
#: AT_MESSAGE_CREATE with one message id), and each must reach the
#: application once. Keyed by the id alone (a str, whose hash is cached) with
#: the type as the value, a new id costs one ``add``, and no key is built.
_Seen = TTLMap[str, str | frozenset[str]]


def _came_as(seen: _Seen, ident: str, t: str, now: float) -> bool:
    types = seen.get(ident, now)
    return types == t or (type(types) is frozenset and t in types)


def _note(seen: _Seen, ident: str, t: str, now: float) -> None:
    """Record that ``ident`` came as a ``t``."""
    if not seen.add(ident, t, now):  # (inbound() inlines this for the common case)
        _another_type(seen, ident, t, now)


def _another_type(seen: _Seen, ident: str, t: str, now: float) -> bool:
    """``ident`` came before: record ``t`` beside its types, or False if it is one."""
    types = seen.get(ident, now)
    if types is None or types == t or (type(types) is frozenset and t in types):
        return False
    seen.set(ident, types | {t} if isinstance(types, frozenset) else frozenset((types, t)), now)
    return True


#: The dispatch type of each class the decoder makes: one dict lookup per event.
_TYPE_BY_CLASS: dict[type, str] = {cls: t for t, cls in EVENT_TYPES.items()}


def _type_of(event: object) -> str:
    """The dispatch type ``event`` came as (inbound() looks the decoder's classes up first)."""
    return event.type if isinstance(event, Dispatch) else getattr(type(event), "TYPE", "")


def _dedup_ids(event: object) -> tuple[str, ...]:
    """The ids that make a later delivery of ``event`` (in its type) a
    redelivery, if it takes no reply.

    (One that does is known by the id a reply names, ``_where(event)[3]``.)
    """
    if isinstance(event, Dispatch):
        ids: tuple[str, ...] = (event.id,) if event.id else ()
        data = event.data
        if event.type in MESSAGE_TYPES and type(data) is dict:
            msg_id = data.get("id")
            if type(msg_id) is str and msg_id:
                ids += (msg_id,)
        return ids
    event_id = getattr(event, "event_id", None)
    return (event_id,) if isinstance(event_id, str) and event_id else ()


def reply_code(error: ApiError) -> int | None:
    """The code that decides a reply's fate: the duplicate or a dead code if either is set."""
    codes = [c for c in (error.err_code, error.code) if c]
    for code in codes:
        if code == DUPLICATE_CODE or code in DEAD_CODES:
            return code
    return codes[0] if codes else None


class Conversations:
    """Inbound ids, their reply contexts and the redelivery de-dup of one bot."""

    def __init__(
        self,
        policies: Mapping[Scene, ReplyPolicy] | None = None,
        *,
        dedup_ttl: float = 600.0,
        max_size: int = 100_000,
    ) -> None:
        self.tracker = ReplyTracker(policies, max_contexts=max_size)
        longest = max(p.window for p in self.tracker.policies.values()) + self.tracker.margin
        # The tracker's entries (each makes its context when first asked), kept
        # past the tracker's own expiry: a late reply is refused for its closed
        # window, not as unknown.
        self._contexts = TTLMap[tuple[str, str], _LedgerEntry](longest, max_size)
        self._seen = _Seen(dedup_ttl, max_size)
        # Ids of raw dispatches, apart: they drop raw redeliveries, not typed ones.
        self._seen_raw = _Seen(dedup_ttl, max_size)
        #: Inbound deliveries dropped because their id had been delivered already.
        self.redeliveries = 0

    def inbound(self, event: object, now: float) -> bool:
        """Register ``event``; False when it is a redelivery the application already got."""
        # This runs for every event the gateway delivers: no generators, one
        # map call where one does, and no ReplyContext until a reply asks.
        where = _where(event)
        t = _TYPE_BY_CLASS.get(type(event)) or _type_of(event)
        if where is not None:
            # An event that takes replies (most are messages): its one id, in
            # the typed map only; add() checks and stores in one call. An
            # empty id names nothing, so it makes nothing a redelivery.
            ids: tuple[str, ...] = (where[3],) if where[3] else ()
            if (
                ids
                and not self._seen.add(where[3], t, now)
                and not _another_type(self._seen, where[3], t, now)
            ):
                self.redeliveries += 1
                return False
        elif ids := _dedup_ids(event):
            # A raw dispatch checks both maps; a typed event only the typed one.
            maps = (self._seen, self._seen_raw) if isinstance(event, Dispatch) else (self._seen,)
            for seen in maps:
                for ident in ids:
                    if _came_as(seen, ident, t, now):
                        self.redeliveries += 1
                        return False
            for ident in ids:
                _note(maps[-1], ident, t, now)
        event_id = getattr(event, "event_id", None)
        if (
            isinstance(event_id, str)
            and event_id
            and event_id not in ids
            # A typed message's envelope: a raw copy of it may come without
            # d.id. (_note() inlined: this runs for every typed message.)
            and not self._seen_raw.add(event_id, t, now)
        ):
            _another_type(self._seen_raw, event_id, t, now)
        if where is not None:
            scene, target, kind, ident = where
            if not ident:
                return True  # inbound() would refuse it: deliver it, but no replies
            if isinstance(event, GuildMessage) and _written_by_the_bot(event):
                # An echo of the bot's own message, which may come before the
                # answer to the send: never a reply target (AstrBot #6931).
                self.tracker.sent(ident, now)
                return True
            try:
                entry = self.tracker._register(scene, target, kind, ident, now)
            except LocalProtocolError:
                return True  # the bot's own id, or a clash: deliver it, but no replies
            self._contexts.set((kind, ident), entry, now)
        return True

    def context(self, event: object, now: float) -> ReplyContext:
        """The context registered for ``event``, or :class:`ReplyRefused` saying why not."""
        where = _where(event)
        if isinstance(event, Dispatch):  # see the module docstring
            raise ReplyRefused(
                Refusal.UNKNOWN,
                f"a raw {event.type} dispatch takes no passive reply: its payload is unchecked",
            )
        if where is None:
            raise ReplyRefused(
                Refusal.UNKNOWN, f"{type(event).__name__} takes no passive reply here"
            )
        self.tracker._refuse_own(where[3], now)
        entry = self._contexts.get((where[2], where[3]), now)
        if entry is None:
            raise ReplyRefused(
                Refusal.UNKNOWN,
                f"{where[2]} {where[3]!r} was not delivered by this bot, or its window is long"
                " over",
            )
        return entry.ctx

    def begin(
        self,
        event: object,
        text: str,
        now: float,
        *,
        markdown: str | Mapping[str, Any] | None = None,
        media_file_info: str | None = None,
        msg_seq: int | None = None,
    ) -> tuple[ApiCall[SentMessage], ReplyTicket]:
        """The reply call to ``event``'s conversation and the ticket it carries
        (``msg_seq``: one a shared counter handed out, see ``ReplyTracker.begin``)."""
        ctx = self.context(event, now)
        ticket = self.tracker.begin(ctx, now, msg_seq=msg_seq)
        to = Target(ctx.scene, ctx.target)
        try:
            if markdown is not None:
                call = send_markdown(to, markdown, reply=ticket)
            elif media_file_info is not None:
                call = send_media(to, media_file_info, content=text or None, reply=ticket)
            else:
                call = send_text(to, text, reply=ticket)
        except BaseException:  # nothing was sent: the ticket's budget comes back
            self.tracker.failed(ticket, now, code=None, may_have_landed=False)
            raise
        return call, ticket

    def delivered(self, ticket: ReplyTicket, result: object, now: float) -> None:
        """A reply was accepted; ``result`` is what its answer parsed to."""
        self.tracker.delivered(ticket, _message_id(result), now)

    def sent(self, result: object, now: float) -> None:
        """Any other call was answered: the id of a message it sent is the bot's own."""
        if message_id := _message_id(result):
            self.tracker.sent(message_id, now)


def _message_id(result: object) -> str | None:
    """The id of the message a call's answer says it sent, if it sent one."""
    if isinstance(result, SentMessage | UploadedMedia):  # an upload may send it at once
        return result.id or None
    return None


def _written_by_the_bot(event: GuildMessage) -> bool:
    """A guild message knows the bot's id (READY's ``user.id``) beside its author's."""
    return bool(event.bot_id) and event.author.id == event.bot_id
