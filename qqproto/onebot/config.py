"""OneBotConfig: how to reach one OneBot implementation, checked on construction.

Every field has the default a NapCat user would want (its frame sizes, a
30 s deadline per action, reconnects forever, a ping when no heartbeat
watches the link); ``docs/onebot.md`` says what each one does.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final, Literal

from ..errors import ConfigError
from ..url import BadUrl, Url
from ..ws import Entropy

__all__ = ["DEFAULT_MAX_MESSAGE_SIZE", "OneBotConfig"]

#: Frames up to this size are accepted: forward trees and base64 media are big
#: (NapCat allows 50 MiB).
DEFAULT_MAX_MESSAGE_SIZE: Final = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class OneBotConfig:
    """How to reach one implementation. Validated on construction."""

    url: str
    #: Sent as ``Authorization: Bearer <token>``.
    access_token: str | None = field(default=None, repr=False)
    protocol: Literal["auto", "v11", "v12"] = "auto"
    #: v12 only: actions go as ``POST`` to this URL instead of on the socket.
    api_url: str | None = None
    #: Seconds an action waits for its answer.
    call_timeout: float = 30.0
    #: Seconds from the transport's opening until the upgrade must be answered.
    open_timeout: float = 30.0
    #: A connection is dead after this many heartbeat intervals without a frame.
    heartbeat_factor: float = 2.5
    #: While no heartbeat promised an interval: a ping after this many seconds
    #: without a byte (None: never; a quiet link is then left alone).
    ping_interval: float | None = 30.0
    #: ...and a link that brings nothing this many seconds after the ping is dead.
    ping_timeout: float = 20.0
    #: Failed attempts in a row before giving up; None: never give up.
    max_attempts: int | None = None
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: At most this many sends (``send_*`` actions) per second, after a burst of
    #: ``send_burst``; the rest wait, unsent, in order. None: no limit.
    send_rate: float | None = None
    send_burst: int = 1
    seed: int = 0
    rng: random.Random | None = field(default=None, compare=False, repr=False)
    entropy: Entropy | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            Url.parse(self.url, ("ws", "wss"))
        except BadUrl as bad:
            raise ConfigError("url", "a ws:// or wss:// URL", self.url) from bad
        token = self.access_token
        if token is not None and (not token or token != token.strip() or not token.isprintable()):
            raise ConfigError("access_token", "a token without spaces around it", "<hidden>")
        if self.api_url is not None:
            try:
                Url.parse(self.api_url, ("http", "https"))
            except BadUrl as bad:
                raise ConfigError("api_url", "an http:// or https:// URL", self.api_url) from bad
        if self.protocol not in ("auto", "v11", "v12"):
            raise ConfigError("protocol", "auto, v11 or v12", self.protocol)
        if not self.call_timeout > 0:
            raise ConfigError("call_timeout", "a positive number of seconds", self.call_timeout)
        if not self.open_timeout > 0:
            raise ConfigError("open_timeout", "a positive number of seconds", self.open_timeout)
        if self.ping_interval is not None and not self.ping_interval > 0:
            raise ConfigError("ping_interval", "positive seconds, or None", self.ping_interval)
        if not self.ping_timeout > 0:
            raise ConfigError("ping_timeout", "a positive number of seconds", self.ping_timeout)
        rate = self.send_rate
        if rate is not None and not (type(rate) in (int, float) and 0 < rate < math.inf):
            raise ConfigError("send_rate", "positive sends per second, or None", rate)
        if type(self.send_burst) is not int or self.send_burst < 1:
            raise ConfigError("send_burst", "an integer >= 1", self.send_burst)
        if not 1 < self.heartbeat_factor <= 3:
            raise ConfigError("heartbeat_factor", "above 1, at most 3", self.heartbeat_factor)
