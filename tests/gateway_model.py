"""The spec side of the gateway state machine test: what the scripted server
remembers, and what the client must believe and do next.

Nothing here touches GatewayProtocol, a transport or the clock: the machine
(``tests/test_gateway_stateful.py``, wired up by ``tests/gateway_world.py``)
tells these objects what happened, and its invariants compare the client
with them. The numbers and rules are written from the spec, not read from
``qqproto.qq``, so a wrong constant or table row there is caught here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qqproto.qq.config import GatewayConfig

# The GatewayConfig the client under test runs with (client_config).
MAX_ATTEMPTS = 5
MAX_MESSAGE_SIZE = 4096
URL = "wss://gateway.test/websocket/"
BACKOFF_BASE, BACKOFF_CAP = 1.0, 10.0

MAX_FAILED_RESUMES = 3  # documented: after 3 failed resumes, start a new session
JITTER = 0.25
RATE_LIMITED_PAUSE = 60.0  # spec 4.1: wait 60 s after 4008
NEW_SESSION_PAUSE = (1.0, 5.0)  # before a new Identify after the server dropped the session
SHORT_SESSION = 10.0  # a session lost sooner than this after READY/RESUMED was short-lived
SHORT_SESSIONS_TOLERATED = 2  # in a row; from the next one on, reconnects back off

# Close codes by what the client must do (spec section 4.1), written out
# here, not read from payloads.CLOSE_CODES, so a wrong row there is caught.
RESUME_CODES = (1000, 1001, 1011, 4000, 4009, 3000, 4500, 4999)  # the last 3 are unknown
IDENTIFY_CODES = (4003, 4005, 4006, 4007, *range(4900, 4914))
FATAL_CODES = (4001, 4002, 4010, 4011, 4012, 4013, 4014, 4914, 4915)


def client_config(seed: int) -> GatewayConfig:
    """The client's configuration: the limits above, and ``seed`` for its jitter."""
    return GatewayConfig(
        app_id="1",
        gateway_url=URL,
        max_attempts=MAX_ATTEMPTS,
        backoff_base=BACKOFF_BASE,
        backoff_cap=BACKOFF_CAP,
        hello_timeout=5.0,
        max_message_size=MAX_MESSAGE_SIZE,
        seed=seed,
    )


def close_cause(code: int) -> str:
    """What a close frame from the server means for the client (see ClientModel)."""
    if code in FATAL_CODES:
        return "fatal"
    if code == 4004:
        return "auth"
    if code in IDENTIFY_CODES:
        return "invalidate close"
    return "resume later" if code == 4008 else "resume"


# -- the server's memory ------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """One dispatch in a server session's log."""

    seq: int
    type: str
    id: str
    data: Any
    deliverable: bool = True  # well formed: the client must hand it over
    replayable: bool = True  # READY and RESUMED are never replayed

    def frame(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"op": 0, "s": self.seq, "t": self.type, "id": self.id}
        if self.deliverable:
            payload["d"] = self.data
        return payload


@dataclass(slots=True)
class ServerSession:
    sid: str
    log: list[Entry] = field(default_factory=list)
    invalidated: bool = False
    expected: list[int] = field(default_factory=list)  # deliverable seqs, in log order
    got: list[int] = field(default_factory=list)  # seqs the client delivered, in order
    #: How many of ``expected`` the client must have delivered: all of them
    #: as of the last READY or RESUMED.
    must_have: int = 0

    @property
    def last_seq(self) -> int:
        return self.log[-1].seq if self.log else 0


