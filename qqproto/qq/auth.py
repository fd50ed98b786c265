"""The access-token lifecycle: fetch, refresh ahead of expiry, retry, give up.

``POST {token_url}`` with ``{"appId", "clientSecret"}`` answers
``{"access_token", "expires_in"}``, where ``expires_in`` is the token's
*remaining* life in seconds, as ``"7200"`` or ``7200`` (spec 1.2). A failure
may come back as HTTP 200 with ``{"code", "message"}`` and no token.

:class:`TokenManager` is sans-IO like everything else: it returns the
:class:`~qqproto.actions.HttpRequest` to perform and is told what came back.
It keeps one request in flight, refreshes before the token runs out (with a
margin that stays positive for short-lived tokens), retries network errors
and 5xx answers with backoff, and gives up at once on wrong credentials: a
bot with a bad secret fails with the platform's code instead of retrying
forever. The secret never appears in a repr, a log line or an error.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._json import loads
from ..actions import HttpRequest, StateChanged
from ..backoff import Backoff
from ..errors import ConfigError, LocalProtocolError, RemoteProtocolError
from ..http import HttpResponse
from ..link import Retry
from ..url import BadUrl, Url
from .phases import TOKEN_TABLE, TokenFailure, TokenInput, TokenPhase

__all__ = [
    "DEFAULT_TOKEN_URL",
    "SANDBOX_TOKEN_URL",
    "AuthConfig",
    "Token",
    "TokenError",
    "TokenManager",
]

DEFAULT_TOKEN_URL = "https://bots.qq.com/app/getAppAccessToken"
#: The sandbox uses the same token endpoint as production.
SANDBOX_TOKEN_URL = DEFAULT_TOKEN_URL

#: Codes the token endpoint answers for a wrong app id or secret (spec 1.2, 9):
#: retrying cannot help, so they end the bot.
CREDENTIAL_CODES: dict[int, str] = {
    100016: "invalid appid or secret",
    10004: "bot does not exist",
    100007: "appid not found",
    11251: "appid is wrong",
    11261: "appid is missing",
    11275: "appid is invalid",
}
#: The refresh margin: a third of the token's life, at most this long.
MAX_REFRESH_MARGIN = 60.0
#: The longest ``expires_in`` (seconds) taken as it came; real ones are 7200 or less.
MAX_TOKEN_LIFE = 86_400
#: The life given to a token whose ``expires_in`` is out of range (the
#: documented one): the token itself is good, and a refresh too early is harmless.
FALLBACK_TOKEN_LIFE = 7200
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Credentials and where to exchange them. ``secret`` never shows in a repr."""

    app_id: str
    secret: str = field(repr=False)
    token_url: str = DEFAULT_TOKEN_URL
    #: Consecutive failed fetches (network, 5xx, bad answers) before giving up.
    max_attempts: int = 30

    def __post_init__(self) -> None:
        if type(self.app_id) is not str or not self.app_id:
            raise ConfigError("app_id", "a non-empty string", self.app_id)
        if type(self.secret) is not str or not self.secret:
            # Never echo the secret, not even a wrong one.
            raise ConfigError("secret", "a non-empty string", "<hidden>")
        try:
            Url.parse(self.token_url, ("http", "https"))
        except BadUrl as bad:  # the part at fault is in the cause
            raise ConfigError("token_url", "an http(s) URL", self.token_url) from bad


@dataclass(frozen=True, slots=True)
class Token:
    """An access token and the driver time it stops working.

    ``problem`` says what was wrong with the answer that brought it, when
    the token was usable anyway (an ``expires_in`` out of range).
    """

    value: str = field(repr=False)
    expires_at: float
    refresh_at: float
    problem: RemoteProtocolError | None = None


