"""ShardSet: a bot's gateway connections, one per shard, run as one, sans-IO.

A bot (:mod:`.bot`) runs one gateway per shard it was given. What they
share lives here, once:

- **connections**: each gateway numbers its connections from the bot's
  counter; the set remembers which connection is whose (from its
  ``Connect``), and routes the driver's calls to it;
- **the access token**: a gateway that asks (``TokenWanted``) gets the
  bot's token, or waits for the next one the bot fetches;
- **the identify gate**: a gateway about to dial for an Identify asks
  (``IdentifyWanted``), and the set lets them in one after another through
  the :class:`~qqproto.qq.shards.IdentifyGate`; each turn ends when the
  gateway says so (``IdentifyTurnOver``). With an outside gate
  (``external_gate``: the same gate across processes, kept in Redis by the
  I/O layer), both go up to the application instead, which answers the first
  with :meth:`ShardSet.identify_allowed`.

Each gateway keeps its own session and seq: a shard that drops resumes
alone, and the others never wait for it. Everything else a gateway emits goes
to ``emit``, in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from ..actions import Action, Connect, Deliver, Failed
from ..errors import LocalProtocolError
from .config import GatewayConfig
from .gateway import GatewayProtocol
from .rest import RestClient
from .session import IdentifyTurnOver, IdentifyWanted, Session, TokenWanted
from .shards import IdentifyGate

__all__ = ["GATEWAY_TOKEN_MARGIN", "ShardSet"]

#: A token a gateway gets must still live this long (its own margin is 10 s).
GATEWAY_TOKEN_MARGIN = 15.0

_OVER = ("FAILED", "CLOSED")


class ShardSet:
    """The gateways of one bot (see the module docstring)."""

    def __init__(
        self,
        rest: RestClient,
        gate: IdentifyGate,
        emit: Callable[[Action, float], None],
        *,
        external_gate: bool = False,
    ) -> None:
        self._rest = rest
        self.gate = gate
        self._emit = emit
        self._external = external_gate
        #: shard id -> its gateway, in the order they started.
        self.gateways: dict[int, GatewayProtocol] = {}
        self._by_conn: dict[int, GatewayProtocol] = {}
        self._given: dict[int, str] = {}  # shard id -> the token it last got
        self._asked: set[int] = set()  # shard ids waiting for a token
        #: New sessions the day's budget still allows (``remaining`` at discovery,
        #: less each Identify since); None: not known (no discovery was made).
        self.starts_left: int | None = None
        self.budget_note = ""  # when the budget refills, for the error

    def start(
        self,
        configs: Iterable[GatewayConfig],
        sessions: Mapping[int, Session],
        ids: Iterator[int],
        now: float,
    ) -> None:
        """Start a gateway per config (resuming the session saved for its shard)."""
        for config in configs:
            shard_id = config.shard[0]
            gateway = GatewayProtocol(config, sessions.get(shard_id), ids=ids)
            self.gateways[shard_id] = gateway
        for gateway in list(self.gateways.values()):
            self._pump(gateway, now)

    # -- reading ------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        times = [g.next_deadline() for g in self.gateways.values()]
        if not self._external:
            times.append(self.gate.next_deadline())
        return min((t for t in times if t is not None), default=None)

    def owns(self, conn: int) -> bool:
        return conn in self._by_conn

    # -- the driver's calls, routed ------------------------------------------------------

    def connection_made(self, conn: int, now: float) -> None:
        gateway = self._of(conn)
        gateway.connection_made(conn, now)
        self._pump(gateway, now)

    def receive_data(self, conn: int, data: bytes, now: float) -> None:
        gateway = self._of(conn)
        gateway.receive_data(conn, data, now)
        self._pump(gateway, now)

    def connection_lost(self, conn: int, now: float, reason: str | None = None) -> None:
        gateway = self._of(conn)
        del self._by_conn[conn]
        gateway.connection_lost(conn, now, reason)
        self._pump(gateway, now)

    def handle_timer(self, now: float) -> None:
        for gateway in list(self.gateways.values()):
            gateway.handle_timer(now)
            self._pump(gateway, now)
        if not self._external:
            self._grant(now)

    # -- the owner's calls --------------------------------------------------------------

    def token_ready(self, token: str, expires_at: float, now: float) -> None:
        """A token came: every gateway that asked gets it, and so does every
        gateway that holds an older one (it renews before expiry)."""
        for shard_id, gateway in list(self.gateways.items()):
            if shard_id in self._asked or shard_id in self._given:
                self._give(shard_id, gateway, token, expires_at, now)

    def identify_allowed(self, shard_id: int, now: float) -> None:
        """An outside gate let ``shard_id`` identify (``external_gate``)."""
        gateway = self.gateways.get(shard_id)
        if gateway is None:
            raise LocalProtocolError(
                "no such shard", expected=f"one of {sorted(self.gateways)}", received=shard_id
            )
        gateway.identify_allowed(now)
        self._pump(gateway, now)

    def close(self, now: float, code: int = 1000) -> None:
        """Close every gateway still running (1000: the sessions are over). The
        gate is emptied first: a turn a closing shard gives back goes to nobody."""
        for shard_id in self.gateways:
            self.gate.cancel(shard_id)
        for gateway in list(self.gateways.values()):
            if gateway.state.name not in _OVER:
                gateway.close(now, code)
                self._pump(gateway, now)

    # -- inside ---------------------------------------------------------------------------

    def _of(self, conn: int) -> GatewayProtocol:
        gateway = self._by_conn.get(conn)
        if gateway is None:
            raise LocalProtocolError(
                "a connection no shard asked for",
                expected=f"one of {sorted(self._by_conn)} (from a Connect)",
                received=conn,
            )
        return gateway

    def _pump(self, gateway: GatewayProtocol, now: float) -> None:
        """Carry a gateway's actions up, answering its token and identify asks here."""
        asked = False
        while actions := gateway.actions():
            for action in actions:
                if type(action) is Connect:
                    self._by_conn[action.conn] = gateway
                elif type(action) is Deliver:
                    wanted = action.event
                    if type(wanted) is TokenWanted:
                        self._wants_token(gateway, wanted, now)
                        continue
                    if type(wanted) is IdentifyWanted and self.starts_left == 0:
                        # A shard whose session was lost needs a new one the budget
                        # no longer has: said as such, not as the platform's refusal.
                        why = f"no gateway session starts left today{self.budget_note}"
                        self._emit(Failed(why), now)
                        continue
                    spent = type(wanted) is IdentifyTurnOver and wanted.identified
                    if spent and self.starts_left is not None:
                        self.starts_left = max(0, self.starts_left - 1)
                    if type(wanted) is IdentifyWanted and not self._external:
                        self.gate.ask(wanted.shard[0], now)
                        asked = True
                        continue
                    if type(wanted) is IdentifyTurnOver and not self._external:
                        if wanted.identified:
                            self.gate.spent(wanted.shard[0], now)
                        else:
                            self.gate.returned(wanted.shard[0])
                        asked = True  # the next turn may start
                        continue
                self._emit(action, now)
        if asked:
            self._grant(now)

    def _grant(self, now: float) -> None:
        for shard_id in self.gate.due(now):
            gateway = self.gateways.get(shard_id)
            if gateway is not None:
                gateway.identify_allowed(now)
                self._pump(gateway, now)

    def _wants_token(self, gateway: GatewayProtocol, wanted: TokenWanted, now: float) -> None:
        shard_id = gateway.config.shard[0]
        current = self._rest.token(now)
        fresh = current is not None and now < current.expires_at - GATEWAY_TOKEN_MARGIN
        # A stale token is the one the server refused (close 4004, a dropped
        # session): a newer one we hold will do, the same one will not.
        same = current is not None and current.value == self._given.get(shard_id)
        if current is not None and fresh and not (wanted.stale and same):
            self._give(shard_id, gateway, current.value, current.expires_at, now)
            return
        self._asked.add(shard_id)
        self._rest.fetch_token(now, stale=wanted.stale)

    def _give(
        self, shard_id: int, gateway: GatewayProtocol, token: str, expires_at: float, now: float
    ) -> None:
        self._asked.discard(shard_id)
        self._given[shard_id] = token
        gateway.token_received(token, expires_at, now)
        self._pump(gateway, now)

    def __repr__(self) -> str:
        shards = ", ".join(f"{i}: {g.state.name}" for i, g in self.gateways.items())
        return f"ShardSet({{{shards}}}, gate={self.gate!r})"
