"""MemoryNetwork: run a bot against a simulator in memory, on a fake clock.

It is the driver of the driver contract (``docs/driver-contract.md``) with
the network replaced by direct calls: ``Connect`` opens a
:class:`~qqproto.testing.SimConnection`, ``SendData`` feeds it, its answers
go back through ``receive_data``; each ``HttpRequest`` goes through a real
:class:`~qqproto.http.HttpConnection` (keep-alive, one per origin) into
another simulator connection, and the response comes back through
``http_response``. Time moves only when asked (:meth:`MemoryNetwork.advance`,
:meth:`MemoryNetwork.run_until`, :meth:`MemoryNetwork.wait_for`), jumping
from deadline to deadline, so an hour of bot life takes milliseconds. Sans-IO
like the rest: nothing here sleeps, reads a clock or opens a socket.

What the application would receive collects in :attr:`MemoryNetwork.events`
(and REST outcomes in :attr:`MemoryNetwork.results`); ``on_event`` is called
for each, which is where a test's "application" replies.

HTTP answers take no time unless ``http_latency`` says otherwise (seconds,
or a function of the request): the simulator answers at once, and the bot
gets the answer that many seconds of fake time later, so a REST call can be
in flight while the gateway drops, a token is revoked, or a timer fires.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from typing import Any, TypeAlias

from ..actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    HttpRequest,
    SendData,
    StateChanged,
)
from ..contract import Driven
from ..errors import LocalProtocolError, RemoteProtocolError
from ..http import HttpConnection, HttpResponse
from ..qq.session import TokenWanted
from ..url import Origin
from .served import ServedConnection, ServedSimulator
from .simulator import QQSimulator

__all__ = ["HttpLatency", "MemoryNetwork"]

#: Timer rounds without the clock moving before :meth:`MemoryNetwork.run_until` gives up.
MAX_STILL_ROUNDS = 10_000


#: How long an HTTP answer takes to reach the bot: seconds, or seconds per request.
HttpLatency: TypeAlias = Callable[[HttpRequest], float] | float


class MemoryNetwork:
    """A bot, the simulator, and the wires between them, in one object.

    ``proto`` is usually a :class:`~qqproto.qq.BotProtocol` built with
    ``api_base="http://127.0.0.1:1"`` and ``token_url=".../app/getAppAccessToken"``
    on that origin; every request and every connection goes to ``sim``
    whatever its URL says. A bare :class:`~qqproto.qq.GatewayProtocol` works
    too: its ``TokenWanted`` is answered with :meth:`QQSimulator.issue_token`.
    A :class:`~qqproto.onebot.OneBotProtocol` runs against a
    :class:`~qqproto.testing.OneBotSimulator` the same way.
    """

    def __init__(
        self,
        sim: ServedSimulator,
        proto: Driven,
        *,
        now: float = 0.0,
        on_event: Callable[[object, float], None] | None = None,
        http_latency: HttpLatency = 0.0,
    ) -> None:
        self.sim = sim
        self.proto = proto
        self.now = now
        self.on_event = on_event
        #: Seconds (or a function of the request giving them) before the bot gets
        #: the answer to an HTTP request; the simulator handles it at once.
        self.http_latency = http_latency
        #: Everything delivered to the application (events, ProtocolViolations, ApiResults).
        self.events: list[object] = []
        #: ``Deliver``-ed values that carry a ``request_id`` (``ApiResult``), by that id.
        self.results: dict[int, Any] = {}
        self.states: list[StateChanged] = []
        self.failure: str | None = None
        #: Connect requests answered; set ``refuse_connections`` to make them fail.
        self.connects = 0
        self.refuse_connections = False
        #: The simulator's end of each connection the object opened, by its id.
        self._conns: dict[int, ServedConnection] = {}
        self._http: dict[Origin, tuple[HttpConnection, ServedConnection]] = {}
        self._busy = False
        self._again = False
        #: HTTP answers on their way to the bot: (due, order, request, response or
        #: the reason it failed), a heap.
        self._in_flight: list[tuple[float, int, HttpRequest, HttpResponse | str]] = []
        self._sent_http = 0
        sim.wakeup = self.settle
        self.settle()

    # -- the clock ----------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of fake time pass, firing every deadline on the way."""
        self.run_until(self.now + seconds)

    def run_until(self, when: float) -> None:
        """Run timers in order up to ``when``, then set the clock to ``when``."""
        still = 0
        while True:
            self.settle()
            due = self._next_deadline()
            if due is None or due > when:
                break
            if due <= self.now:
                still += 1
                if still > MAX_STILL_ROUNDS:
                    raise LocalProtocolError(
                        "timers make no progress", expected="deadlines that move", received=due
                    )
            else:
                still = 0
                self.now = due
            self._fire_timers()
        self.now = max(self.now, when)
        self.settle()

    def wait_for(self, condition: Callable[[], bool], within: float = 600.0) -> bool:
        """Run until ``condition()`` holds (checked after every step) or ``within``
        seconds passed; returns whether it held."""
        limit = self.now + within
        while True:
            self.settle()
            if condition():
                return True
            due = self._next_deadline()
            if due is None or due > limit:
                self.now = max(self.now, limit)
                self.settle()
                return condition()
            self.now = max(self.now, due)
            self._fire_timers()

    @property
    def http_in_flight(self) -> int:
        """HTTP answers the bot has not got yet (see ``http_latency``)."""
        return len(self._in_flight)

    def _next_deadline(self) -> float | None:
        times = [self.proto.next_deadline(), self.sim.next_deadline()]
        if self._in_flight:
            times.append(self._in_flight[0][0])
        return min((t for t in times if t is not None), default=None)

    def _fire_timers(self) -> None:
        now = self.now
        while self._in_flight and self._in_flight[0][0] <= now:
            _, _, request, outcome = heapq.heappop(self._in_flight)
            self._answer(request, outcome)
            self.settle()
        due = self.proto.next_deadline()
        if due is not None and due <= now:
            self.proto.handle_timer(now)
            self.settle()
        due = self.sim.next_deadline()
        if due is not None and due <= now:
            self.sim.handle_timer(now)
            self.settle()

    # -- moving bytes and actions ------------------------------------------------------------------

    def settle(self) -> None:
        """Carry out every pending action and move every pending byte, until quiet.
        (It is also the simulator's ``wakeup``.)"""
        if self._busy:
            self._again = True
            return
        self._busy = True
        try:
            self._again = True
            while self._again:
                self._again = False
                actions = self.proto.actions()
                for action in actions:
                    self._do(action)
                if self._pump_gateway() or actions:
                    self._again = True
        finally:
            self._busy = False

    def _do(self, action: Action) -> None:
        now = self.now
        if isinstance(action, SendData):
            if (conn := self._conns.get(action.conn)) is not None:
                conn.receive_data(action.data, now)
        elif isinstance(action, HttpRequest):
            self._http_request(action)
        elif isinstance(action, Deliver):
            if isinstance(action.event, TokenWanted) and isinstance(self.sim, QQSimulator):
                token, expires_at = self.sim.issue_token(now)
                receiver: Any = self.proto
                receiver.token_received(token, expires_at, now)
            else:
                self._deliver(action.event)
        elif isinstance(action, Connect):
            self.connects += 1
            if self.refuse_connections:
                self.proto.connection_lost(action.conn, now, "connection refused")
            else:
                self._conns[action.conn] = self.sim.accept(now)
                self.proto.connection_made(action.conn, now)
        elif isinstance(action, Disconnect):
            self._close(action.conn)
            self.proto.connection_lost(action.conn, now, None)
        elif isinstance(action, StateChanged):
            self.states.append(action)
        elif isinstance(action, Failed):
            self.failure = action.reason

    def _pump_gateway(self) -> bool:
        """Move the simulator's output to the protocol; True if anything moved."""
        moved = False
        for conn_id, conn in list(self._conns.items()):
            data = conn.data_to_send()
            if data:
                moved = True
                self.proto.receive_data(conn_id, data, self.now)
            if conn.closed and self._conns.get(conn_id) is conn:
                # The server closed the socket: the client reads EOF, and its
                # transport is gone whether or not it asks to disconnect.
                del self._conns[conn_id]
                conn.connection_lost(self.now)
                self.proto.receive_data(conn_id, b"", self.now)
                self._lose_unless_asked(conn_id)
                moved = True
        return moved

    def _lose_unless_asked(self, conn_id: int) -> None:
        for action in self.proto.actions():
            if not (isinstance(action, Disconnect) and action.conn == conn_id):
                self._do(action)  # the transport is gone: said once, below
        self.proto.connection_lost(conn_id, self.now, "connection closed by the server")

    def _close(self, conn_id: int) -> None:
        conn = self._conns.pop(conn_id, None)
        if conn is not None:
            conn.receive_data(b"", self.now)
            conn.connection_lost(self.now)

    def _http_request(self, request: HttpRequest) -> None:
        latency = self.http_latency
        delay = latency(request) if callable(latency) else latency
        if type(delay) not in (int, float) or not 0 <= delay < math.inf:
            raise LocalProtocolError(
                "bad http_latency", expected="finite seconds >= 0", received=delay
            )
        outcome = self._exchange(request)
        if delay == 0:
            self._answer(request, outcome)
        else:
            self._sent_http += 1
            heapq.heappush(self._in_flight, (self.now + delay, self._sent_http, request, outcome))

    def _answer(self, request: HttpRequest, outcome: HttpResponse | str) -> None:
        if isinstance(outcome, str):
            self.proto.http_failed(request.request_id, self.now, outcome)
        else:
            self.proto.http_response(request.request_id, outcome, self.now)

    def _exchange(self, request: HttpRequest) -> HttpResponse | str:
        """Put ``request`` through the simulator now: its response, or why there is none."""
        now = self.now
        try:
            origin = Origin.of(request.url, ("http", "https"))
        except LocalProtocolError as exc:
            return str(exc)
        pair = self._http.get(origin)
        if pair is None or not pair[0].reusable or pair[1].closed:
            pair = (HttpConnection(), self.sim.accept(now))
            self._http[origin] = pair
        client, server = pair
        try:
            server.receive_data(client.send(request), now)
            responses = client.receive_data(server.data_to_send())
            if not responses and server.closed:
                responses = client.receive_data(b"")
        except (LocalProtocolError, RemoteProtocolError) as exc:
            self._http.pop(origin, None)
            return str(exc)
        if server.closed:
            server.connection_lost(now)
            self._http.pop(origin, None)
        if not responses:
            return "no response"
        response: HttpResponse = responses[0]
        return response

    def _deliver(self, event: object) -> None:
        self.events.append(event)
        request_id = getattr(event, "request_id", None)
        if isinstance(request_id, int):
            self.results[request_id] = event
        if self.on_event is not None:
            self.on_event(event, self.now)

    def __repr__(self) -> str:
        return f"MemoryNetwork(now={self.now}, connects={self.connects}, failure={self.failure!r})"
