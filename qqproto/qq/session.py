"""What a gateway session gives back, and the token it is given.

:class:`Session` is what it takes to resume one, to store between runs;
:class:`TokenWanted` what a gateway delivers when it needs an access token,
and :class:`AccessToken` how it keeps the one it was given. The protocol that
uses them is :mod:`qqproto.qq.gateway`; how to run one is
:class:`~qqproto.qq.config.GatewayConfig`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, LocalProtocolError
from ..url import BadUrl, Url

__all__ = [
    "TOKEN_MARGIN",
    "AccessToken",
    "IdentifyTurnOver",
    "IdentifyWanted",
    "Session",
    "TokenWanted",
]

#: A token is renewed this long before it expires (at most half its life).
TOKEN_MARGIN = 10.0


@dataclass(frozen=True, slots=True)
class TokenWanted:
    """Delivered when the gateway needs an access token: answer with
    :meth:`GatewayProtocol.token_received`. ``stale`` says the server refused
    the last one (close 4004, or a dropped session): hand over a new token,
    not the same one again. :class:`~qqproto.qq.BotProtocol` answers it
    itself; a bare gateway's application does."""

    reason: str
    stale: bool = False


@dataclass(frozen=True, slots=True)
class IdentifyWanted:
    """Delivered by a gated gateway (``GatewayConfig.gated``) before it opens a
    connection that will Identify: answer with
    :meth:`GatewayProtocol.identify_allowed` when the identify gate grants
    ``shard`` its turn (:class:`~qqproto.qq.shards.IdentifyGate`).
    :class:`~qqproto.qq.BotProtocol` answers it itself."""

    shard: tuple[int, int]


@dataclass(frozen=True, slots=True)
class IdentifyTurnOver:
    """Delivered by a gated gateway when the turn ``identify_allowed`` gave it
    ends: its Identify went out (``identified``: the next shard's turn is a
    spacing from now), or its connection ended before one could (the next may
    go at once, and this shard asks again when it dials again)."""

    shard: tuple[int, int]
    identified: bool


@dataclass(frozen=True, slots=True)
class Session:
    """What it takes to resume a session, as a plain value.

    Export it with ``GatewayProtocol.session`` (``to_dict`` gives JSON-ready
    data), store it, and pass it to a new ``GatewayProtocol`` to resume after
    a restart. ``bot_id`` is READY's ``user.id``, so that guild messages of
    the resumed session still lose their mention of the bot; data saved
    without it is read as None.
    """

    session_id: str
    seq: int | None
    shard: tuple[int, int]
    gateway_url: str
    bot_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "seq": self.seq,
            "shard": [self.shard[0], self.shard[1]],
            "gateway_url": self.gateway_url,
            "bot_id": self.bot_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        session_id = data.get("session_id")
        if type(session_id) is not str or not session_id:
            raise ConfigError("session.session_id", "a non-empty string", session_id)
        seq = data.get("seq")
        if seq is not None and (type(seq) is not int or seq < 0):
            raise ConfigError("session.seq", "null or an integer >= 0", seq)
        shard = data.get("shard")
        if (
            not isinstance(shard, list | tuple)
            or len(shard) != 2
            or not all(type(n) is int for n in shard)
        ):
            raise ConfigError("session.shard", "[shard_id, shard_count]", shard)
        url = data.get("gateway_url")
        if type(url) is not str:
            raise ConfigError("session.gateway_url", "a ws:// or wss:// URL", url)
        try:
            Url.parse(url, ("ws", "wss"))
        except BadUrl as bad:  # the part at fault is in the cause
            raise ConfigError("session.gateway_url", "a ws:// or wss:// URL", url) from bad
        bot_id = data.get("bot_id")
        if bot_id is not None and (type(bot_id) is not str or not bot_id):
            raise ConfigError("session.bot_id", "null or a non-empty string", bot_id)
        return cls(session_id, seq, (shard[0], shard[1]), url, bot_id)


class AccessToken:
    """The access token a gateway was given: used while it has its margin
    left, and asked for once (with ``ask``) when it is missing or old."""

    __slots__ = ("_ask", "_asked", "_expires_at", "_margin", "_value")

    def __init__(self, ask: Callable[[TokenWanted], None]) -> None:
        self._ask = ask
        self._value: str | None = None
        self._expires_at = self._margin = 0.0
        self._asked = False  # a TokenWanted is out and not answered yet

    def give(self, token: str, expires_at: float, now: float) -> None:
        """A token valid until ``expires_at``; its margin is at most half its life."""
        if type(token) is not str or not token:
            raise LocalProtocolError(
                "bad access token", expected="a non-empty string", received=token
            )
        if not expires_at > now:
            raise LocalProtocolError(
                "access token already expired",
                expected=f"expires_at after now ({now})",
                received=expires_at,
            )
        self._value, self._expires_at = token, expires_at
        self._margin = min(TOKEN_MARGIN, (expires_at - now) / 2)
        self._asked = False

    def usable(self, now: float) -> str | None:
        """The token, while it has its margin left; else None, and one is asked for."""
        if self._value is not None and now < self._expires_at - self._margin:
            return self._value
        self._value = None
        self.want("access token missing or about to expire")
        return None

    def want(self, reason: str, *, stale: bool = False) -> None:
        """Ask for a token, unless one is asked for already; ``stale``: this
        one was refused, so drop it."""
        if stale:
            self._value = None
        if not self._asked:
            self._asked = True
            self._ask(TokenWanted(reason, stale))

    def __repr__(self) -> str:  # never the token itself
        held = "none" if self._value is None else f"one until {self._expires_at}"
        return f"AccessToken({held}, asked={self._asked})"

    def ask_again(self) -> None:
        """The last ask went unanswered (a connection ended waiting): the
        next one goes out."""
        self._asked = False
