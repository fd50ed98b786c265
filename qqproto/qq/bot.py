"""BotProtocol: one bot on the QQ platform, as one sans-IO object.

It ties the pieces together under the driver contract, so a driver runs a
whole bot as it would run a bare gateway:

1. fetch an access token (:mod:`.auth`, kept by :mod:`.rest`); wrong
   credentials end the bot here, with the platform's code, before any
   gateway connection is opened;
2. discover the gateway (``GET /gateway/bot``) and check that a session may
   start (``session_start_limit.remaining``); failures back off and retry;
3. run the gateway (:mod:`.gateway`), handing it tokens as it asks;
4. run REST calls (:mod:`.rest`) with the current token: on HTTP 401 or a
   token code the token is refetched and the call retried once; 429 and 5xx
   are retried with backoff; the outcome comes back as an :class:`ApiResult`;
5. register every inbound message with the reply ledger (:mod:`.conversation`),
   dropping redelivered ids; :meth:`BotProtocol.reply` answers an event with
   its ``msg_id`` and ``msg_seq``, refusing locally what the platform would;
6. with ``config.webhook``, serve the platform's callbacks too
   (:mod:`.webhook`): their events go through the same ledger, so a message
   that comes both ways reaches the application once. With ``gateway=False``
   the callbacks are the only way in, and the bot runs once it has a token.

Driver obligations beyond the gateway's: perform every ``HttpRequest`` and
answer with ``http_response`` or, when no answer came (DNS, connect, TLS,
timeout), ``http_failed(request_id, now, reason)``.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from typing import Any

from ..actions import Action, Deliver, Failed
from ..backoff import Backoff
from ..contract import Driven, Peer
from ..errors import LocalProtocolError, ProtocolError
from ..http import HttpResponse
from ..link import Retry
from .api import ApiCall, ApiResult, get_gateway_bot, get_me
from .config import BotConfig, GatewayConfig
from .conversation import Conversations
from .events import Ready
from .gateway import RESUMABLE_CLOSE_CODE, GatewayProtocol
from .phases import BOT_TABLE, BotInput, BotPhase
from .rest import OwnCall, RestClient, TokenHooks
from .results import GatewayInfo
from .session import Session
from .shard_set import ShardSet
from .shards import IdentifyGate, ShardPlan, plan_shards
from .webhook import QQWebhook

__all__ = ["BotProtocol"]


#: The phases a bot never leaves: nothing opens, and no request goes out, once in one.
_STOPPED = (BotPhase.FAILED, BotPhase.CLOSED)


class BotProtocol(Driven):
    """One bot (one shard): tokens, discovery, the gateway and REST calls."""

    def __init__(
        self,
        config: BotConfig,
        session: Session | None = None,
        *,
        sessions: Iterable[Session] = (),
    ) -> None:
        super().__init__()
        self.config = config
        self._rng = config.rng or random.Random(config.seed)
        self._discovery_backoff = Backoff(
            self._rng,
            base=config.backoff_base,
            cap=config.backoff_cap,
            max_attempts=config.max_attempts,
        )
        #: Saved sessions to resume, by shard id.
        self._sessions = {s.shard[0]: s for s in ([session] if session else []) + [*sessions]}
        self._discovery_due: float | None = None
        self.conversations = Conversations(config.reply_policies, dedup_ttl=config.dedup_ttl)
        #: The token and every REST call.
        self.rest = RestClient(
            config,
            self._rng,
            self.conversations,
            TokenHooks(ready=self._token_ready, lost=self._fail),
            lambda action: self._out.append(action),  # late: actions() swaps the list
        )
        #: The gateways, one per shard, with the gate their Identifies pass.
        self.shards = ShardSet(
            self.rest,
            IdentifyGate(window=config.identify_window),
            self._from_gateway,
            external_gate=config.external_gate,
        )
        self._phase = BOT_TABLE.lifecycle(BotPhase.AUTHENTICATING)
        self.gateway_info: GatewayInfo | None = None
        #: The callback endpoint, in webhook mode.
        self.webhook = QQWebhook(config.webhook, ids=self._ids) if config.webhook else None
        if self.webhook is not None:
            self._pump_webhook(0.0)
        self.rest.fetch_token(0.0)

    # -- reading -------------------------------------------------------------------

    @property
    def phase(self) -> BotPhase:
        return self._phase.state

    @property
    def gateway(self) -> GatewayProtocol | None:
        """The first shard's gateway (the only one, unless ``config.shards``)."""
        return next(iter(self.shards.gateways.values()), None)

    @property
    def gateways(self) -> dict[int, GatewayProtocol]:
        """Every shard's gateway, by shard id."""
        return dict(self.shards.gateways)

    @property
    def redeliveries(self) -> int:
        """Inbound messages/events dropped because their id had been delivered already."""
        return self.conversations.redeliveries

    def next_deadline(self) -> float | None:
        if self.phase in _STOPPED:
            return None
        times = [self.rest.next_deadline(), self._discovery_due, self.shards.next_deadline()]
        if self.webhook is not None:
            times.append(self.webhook.next_deadline())
        return min((t for t in times if t is not None), default=None)

    # -- the application's calls ---------------------------------------------------

    def call(self, api_call: ApiCall[Any], now: float) -> int:
        """Start a REST call; its outcome comes back as ``Deliver(ApiResult)``."""
        self._check_running()
        return self.rest.call(api_call, now)

    def reply(
        self,
        event: object,
        text: str,
        now: float,
        *,
        markdown: str | Mapping[str, Any] | None = None,
        media_file_info: str | None = None,
        msg_seq: int | None = None,
    ) -> int:
        """Answer ``event`` (a message or event the bot delivered) with a passive reply.

        It goes to the event's conversation with its ``msg_id``/``event_id`` and
        the next ``msg_seq``; the outcome comes back as ``Deliver(ApiResult)``
        under the returned id. :class:`~qqproto.qq.reply_rules.ReplyRefused` raises
        here, before any request, when the platform would refuse it (window
        closed, budget spent, the id dead or unknown). ``msg_seq`` is one a
        counter shared by several processes handed out (the worker's case,
        ``qqproto.adapters.redis``); by default the ledger counts alone.
        """
        self._check_running()
        api_call, ticket = self.conversations.begin(
            event, text, now, markdown=markdown, media_file_info=media_file_info, msg_seq=msg_seq
        )
        return self.rest.call(api_call, now, ticket=ticket)

    def restore(self, sessions: Iterable[Session]) -> None:
        """Resume these saved sessions (a shared store's, say) instead of
        identifying: before the gateways start, that is before the first token."""
        if self.shards.gateways or self.phase is not BotPhase.AUTHENTICATING:
            raise LocalProtocolError(
                "sessions are restored before the gateways start",
                expected="a bot still AUTHENTICATING",
                received=self.phase.value,
            )
        self._sessions.update({s.shard[0]: s for s in sessions})

    def inbound(self, event: object, now: float) -> bool:
        """Register an event that came another way (a worker reads them from a
        stream the gateway processes feed), so that :meth:`reply` can answer
        it; False when this bot had it already."""
        return self.conversations.inbound(event, now)

    def _check_running(self) -> None:
        if self.phase in _STOPPED:
            raise LocalProtocolError(
                "the bot has stopped", expected="a running bot", received=self.phase.value
            )

    def close(self, now: float, *, keep_sessions: bool = False) -> None:
        """Stop the bot for good: the gateways close, and nothing opens again.
        ``keep_sessions`` closes them so that the platform keeps their sessions
        for another process to resume (``session`` still says them); else
        1000 ends them.

        A call not sent yet (waiting for a token, or for its retry) ends here,
        as ``Deliver(ApiResult)`` with a :class:`LocalProtocolError`. A call
        whose request is out ends with its answer, if the driver still hands
        one over; one that would need a retry ends with the error it got. A
        bot that failed stays FAILED.
        """
        if self.phase in _STOPPED:
            return
        self.shards.close(now, code=RESUMABLE_CLOSE_CODE if keep_sessions else 1000)
        if self.webhook is not None:
            self.webhook.close(now)
            self._pump_webhook(now)
        self._move(BotInput.CLOSE, "closed by the application")
        self._end_unsent_calls(now)

    # -- the driver contract ---------------------------------------------------------

    def connection_made(self, conn: int, now: float) -> None:
        self.shards.connection_made(conn, now)

    def receive_data(self, conn: int, data: bytes, now: float) -> None:
        if self.webhook is not None and conn < 0:  # accepted, so the endpoint's (contract.py)
            self.webhook.receive_data(conn, data, now)
            self._pump_webhook(now)
            return
        self.shards.receive_data(conn, data, now)

    def connection_lost(self, conn: int, now: float, reason: str | None = None) -> None:
        if self.webhook is not None and conn < 0:
            self.webhook.connection_lost(conn, now, reason)
            self._pump_webhook(now)
            return
        self.shards.connection_lost(conn, now, reason)

    def identify_allowed(self, shard_id: int, now: float) -> None:
        """With ``config.external_gate``: the outside gate lets shard ``shard_id``
        Identify (it asked with ``Deliver(IdentifyWanted)``)."""
        self.shards.identify_allowed(shard_id, now)

    # the callback endpoint's calls (webhook mode)

    def listening(self, listener: int, host: str, port: int, now: float) -> None:
        self._need_webhook().listening(listener, host, port, now)
        self._pump_webhook(now)

    def listener_lost(self, listener: int, now: float, reason: str | None = None) -> None:
        self._need_webhook().listener_lost(listener, now, reason)
        self._pump_webhook(now)

    def connection_accepted(self, listener: int, conn: int, peer: Peer, now: float) -> None:
        self._need_webhook().connection_accepted(listener, conn, peer, now)
        self._pump_webhook(now)

    def _need_webhook(self) -> QQWebhook:
        if self.webhook is None:
            raise LocalProtocolError(
                "this bot serves no callbacks",
                expected="a BotConfig with a webhook",
                received="a listener call",
            )
        return self.webhook

    def _pump_webhook(self, now: float) -> None:
        """Carry the endpoint's actions up; its events through the reply ledger."""
        assert self.webhook is not None
        for action in self.webhook.actions():
            if isinstance(action, Deliver) and not self.conversations.inbound(action.event, now):
                continue  # it came the other way already (or the platform retried it)
            if isinstance(action, Failed):  # the port could not be had: the bot cannot serve
                self._fail(action.reason, now)
                continue
            self._out.append(action)

    def handle_timer(self, now: float) -> None:
        if self.phase in _STOPPED:
            return
        self.rest.handle_timer(now)
        if self._discovery_due is not None and now >= self._discovery_due:
            self._discovery_due = None
            self._discover(now)
        self.shards.handle_timer(now)
        if self.webhook is not None:
            self.webhook.handle_timer(now)
            self._pump_webhook(now)

    def http_response(self, request_id: int, response: HttpResponse, now: float) -> None:
        self.rest.http_response(request_id, response, now)

    def http_failed(self, request_id: int, now: float, reason: str) -> None:
        """The HTTP request got no answer (DNS, connect, TLS, timeout)."""
        self.rest.http_failed(request_id, now, reason)

    # -- tokens ---------------------------------------------------------------------------

    def _token_ready(self, token: str, expires_at: float, now: float) -> None:
        if self.phase is BotPhase.AUTHENTICATING:
            if not self.config.gateway and self.webhook is None:
                self._move(BotInput.SERVING, "access token received; calls only")
            elif not self.config.gateway:
                self._move(BotInput.SERVING, "access token received; callbacks only")
                # Guild messages name the bot by its user id: the gateway's READY
                # says it; callbacks alone must ask (spec 10.4).
                self.rest.call(get_me(), now, own=OwnCall(self._identified))
            elif self.config.gateway_url or self._all_resume():
                self._start_shards(self.config.gateway_url, None, now)
            else:
                self._move(BotInput.TOKEN, "access token received")
                self._discover(now)
        self.shards.token_ready(token, expires_at, now)

    def _identified(self, outcome: ApiResult[Any], now: float) -> None:
        if outcome.error is not None:  # said as the call's result
            self._out.append(Deliver(outcome))
        elif self.webhook is not None and outcome.result is not None:
            self.webhook.bot_id = outcome.result.id

    # -- discovery and the gateway --------------------------------------------------------

    def _discover(self, now: float) -> None:
        own = OwnCall(self._discovered, on_later=self._discover_later)
        self.rest.call(get_gateway_bot(), now, own=own)

    def _discover_later(self, error: ProtocolError, now: float) -> None:
        backoff = self._discovery_backoff
        delay = backoff.next_delay()
        if backoff.exhausted:
            self._fail(f"gateway discovery failed: {error}", now)
        else:
            self._discovery_due = now + delay
            self._out.append(Deliver(Retry.after(backoff, delay, str(error), "discovery")))

    def _discovered(self, outcome: ApiResult[GatewayInfo], now: float) -> None:
        if outcome.error is not None:
            self._fail(f"gateway discovery failed: {outcome.error}", now)
            return
        self._discovery_backoff.reset()
        info = outcome.result
        assert info is not None
        self.gateway_info = info
        self._start_shards(info.url, info, now)

    def _planned(self) -> tuple[int, tuple[int, ...]]:
        """(count, ids) as the configuration says, before any discovery."""
        config = self.config
        if config.shards is None:
            return config.shard[1], (config.shard[0],)
        assert config.shards != "auto"  # BotConfig lets "auto" through only with discovery
        return config.shards, tuple(config.shard_ids or range(config.shards))

    def _all_resume(self) -> bool:
        """Every planned shard holds a session: no discovery is needed."""
        if self.config.shards == "auto" or not self._sessions:
            return False
        count, ids = self._planned()
        return all(i in self._sessions and self._sessions[i].shard == (i, count) for i in ids)

    def _plan(self, info: GatewayInfo | None) -> ShardPlan:
        config = self.config
        if info is None:
            return ShardPlan(*self._planned())
        resuming = frozenset(self._sessions)
        if config.shards is None:
            i, n = config.shard
            return plan_shards(info, n, range(i, i + 1), resuming=resuming)
        count = None if config.shards == "auto" else config.shards
        return plan_shards(info, count, config.shard_ids, resuming=resuming)

    def _start_shards(self, url: str | None, info: GatewayInfo | None, now: float) -> None:
        try:
            plan = self._plan(info)
        except ProtocolError as error:  # over the start budget, or a slice beyond the count
            self._fail(str(error), now)
            return
        self.shards.gate.set_concurrency(plan.max_concurrency)
        limit = info.session_start_limit if info is not None else None
        if limit is not None:  # what a later Identify (a lost session) may still spend
            self.shards.starts_left = limit.remaining
            self.shards.budget_note = f" (the count resets in {limit.reset_after / 1000:.0f} s)"
        config = self.config
        configs = []
        for shard in plan.shards:
            session = self._sessions.get(shard[0])
            if session is not None and session.shard != shard:
                session = None  # saved for another count: a new session, not a resume
            configs.append(
                GatewayConfig(
                    config.app_id,
                    config.intents,
                    shard,
                    url or (session.gateway_url if session else ""),
                    max_attempts=config.max_attempts,
                    backoff_base=config.backoff_base,
                    backoff_cap=config.backoff_cap,
                    rng=self._rng,
                    entropy=config.entropy,
                    gated=True,
                )
            )
        where = configs[0].gateway_url
        shards = (
            f"shard {plan.ids[0]} of {plan.count}"
            if len(plan.ids) == 1
            else (f"shards {plan.ids[0]}..{plan.ids[-1]} of {plan.count}")
        )
        self._move(BotInput.GATEWAY, f"gateway at {where} ({shards})")
        sessions = {i: s for i, s in self._sessions.items() if s.shard == (i, plan.count)}
        self.shards.start(configs, sessions, self._ids, now)

    def _from_gateway(self, action: Action, now: float) -> None:
        """What a gateway emits, on its way up: events through the reply ledger,
        and a gateway's failure the whole bot's."""
        if isinstance(action, Deliver):
            if not self.conversations.inbound(action.event, now):
                return  # a redelivery (spec 14, quirk 7): the application has it
            if isinstance(action.event, Ready) and self.webhook is not None:
                self.webhook.bot_id = action.event.user.id  # for callbacks' guild @s
        elif isinstance(action, Failed):  # a shard that gives up takes the bot with it
            self._fail(action.reason, now)
            return
        self._out.append(action)

    # -- small helpers ----------------------------------------------------------------------

    def _move(self, trigger: BotInput, why: str) -> None:
        change = self._phase.fire(trigger, why)
        if change is not None:
            self._out.append(change)

    def _fail(self, reason: str, now: float) -> None:
        if self.phase in _STOPPED:
            return
        self.failure_reason = reason
        self._move(BotInput.FAIL, reason)
        self.shards.close(now)  # they would otherwise go on reconnecting for a dead bot
        if self.webhook is not None:
            self.webhook.close(now)
            self._pump_webhook(now)
        self._end_unsent_calls(now)
        self._out.append(Failed(reason))

    def _end_unsent_calls(self, now: float) -> None:
        """A stopped bot sends nothing more: the calls that wait end now."""
        self._discovery_due = None
        self.rest.stop(self.phase.value, now)

    def __repr__(self) -> str:
        return (
            f"BotProtocol(app_id={self.config.app_id!r}, phase={self.phase.value}, "
            f"shards={self.shards!r})"
        )
