"""What the gateway hands to the application (through ``Deliver``).

A dispatch (op 0) of a type listed in :data:`EVENT_TYPES` arrives as its typed
event: a frozen, slotted ``msgspec.Struct`` (:class:`GroupAtMessageCreate`,
:class:`C2CMessageCreate`, :class:`Ready`...), its fields checked on the way
in by :class:`~qqproto.qq.decode.EventDecoder`. Every other dispatch arrives
as a :class:`Dispatch`, ``d`` decoded as JSON, and so does a typed one whose
payload broke its type, right after the
:class:`~qqproto.errors.ProtocolViolation` that reports it: nothing is
dropped. A ``ProtocolViolation`` reports something the server got wrong
that the gateway survived.

What the decoder sets, once, before an event leaves it (``event_id``,
``event_seq``, ``frame``, ``on_shard`` and, for guild messages, ``bot_id``) is spelled
``qqproto.<name>`` on the wire side, so a payload that one day carries such
a key cannot collide with them. What derives from the fields (``text``,
``to_me``, ``empty``, ``Attachment.url``) is a property, computed when read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import msgspec

from .._json import loads
from .parts import (
    Attachment,
    C2CAuthor,
    GroupAuthor,
    GroupMention,
    GuildAuthor,
    GuildMember,
    InteractionData,
    MessageReference,
    MessageScene,
    QuotedMessage,
    ReadyUser,
)
from .text import clean_content

__all__ = [
    "EVENT_TYPES",
    "MESSAGE_TYPES",
    "AtMessageCreate",
    "C2CMessageCreate",
    "C2CMsgReceive",
    "C2CMsgReject",
    "DirectMessageCreate",
    "Dispatch",
    "Event",
    "FriendAdd",
    "FriendDel",
    "FriendEvent",
    "GroupAddRobot",
    "GroupAtMessageCreate",
    "GroupDelRobot",
    "GroupEvent",
    "GroupMessage",
    "GroupMessageCreate",
    "GroupMsgReceive",
    "GroupMsgReject",
    "GuildMessage",
    "InteractionCreate",
    "Message",
    "MessageCreate",
    "QQMessage",
    "Ready",
    "Resumed",
]


@dataclass(frozen=True, slots=True)
class Dispatch:
    """One dispatch (op 0) without a typed event: event ``type`` (``t``),
    ``seq`` (``s``), envelope ``id`` and the data ``d`` as plain JSON values;
    ``on_shard`` the shard ``(i, n)`` it came on (None: a callback's)."""

    type: str
    seq: int | None
    id: str | None
    data: Any
    on_shard: tuple[int, int] | None = field(default=None, compare=False)


#: What msgspec raises for text it cannot decode: its DecodeError (a
#: ValueError only in recent releases), or UnicodeEncodeError for a ``str``
#: holding a lone surrogate; json's errors are ValueErrors too.
_DECODE_ERRORS = (msgspec.DecodeError, ValueError)

_COMPUTED = frozenset({"event_id", "event_seq", "frame", "bot_id", "on_shard"})


def _wire_name(name: str) -> str | None:
    """Keep computed fields off the names a payload can use (see the module doc)."""
    return "qqproto." + name if name in _COMPUTED else None


class _RawEnvelope(msgspec.Struct, frozen=True, gc=False):
    """Only ``d``, as plain values: what :attr:`Event.raw` reads."""

    d: Any = None


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False, rename=_wire_name):
    """A dispatch the decoder understood. Frozen and slotted.

    ``event_id`` and ``event_seq`` are the envelope's ``id`` (use it as
    ``event_id`` in replies; de-duplicate on it) and ``s``. ``frame`` is the
    JSON text the event came in, kept as is, and :attr:`raw` is its ``d``.
    ``gc=False`` is safe: an event holds only strings, numbers and other
    frozen values, so it can never be part of a reference cycle.

    What is derived from the fields (``text``, ``to_me``, ``empty``,
    ``Attachment.url``) is a property computed on access: the gateway's hot
    path builds events it may only route or drop, and pays only for decoding.
    """

    #: The ``t`` this class decodes.
    TYPE: ClassVar[str] = ""
    #: Whether the decoder stores READY's user id in ``bot_id``.
    _WANTS_BOT_ID: ClassVar[bool] = False

    event_id: str | None = None
    event_seq: int | None = None
    frame: str = ""
    #: The shard ``(i, n)`` the event came on (None: a callback's, or built by
    #: hand). READY's own ``shard`` is what the server said, kept as it came.
    on_shard: tuple[int, int] | None = None

    @property
    def raw(self) -> Any:
        """``d`` as plain JSON values, unknown fields included; decoded per access."""
        if not self.frame:
            return None
        try:
            return msgspec.json.decode(self.frame, type=_RawEnvelope).d
        except _DECODE_ERRORS:  # lone surrogates, huge numbers: see qqproto.qq.decode.json_value
            return loads(self.frame).get("d")

    def as_dispatch(self) -> Dispatch:
        """The untyped view of this event, as the gateway delivers unknown types."""
        return Dispatch(self.TYPE, self.event_seq, self.event_id, self.raw, self.on_shard)

    def __repr__(self) -> str:  # without frame, which repeats every field
        fields = (f"{n}={getattr(self, n)!r}" for n in self.__struct_fields__ if n != "frame")
        return f"{type(self).__name__}({', '.join(fields)})"