class TokenError(RemoteProtocolError):
    """The token endpoint refused or answered something unusable.

    ``final`` means retrying cannot help (wrong credentials); ``code`` is the
    platform's code when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        final: bool = False,
        expected: str | None = None,
        received: object = None,
    ) -> None:
        self.code = code
        self.status = status
        self.final = final
        super().__init__(message, expected=expected, received=received)


class TokenManager:
    """One app's access token, kept fresh.

    Ask with :meth:`want`; perform the :class:`HttpRequest` it returns (if any);
    hand the answer to :meth:`response` or a transport failure to
    :meth:`transport_failed`. Call :meth:`handle_timer` at :meth:`next_deadline`.
    """

    def __init__(
        self,
        config: AuthConfig,
        rng: random.Random,
        on_change: Callable[[StateChanged], None] | None = None,
    ) -> None:
        self.config = config
        self._backoff = Backoff(rng, base=1.0, cap=60.0, max_attempts=config.max_attempts)
        self._token: Token | None = None
        self._lifecycle = TOKEN_TABLE.lifecycle(TokenPhase.IDLE)
        #: Told of every move of the lifecycle (the bot makes them actions).
        self._on_change = on_change
        self._retry_at: float | None = None
        self._request_id: int | None = None
        self.error: TokenError | None = None  # set once the manager has given up
        self.last_error: TokenError | None = None
        #: The last failed fetch that will be tried again, and when (None once one worked).
        self.retrying: Retry | None = None

    # -- reading -----------------------------------------------------------------

    def current(self, now: float) -> Token | None:
        """The token, while it still works at ``now``."""
        token = self._token
        return token if token is not None and now < token.expires_at else None

    @property
    def phase(self) -> TokenPhase:
        return self._lifecycle.state

    @property
    def failed(self) -> bool:
        return self.phase is TokenPhase.FAILED

    @property
    def in_flight(self) -> int | None:
        """The request id of the fetch under way, if any."""
        return self._request_id

    def next_deadline(self) -> float | None:
        phase = self.phase
        if phase is TokenPhase.WAITING:
            return self._retry_at
        if phase is TokenPhase.IDLE and self._token is not None:
            return self._token.refresh_at
        return None

    # -- inputs --------------------------------------------------------------------

    def want(self, request_id: int, now: float) -> HttpRequest | None:
        """Ask for a fresh token; returns the request to perform, or None when
        one is already under way, a retry is scheduled, or the manager failed."""
        if self.phase is not TokenPhase.IDLE:
            return None
        return self._fetch(request_id, "access token wanted")

    def invalidate(self, request_id: int, now: float) -> HttpRequest | None:
        """The platform said the token is bad (HTTP 401, code 11244): drop it
        and fetch another."""
        self._token = None
        if self.phase is not TokenPhase.IDLE:
            return None
        return self._fetch(request_id, "the platform refused the token")

    def handle_timer(self, request_id: int, now: float) -> HttpRequest | None:
        """Time for a scheduled refresh or retry; returns the request, if due."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return None
        due = "retry" if self.phase is TokenPhase.WAITING else "refresh"
        return self._fetch(request_id, f"{due} due")

    def response(self, request_id: int, response: HttpResponse, now: float) -> Token:
        """The token endpoint answered. Returns the token, or raises
        :class:`TokenError` (``final`` when the manager gave up for good)."""
        self._check_request(request_id)
        try:
            token = self._parse(response, now)
        except TokenError as error:
            raise self._fail(error, now) from None
        self._token = token
        self._move(TokenInput.ANSWER, "access token received")
        self._backoff.reset()
        self.last_error = self.retrying = None
        return token

    def transport_failed(self, request_id: int, reason: str, now: float) -> TokenError:
        """The request never got an answer (DNS, connect, TLS, timeout)."""
        self._check_request(request_id)
        return self._fail(TokenError(f"token request failed: {reason}"), now)

    # -- inside ------------------------------------------------------------------

    def _move(self, trigger: TokenInput, why: str, failure: TokenFailure | None = None) -> None:
        change = self._lifecycle.fire(trigger, why, failure)
        if change is not None and self._on_change is not None:
            self._on_change(change)

    def _fetch(self, request_id: int, why: str) -> HttpRequest:
        self._move(TokenInput.FETCH, why)
        self._request_id = request_id
        body = json.dumps({"appId": self.config.app_id, "clientSecret": self.config.secret})
        return HttpRequest(
            request_id,
            "POST",
            self.config.token_url,
            (("Content-Type", "application/json"),),
            body.encode(),
        )

    def _check_request(self, request_id: int) -> None:
        if self.phase is not TokenPhase.FETCHING or request_id != self._request_id:
            raise LocalProtocolError(
                "token response without a matching request",
                expected=f"request id {self._request_id}",
                received=request_id,
            )
        self._request_id = None

    def _fail(self, error: TokenError, now: float) -> TokenError:
        """Schedule a retry, or give up; returns the error to report."""
        delay, spent = 0.0, False
        if not error.final:
            delay = self._backoff.next_delay()
            spent = self._backoff.exhausted
        if spent:
            error = TokenError(
                f"{error} (gave up after {self._backoff.failures} attempts)",
                code=error.code,
                status=error.status,
                final=True,
            )
        self._move(TokenInput.ERROR, str(error), TokenFailure(error.final, spent))
        self.last_error = error
        if self.phase is TokenPhase.WAITING:
            self._retry_at = now + delay
            self.retrying = Retry.after(self._backoff, delay, str(error), "token")
        else:
            self.error = error
        return error

    def _parse(self, response: HttpResponse, now: float) -> Token:
        status = response.status
        try:
            body: Any = loads(response.body) if response.body else None
        except (ValueError, RecursionError):
            body = None
        code = body.get("code") if type(body) is dict else None
        code = code if type(code) is int else None
        message = body.get("message") if type(body) is dict else None
        if code in CREDENTIAL_CODES or status in (401, 403):
            what = (
                message
                if isinstance(message, str) and message
                else CREDENTIAL_CODES.get(code or 0, "credentials refused")
            )
            raise TokenError(
                f"access token refused: {what}"
                + (f" (code {code})" if code is not None else f" (HTTP {status})"),
                code=code,
                status=status,
                final=True,
            )
        if status >= 300 or type(body) is not dict or "access_token" not in body:
            detail = f"code {code}: {message}" if code is not None else f"HTTP {status}"
            raise TokenError(
                f"token endpoint failed ({detail})",
                code=code,
                status=status,
                expected='{"access_token": ..., "expires_in": ...}',
                received=response.body[:200],
            )
        value = body["access_token"]
        if type(value) is not str or not value:
            raise TokenError(
                "token endpoint sent no token",
                status=status,
                expected="a non-empty access_token",
                received="<empty>",
            )
        life, problem = _token_life(body.get("expires_in"), status)
        # Refresh a third of the life early, at most a minute: the delay stays
        # positive however short the token (60 s tokens happen, spec 1.2), and
        # a minute early is inside the window where the platform mints anew.
        margin = min(MAX_REFRESH_MARGIN, life / 3)
        return Token(value, now + life, now + life - margin, problem)

    def __repr__(self) -> str:
        return f"TokenManager(app_id={self.config.app_id!r}, phase={self.phase.value})"


