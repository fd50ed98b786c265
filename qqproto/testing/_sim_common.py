"""What the simulator's parts share: its configuration, its records, ids and times.

Ids and tokens are drawn from the simulator's one ``random.Random(seed)``, in
the shapes the real platform uses (spec sections 0, 2, 3.3, 6, 7), so the
same inputs give the same bytes. Times are the driver's ``now`` plus
:attr:`SimulatorConfig.epoch`, written as RFC 3339 with ``+08:00``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ..errors import ConfigError
from ..qq.scenes import Scene
from ..qq.shards import shard_of_guild

__all__ = [
    "Heartbeat",
    "SimDelivered",
    "SimIdentify",
    "SimLost",
    "SimRejected",
    "SimResume",
    "SimSent",
    "SimulatorConfig",
    "route",
]


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """The simulated bot and platform. Every field has a working default."""

    app_id: str = "102000000"
    secret: str = field(default="simulator-secret", repr=False)
    bot_id: str = "6158788878435714165"  # READY user.id
    bot_name: str = "qqproto-sim"
    token_ttl: int = 7200  # seconds, sent as the string "7200"
    heartbeat_interval_ms: int = 41250
    session_start_total: int = 1000
    session_start_remaining: int = 1000
    max_concurrency: int = 1
    seed: int = 0
    # -- additions to the fixed interface ----------------------------------------------
    #: ``shards`` in ``/gateway/bot``; an Identify with fewer shards is closed with 4011.
    shards: int = 1
    #: ``max_concurrency`` Identifies per this many seconds (the platform's 5 s;
    #: shorter for fast tests, with the bot's ``identify_window`` the same).
    identify_window: float = 5.0
    #: ``session_start_limit.reset_after`` (ms).
    session_start_reset_after_ms: int = 14_400_000
    #: How long a session without a connection can still be resumed (seconds).
    resume_window: float = 300.0
    #: Seconds without a heartbeat (or Identify/Resume) before the server closes with
    #: 4009. None: twice the heartbeat interval.
    heartbeat_timeout: float | None = None
    #: Seconds after op 7 or op 9 before the server drops a client that stayed.
    dismiss_grace: float = 5.0
    #: Intents the bot was granted; an Identify asking for more gets op 9 false
    #: (what real servers do, spec 4.2). None: every intent.
    allowed_intents: int | None = None
    #: Whether sends without msg_id/event_id are accepted; False answers 40034105.
    proactive: bool = True
    #: Passive-reply windows (seconds) and budgets per inbound id (spec 7.3). The
    #: windows and the group budget are the docs'; the C2C budget is in conflict
    #: (docs 5, Tencent's openclaw plugin and a third party 4): set 4 to test the
    #: stricter reading. Guild channels and DMs have no known budget.
    group_reply_window: float = 300.0
    group_reply_budget: int = 5
    c2c_reply_window: float = 3600.0
    c2c_reply_budget: int = 5
    guild_reply_window: float = 300.0
    #: Recall is allowed this long after a group/C2C send (spec 7.1: 2 minutes).
    recall_window: float = 120.0
    #: Unix time of ``now == 0``, for timestamps (2026-01-01T00:00:00Z).
    epoch: int = 1_767_225_600
    #: What happens to the dispatches a session never sent when it ends (op 9
    #: false, 4006/4007/49xx, a newer Identify, the resume window running out).
    #: False (the default, as the real platform almost certainly does): they are
    #: lost, and listed in :attr:`QQSimulator.lost`. True: the next session gets
    #: them right after its READY (the simulator's old, kinder behaviour).
    carry_over_undelivered: bool = False

    def __post_init__(self) -> None:
        for name in ("app_id", "secret", "bot_id", "bot_name"):
            value = getattr(self, name)
            if type(value) is not str or not value:
                raise ConfigError(
                    name, "a non-empty string", "<hidden>" if name == "secret" else value
                )
        for name in ("token_ttl", "heartbeat_interval_ms", "max_concurrency", "shards"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(name, "an integer >= 1", value)
        if not 0 <= self.session_start_remaining <= self.session_start_total:
            raise ConfigError(
                "session_start_remaining",
                f"0 to session_start_total ({self.session_start_total})",
                self.session_start_remaining,
            )
        for name in ("resume_window", "dismiss_grace", "group_reply_window", "c2c_reply_window"):
            if not getattr(self, name) > 0:
                raise ConfigError(name, "a positive number of seconds", getattr(self, name))
        if self.heartbeat_timeout is not None and not self.heartbeat_timeout > 0:
            raise ConfigError(
                "heartbeat_timeout", "None or positive seconds", self.heartbeat_timeout
            )
        for name in ("group_reply_budget", "c2c_reply_budget"):
            if getattr(self, name) < 1:
                raise ConfigError(name, "an integer >= 1", getattr(self, name))

    @property
    def heartbeat_deadline(self) -> float:
        """Seconds of client silence the gateway tolerates."""
        if self.heartbeat_timeout is not None:
            return self.heartbeat_timeout
        return 2 * self.heartbeat_interval_ms / 1000


# -- records: what tests inspect ------------------------------------------------------------


class Heartbeat(NamedTuple):
    """A client heartbeat: when, and its ``d`` (the client's last seq, or None)."""

    now: float
    d: object


@dataclass(frozen=True, slots=True)
class SimIdentify:
    """An Identify the gateway received; ``outcome`` is "READY" or why it was refused."""

    now: float
    intents: object
    shard: object
    outcome: str
    session_id: str | None = None


@dataclass(frozen=True, slots=True)
class SimResume:
    """A Resume the gateway received; ``replayed`` dispatches were sent again."""

    now: float
    session_id: object
    seq: object
    outcome: str
    replayed: int = 0


@dataclass(frozen=True, slots=True)
class SimSent:
    """A bot message the platform accepted. ``reply_to`` is the msg_id or event_id
    (None for a proactive send); ``id`` is what the send returned."""

    now: float
    scene: Scene
    target: str
    id: str
    content: str | None
    msg_id: str | None
    event_id: str | None
    msg_seq: int | None
    msg_type: int | None
    body: dict[str, Any] = field(repr=False, compare=False)

    @property
    def reply_to(self) -> str | None:
        return self.msg_id or self.event_id

    @property
    def passive(self) -> bool:
        return self.reply_to is not None


@dataclass(frozen=True, slots=True)
class SimRejected:
    """A REST call the platform refused: its HTTP status and business code."""

    now: float
    method: str
    path: str
    status: int
    code: int
    message: str
    body: object = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class SimLost:
    """A dispatch that never left the simulator because its session ended first
    (see :attr:`SimulatorConfig.carry_over_undelivered`): when it was lost, its
    ``s`` in that session, ``t``, ``d``, envelope ``id``, and the session."""

    now: float
    seq: int
    t: str
    d: object
    id: str | None
    session_id: str


@dataclass(frozen=True, slots=True)
class SimDelivered:
    """A dispatch that left the simulator, the first time it did (replays are not
    recorded again): its ``s``, ``t``, ``d`` and envelope ``id``."""

    now: float
    seq: int
    t: str
    d: object
    id: str | None
    session_id: str


# -- ids, times, JSON ---------------------------------------------------------------------

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HEX = "0123456789abcdef"

dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


def robot_id(rng: random.Random) -> str:
    """A group/C2C message id: inbound and the bot's own look alike (spec 0)."""
    return f"ROBOT1.0_{pick(rng, _ALNUM + '.-', 40)}!"


def guild_message_id(rng: random.Random) -> str:
    return "08" + pick(rng, _HEX, 38)


def openid(rng: random.Random) -> str:
    return pick(rng, _HEX, 32).upper()


def snowflake(rng: random.Random) -> str:
    return str(rng.randrange(10**17, 10**19))


def event_id(rng: random.Random, t: str) -> str:
    return f"{t}:{pick(rng, _ALNUM[26:], 32)}"


def uuid_like(rng: random.Random) -> str:
    h = pick(rng, _HEX, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def hex_id(rng: random.Random, n: int = 16) -> str:
    return pick(rng, _HEX, n)


def _civil(days: int) -> tuple[int, int, int]:
    """(year, month, day) of a day count since 1970-01-01 (H. Hinnant's algorithm)."""
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def rfc3339(unix: float) -> str:
    """``unix`` seconds as Beijing time, the way the platform writes it."""
    local = int(unix) + 8 * 3600
    days, rest = divmod(local, 86400)
    year, month, day = _civil(days)
    hh, rest = divmod(rest, 3600)
    mm, ss = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}+08:00"


def route(d: Any, shards: int) -> int:
    """The shard a dispatch goes to, as the platform routes them (spec 11): a
    guild's events by ``(guild_id >> 22) % shards``; others (no rule is
    documented for groups and C2C) to shard 0."""
    guild = d.get("guild_id") if isinstance(d, dict) else None
    if shards > 1 and type(guild) is str and guild.isdigit():
        return shard_of_guild(guild, shards)
    return 0