class Message(Event, frozen=True, kw_only=True):
    """What every message event has. ``content`` is as it came; :attr:`text`
    is what to match commands against."""

    id: str
    content: str = ""
    timestamp: str = ""
    attachments: tuple[Attachment, ...] = ()

    @property
    def text(self) -> str:
        """``content`` with entities undone (and, by scene, mentions of the bot
        and leading whitespace removed: spec 6.8)."""
        content = self.content
        if "<" in content or "&" in content:
            return clean_content(content)[0]
        return content

    @property
    def to_me(self) -> bool:
        """Whether the message addresses the bot."""
        return True

    @property
    def sender(self) -> str:
        """Who sent it, as the scene knows them: the group member's or user's
        openid, or the guild user's id (what an allow-list holds)."""
        raise NotImplementedError  # every concrete message type overrides it

    @property
    def empty(self) -> bool:
        """A bare "@bot": no text left, no attachment."""
        if self.attachments:
            return False
        text = self.text
        return not text or text.isspace()


class QQMessage(Message, frozen=True, kw_only=True):
    """A group or C2C message, with the fields those two share."""

    message_type: int = 0
    message_scene: MessageScene | None = None
    msg_elements: tuple[QuotedMessage, ...] = ()
    message_reference: MessageReference | None = None

    @property
    def quote(self) -> QuotedMessage | None:
        """The quoted message of a reply (``message_type`` 103), if any.

        The element whose ``msg_idx`` is ``ref_msg_idx`` in the scene, as
        NB matches it; else the first element when the type says "quote".
        """
        elements = self.msg_elements
        if not elements:
            return None
        ref = self.message_scene.get("ref_msg_idx") if self.message_scene else None
        if ref is not None:
            for element in elements:
                if element.msg_idx == ref:
                    return element
        return elements[0] if self.message_type == 103 else None


class GroupMessage(QQMessage, frozen=True, kw_only=True):
    """A message in a QQ group; reply to ``group_openid``."""

    author: GroupAuthor
    group_openid: str
    group_id: str | None = None
    mentions: tuple[GroupMention, ...] = ()

    @property
    def sender(self) -> str:
        return self.author.member_openid

    @property
    def text(self) -> str:
        """``content`` without its leading whitespace (any Unicode whitespace:
        the PC client sends ``\\xa0``, phones a space), entities undone."""
        content = self.content
        if "<" in content or "&" in content:
            return clean_content(content, lstrip=True)[0]
        return content.lstrip()


class GroupAtMessageCreate(GroupMessage, frozen=True, kw_only=True):
    """``GROUP_AT_MESSAGE_CREATE``: the bot was @-mentioned; the platform
    already removed the mention and left its whitespace, which ``text`` drops."""

    TYPE: ClassVar[str] = "GROUP_AT_MESSAGE_CREATE"


class GroupMessageCreate(GroupMessage, frozen=True, kw_only=True):
    """``GROUP_MESSAGE_CREATE``: any group message (the owner opted in).

    ``to_me`` is true when ``mentions`` marks the bot (``is_you``); those
    mentions (``<@id>``, ``<@!id>``) leave ``text`` wherever they are.
    """

    TYPE: ClassVar[str] = "GROUP_MESSAGE_CREATE"

    @property
    def text(self) -> str:
        ids: tuple[str | None, ...] = ()
        for mention in self.mentions:
            if mention.is_you:
                ids += (mention.id, mention.member_openid)
        return clean_content(self.content, ids, anywhere=True, lstrip=True)[0]

    @property
    def to_me(self) -> bool:
        return any(mention.is_you for mention in self.mentions)


class C2CMessageCreate(QQMessage, frozen=True, kw_only=True):
    """``C2C_MESSAGE_CREATE``: a one-to-one message; reply to ``author.user_openid``."""

    TYPE: ClassVar[str] = "C2C_MESSAGE_CREATE"
    author: C2CAuthor

    @property
    def sender(self) -> str:
        return self.author.user_openid


