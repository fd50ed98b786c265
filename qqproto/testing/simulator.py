"""QQSimulator: the QQ Official Bot platform's server side, sans-IO.

One object plays the token endpoint, the OpenAPI and the WebSocket gateway,
folded onto one port the way a test wants it. A server helper (or
:class:`~qqproto.testing.memory.MemoryNetwork`, in memory) calls
:meth:`QQSimulator.accept` for every connection and moves bytes; tests script
what users do (:meth:`~QQSimulator.group_at_message`, ...) and what goes
wrong (:meth:`~QQSimulator.drop`, :meth:`~QQSimulator.apply`, ...), and read
what the bot did (:attr:`~QQSimulator.sent`, :attr:`~QQSimulator.rejected`,
:attr:`~QQSimulator.heartbeats`, ...). ``docs/testing.md`` walks through it.

No sockets, no clock, no threads: time comes in as ``now``, randomness from
``random.Random(config.seed)``, so the same inputs give the same bytes.

``wakeup`` is called, once, at the end of any call into the simulator that
left output pending (or a connection wanting to close) on a connection other
than the one whose ``receive_data`` is running: scripted messages and faults,
timers, a Resume that pushes an older connection out. The parts share one
:class:`~qqproto.testing._sim_state.SimState`, which decides it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import LocalProtocolError
from ._sim_common import (
    SimulatorConfig,
    event_id,
    guild_message_id,
    openid,
    rfc3339,
    robot_id,
    route,
    snowflake,
    uuid_like,
)
from ._sim_gateway import KILLING_CLOSE_CODES
from ._sim_http import SimConnection
from ._sim_rest import remember
from ._sim_state import Carrier, SimState
from .faults import (
    AskHeartbeat,
    CloseWith,
    Drop,
    ExpireTokens,
    Fault,
    GarbageFrame,
    InvalidSession,
    LoseAcks,
    Push,
    Reconnect,
)

__all__ = ["QQSimulator"]  # the package re-exports the rest of the public surface


class QQSimulator:
    """The QQ platform for one bot (see the module docstring and ``docs/testing.md``)."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config = config or SimulatorConfig()
        #: The platform's state, which every part of the simulator shares: a
        #: server helper that builds its own connections (a subclass of
        #: :class:`SimConnection`, say) builds them on it.
        self.state = state = SimState(config)
        rng = state.rng
        #: Default conversations of the scripting methods.
        self.group_openid, self.member_openid, self.user_openid = (
            openid(rng),
            openid(rng),
            openid(rng),
        )
        self.guild_id, self.channel_id = snowflake(rng), snowflake(rng)
        self.dm_guild_id, self.guild_user_id = snowflake(rng), snowflake(rng)
        # -- what tests read: the state's own lists, which the parts append to --------
        self.identifies = state.identifies
        self.resumes = state.resumes
        self.heartbeats = state.heartbeats
        #: The heartbeats that got no ACK (``lose_acks``).
        self.unacked = state.unacked
        self.sent = state.sent
        self.rejected = state.rejected
        self.delivered = state.delivered
        #: Dispatches lost because their session ended before they left the
        #: simulator (none with ``config.carry_over_undelivered``).
        self.lost = state.lost
        #: (now, t, d, envelope id) of every dispatch a test pushed, in order.
        self.scripted = state.scripted
        #: (now, ok) for every token request.
        self.token_requests = state.token_requests
        #: (now, scene, target, message id) of every recall.
        self.recalled = state.recalled
        #: (now, interaction id, code) of every interaction acknowledgement.
        self.interaction_acks = state.interaction_acks

    @property
    def wakeup(self) -> Callable[[], None] | None:
        """Set by a server helper; see the module docstring."""
        return self.state.wakeup

    @wakeup.setter
    def wakeup(self, wakeup: Callable[[], None] | None) -> None:
        self.state.wakeup = wakeup

    # -- the transport side --------------------------------------------------------------------

    def accept(self, now: float) -> SimConnection:
        """A new TCP connection was accepted: bytes go through the returned object."""
        return SimConnection(self.state, now)

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run next (heartbeat watchdogs, grace periods)."""
        times = [t for link in self.state.links if (t := link.next_deadline()) is not None]
        return min(times, default=None)

    def handle_timer(self, now: float) -> None:
        with self.state.entered(None):
            for link in list(self.state.links):
                link.handle_timer(now)

    # -- what tests read ---------------------------------------------------------------------

    @property
    def live(self) -> bool:
        """True while some connection carries a READY (or resumed) session."""
        return any(link.ready for link in self.state.links)

    @property
    def session_starts_remaining(self) -> int:
        return self.state.session_starts

    def session_id(self, shard: int = 0) -> str | None:
        """The current session of ``shard``, if there is one."""
        stream = self.state.streams.get(shard)
        session = stream.session if stream else None
        return session.id if session is not None else None

    def issue_token(self, now: float) -> tuple[str, float]:
        """An access token and when it expires, as the token endpoint hands them out:
        the current token until it is within 60 s of expiry, then a new one (spec 1.2)."""
        return self.state.issue_token(now)

    # -- scripting: users ----------------------------------------------------------------------

    def group_at_message(
        self,
        content: str,
        now: float,
        *,
        group_openid: str | None = None,
        member_openid: str | None = None,
        shard: int | None = None,
    ) -> dict[str, Any]:
        """A group member @-mentions the bot; returns ``d`` (its ``id`` is the msg_id).
        The platform removes the @ and leaves a leading space (spec 6.1)."""
        group = group_openid or self.group_openid
        member = member_openid or self.member_openid
        d = {
            "id": robot_id(self.state.rng),
            "content": f" {content}",
            "timestamp": self._stamp(now),
            "author": {"id": member, "member_openid": member, "union_openid": member},
            "group_id": group,
            "group_openid": group,
            "message_scene": {"source": "default"},
            "message_type": 0,
        }
        self.dispatch("GROUP_AT_MESSAGE_CREATE", d, now, shard=shard)
        return d

    def c2c_message(
        self, content: str, now: float, *, user_openid: str | None = None, shard: int | None = None
    ) -> dict[str, Any]:
        """A user writes to the bot one-to-one; returns ``d``."""
        user = user_openid or self.user_openid
        d = {
            "id": robot_id(self.state.rng),
            "content": content,
            "timestamp": self._stamp(now),
            "author": {"id": user, "user_openid": user, "union_openid": user},
            "message_scene": {"source": "default"},
            "message_type": 0,
        }
        self.dispatch("C2C_MESSAGE_CREATE", d, now, shard=shard)
        return d

    def guild_at_message(
        self,
        content: str,
        now: float,
        *,
        channel_id: str | None = None,
        guild_id: str | None = None,
        author_id: str | None = None,
        shard: int | None = None,
    ) -> dict[str, Any]:
        """A guild member @-mentions the bot in a channel (``<@!bot_id> content``)."""
        d = self._guild_message(
            f"<@!{self.config.bot_id}> {content}",
            now,
            channel_id or self.channel_id,
            guild_id or self.guild_id,
            author_id,
        )
        self.dispatch("AT_MESSAGE_CREATE", d, now, shard=shard)
        return d

    def direct_message(
        self,
        content: str,
        now: float,
        *,
        guild_id: str | None = None,
        author_id: str | None = None,
        shard: int | None = None,
    ) -> dict[str, Any]:
        """A guild direct message; ``guild_id`` is the DM session's (the reply target)."""
        d = self._guild_message(
            content, now, self.channel_id, guild_id or self.dm_guild_id, author_id
        )
        d["direct_message"] = True
        d["src_guild_id"] = self.guild_id
        self.dispatch("DIRECT_MESSAGE_CREATE", d, now, shard=shard)
        return d

    def interaction(
        self, now: float, *, chat_type: int = 1, button_data: str = "ok", shard: int | None = None
    ) -> dict[str, Any]:
        """A button click (INTERACTION_CREATE) in a group (1), C2C (2) or guild (0)."""
        d: dict[str, Any] = {
            "id": self._uuid(),
            "type": 11,
            "version": 1,
            "chat_type": chat_type,
            "scene": {0: "guild", 1: "group", 2: "c2c"}.get(chat_type, "group"),
            "timestamp": self._stamp(now),
            "application_id": self.config.app_id,
            "data": {"type": 11, "resolved": {"button_data": button_data, "button_id": "1"}},
        }
        if chat_type == 1:
            d["group_openid"], d["group_member_openid"] = self.group_openid, self.member_openid
        elif chat_type == 2:
            d["user_openid"] = self.user_openid
        else:
            d["guild_id"], d["channel_id"] = self.guild_id, self.channel_id
        self.dispatch("INTERACTION_CREATE", d, now, shard=shard)
        return d

    def dispatch(
        self,
        t: str,
        d: Any,
        now: float,
        *,
        shard: int | None = None,
        envelope_id: str | None = None,
    ) -> str:
        """Push any dispatch; returns its envelope ``id``. Message ids and replyable
        event ids are remembered for the passive-reply rules. With no session on
        ``shard``, it waits for the next one (delivered right after its READY).
        ``shard`` None routes as the platform does (spec 11): a guild's events to
        ``(guild_id >> 22) % shards``, everything else to shard 0."""
        if type(t) is not str or not t:
            raise LocalProtocolError("bad dispatch type", expected="a non-empty t", received=t)
        if shard is None:
            shard = route(d, self.config.shards)
        eid = envelope_id or event_id(self.state.rng, t)
        remember(self.state, t, d, eid, now)
        self.scripted.append((now, t, d, eid))
        with self.state.entered(None):
            stream = self.state.stream(shard)
            session = self.state.current(stream, now)
            if session is None:
                stream.pending.append((t, d, eid))
            else:
                entry = session.append(t, d, eid)
                if session.link is not None and session.link.ready:
                    session.link.send_entry(entry, now)
        return eid

    # -- scripting: faults ------------------------------------------------------------------------

    def drop(self, now: float, *, shard: int | None = None) -> None:
        """Every gateway connection (or ``shard``'s) dies without a close frame (TCP drop)."""
        with self.state.entered(None):
            for link in self._links(shard):
                link.drop(now)

    def reconnect(self, now: float) -> None:
        """op 7 on every gateway connection."""
        with self.state.entered(None):
            for link in list(self.state.links):
                link.dismiss(7, None, now)

    def invalid_session(self, resumable: bool, now: float, *, shard: int | None = None) -> None:
        """op 9 on every gateway connection (or ``shard``'s); ``False`` ends the
        sessions too."""
        with self.state.entered(None):
            for link in self._links(shard):
                link.dismiss(9, bool(resumable), now, kill=not resumable)
            if not resumable:
                for number, stream in self.state.streams.items():
                    if stream.session is not None and shard in (None, number):
                        self.state.retire(stream.session, now)

    def close(self, code: int, now: float, reason: str = "") -> None:
        """Close every gateway connection with ``code``; the codes that forbid
        resuming (4006, 4007, 49xx, 4914, ...) end the sessions too."""
        if type(code) is not int or not 1000 <= code <= 4999 or code in (1004, 1005, 1006, 1015):
            raise LocalProtocolError(
                "bad close code", expected="1000-4999, sendable", received=code
            )
        with self.state.entered(None):
            for link in list(self.state.links):
                link.close(code, reason, now)
            if code in KILLING_CLOSE_CODES:
                for stream in self.state.streams.values():
                    if stream.session is not None:
                        self.state.retire(stream.session, now)

    def lose_acks(self, n: int) -> None:
        """The next ``n`` heartbeats get no ACK."""
        if type(n) is not int or n < 0:
            raise LocalProtocolError("bad count", expected="an integer >= 0", received=n)
        self.state.lost_acks += n

    def expire_tokens(self, now: float) -> None:
        """Every token issued so far stops working now. Connected sessions stay."""
        self.state.expire_tokens(now)

    def send_garbage(self, text: str, now: float) -> None:
        """A text frame that is not a JSON payload, on every gateway connection."""
        with self.state.entered(None):
            for link in self.state.links:
                link.send_raw(text)

    def ask_heartbeat(self, now: float) -> None:
        """op 1 from the server on every gateway connection."""
        with self.state.entered(None):
            for link in self.state.links:
                link.send_raw('{"op":1,"d":null}')

    def apply(self, fault: Fault, now: float) -> None:
        """Play one :class:`~qqproto.testing.faults.Fault` value."""
        if isinstance(fault, Drop):
            self.drop(now)
        elif isinstance(fault, Reconnect):
            self.reconnect(now)
        elif isinstance(fault, InvalidSession):
            self.invalid_session(fault.resumable, now)
        elif isinstance(fault, CloseWith):
            self.close(fault.code, now, fault.reason)
        elif isinstance(fault, LoseAcks):
            self.lose_acks(fault.count)
        elif isinstance(fault, ExpireTokens):
            self.expire_tokens(now)
        elif isinstance(fault, GarbageFrame):
            self.send_garbage(fault.text, now)
        elif isinstance(fault, AskHeartbeat):
            self.ask_heartbeat(now)
        elif isinstance(fault, Push):
            self._push(fault, now)
        else:
            raise LocalProtocolError("unknown fault", expected="a Fault value", received=fault)

    def _push(self, fault: Push, now: float) -> None:
        if fault.scene == "group":
            self.group_at_message(fault.content, now)
        elif fault.scene == "c2c":
            self.c2c_message(fault.content, now)
        elif fault.scene == "guild":
            self.guild_at_message(fault.content, now)
        elif fault.scene == "dm":
            self.direct_message(fault.content, now)
        else:
            raise LocalProtocolError(
                "bad scene", expected="group, c2c, guild or dm", received=fault
            )

    # -- helpers ---------------------------------------------------------------------------------

    def _links(self, shard: int | None) -> list[Carrier]:
        """The gateway connections (those of ``shard``'s session only, if given)."""
        return [link for link in self.state.links if shard in (None, link.shard_id)]

    def _guild_message(
        self, content: str, now: float, channel: str, guild: str, author: str | None
    ) -> dict[str, Any]:
        return {
            "id": guild_message_id(self.state.rng),
            "content": content,
            "timestamp": self._stamp(now),
            "channel_id": channel,
            "guild_id": guild,
            "author": {"id": author or self.guild_user_id, "username": "user", "bot": False},
            "member": {"joined_at": self._stamp(0), "roles": ["1"]},
            "seq": len(self.state.inbound),
        }

    def _stamp(self, now: float) -> str:
        return rfc3339(self.config.epoch + now)

    def _uuid(self) -> str:
        return uuid_like(self.state.rng)

    def __repr__(self) -> str:
        return (
            f"QQSimulator(app_id={self.config.app_id!r}, live={self.live}, "
            f"sessions={len(self.state.sessions)}, sent={len(self.sent)})"
        )
