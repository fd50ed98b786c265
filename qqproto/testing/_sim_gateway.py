"""The simulator's WebSocket gateway: sessions, their dispatch logs, one link per connection.

Theory of operation. A session (``_sim_state.Session``) outlives connections: it numbers its
dispatches (``s``) and keeps them in a log, so a Resume can replay what came
after the client's seq. A stream (``_sim_state.Stream``) is a shard's delivery point: its
current session, and the dispatches that arrived while it had none (before
the first READY, or between two sessions), which the next session gets right
after READY. A :class:`GatewayLink` is one
upgraded connection: Hello at once, then Identify or Resume, heartbeats, and
the way it ends (a close frame either way, a drop, a silent client).

Rules chosen where the spec is silent (docs/testing.md lists them):

- A client silent for ``heartbeat_deadline`` seconds (twice the interval by
  default; Identify and Resume count as signs of life) is closed with 4009,
  which leaves its session resumable.
- After op 7 or op 9 the link sends no more dispatches; a client that stays
  ``dismiss_grace`` seconds longer is closed (4009 after op 7 and op 9 true,
  4006 after op 9 false).
- A session ends on op 9 false, on the close codes that forbid resuming
  (spec 4.1), when a newer Identify replaces it on its shard, or when it has
  been without a connection longer than ``resume_window``. Its dispatches
  that never left the simulator are then lost (``QQSimulator.lost``), as on
  the real platform; ``SimulatorConfig.carry_over_undelivered`` hands them to
  the next session instead, in order.
- READY and RESUMED take a seq but are not logged: a later Resume replays
  messages, never handshakes.
"""

from __future__ import annotations

import json
from typing import Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from ._sim_common import Heartbeat, SimDelivered, SimIdentify, SimResume, dumps, uuid_like
from ._sim_state import Entry, Session, SimState

__all__ = ["KILLING_CLOSE_CODES", "GatewayLink"]

#: Close codes after which the platform will not resume the session (spec 4.1).
KILLING_CLOSE_CODES = frozenset(
    {4001, 4002, 4003, 4005, 4006, 4007, 4010, 4011, 4012, 4013, 4014, 4914, 4915}
    | set(range(4900, 4914))
)
#: The largest text message the gateway accepts from a client.
MAX_CLIENT_MESSAGE = 1 << 20


