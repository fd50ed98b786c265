"""Actions over an implementation's HTTP API (spec 1.1 and 7.1), sans-IO.

v11 serves each action at ``POST <api>/<action>`` with its params as the JSON
body; v12 serves them all at ``POST <api>`` with the whole request (action,
params, echo) as the body. Both take the access token as
``Authorization: Bearer``. :class:`HttpApi` makes the
:class:`~qqproto.actions.HttpRequest` of an action and reads the
:class:`~qqproto.http.HttpResponse` back as the same
:class:`~qqproto.onebot.actions.Answer` a WebSocket would have carried, or a
typed error: :class:`TokenRefused` for 401 and 403, and a
:class:`~qqproto.errors.RemoteProtocolError` for any other answer that is no
action's answer (an unknown v11 action is HTTP 404 by the spec). The owner
(a connection, a server) keeps the pending calls and their deadlines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Final

from .._json import loads
from ..actions import HttpRequest
from ..errors import ConfigError, RemoteProtocolError
from ..http import HttpResponse
from ..url import BadUrl, Url
from .actions import Action, Answer, read_answer

__all__ = ["HttpApi", "TokenRefused"]

_JSON: Final = (("Content-Type", "application/json"),)


class TokenRefused(RemoteProtocolError):
    """The HTTP API answered 401 (no token) or 403 (a wrong one)."""

    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(
            f"access token refused (HTTP {status} from the API)",
            expected="the token the implementation is configured with",
        )


@dataclass(frozen=True)
class HttpApi:
    """One implementation's HTTP API: where it is, which version, which token."""

    url: str
    version: int
    access_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        try:
            Url.parse(self.url, ("http", "https"))
        except BadUrl as bad:
            raise ConfigError("api_url", "an http:// or https:// URL", self.url) from bad
        if self.version not in (11, 12):
            raise ConfigError("version", "11 or 12", self.version)

    def request(self, request_id: int, action: Action, echo: str) -> HttpRequest:
        """The request that runs ``action`` (``echo`` goes in v12's body)."""
        headers: tuple[tuple[str, str], ...] = _JSON
        if self.access_token:
            headers = (*headers, ("Authorization", f"Bearer {self.access_token}"))
        if self.version == 12:
            return HttpRequest(request_id, "POST", self.url, headers, action.frame(echo).encode())
        url = self.url.rstrip("/") + "/" + action.name
        # ASCII JSON: a lone surrogate in a text goes escaped, as in a frame
        body = json.dumps(dict(action.params), separators=(",", ":")).encode()
        return HttpRequest(request_id, "POST", url, headers, body)

    def read(self, response: HttpResponse) -> Answer:
        """The answer in ``response``; :class:`TokenRefused` or
        :class:`~qqproto.errors.RemoteProtocolError` when it holds none."""
        if response.status in (401, 403):
            raise TokenRefused(response.status)
        try:
            return read_answer(loads(response.body))
        except (ValueError, RecursionError, RemoteProtocolError):
            shown = response.body[:200].decode("utf-8", "replace")
            raise RemoteProtocolError(
                "bad HTTP answer to an action",
                expected="200 and a JSON answer",
                received=f"{response.status}: {shown}",
            ) from None
