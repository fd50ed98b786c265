"""OneBotServer: OneBot's reverse WebSocket and event POSTs, the implementation calling us, sans-IO.

NapCat, LLOneBot, Lagrange and go-cqhttp can dial the bot instead of being
dialled (spec 1.5). This object is the bot's end: it listens (on the shared
server piece, :class:`~qqproto.listener.HttpService`), checks each upgrade,
and then reads events and correlates actions on each accepted WebSocket the
way :class:`~qqproto.onebot.connection.OneBotProtocol` does on its one.

The upgrade (spec 1.5, 1.6 and 7.1):

- The token is checked before it: ``Authorization: Bearer <t>`` (or
  go-cqhttp's ``Token <t>``), or the ``access_token`` query when there is no
  header. None is 401, a wrong one 403, compared in constant time; an empty
  ``Bearer `` (NapCat sends one) is none. The server goes on serving everyone
  else.
- ``X-Self-ID`` names the account; a v11 upgrade without it is refused (400).
  A v12 one (``Sec-WebSocket-Protocol: 12.<impl>``, echoed back) may leave it
  out: the account is then read from its first event.
- ``X-Client-Role`` is ``Universal`` (events and actions), ``Event`` or
  ``API`` (Lagrange's split pair), in any case; none means Universal.
- One live connection per account and role: a new one replaces the old,
  which is closed (1000, "replaced by a new connection").

Events POSTed to ``event_path`` (spec 1.2, 1.3, 7.1): a v11 HTTP POST is
checked by its ``X-Signature`` (``sha1=`` and the hex HMAC-SHA1 of the raw
body with ``secret``; missing 401, wrong 403, and the event is dropped); a
v12 webhook (``X-OneBot-Version: 12``) by the access token. A good one is
answered 204, or, within ``quick_window``, 200 with the quick operation the
application gave :meth:`OneBotServer.quick_reply`. A body that is no event
is 400.

What reaches the application, as ``Deliver``: every event (its ``self_id`` says
the account); :class:`Connected` and :class:`Disconnected` for each
connection; a :class:`~qqproto.onebot.results.ActionResult` per action (and
:class:`~qqproto.onebot.results.StreamFrame` per frame of a streamed one); a
:class:`ServeRefused` per refused request; a
:class:`~qqproto.errors.ProtocolViolation` for anything an implementation got
wrong that its connection survived. :meth:`OneBotServer.call` sends an
action to an account; with no connection for it, the action ends at once as
:class:`~qqproto.errors.NotSent`. Liveness is watched per connection as the
client watches its own (:mod:`qqproto.onebot.liveness`): a dead one is
closed, and the implementation dials again.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from ..actions import Deliver
from ..contract import Peer
from ..errors import (
    NotSent,
    ProtocolViolation,
    RemoteProtocolError,
)
from ..http import HttpResponse
from ..http_server import Dropped, Refused, Request, Upgrade
from ..listener import HttpService
from ..ttl import TTLMap
from ..ws import BytesReceived, Closed, TextReceived
from ..ws_server import WebSocketServer
from .actions import Action, Answer
from .events import Event, MetaEvent, opaque_id
from .frames import read_frame
from .http_api import HttpApi
from .liveness import PING, Liveness
from .pending import PendingActions
from .serving import (
    IMPL_NAME,
    ROLES,
    Connected,
    Disconnected,
    Role,
    ServeConfig,
    ServeRefused,
    check_signature,
    check_token,
)

__all__ = ["OneBotServer"]


@dataclass(slots=True)
class _Session:
    """One accepted WebSocket."""

    conn: int
    ws: WebSocketServer
    self_id: str | None
    role: Role
    version: int
    liveness: Liveness


class OneBotServer(HttpService):
    """Reverse WebSockets from OneBot implementations (see the module docstring)."""

    name = "onebot-server"

    def __init__(self, config: ServeConfig, *, ids: Any = None) -> None:
        self.config = config
        self._sessions: dict[int, _Session] = {}
        self._accounts: dict[tuple[str, Role], int] = {}  # (self id, role) -> conn
        self._pending = PendingActions(
            random.Random(config.seed),
            config.call_timeout,
            lambda action: self._out.append(action),  # late: actions() swaps the list
        )
        #: account -> the version its POSTed events speak (bounded: anyone may POST)
        self._versions: TTLMap[str, int] = TTLMap(ttl=86_400.0, max_size=10_000)
        #: POSTed events whose answer waits for a quick operation: conn -> (event, deadline).
        self._posted: dict[int, tuple[Event, float]] = {}
        routes = {config.ws_path: ("GET",), config.event_path: ("POST",)}
        super().__init__(
            config.host, config.port, routes, max_body_size=config.max_body_size, ids=ids
        )

    # -- what the application reads and does --------------------------------------------

    @property
    def accounts(self) -> list[str]:
        """The accounts with a connection that takes actions, in the order they came."""
        return [sid for (sid, role) in self._accounts if role != "event"]

    def call(self, self_id: str | int, action: Action, now: float) -> int:
        """Send ``action`` to account ``self_id``: on its WebSocket, or else to
        ``api_url`` over HTTP. Its outcome comes back as ``Deliver(ActionResult)``
        under the id returned; with neither way, at once, as ``NotSent``.

        ``api_url`` is one implementation's: it takes the actions of the
        accounts whose events are POSTed here (of any account while none has
        been), never those of an account it does not serve."""
        pending = self._pending.new(action)
        frame = action.frame(str(pending.id))  # before the call is registered: it may raise
        session = self._api_session(str(self_id))
        if session is not None:
            self._pending.on_socket(pending, now, tag=session.conn)
            session.ws.send_text(frame)
            self.send(session.conn, session.ws.data_to_send())
        elif self.config.api_url is not None and self._api_serves(str(self_id), now):
            learned = self._versions.get(str(self_id), now, 11)
            version = self.config.api_version if self.config.api_version else learned
            api = HttpApi(self.config.api_url, version, self.config.access_token)
            self._pending.over_http(pending, api, now)
        else:
            why = f"{action.name} not sent: no connection from account {self_id}"
            if self.config.api_url is not None:
                why += ", and the HTTP API serves the accounts that POST events here"
            self._pending.settle(pending, error=NotSent(why))
        return pending.id

    def _api_serves(self, self_id: str, now: float) -> bool:
        self._versions.expire(now)
        return len(self._versions) == 0 or self._versions.contains(self_id, now)

    def http_response(self, request_id: int, response: HttpResponse, now: float) -> None:
        """The HTTP API's answer to an action (a refused token is said, not final)."""
        assert self.config.api_url is not None  # a request went: there is an API
        self._pending.http_answered(request_id, response, HttpApi(self.config.api_url, 11))

    def http_failed(self, request_id: int, now: float, reason: str) -> None:
        """An action sent over HTTP got no answer: its outcome is unknown."""
        self._pending.http_failed(request_id, reason)

    def _api_session(self, self_id: str) -> _Session | None:
        for role in ("universal", "api"):
            conn = self._accounts.get((self_id, role))
            if conn is not None:
                return self._sessions[conn]
        return None

    def next_deadline(self) -> float | None:
        times = [super().next_deadline(), self._pending.next_deadline()]
        times += [s.liveness.deadline() for s in self._sessions.values()]
        times += [deadline for _, deadline in self._posted.values()]
        return min((t for t in times if t is not None), default=None)

    def handle_timer(self, now: float) -> None:
        super().handle_timer(now)  # quiet HTTP connections
        self._pending.expire(now)
        for conn, (_, deadline) in list(self._posted.items()):
            if now >= deadline:  # no quick operation in time: nothing to do
                del self._posted[conn]
                self.respond(conn, 204)
        for session in list(self._sessions.values()):
            verdict = session.liveness.due(now)
            if verdict == PING:
                session.ws.ping()
                self.send(session.conn, session.ws.data_to_send())
            elif verdict is not None:
                self._end(session, verdict, close=1000)

    # -- upgrades ---------------------------------------------------------------------------

    def on_upgrade(self, conn: int, upgrade: Upgrade, now: float) -> None:
        request = upgrade.request
        status, why = check_token(request, self.config.access_token)
        if status:
            self._refuse(conn, status, why)
            return
        protocol = request.header("sec-websocket-protocol") or ""
        offered = [p.strip() for p in protocol.split(",") if p.strip()]
        v12 = next((p for p in offered if p.startswith("12.")), None)
        legacy_v12 = request.header("x-onebot-version") == "12"
        version = 12 if v12 or legacy_v12 else 11
        impl = v12[3:] if v12 else request.header("x-impl") if legacy_v12 else None
        if impl is not None and not IMPL_NAME.fullmatch(impl):  # go-cqhttp's go_cqhttp: let in
            why = "an implementation name outside v12's grammar"
            self._violation(RemoteProtocolError(why, expected=IMPL_NAME.pattern, received=impl))
        self_id = (request.header("x-self-id") or "").strip() or None
        if self_id is None and version == 11:
            self._refuse(conn, 400, "no X-Self-ID: which account is this?")
            return
        role = ROLES.get((request.header("x-client-role") or "universal").strip().lower())
        if role is None:
            self._refuse(conn, 400, "X-Client-Role is none of Universal, Event and API")
            return
        try:
            ws = WebSocketServer(upgrade.raw, max_message_size=self.config.max_message_size)
        except RemoteProtocolError as bad:
            self._refuse(conn, 400, f"bad WebSocket upgrade: {bad}")
            return
        ws.accept(subprotocol=v12)
        self.take_over(conn)
        liveness = Liveness(
            self.config.heartbeat_factor, self.config.ping_interval, self.config.ping_timeout
        )
        liveness.opened(now)
        session = _Session(conn, ws, self_id, role, version, liveness)
        self._sessions[conn] = session
        self.send(conn, ws.data_to_send())
        replaced = self._claim(session, now) if self_id is not None else False
        peer = self.peers.get(conn, Peer("", 0))
        connected = Connected(conn, self_id, role, version, peer, replaced, impl)
        self._out.append(Deliver(connected))
        self._frames(session, ws.early_events(), now)  # frames sent with the upgrade

    def _claim(self, session: _Session, now: float) -> bool:
        """Make ``session`` its account's connection in its role; True when it
        replaced older ones (closed here). One live connection per account: a
        Universal one replaces any other; an Event or API one replaces one of
        its role and a Universal one (Lagrange's pair is two roles, one each)."""
        assert session.self_id is not None
        sid = session.self_id
        roles: tuple[Role, ...] = (
            ("universal", "event", "api")
            if session.role == "universal"
            else (session.role, "universal")
        )
        replaced = False
        for role in roles:
            old = self._accounts.pop((sid, role), None)
            if old is not None and old != session.conn and (older := self._sessions.get(old)):
                self._end(older, "replaced by a new connection", close=1000)
                replaced = True
        self._accounts[(sid, session.role)] = session.conn
        return replaced

    # -- events POSTed (v11 HTTP POST, v12 webhook: spec 1.2, 1.3, 7.1) ---------------------

    def on_request(self, conn: int, request: Request, now: float) -> None:
        if request.path != self.config.event_path:  # a GET on the WebSocket path
            self._refuse(conn, 426, "this path takes WebSocket upgrades only")
            return
        status, why = self._check_post(request)
        if status:
            self._refuse(conn, status, why)
            return
        try:
            event = read_frame(request.body)
        except RemoteProtocolError as error:
            self._refuse(conn, 400, f"the body is no event: {error}")
            return
        if isinstance(event, Answer):
            self._refuse(conn, 400, "the body is an action's answer, not an event")
            return
        if (request.header("x-onebot-version") == "12") != (event.version == 12):
            self._refuse(conn, 400, f"a v{event.version} event under another version's header")
            return
        said = (request.header("x-self-id") or "").strip()
        if said and event.self_id is not None and said != str(event.self_id):
            self._refuse(conn, 400, f"X-Self-ID {said[:24]!r} names another account than the event")
            return
        if event.self_id is not None:
            self._versions.set(str(event.self_id), event.version, now)
        self._out.append(Deliver(event))  # before what follows on the connection
        if self.config.quick_window > 0 and event.type in ("message", "request"):
            self._posted[conn] = (event, now + self.config.quick_window)
        else:
            self.respond(conn, 204)

    def _check_post(self, request: Request) -> tuple[int, str]:
        """v12 webhooks by the token, v11 POSTs by the signature; a header that
        says v12 never skips a secret that no token stands in for. A v11 POST
        that presents a token must present the right one (NapCat and LLOneBot
        send none, and sign with theirs)."""
        config = self.config
        token_status, why = check_token(request, config.access_token)
        if request.header("x-onebot-version") == "12":
            if config.access_token is None and config.secret is not None:
                return 401, "a v12 webhook needs the access token, and none is set here"
            return token_status, why
        if token_status == 403:
            return token_status, why
        return check_signature(request, config.secret)

    def quick_reply(
        self, event: Event, operation: Mapping[str, Any] | list[Any] | None, now: float
    ) -> bool:
        """Answer a POSTed ``event`` with a quick operation: v11's object (spec
        1.3: ``reply``, ``at_sender``, ``approve``, ...) or v12's list of action
        requests; None for none. False when its answer is gone already (no
        window, or it passed): the operation is then not done."""
        self._now = now
        for conn, (waiting, _) in self._posted.items():
            if waiting is event:
                del self._posted[conn]
                if operation is None:
                    self.respond(conn, 204)
                else:
                    body = json.dumps(operation, ensure_ascii=True).encode()
                    self.respond(conn, 200, (("Content-Type", "application/json"),), body)
                return True
        return False

    # -- frames -----------------------------------------------------------------------------

    def on_upgraded_data(self, conn: int, data: bytes, now: float) -> None:
        session = self._sessions.get(conn)
        if session is None:
            return
        session.liveness.heard(now)
        self._frames(session, session.ws.receive_data(data), now)

    def _frames(self, session: _Session, events: list[Any], now: float) -> None:
        for event in events:
            if type(event) is TextReceived:
                self._on_text(session, event.text, now)
            elif type(event) is Closed:
                if event.error is not None:
                    self._violation(event.error)
                self.send(session.conn, session.ws.data_to_send())  # our close frame, answering
                why = f"closed with {event.code}" + (f" ({event.reason})" if event.reason else "")
                self._end(session, why, close=None)
                return
            elif type(event) is BytesReceived:
                why = "a binary frame (MessagePack is not spoken here)"
                self._violation(RemoteProtocolError(why, expected="a text frame", received=event))
        self.send(session.conn, session.ws.data_to_send())  # pongs

    def _on_text(self, session: _Session, text: str, now: float) -> None:
        try:
            frame = read_frame(text)
        except RemoteProtocolError as error:
            self._violation(error)
            return
        if isinstance(frame, Answer):
            self._pending.answered(frame, now, session.conn)
            return
        self._on_event(session, frame, now)

    def _on_event(self, session: _Session, event: Event, now: float) -> None:
        if session.self_id is None and event.self_id is not None:  # v12: it says now
            session.self_id = str(event.self_id)
            self._claim(session, now)
        elif session.version == 11 and session.self_id and event.self_id is not None:
            said = str(event.self_id)
            if said != session.self_id:  # the socket's account is the one answers go to
                why = "an event for another account than its connection's X-Self-ID"
                self._violation(RemoteProtocolError(why, expected=session.self_id, received=said))
                sid = session.self_id
                mine = int(sid) if sid.isdigit() and len(sid) < 20 else opaque_id(sid)
                msgspec.structs.force_setattr(event, "self_id", mine)
        if isinstance(event, MetaEvent) and event.interval is not None:
            session.liveness.heartbeat(event.interval, now)
        self._out.append(Deliver(event))

    # -- ends -------------------------------------------------------------------------------

    def on_closed(self, conn: int, now: float) -> None:
        self._posted.pop(conn, None)
        session = self._sessions.get(conn)
        if session is not None:
            self._end(session, "connection lost", close=None)

    def _end(self, session: _Session, why: str, *, close: int | None) -> None:
        """``session`` is over: its actions in flight end, its account lets it
        go, and (``close``) the close frame goes before the transport."""
        conn = session.conn
        if self._sessions.pop(conn, None) is None:
            return
        if (
            session.self_id is not None
            and self._accounts.get((session.self_id, session.role)) == conn
        ):
            del self._accounts[(session.self_id, session.role)]
        self._pending.socket_gone(f"its connection ended ({why}): outcome unknown", conn)
        if close is not None:
            session.ws.close(close, why[:120])
            self.send(conn, session.ws.data_to_send())
        self.disconnect(conn)
        self._out.append(Deliver(Disconnected(conn, session.self_id, session.role, why)))

    def close(self, now: float) -> None:
        for session in list(self._sessions.values()):
            self._end(session, "the server was closed", close=1001)
        super().close(now)

    # -- refusals ---------------------------------------------------------------------------

    def on_refused(self, conn: int, refused: Refused | Dropped, now: float) -> None:
        status = refused.status if isinstance(refused, Refused) else 400
        self._out.append(Deliver(ServeRefused(status, refused.why, self.peers.get(conn))))

    def _refuse(self, conn: int, status: int, why: str) -> None:
        self.respond(conn, status, body=why.encode())
        self._out.append(Deliver(ServeRefused(status, why, self.peers.get(conn))))

    def _violation(self, error: RemoteProtocolError) -> None:
        self._out.append(Deliver(ProtocolViolation(error)))

    def __repr__(self) -> str:
        return (
            f"OneBotServer({self.host}:{self.port}, state={self.state.name}, "
            f"connections={len(self._sessions)}, accounts={self.accounts})"
        )
