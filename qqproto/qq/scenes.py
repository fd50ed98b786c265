"""Where a conversation happens. One enum for the REST calls and the replies."""

from __future__ import annotations

from enum import Enum

__all__ = ["Scene"]


class Scene(Enum):
    """Group, one-to-one (C2C), guild channel, or guild direct message.

    Each has its own send endpoint (``qqproto.qq.api``) and its own passive
    reply window and budget (``qqproto.qq.replies``).
    """

    GROUP = "group"
    C2C = "C2C"
    GUILD_CHANNEL = "guild channel"
    GUILD_DM = "guild DM"

    # Members are singletons: hash by identity, in C (Enum's own hash is Python code).
    __hash__ = object.__hash__
