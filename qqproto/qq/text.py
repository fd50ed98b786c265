"""Message text as the QQ gateway sends it, and the clean text a bot wants.

The platform's ``content`` is not the text the user typed (spec sections 6.3
and 6.8):

- in groups the @bot is removed but the whitespace after it stays, and the PC
  client puts a non-breaking space there where phones put a plain one
  (user-pain 15), so ``" echo hi"`` and ``"\\xa0echo hi"`` both mean ``echo hi``;
- in guilds the @bot stays, as inline markup ``<@!bot_id>`` (or ``<@bot_id>``);
- inline markup (``<@id>``, ``<#channel>``, ``<emoji:id>``, face tags) is the
  only place ``<`` and ``>`` occur raw: a literal ``<``, ``>`` or ``&`` typed by
  the user arrives as ``&lt;``, ``&gt;`` or ``&amp;``.

So the order matters: split the markup off first, decide which mentions go,
and only then undo the escapes in the text between markup. Undoing them first
would turn a user's literal ``&lt;@!1&gt;`` into a mention.

Everything here is a pure function of strings. :mod:`qqproto.qq.events`
calls it when a message's ``text`` is read (never while decoding), and keeps
the original content beside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["clean_content", "escape", "mention_id", "split_markup", "unescape", "with_scheme"]

#: One piece of inline markup. Nothing in it may be ``<`` or ``>``: the
#: platform escapes those everywhere else.
_MARKUP = re.compile(r"(<[^<>]*>)")
#: A user mention: ``<@id>``, ``<@!id>``, or the newer ``<qqbot-at-user id="id" />``.
_MENTION = re.compile(r'<@!?([^\s<>!][^\s<>]*)>|<qqbot-at-user\s+id="([^"\s<>!][^"\s<>]*)"\s*/?>')
#: What a user id may look like (decimal, or upper-case hex openids, in practice).
_ID = re.compile(r"[^\s<>!][^\s<>]*")
_NO_FORMS: frozenset[str] = frozenset()
#: A URL that already names its scheme (``https://``, ``http://``, ``ftp://``...).
_HAS_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def escape(text: str) -> str:
    """The platform's escaping of literal text (the inverse of :func:`unescape`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """Undo ``&lt;``, ``&gt;`` and ``&amp;``, and nothing else.

    Chained replaces give the same result as one left-to-right pass here: the
    three entities cannot overlap, and replacing ``&amp;`` last means an
    ``&amp;lt;`` becomes the text ``&lt;``, not ``<``. Other entities
    (``&quot;``, ``&#60;``) are left alone because the platform does not
    produce them.
    """
    if "&" not in text:
        return text
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def split_markup(content: str) -> list[str]:
    """``content`` as alternating pieces: text, markup, text, ..., text.

    Even indices are (still escaped) text, possibly empty; odd indices are
    markup such as ``<@!123>``. ``"".join(pieces) == content`` always.
    """
    return _MARKUP.split(content)


def mention_id(markup: str) -> str | None:
    """The user id a markup piece mentions, or None when it is not a mention.

    Understands ``<@id>``, ``<@!id>`` and ``<qqbot-at-user id="id" />``.
    """
    match = _MENTION.fullmatch(markup)
    if match is None:
        return None
    return match.group(1) or match.group(2)


def _forms(ids: tuple[str | None, ...]) -> frozenset[str]:
    """Every ``<@id`` and ``<@!id`` (a mention without its ``>``) of ``ids``.

    Cached, since the same few ids (the bot's) come back with every message.
    """
    forms = _FORMS.get(ids)
    if forms is None:
        if len(_FORMS) >= 1024:
            _FORMS.clear()
        valid = [i for i in ids if i and _ID.fullmatch(i)]
        forms = _FORMS[ids] = frozenset([f"<@{i}" for i in valid] + [f"<@!{i}" for i in valid])
    return forms


_FORMS: dict[tuple[str | None, ...], frozenset[str]] = {}


def clean_content(
    content: str,
    ids: Iterable[str | None] = (),
    *,
    anywhere: bool = False,
    lstrip: bool = False,
) -> tuple[str, bool]:
    """The text a bot should match commands against, and whether ``ids`` were mentioned.

    Mentions of ``ids`` are removed: every one when ``anywhere`` is true (group
    messages, where ``ids`` are the ``is_you`` mentions), else only one that
    *leads* (after nothing but whitespace) and one that *trails* (before
    nothing but whitespace) -- the guild @bot, which users put first or last,
    while a mention of the bot in mid-sentence is part of what they said.
    A removed mention takes the whitespace after it along (any Unicode
    whitespace, ``\\xa0`` included); a trailing one also the whitespace
    before it, and a leading one the whitespace before it. Then the text
    between markup is unescaped, and with ``lstrip`` the result loses its
    leading whitespace (group messages). The second value is true when a
    mention of ``ids`` occurs anywhere in ``content``, removed or not.

    Other markup (other users' mentions, channels, emoji) stays as it came.
    ``None`` and malformed ids in ``ids`` are ignored.
    """
    if "<" not in content:  # the common case: no markup, hence no mentions
        text = unescape(content) if "&" in content else content
        return (text.lstrip() if lstrip else text), False
    forms = _forms(ids if type(ids) is tuple else tuple(ids)) if ids else _NO_FORMS
    if forms:
        # The next most common case, the guild @bot: one mention leads, and
        # no markup follows. Same result as the general path below.
        head, gt, rest = content.lstrip().partition(">")
        if gt and head in forms and "<" not in rest:
            rest = rest.lstrip()
            return (unescape(rest) if "&" in rest else rest), True
    return _clean(_MARKUP.split(content), forms, anywhere, lstrip)


def _is_mention(piece: str, forms: frozenset[str]) -> bool:
    if piece[:-1] in forms:  # a markup piece always ends with ">"
        return True
    if piece.startswith("<qqbot-at-user"):
        user = mention_id(piece)
        return user is not None and f"<@{user}" in forms
    return False


def _clean(
    pieces: list[str], forms: frozenset[str], anywhere: bool, lstrip: bool
) -> tuple[str, bool]:
    """The general case of :func:`clean_content`, on :func:`split_markup` pieces."""
    last = len(pieces) - 2  # index of the last markup piece
    mentioned = False
    drop: list[int] = []
    if forms and last > 0:
        for i in range(1, len(pieces), 2):
            if _is_mention(pieces[i], forms):
                mentioned = True
                if anywhere:
                    drop.append(i)
        if mentioned and not anywhere:
            if not pieces[0].strip() and _is_mention(pieces[1], forms):
                drop.append(1)
            if drop[-1:] != [last] and not pieces[-1].strip() and _is_mention(pieces[last], forms):
                drop.append(last)
    for i in drop:
        pieces[i] = ""
        pieces[i + 1] = pieces[i + 1].lstrip()
    if drop and drop[0] == 1 and not pieces[0].strip():
        pieces[0] = ""  # whitespace before a leading mention
    for i in range(0, len(pieces), 2):
        pieces[i] = unescape(pieces[i])
    text = "".join(pieces)
    if drop and drop[-1] == last and not pieces[-1]:
        text = text.rstrip()  # whitespace before a trailing mention
    return (text.lstrip() if lstrip else text), mentioned


def with_scheme(url: str) -> str:
    """``url`` with ``https://`` in front when it names no scheme (spec 6.6).

    Guild attachments come as bare ``host/path`` and voice transcodes as
    scheme-relative ``//host/path``; a URL that has a scheme is left alone,
    so this is idempotent (an unconditional prefix would double it).
    """
    if url.startswith(("https://", "http://")) or not url:
        return url
    if "://" in url and _HAS_SCHEME.match(url):
        return url
    if url.startswith("//"):
        return "https:" + url
    return "https://" + url
