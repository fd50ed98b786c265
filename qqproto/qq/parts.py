"""The values inside typed events: attachments, authors, mentions, scenes.

Frozen trees of strings, numbers and tuples: they cannot form reference
cycles, so the cyclic GC need not track them (``gc=False``), which makes
them cheaper to build. The events that hold them are in
:mod:`qqproto.qq.events`.
"""

from __future__ import annotations

import msgspec

from .text import with_scheme

__all__ = [
    "Attachment",
    "C2CAuthor",
    "GroupAuthor",
    "GroupMention",
    "GuildAuthor",
    "GuildMember",
    "InteractionData",
    "InteractionResolved",
    "MessageReference",
    "MessageScene",
    "QuotedAuthor",
    "QuotedMessage",
    "ReadyUser",
]


class Attachment(
    msgspec.Struct,
    frozen=True,
    gc=False,
    rename={"url_as_sent": "url", "voice_wav_url_as_sent": "voice_wav_url"},
):
    """A file in a message (spec 6.6).

    :attr:`url` always names a scheme: guild URLs come as bare ``host/path``
    and voice transcodes as ``//host/path``, so ``https://`` is added when
    no scheme is there (the ``*_as_sent`` fields keep what came). It is a
    property, not a field, so that decoding pays nothing for it.
    ``content_type`` is a MIME type (``image/png``) or a bare word (``voice``,
    ``file``): test :attr:`is_image` rather than splitting it.
    """

    content_type: str = ""
    filename: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    url_as_sent: str = ""
    #: Voice only: a WAV transcode.
    voice_wav_url_as_sent: str | None = None
    #: Voice only: the platform's speech-to-text of it.
    asr_refer_text: str | None = None

    @property
    def url(self) -> str:
        return with_scheme(self.url_as_sent)

    @property
    def voice_wav_url(self) -> str | None:
        wav = self.voice_wav_url_as_sent
        return with_scheme(wav) if wav else wav

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


class MessageScene(msgspec.Struct, frozen=True, gc=False):
    """Where a group/C2C message came from; ``ext`` holds ``key=value`` strings."""

    source: str | None = None
    ext: tuple[str, ...] = ()

    def get(self, key: str) -> str | None:
        """The value of ``key=`` in ``ext`` (``msg_idx``, ``ref_msg_idx``), or None."""
        prefix = key + "="
        for item in self.ext:
            if item.startswith(prefix):
                return item[len(prefix) :]
        return None


class MessageReference(msgspec.Struct, frozen=True, gc=False):
    message_id: str | None = None


class QuotedAuthor(msgspec.Struct, frozen=True, gc=False):
    """Whoever wrote a quoted message: the ids of its scene, when present."""

    id: str | None = None
    member_openid: str | None = None
    user_openid: str | None = None
    union_openid: str | None = None
    username: str | None = None
    bot: bool = False


class QuotedMessage(msgspec.Struct, frozen=True, gc=False):
    """One of ``msg_elements``: the message a reply quotes (spec 6.7).

    ``author`` is often missing in groups. The QQ client also puts an @ of
    the quoted author at the start of the reply's content; it is left there,
    since it cannot be told from an @ the user typed (user-pain 16).
    """

    msg_idx: str | None = None
    message_type: int | None = None
    content: str = ""
    attachments: tuple[Attachment, ...] = ()
    author: QuotedAuthor | None = None


class GroupAuthor(msgspec.Struct, frozen=True, gc=False):
    """The sender in a group: ``member_openid`` is per group and per bot."""

    member_openid: str
    id: str | None = None
    union_openid: str | None = None
    username: str | None = None
    bot: bool = False
    member_role: str | None = None


class GroupMention(msgspec.Struct, frozen=True, gc=False):
    """An entry of ``mentions`` in a group message; ``is_you`` marks the bot."""

    scope: str | None = None
    id: str | None = None
    member_openid: str | None = None
    username: str | None = None
    bot: bool = False
    is_you: bool = False


class C2CAuthor(msgspec.Struct, frozen=True, gc=False):
    user_openid: str
    id: str | None = None
    union_openid: str | None = None
    username: str | None = None
    bot: bool = False


class GuildAuthor(msgspec.Struct, frozen=True, gc=False):
    """A guild user (the sender, or one of ``mentions``); ids are snowflake strings."""

    id: str
    username: str | None = None
    avatar: str | None = None
    bot: bool = False


class GuildMember(msgspec.Struct, frozen=True, gc=False):
    nick: str | None = None
    roles: tuple[str, ...] = ()
    joined_at: str | None = None


class InteractionResolved(msgspec.Struct, frozen=True, gc=False):
    button_data: str | None = None
    button_id: str | None = None
    user_id: str | None = None
    message_id: str | None = None
    feature_id: str | None = None


class InteractionData(msgspec.Struct, frozen=True, gc=False):
    type: int | None = None
    resolved: InteractionResolved | None = None


class ReadyUser(msgspec.Struct, frozen=True, gc=False):
    """The bot itself; ``id`` is what guild mentions of the bot carry."""

    id: str
    username: str | None = None
    bot: bool | None = None
    status: int | None = None
    avatar: str | None = None