class GatewayLink:
    """The gateway on one upgraded connection (wsproto's server frame layer)."""

    def __init__(self, state: SimState, owner: object, now: float) -> None:
        self._state = state
        self._owner = owner  # the SimConnection, for wakeup bookkeeping
        self._ws = Connection(ConnectionType.SERVER)
        self._text: list[str] = []
        self._size = 0
        self.out = bytearray()
        self._written: list[Entry] = []
        self.session: Session | None = None
        self.ready = False
        self.ended = False
        self.dismissed = False
        self._dismiss_at: float | None = None
        self._dismiss_code = 4009
        self._silence_at = now + state.config.heartbeat_deadline
        self._send({"op": 10, "d": {"heartbeat_interval": state.config.heartbeat_interval_ms}})

    @property
    def shard_id(self) -> int | None:
        """Its session's shard, once it has one."""
        return self.session.shard[0] if self.session is not None else None

    # -- what the connection and the simulator call -------------------------------------------

    def take_output(self) -> bytes:
        """Drain the bytes to write; the dispatches among them count as delivered."""
        for entry in self._written:
            if not entry.flushed:
                entry.flushed = True
                self._state.delivered.append(
                    SimDelivered(
                        entry.written_at, entry.seq, entry.t, entry.d, entry.id, entry.session.id
                    )
                )
        self._written.clear()
        data, self.out = bytes(self.out), bytearray()
        return data

    def next_deadline(self) -> float | None:
        if self.ended:
            return None
        if self._dismiss_at is not None:
            return min(self._dismiss_at, self._silence_at)
        return self._silence_at

    def is_over(self) -> bool:
        return self.ended

    def handle_timer(self, now: float) -> None:
        if self.ended:
            return
        if self._dismiss_at is not None and now >= self._dismiss_at:
            self.close(self._dismiss_code, "reconnect as asked", now)
        elif now >= self._silence_at:
            self.close(4009, "session timed out (no heartbeat)", now)

    def receive(self, data: bytes, now: float) -> None:
        if self.ended:
            return
        if not data:
            self.end(now)
            return
        self._ws.receive_data(data)
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                self._size += len(event.data)
                self._text.append(event.data)
                if self._size > MAX_CLIENT_MESSAGE:
                    self.close(4002, "payload too large", now)
                elif event.message_finished:
                    text, self._text, self._size = "".join(self._text), [], 0
                    self._on_payload(text, now)
            elif isinstance(event, BytesMessage):
                self.close(4002, "binary frames are not payloads", now)
            elif isinstance(event, Ping):
                self._write(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._on_close(event, now)
            if self.is_over():
                return

    # -- the server's own moves -------------------------------------------------------------

    def send_entry(self, entry: Entry, now: float) -> None:
        entry.written_at = now
        entry.written = True
        self._write_text(entry.frame())
        self._written.append(entry)

    def send_raw(self, text: str) -> None:
        if not self.ended:
            self._write_text(text)

    def dismiss(self, op: int, d: Any, now: float, *, kill: bool = False) -> None:
        """op 7 or op 9: say it, stop dispatching here, and drop a client that stays."""
        if self.ended or self.dismissed:
            return
        self._send({"op": op, "d": d})
        self.dismissed = True
        self._dismiss_at = now + self._state.config.dismiss_grace
        self._dismiss_code = 4006 if kill else 4009
        self._detach(now, kill=kill)

    def close(self, code: int, reason: str, now: float) -> None:
        """Send a close frame with ``code``; the transport is done after it."""
        if self.ended:
            return
        if self._ws.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
            self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
        self.end(now, kill=code in KILLING_CLOSE_CODES)

    def drop(self, now: float) -> None:
        """The TCP connection dies: nothing more is written, unwritten output is lost."""
        self.out.clear()
        for entry in self._written:
            entry.written = False
        self._written.clear()
        self.end(now)

    def end(self, now: float, *, kill: bool = False) -> None:
        if self.ended:
            return
        self.ended = True
        self.ready = False
        self._detach(now, kill=kill)
        self._state.link_ended(self, self._owner)

    # -- payloads -----------------------------------------------------------------------------

    def _on_payload(self, text: str, now: float) -> None:
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            self.close(4002, "invalid payload", now)
            return
        op = payload.get("op") if isinstance(payload, dict) else None
        if type(op) is not int:
            self.close(4002, "invalid payload", now)
            return
        d = payload.get("d")
        if op == 1:
            self._on_heartbeat(d if "d" in payload else payload.get("s"), now)
        elif op == 2:
            self._on_identify(d, now)
        elif op == 6:
            self._on_resume(d, now)
        else:
            self.close(4001, "invalid opcode", now)

    def _on_heartbeat(self, d: Any, now: float) -> None:
        self._silence_at = now + self._state.config.heartbeat_deadline
        beat = Heartbeat(now, d)
        self._state.heartbeats.append(beat)
        if not self._state.take_ack():
            self._state.unacked.append(beat)
        else:
            self._send({"op": 11})

    def _on_identify(self, d: Any, now: float) -> None:
        state, config = self._state, self._state.config
        intents = d.get("intents") if isinstance(d, dict) else None
        shard: Any = d.get("shard", [0, 1]) if isinstance(d, dict) else None

        def refuse(outcome: str) -> None:
            state.identifies.append(SimIdentify(now, intents, shard, outcome))

        if self.session is not None or self.dismissed:
            refuse("4005 already authenticated")
            self.close(4005, "already authenticated", now)
            return
        if not isinstance(d, dict) or not state.token_ok(d.get("token"), now):
            refuse("4004 authentication failed")
            self.close(4004, "authentication failed", now)
            return
        if type(intents) is not int or not 0 <= intents < 1 << 31:
            refuse("4013 invalid intents")
            self.close(4013, "invalid intents", now)
            return
        if (
            not isinstance(shard, list)
            or len(shard) != 2
            or not all(type(n) is int for n in shard)
            or not 0 <= shard[0] < shard[1]
        ):
            refuse("4010 invalid shard")
            self.close(4010, "invalid shard", now)
            return
        if shard[1] < config.shards:
            refuse("4011 too many guilds: shard properly")
            self.close(4011, "too many guilds on this connection, shard properly", now)
            return
        allowed = config.allowed_intents
        if allowed is not None and intents & ~allowed:
            refuse("op 9: intents not permitted")
            self.dismiss(9, False, now, kill=True)
            return
        if state.session_starts <= 0:
            refuse("op 9: no session starts left")
            self.dismiss(9, False, now, kill=True)
            return
        span = config.identify_window
        window = [i for i in state.identifies if i.outcome == "READY" and now - i.now < span]
        if len(window) >= config.max_concurrency:  # spec 11: max_concurrency per 5 s
            # The platform closes flooding clients with 4008 (spec 9); an Identify
            # past the pace is modelled so, which a client backs off from.
            refuse(f"4008 identify too soon (max_concurrency per {span:g} s)")
            self.close(4008, "identify too soon", now)
            return
        state.session_starts -= 1
        session = Session(uuid_like(state.rng), (shard[0], shard[1]), intents)
        state.sessions[session.id] = session
        stream = state.stream(shard[0])
        old = stream.session
        if old is not None:
            state.retire(old, now)
            if old.link is not None and old.link is not self:
                old.link.close(4006, "session replaced by a new Identify", now)
        stream.session = session
        state.identifies.append(SimIdentify(now, intents, shard, "READY", session.id))
        self._attach(session, now)
        session.seq += 1
        ready = {
            "version": 1,
            "session_id": session.id,
            "user": {"id": config.bot_id, "username": config.bot_name, "bot": True},
            "shard": [shard[0], shard[1]],
        }
        self._send({"op": 0, "s": session.seq, "t": "READY", "d": ready})
        self.ready = True
        pending, stream.pending = stream.pending, []
        for t, data, event_id in pending:
            self.send_entry(session.append(t, data, event_id), now)

    def _on_resume(self, d: Any, now: float) -> None:
        state = self._state
        session_id = d.get("session_id") if isinstance(d, dict) else None
        seq = d.get("seq") if isinstance(d, dict) else None
        record = SimResume
        if self.session is not None or self.dismissed:
            state.resumes.append(record(now, session_id, seq, "4005 already authenticated"))
            self.close(4005, "already authenticated", now)
            return
        if not isinstance(d, dict) or not state.token_ok(d.get("token"), now):
            state.resumes.append(record(now, session_id, seq, "4004 authentication failed"))
            self.close(4004, "authentication failed", now)
            return
        session = state.sessions.get(session_id) if type(session_id) is str else None
        if session is not None and not session.resumable(now, state.config.resume_window):
            state.retire(session, now)
            session = None
        if session is None:
            state.resumes.append(record(now, session_id, seq, "op 9: unknown or expired session"))
            self.dismiss(9, False, now)
            return
        last = 0 if seq is None else seq
        if type(last) is not int or not session.floor <= last <= session.seq:
            state.resumes.append(record(now, session_id, seq, "4007 invalid seq"))
            self.close(4007, "invalid seq", now)
            return
        if session.link is not None:
            session.link.close(4009, "session resumed on another connection", now)
        self._attach(session, now)
        replay = [entry for entry in session.log if entry.seq > last]
        for entry in replay:
            self.send_entry(entry, now)
        session.seq += 1
        self._send({"op": 0, "s": session.seq, "t": "RESUMED", "d": ""})
        self.ready = True
        state.resumes.append(record(now, session_id, seq, "RESUMED", len(replay)))

    def _on_close(self, event: CloseConnection, now: float) -> None:
        if self._ws.state is ConnectionState.REMOTE_CLOSING:
            self._write(self._ws.send(event.response()))
        elif self._ws.state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse as a close it did not send.
            # Its reason for bad UTF-8 names a position in whatever chunk the text
            # arrived in, so the same bytes cut differently would close differently.
            reason = "invalid UTF-8" if event.code == 1007 else event.reason
            self._write(self._ws.send(CloseConnection(code=event.code, reason=reason)))
            self.end(now)
            return
        # A client closing with 1000/1001 ends its session (gateway.py relies on it).
        self.end(now, kill=event.code in (1000, 1001) or event.code in KILLING_CLOSE_CODES)

    # -- small helpers -------------------------------------------------------------------------

    def _attach(self, session: Session, now: float) -> None:
        self.session = session
        session.link = self
        session.detached_at = None
        self._silence_at = now + self._state.config.heartbeat_deadline

    def _detach(self, now: float, *, kill: bool) -> None:
        self.ready = False
        session, self.session = self.session, None
        if session is None:
            return
        if session.link is self:
            session.link = None
            session.detached_at = now
        if kill:
            self._state.retire(session, now)

    def _send(self, payload: dict[str, Any]) -> None:
        self._write_text(dumps(payload))

    def _write_text(self, text: str) -> None:
        if self._ws.state is ConnectionState.OPEN:
            self._write(self._ws.send(TextMessage(data=text)))

    def _write(self, data: bytes) -> None:
        if data:
            self.out += data
            self._state.output_pending(self._owner)