class ServerState:
    """What the server remembers across connections: every session it made,
    every dispatch it sent (by envelope id), and which session is the newest,
    the only one a Resume may continue."""

    def __init__(self) -> None:
        self.sessions: dict[str, ServerSession] = {}
        self.entries: dict[str, tuple[ServerSession, Entry]] = {}
        self.newest: str | None = None

    def new_session(self) -> ServerSession:
        s = ServerSession(f"sess-{len(self.sessions) + 1}")
        self.sessions[s.sid] = s
        self.newest = s.sid
        return s

    def invalidate_newest(self) -> None:
        if self.newest is not None:
            self.sessions[self.newest].invalidated = True

    def log(
        self,
        s: ServerSession,
        kind: str,
        data: Any,
        *,
        deliverable: bool = True,
        replayable: bool = True,
    ) -> Entry:
        """The next dispatch of ``s``: it takes the next seq and goes into the log."""
        seq = s.last_seq + 1
        entry = Entry(seq, kind, f"{s.sid}:{seq}", data, deliverable, replayable)
        s.log.append(entry)
        self.entries[entry.id] = (s, entry)
        if deliverable:
            s.expected.append(seq)
        return entry

    def message(self, s: ServerSession) -> Entry:
        n = len(s.log)
        d = {
            "id": f"m{n}",
            "content": f" hi {n}",
            "author": {"member_openid": f"member-{n % 3}"},
            "group_openid": "group-1",
        }
        return self.log(s, "GROUP_AT_MESSAGE_CREATE", d)

    def stored(self, restored: int, seq: int, *, invalidated: bool) -> ServerSession:
        """A session from before the client's process restarted: READY and
        ``restored`` messages in its log, delivered up to ``seq``."""
        s = self.new_session()
        self.log(s, "READY", {"session_id": s.sid}, replayable=False)
        for _ in range(restored):
            self.message(s)
        s.got = [n for n in s.expected if n <= seq]
        s.must_have = len(s.got)
        s.invalidated = invalidated
        return s

    def ready(self, then: int) -> tuple[ServerSession, list[Entry]]:
        """Identify answered: a new session, its READY and ``then`` messages."""
        s = self.new_session()
        ready = self.log(
            s,
            "READY",
            {"version": 1, "session_id": s.sid, "user": {"id": "42", "bot": True}},
            replayable=False,
        )
        entries = [ready] + [self.message(s) for _ in range(then)]
        s.must_have = 1
        return s, entries

    def resume(self, sid: Any, seq: Any, overlap: int) -> tuple[ServerSession, list[Entry]] | None:
        """A Resume from (``sid``, ``seq``). Honoured only for the newest session,
        never for an invalidated one, and only from a seq it sent: then the log
        after ``seq`` (after the last ``overlap`` events the client already has,
        as an at-least-once server may send), then RESUMED. Refused (None), the
        session is gone for good."""
        s = self.sessions.get(sid)
        if s is None or s.invalidated or sid != self.newest or not 0 < seq <= s.last_seq:
            if s is not None:
                s.invalidated = True
            return None
        replay = [e for e in s.log if e.replayable and e.seq > seq]
        seen = [e for e in s.log if e.replayable and e.seq <= seq]
        again = seen[max(0, len(seen) - overlap) :]
        entries = again + replay + [self.log(s, "RESUMED", "", replayable=False)]
        s.must_have = len(s.expected)
        return s, entries


# -- the client's duties --------------------------------------------------------------


