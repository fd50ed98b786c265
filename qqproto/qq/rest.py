"""RestClient: a bot's access token and every REST call made with it, sans-IO.

What a bot on the QQ platform does over HTTP, whatever else it runs (one
gateway, several shards, callbacks only):

- it keeps the access token (:mod:`.auth`), fetching it when a call needs
  one and again before it expires;
- it sends each call (:mod:`.api`) with the current token. On HTTP 401 or a
  token code, the token is refetched and the call tried once more; 429 and
  5xx are tried again after a backoff; the outcome is an :class:`ApiResult`;
- a passive reply (one with a :class:`~.replies.ReplyTicket`) reports each
  attempt to the reply ledger (:mod:`.conversation`), which says whether the
  next one may reuse its ``msg_seq``, and whether an earlier one landed.

The bot's own calls (where the gateway is, who the bot is) go the same way,
with hooks instead of an ``ApiResult``: ``on_done`` takes the outcome, and
``on_later`` decides what a "later" answer means for it. The owner hears of
tokens through :class:`TokenHooks`. Everything goes out through ``emit``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..actions import Deliver, HttpRequest
from ..calls import Call, Calls, StrayAnswer
from ..errors import LocalProtocolError, ProtocolError, ProtocolViolation, RemoteProtocolError
from ..http import HttpResponse
from .api import ApiCall, ApiConfig, ApiResult
from .auth import AuthConfig, Token, TokenError, TokenManager
from .codes import ApiError
from .config import BotConfig
from .conversation import Conversations, reply_code
from .replies import ReplyTicket
from .reply_rules import Outcome, ReplyRefused

__all__ = ["REST_ATTEMPTS", "OwnCall", "RestClient", "TokenHooks"]

#: How often a REST call is tried when the platform says "later" (429, 5xx).
REST_ATTEMPTS = 3

#: The outcome of one of the bot's own calls, and the time.
OnDone = Callable[[ApiResult[Any], float], None]
#: One of the bot's own calls was answered "later" (429, 5xx, no answer).
OnLater = Callable[[ProtocolError, float], None]


@dataclass(frozen=True, slots=True)
class TokenHooks:
    """What the owner of a :class:`RestClient` hears of its token."""

    #: A token came (the first, or a fresh one): (token, expires_at, now).
    ready: Callable[[str, float, float], None]
    #: The token cannot be had (wrong credentials, attempts spent), final: (why, now).
    lost: Callable[[str, float], None]


@dataclass(frozen=True, slots=True)
class OwnCall:
    """The hooks of one of the bot's own calls (no ``ApiResult`` for them)."""

    on_done: OnDone
    on_later: OnLater | None = None  # None: retried like the application's


@dataclass(slots=True)
class _Job:
    """What one request is for. No ``call``: a token fetch."""

    call: ApiCall[Any] | None = None
    ticket: ReplyTicket | None = None  # a passive reply's latest attempt
    own: OwnCall | None = None
    auth_retried: bool = False


_Pending = Call[_Job]