class GuildMessage(Message, frozen=True, kw_only=True):
    """A guild channel message or guild DM. Content uses inline markup.

    ``bot_id`` is READY's ``user.id`` as the decoder knew it: ``text`` loses
    a ``<@!bot_id>`` or ``<@bot_id>`` that leads or trails the content, with
    its whitespace (with no bot id, none is removed).
    """

    _WANTS_BOT_ID: ClassVar[bool] = True

    author: GuildAuthor
    channel_id: str
    guild_id: str
    member: GuildMember | None = None
    mentions: tuple[GuildAuthor, ...] = ()
    mention_everyone: bool = False
    edited_timestamp: str | None = None
    #: The guild's global message order (not the envelope's ``s``).
    seq: int | None = None
    seq_in_channel: str | None = None
    message_reference: MessageReference | None = None
    bot_id: str | None = None

    @property
    def sender(self) -> str:
        return self.author.id

    @property
    def text(self) -> str:
        bot = self.bot_id
        return clean_content(self.content, (bot,) if bot else ())[0]


class AtMessageCreate(GuildMessage, frozen=True, kw_only=True):
    """``AT_MESSAGE_CREATE``: the bot was @-mentioned in a guild channel."""

    TYPE: ClassVar[str] = "AT_MESSAGE_CREATE"


class MessageCreate(GuildMessage, frozen=True, kw_only=True):
    """``MESSAGE_CREATE``: any guild channel message (private-domain bots).

    ``to_me`` is true when the bot is mentioned in the content or in ``mentions``.
    """

    TYPE: ClassVar[str] = "MESSAGE_CREATE"

    @property
    def to_me(self) -> bool:
        bot = self.bot_id
        if not bot:
            return False
        return clean_content(self.content, (bot,))[1] or any(m.id == bot for m in self.mentions)


class DirectMessageCreate(GuildMessage, frozen=True, kw_only=True):
    """``DIRECT_MESSAGE_CREATE``: a guild DM; reply to ``guild_id`` (the DM's own)."""

    TYPE: ClassVar[str] = "DIRECT_MESSAGE_CREATE"
    direct_message: bool = True
    src_guild_id: str | None = None


class InteractionCreate(Event, frozen=True, kw_only=True):
    """``INTERACTION_CREATE``: a button or menu press; acknowledge it by ``id``.

    Only the ids of the event's own scene (``chat_type`` 0 guild, 1 group,
    2 C2C) are present.
    """

    TYPE: ClassVar[str] = "INTERACTION_CREATE"
    id: str
    type: int
    chat_type: int | None = None
    scene: str | None = None
    timestamp: str | None = None
    version: int | None = None
    application_id: str | None = None
    user_openid: str | None = None
    group_openid: str | None = None
    group_member_openid: str | None = None
    guild_id: str | None = None
    channel_id: str | None = None
    data: InteractionData | None = None


class GroupEvent(Event, frozen=True, kw_only=True):
    """The bot was added to or removed from a group, or its proactive
    messages were refused or allowed there. ``timestamp`` is Unix seconds."""

    group_openid: str
    op_member_openid: str | None = None
    timestamp: int | None = None


class GroupAddRobot(GroupEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "GROUP_ADD_ROBOT"


class GroupDelRobot(GroupEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "GROUP_DEL_ROBOT"


class GroupMsgReject(GroupEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "GROUP_MSG_REJECT"


class GroupMsgReceive(GroupEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "GROUP_MSG_RECEIVE"


class FriendEvent(Event, frozen=True, kw_only=True):
    """A user added or removed the bot, or refused or allowed its proactive
    messages. ``timestamp`` is Unix seconds."""

    openid: str
    timestamp: int | None = None
    nick: str | None = None
    avatar: str | None = None


class FriendAdd(FriendEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "FRIEND_ADD"


class FriendDel(FriendEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "FRIEND_DEL"


class C2CMsgReject(FriendEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "C2C_MSG_REJECT"


class C2CMsgReceive(FriendEvent, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = "C2C_MSG_RECEIVE"


class Ready(Event, frozen=True, kw_only=True):
    """``READY``: the session is up. Keep your configured shard, not ``shard``
    (the docs' example shows ``[0, 0]``)."""

    TYPE: ClassVar[str] = "READY"
    session_id: str
    user: ReadyUser
    version: int | None = None
    shard: tuple[int, ...] | None = None


class Resumed(Event, frozen=True, kw_only=True):
    """``RESUMED``: the session continues. Its ``d`` is ``""``, and is not checked."""

    TYPE: ClassVar[str] = "RESUMED"


_EVENTS: tuple[type[Event], ...] = (
    GroupAtMessageCreate,
    GroupMessageCreate,
    C2CMessageCreate,
    AtMessageCreate,
    MessageCreate,
    DirectMessageCreate,
    InteractionCreate,
    GroupAddRobot,
    GroupDelRobot,
    GroupMsgReject,
    GroupMsgReceive,
    FriendAdd,
    FriendDel,
    C2CMsgReject,
    C2CMsgReceive,
    Ready,
    Resumed,
)


#: Every typed event, by the ``t`` it decodes; other types stay a ``Dispatch``.
EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType({c.TYPE: c for c in _EVENTS})
#: The dispatch types that carry a user's message (the subclasses of :class:`Message`).
MESSAGE_TYPES: frozenset[str] = frozenset(
    t for t, c in EVENT_TYPES.items() if issubclass(c, Message)
)