class ClientModel:
    """What the client must believe, and what it must do when a connection
    attempt ends.

    ``cause`` is what it means if the current attempt ends now; the machine sets
    it before each server move that may end it and it falls back to "resume"
    once the step has settled:

    - "resume": a drop, or a close the client resumes after;
    - "resume later": 4008, resume after RATE_LIMITED_PAUSE;
    - "invalidate op 9" / "invalidate close": op 9 false / 4006, 4007, 49xx: the
      session is gone, Identify after NEW_SESSION_PAUSE (op 9 also needs a new token);
    - "auth": 4004: a new token; the second in a row is fatal;
    - "fatal": a close code the client must not reconnect after;
    - "intents": op 9 in answer to Identify: the intents were refused, fatal;
    - "closed": the application closed the gateway.
    """

    def __init__(self) -> None:
        self.session: str | None = None  # the session id the client must hold
        self.seq: int | None = None  # the last seq it received
        self.failures = 0  # attempts in a row that reached neither READY nor RESUMED
        self.short_sessions = 0  # good sessions in a row lost within SHORT_SESSION
        self.good_since = 0.0
        self.goods = 0  # READY or RESUMED since the client started
        self.auth_failures = 0  # 4004s in a row
        self.failed_resumes = 0
        self.token_floor = 0  # the next login needs a token of this generation or later
        self.expect_failed: str | None = None  # why the client must be FAILED
        self.expect_closed = False
        # The current connection attempt, and what ends it.
        self.attempt_login: str | None = None  # "identify" or "resume", once sent
        self.attempt_good = False  # it reached READY or RESUMED
        self.cause = "resume"
        self.cause_code = 0  # the close code behind a "fatal" cause
        #: When the next Connect may come: (earliest, latest, the cause it follows).
        self.reconnect_window: tuple[float, float, str] | None = None

    def client_restarted(self, session_kept: bool) -> None:
        """The application started a new GatewayProtocol after FAILED or CLOSED."""
        if not session_kept:
            self.session = self.seq = None
        self.expect_closed = False
        self.expect_failed = None
        self.failures = self.auth_failures = self.failed_resumes = 0
        self.short_sessions = self.goods = 0
        self.reconnect_window = None

    def attempt_started(self) -> None:
        """A Connect went out (its pacing already checked against reconnect_window)."""
        self.reconnect_window = None
        self.attempt_login = None
        self.attempt_good = False

    def saw(self, entries: list[Entry]) -> None:
        """The client is about to read these dispatches."""
        for e in entries:
            if e.type == "READY":
                self.session, self.seq = e.id.split(":")[0], e.seq
            elif self.seq is None or e.seq > self.seq:
                self.seq = e.seq

    def good(self, now: float) -> None:
        """READY or RESUMED is about to reach the client."""
        self.attempt_good = True
        self.good_since = now
        self.goods += 1
        self.failures = self.auth_failures = self.failed_resumes = 0

    def attempt_ended(self, now: float, token_gen: int) -> None:
        """A connection attempt is over: move the model the way the spec says
        the client must, by what ended the attempt (``self.cause``).
        ``token_gen`` is the generation of the newest token handed out."""
        cause, self.cause = self.cause, "resume"
        if cause == "closed":
            return
        # A resume that failed counts whatever ended it, and the third one
        # ends the session, even on a loss the client gives up after (a fatal
        # close, a second refused token): it is gone, not to be resumed later.
        if self.attempt_login == "resume" and not self.attempt_good:
            self.failed_resumes += 1
        if cause.startswith("invalidate") or (
            self.session is not None and self.failed_resumes >= MAX_FAILED_RESUMES
        ):
            self.session = self.seq = None
            self.failed_resumes = 0
        if cause in ("fatal", "intents"):
            self.expect_failed = cause
            return
        if cause == "auth":
            self.auth_failures += 1
            if self.auth_failures > 1:
                self.expect_failed = "auth"
                return
        if cause in ("auth", "invalidate op 9"):
            self.token_floor = token_gen + 1
        if not self.attempt_good:
            self.failures += 1
            if self.failures >= MAX_ATTEMPTS:
                self.expect_failed = "gave up"
                return
        # When the next Connect may come: after a pause the cause asks for,
        # and, when this attempt failed, after an exponential backoff with
        # jitter that a good session resets.
        pause = (0.0, 0.0)
        if cause == "resume later":
            pause = (RATE_LIMITED_PAUSE, RATE_LIMITED_PAUSE)
        elif cause.startswith("invalidate"):
            pause = NEW_SESSION_PAUSE
        backoff = (0.0, 0.0)
        if not self.attempt_good:
            backoff = self.backoff_window(self.failures)
        elif now - self.good_since >= SHORT_SESSION:
            self.short_sessions = 0
        else:
            self.short_sessions += 1
            if self.short_sessions > SHORT_SESSIONS_TOLERATED:
                backoff = self.backoff_window(self.short_sessions - SHORT_SESSIONS_TOLERATED)
        low, high = max(pause[0], backoff[0]), max(pause[1], backoff[1])
        self.reconnect_window = (now + low, now + high, cause)

    @staticmethod
    def backoff_window(nth: int) -> tuple[float, float]:
        """Where the ``nth`` wait of a backoff falls (doubling, capped, +-JITTER)."""
        raw = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (nth - 1))
        return raw * (1 - JITTER), min(BACKOFF_CAP, raw * (1 + JITTER))