class RestClient:
    """A bot's token and REST calls (see the module docstring)."""

    def __init__(
        self,
        config: BotConfig,
        rng: random.Random,
        conversations: Conversations,
        hooks: TokenHooks,
        emit: Callable[[Any], None],
    ) -> None:
        self._api = ApiConfig(config.app_id, config.api_base)
        self._hooks = hooks
        self._emit = emit
        self._conversations = conversations
        self.tokens = TokenManager(
            AuthConfig(config.app_id, config.secret, config.token_url, config.max_attempts),
            rng,
            on_change=emit,
        )
        #: Every request out, and the calls held for a token or a retry.
        self._calls: Calls[_Job] = Calls(rng, max_attempts=REST_ATTEMPTS)
        #: Once set, nothing new goes out: the owner stopped (``how``: "failed", "closed").
        self.stopped: str | None = None

    def next_deadline(self) -> float | None:
        times = (self.tokens.next_deadline(), self._calls.next_deadline())
        return min((t for t in times if t is not None), default=None)

    def token(self, now: float) -> Token | None:
        """The current token, if one is held and alive."""
        return self.tokens.current(now)

    # -- calls ------------------------------------------------------------------------

    def call(
        self,
        api_call: ApiCall[Any],
        now: float,
        *,
        ticket: ReplyTicket | None = None,
        own: OwnCall | None = None,
    ) -> int:
        """Start ``api_call``; its id (the application's, for an ``ApiResult``)."""
        pending = self._calls.new(_Job(api_call, ticket, own))
        self._start(pending, now)
        return pending.id

    def fetch_token(self, now: float, *, stale: bool = False) -> None:
        """Fetch a token, unless one is on its way; ``stale``: the one held was refused."""
        if self.stopped:
            return
        request_id = self._calls.next_id()
        want = self.tokens.invalidate if stale else self.tokens.want
        request = want(request_id, now)
        if request is not None:
            self._send(self._calls.new(_Job()), request)

    def stop(self, how: str, now: float) -> None:
        """The owner ``how`` ("failed", "closed"): nothing more goes out. The
        calls that wait end now, with the error their last attempt got, or
        saying that none was made."""
        self.stopped = how
        for pending in self._calls.take_unsent():
            if pending.what.own is None and pending.what.call is not None:
                self._finish(pending, None, pending.last_error or self._unsent(), now)

    # -- the driver's answers -----------------------------------------------------------

    def handle_timer(self, now: float) -> None:
        if self.stopped:
            return
        request = self.tokens.handle_timer(self._calls.next_id(), now)
        if request is not None:
            self._send(self._calls.new(_Job()), request)
        for pending in self._calls.due(now):
            self._start(pending, now)

    def http_response(self, request_id: int, response: HttpResponse, now: float) -> None:
        pending = self._take(request_id)
        job = pending.what
        if self.stopped and not self._applications(job):
            return  # a token or the bot's own: nothing may start any more
        if job.call is None:
            try:
                token = self.tokens.response(request_id, response, now)
            except TokenError as error:
                self._token_failed(error, now)
                return
            if token.problem is not None:  # usable, but the answer was not right
                self._emit(Deliver(ProtocolViolation(token.problem)))
            self._token_ready(token.value, token.expires_at, now)
            return
        try:
            result = job.call.parse(response)
        except ApiError as error:
            self._api_error(pending, error, now)
            return
        except RemoteProtocolError as error:
            if not self._reply_failed(pending, error, None, 200 <= response.status < 300, now):
                self._finish(pending, None, error, now)
            return
        self._finish(pending, result, None, now)

    def http_failed(self, request_id: int, now: float, reason: str) -> None:
        """The HTTP request got no answer (DNS, connect, TLS, timeout)."""
        pending = self._take(request_id)
        job = pending.what
        if self.stopped and not self._applications(job):
            return
        if job.call is None:
            self._token_failed(self.tokens.transport_failed(request_id, reason, now), now)
            return
        lost = RemoteProtocolError(f"request failed: {reason}")
        if not self._reply_failed(pending, lost, None, True, now):
            self._retry_later(pending, lost, now)

    # -- tokens -------------------------------------------------------------------------

    def _token_failed(self, error: TokenError, now: float) -> None:
        """A fetch failed: the owner hears it is final, or when the next one goes."""
        if error.final:
            self._hooks.lost(str(error), now)
        elif self.tokens.retrying is not None:
            self._emit(Deliver(self.tokens.retrying))

    def _token_ready(self, token: str, expires_at: float, now: float) -> None:
        self._hooks.ready(token, expires_at, now)
        for pending in self._calls.release():  # the calls held for a token
            self._start(pending, now)

    # -- a call's life --------------------------------------------------------------------

    def _start(self, pending: _Pending, now: float) -> None:
        job = pending.what
        if self.stopped:  # no caller sends then; should one, it ends here
            self._finish(pending, None, pending.last_error or self._unsent(), now)
            return
        token = self.tokens.current(now)
        if token is None:
            self._calls.hold(pending)
            if not self.tokens.failed:
                self.fetch_token(now)
            return
        assert job.call is not None
        if job.ticket is not None and pending.attempts:
            try:  # the same msg_seq again, if the window and the id still allow
                job.ticket = self._conversations.tracker.retry(job.ticket, now)
            except ReplyRefused as refused:
                self._finish(pending, None, refused, now)
                return
        self._send(pending, job.call.to_request(self._calls.next_id(), token.value, self._api))

    def _api_error(self, pending: _Pending, error: ApiError, now: float) -> None:
        landed = error.status >= 500
        if self._reply_failed(pending, error, reply_code(error), landed, now):
            return
        job = pending.what
        if error.token_rejected and not job.auth_retried and self.stopped is None:
            job.auth_retried = True
            pending.last_error = error
            self._calls.hold(pending)
            self.fetch_token(now, stale=True)
        elif error.retryable:
            self._retry_later(pending, error, now)
        else:
            self._finish(pending, None, error, now)

    def _retry_later(self, pending: _Pending, error: ProtocolError, now: float) -> None:
        own = pending.what.own
        if self.stopped:  # no retry: this error is the outcome
            if own is None:
                self._finish(pending, None, error, now)
            return
        if own is not None and own.on_later is not None:
            own.on_later(error, now)
            return
        if self._calls.retry_later(pending, error, now) is None:  # its attempts are spent
            self._finish(pending, None, error, now)

    def _finish(
        self,
        pending: _Pending,
        result: Any,
        error: ProtocolError | None,
        now: float,
        *,
        delivered_earlier: bool = False,
    ) -> None:
        job = pending.what
        assert job.call is not None
        outcome = ApiResult(pending.id, job.call, result, error, delivered_earlier)
        if job.own is not None:
            job.own.on_done(outcome, now)
            return
        if job.ticket is not None and error is None and result is not None:
            self._conversations.delivered(job.ticket, result, now)
        elif error is None:  # a proactive send's id is the bot's own too (AstrBot #6931)
            self._conversations.sent(result, now)
        self._emit(Deliver(outcome))

    def _reply_failed(
        self, pending: _Pending, error: ProtocolError, code: int | None, landed: bool, now: float
    ) -> bool:
        """Report a reply's failed attempt to the ledger; True if that settled the call."""
        ticket = pending.what.ticket
        if ticket is None:
            return False
        tracker = self._conversations.tracker
        outcome = tracker.failed(ticket, now, code=code, may_have_landed=landed)
        if outcome is Outcome.DELIVERED:  # 40054005 on a retry: an earlier attempt landed
            self._finish(pending, None, None, now, delivered_earlier=True)
        elif outcome is Outcome.DEAD:
            self._finish(pending, None, error, now)
        return outcome is not Outcome.FAILED

    # -- small helpers ----------------------------------------------------------------------

    @staticmethod
    def _applications(job: _Job) -> bool:
        """The application's call (it is owed an outcome even after a stop)."""
        return job.call is not None and job.own is None

    def _send(self, pending: _Pending, request: HttpRequest) -> None:
        self._calls.sent(pending, request.request_id)
        self._emit(request)

    def _take(self, request_id: int) -> _Pending:
        try:
            return self._calls.answer(request_id)
        except StrayAnswer as stray:  # the driver answered what we never asked (again)
            raise LocalProtocolError(
                f"HTTP answer to no request: {stray}",
                expected=f"one of {self._calls.in_flight}",
                received=request_id,
            ) from None

    def _unsent(self) -> LocalProtocolError:
        return LocalProtocolError(
            f"the bot {self.stopped or 'stopped'} before the call was sent",
            expected="a running bot",
            received="a call waiting for an access token",
        )

    def __repr__(self) -> str:
        return f"RestClient(calls={self._calls!r}, stopped={self.stopped!r})"
