"""OneBotSimulator: a OneBot implementation's side (NapCat, Lagrange, a v12 one), sans-IO.

It plays what a bot connects to: the forward WebSocket on ``/`` (events and
actions on one socket) and the HTTP API (v11 ``POST /<action>``, v12
``POST /``), on one port. A server helper (:class:`~qqproto.adapters.serve.SimulatorServer`
on real sockets, :class:`~qqproto.testing.MemoryNetwork` in memory) calls
:meth:`OneBotSimulator.accept` for each connection and moves bytes; tests
script what users do (:meth:`~OneBotSimulator.group_message`,
:meth:`~OneBotSimulator.private_message`, :meth:`~OneBotSimulator.push`) and
what goes wrong (:meth:`~OneBotSimulator.drop`,
:meth:`~OneBotSimulator.stop_heartbeats`, :meth:`~OneBotSimulator.hold`,
:meth:`~OneBotSimulator.fail`), and read what the bot did
(:attr:`~OneBotSimulator.calls`, :attr:`~OneBotSimulator.sent`).

The quirks real implementations show are switches on
:class:`OneBotSimConfig`: echoes that come back as numbers, a refused token
as a ``retcode: 1403`` frame and a close, NapCat's ``stream`` field and
multi-frame stream answers, heartbeats from the first instant, ids that may
be negative, string messages. ``napcat_like()`` and ``lagrange_like()`` turn
on each one's set.

No sockets, no clock, no threads: time comes in as ``now``, randomness from
``random.Random(config.seed)``. ``wakeup`` is called at the end of a
scripting call that left bytes to write, as the QQ simulator does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..onebot import cq
from ..onebot.segments import Segment, plain_text
from ._ob_conn import ObConnection
from ._ob_state import ObState, OneBotSimConfig, SimCall, SimMessage

__all__ = ["OneBotSimulator"]


class OneBotSimulator:
    """A OneBot implementation for one account (see the module docstring)."""

    def __init__(self, config: OneBotSimConfig | None = None) -> None:
        self.config = config = config or OneBotSimConfig()
        self.state = state = ObState(config)
        #: Set by a server helper: called when scripting left bytes to write.
        self.wakeup: Callable[[], None] | None = None
        self._connections: list[ObConnection] = []
        rng = state.rng
        #: The default chat and people of the scripting methods (ids as strings).
        self.group_id = str(rng.randint(10**8, 10**9))
        self.user_id = str(rng.randint(10**8, 10**10))
        state.groups[self.group_id] = "sim group"
        state.friends[self.user_id] = "Alice"
        #: Every action the bot called (:class:`SimCall`), in order.
        self.calls: list[SimCall] = state.calls
        #: Every message the bot sent (:class:`SimMessage`), in order.
        self.sent: list[SimMessage] = state.sent

    @property
    def self_id(self) -> str:
        return str(self.config.self_id)

    # -- the transport side --------------------------------------------------------------------

    def accept(self, now: float) -> ObConnection:
        """A new TCP connection: bytes go through the returned object."""
        conn = ObConnection(self.state, now)
        self._connections = [c for c in self._connections if not c.closed]
        self._connections.append(conn)
        return conn

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run next (heartbeats)."""
        due = [c.heartbeat_due for c in self._connections if c.heartbeat_due is not None]
        return min(due, default=None)

    def handle_timer(self, now: float) -> None:
        for conn in self._connections:
            conn.tick(now)
        self._wake()

    # -- what tests read ---------------------------------------------------------------------

    @property
    def live(self) -> int:
        """How many WebSockets are open for events."""
        return sum(conn.live for conn in self._connections)

    @property
    def connects(self) -> int:
        """WebSocket upgrades asked for, refused ones included."""
        return self.state.connects

    @property
    def refused(self) -> list[int]:
        """The status of each refused token (401 none, 403 wrong), in order."""
        return self.state.refused

    @property
    def authorizations(self) -> list[str | None]:
        """The ``Authorization`` header of each WebSocket upgrade, in order."""
        return self.state.authorizations

    # -- scripting: users -----------------------------------------------------------------------

    def group_message(
        self,
        message: str | Iterable[Segment],
        now: float,
        *,
        group_id: str | None = None,
        user_id: str | None = None,
        mention_self: bool = False,
    ) -> dict[str, Any]:
        """Someone writes in a group (``mention_self``: @-ing the bot first);
        returns the event as pushed (its ``message_id`` is the id)."""
        segments = self._segments(message, mention_self)
        group = group_id or self.group_id
        user = user_id or self.user_id
        event = self._message_event("group", "normal", segments, user, now)
        event["group_id"] = self.state.wire_id(group)
        if self.config.napcat:
            event["group_name"] = self.state.groups.get(group, "")
        self._remember(event, "group", user, group, segments, now)
        self.push(event)
        return event

    def private_message(
        self, message: str | Iterable[Segment], now: float, *, user_id: str | None = None
    ) -> dict[str, Any]:
        """Someone writes to the bot one-to-one; returns the event."""
        segments = self._segments(message, False)
        user = user_id or self.user_id
        event = self._message_event("private", "friend", segments, user, now)
        self._remember(event, "private", user, None, segments, now)
        self.push(event)
        return event

    def notice(self, detail: str, now: float, sub_type: str = "", **fields: Any) -> dict[str, Any]:
        """A notice (v11 ``notice_type`` or v12 ``detail_type`` ``detail``)
        with ``fields`` as given; returns it."""
        event = self.state.envelope(now, "notice", detail, sub_type) | fields
        self.push(event)
        return event

    def push(self, event: dict[str, Any] | str) -> None:
        """Send ``event`` to every open WebSocket: an object, or text as it is
        (garbage, a hostile frame)."""
        for conn in self._connections:
            conn.send(event)
        self._wake()

    # -- scripting: faults ----------------------------------------------------------------------

    def drop(self) -> None:
        """Cut every connection (no close frame), as a crash or a dead network does."""
        for conn in self._connections:
            conn.drop()
        self._wake()

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close every WebSocket with a close frame (a restart)."""
        for conn in self._connections:
            conn.close(code, reason)
        self._wake()

    def stop_heartbeats(self) -> None:
        """Heartbeats stop, the connection stays up (spec 9: it happens)."""
        self.state.heartbeats_on = False

    def resume_heartbeats(self) -> None:
        self.state.heartbeats_on = True

    def hold(self, *actions: str) -> None:
        """Leave these actions unanswered: the bot's call must time out."""
        self.state.held.update(actions)

    def release(self, *actions: str) -> None:
        self.state.held.difference_update(actions)

    def fail(self, action: str, retcode: int) -> None:
        """Answer ``action`` with ``status: failed`` and ``retcode`` from now on."""
        self.state.failing[action] = retcode

    def answer_twice(self, on: bool = True) -> None:
        """Answer every action twice (a duplicate answer the bot must shrug off)."""
        self.state.answer_twice = on

    # -- helpers --------------------------------------------------------------------------------

    def _segments(self, message: str | Iterable[Segment], mention_self: bool) -> list[Segment]:
        segments = [Segment.text(message)] if isinstance(message, str) else list(message)
        if mention_self:
            segments = [Segment("mention", {"user_id": self.self_id}), Segment.text(" "), *segments]
        return segments

    def _message_event(
        self, detail: str, sub: str, segments: list[Segment], user: str, now: float
    ) -> dict[str, Any]:
        state = self.state
        message_id = state.new_message_id()
        event = state.envelope(now, "message", detail, sub if state.version == 11 else "")
        event |= {
            "message_id": state.wire_id(message_id),
            "user_id": state.wire_id(user),
            "message": state.message_field(segments),
        }
        if state.version == 12:
            event["alt_message"] = plain_text(segments)
            return event
        event |= {
            "raw_message": cq.format(segments),
            "font": 14,
            "sender": {"user_id": state.wire_id(user), "nickname": state.friends.get(user, "")},
        }
        if self.config.napcat:
            # NapCat: message_seq and real_id are the message id; real_seq the platform's.
            seq = len(state.messages) + 1
            mid = event["message_id"]
            event |= {"message_seq": mid, "real_id": mid, "real_seq": str(seq)}
            event["message_format"] = self.config.message_format
        return event

    def _remember(
        self,
        event: dict[str, Any],
        detail: str,
        user: str,
        group: str | None,
        segments: list[Segment],
        now: float,
    ) -> None:
        message_id = str(event["message_id"])
        self.state.messages[message_id] = {
            "message_id": message_id,
            "detail_type": detail,
            "user_id": user,
            "group_id": group,
            "segments": segments,
            "time": event["time"],
        }

    def _wake(self) -> None:
        if self.wakeup is not None and any(c.closed or c.ws is not None for c in self._connections):
            self.wakeup()

    def __repr__(self) -> str:
        return (
            f"OneBotSimulator(v{self.config.version}, impl={self.config.impl!r}, "
            f"live={self.live}, calls={len(self.calls)}, sent={len(self.sent)})"
        )