def _token_life(expires_in: object, status: int) -> tuple[int, RemoteProtocolError | None]:
    """``expires_in`` in seconds, from ``7200`` or ``"7200"``; and what was wrong with it.

    A number past :data:`MAX_TOKEN_LIFE` (of any size: a peer may send
    hundreds of digits) is out of range, not fatal: the token gets
    :data:`FALLBACK_TOKEN_LIFE`, and the problem is reported.
    """
    seconds: object = expires_in
    out_of_range = False
    if isinstance(expires_in, str) and _DIGITS.fullmatch(digits := expires_in.strip()):
        digits = digits.lstrip("0") or "0"
        # int() refuses strings past 4300 digits; six hold every life in range.
        out_of_range = len(digits) > len(str(MAX_TOKEN_LIFE))
        seconds = None if out_of_range else int(digits)
    if type(seconds) is int and seconds > MAX_TOKEN_LIFE:
        out_of_range = True
    if out_of_range:
        problem = RemoteProtocolError(
            f"token life out of range, taken as {FALLBACK_TOKEN_LIFE} s",
            expected=f"expires_in from 1 to {MAX_TOKEN_LIFE} seconds",
            received=expires_in,
        )
        return FALLBACK_TOKEN_LIFE, problem
    if type(seconds) is not int or seconds <= 0:
        raise TokenError(
            "token endpoint sent a bad expires_in",
            status=status,
            expected='a positive number of seconds, as 7200 or "7200"',
            received=expires_in,
        )
    return seconds, None
