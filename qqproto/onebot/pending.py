"""The actions one OneBot endpoint has out, and the answers that end them, sans-IO.

A forward connection (:mod:`.connection`) and a reverse server
(:mod:`.reverse`) send actions two ways and read their answers the same way:

- on a WebSocket, keyed by the echo, which is the call's id as text; a
  numeric echo whose text is ours is ours too (NapCat turns numeric-looking
  echoes into numbers), and a streamed answer's frames each give the call
  ``call_timeout`` more;
- over the HTTP API, keyed by the driver's request id, whose answer is read
  by :class:`~qqproto.onebot.http_api.HttpApi`.

:class:`PendingActions` keeps both, and says every outcome through ``emit``
as ``Deliver``: an :class:`~qqproto.onebot.results.ActionResult` per action,
a :class:`~qqproto.onebot.results.StreamFrame` per frame of a streamed one,
a :class:`~qqproto.errors.ProtocolViolation` for an answer to nothing. Each
socket call carries a tag (the server's connection id), so the calls of one
socket end when it goes and the others live on.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from typing import Any

from ..actions import Deliver
from ..calls import Call, Calls, StrayAnswer
from ..errors import LocalProtocolError, ProtocolError, ProtocolViolation, RemoteProtocolError
from ..http import HttpResponse
from .actions import Action, Answer
from .http_api import HttpApi
from .results import ActionResult, StreamFrame

__all__ = ["PendingActions"]


class PendingActions:
    """Actions in flight on sockets and over HTTP (see the module docstring)."""

    def __init__(
        self, rng: random.Random, call_timeout: float, emit: Callable[[Any], None]
    ) -> None:
        self._calls: Calls[Action] = Calls(rng, max_attempts=1)
        self._timeout = call_timeout
        self._emit = emit
        self._sockets: dict[int, Hashable] = {}  # call id -> the socket tag it went on
        self._http: set[int] = set()  # request ids the driver has yet to answer

    def new(self, action: Action) -> Call[Action]:
        """A call for ``action``, with a fresh id; pending once sent."""
        return self._calls.new(action)

    def next_deadline(self) -> float | None:
        return self._calls.next_deadline()

    # -- out ---------------------------------------------------------------------------

    def on_socket(self, call: Call[Action], now: float, tag: Hashable = None) -> None:
        """``call`` went out as a frame on the socket ``tag``, echo ``str(call.id)``."""
        self._calls.sent(call, str(call.id), deadline=now + self._timeout)
        self._sockets[call.id] = tag

    def over_http(self, call: Call[Action], api: HttpApi, now: float) -> None:
        """Send ``call`` over ``api``: its request goes out through ``emit``."""
        request_id = self._calls.next_id()
        self._calls.sent(call, request_id, deadline=now + self._timeout)
        self._http.add(request_id)
        self._emit(api.request(request_id, call.what, str(call.id)))

    def settle(self, call: Call[Action], *, error: ProtocolError) -> None:
        """End ``call``, never sent or lost, with ``error``."""
        self._emit(Deliver(ActionResult(call.id, call.what, error=error)))

    # -- answers -----------------------------------------------------------------------

    def answered(self, answer: Answer, now: float, tag: Hashable = None) -> None:
        """An answer frame came on the socket ``tag``: end its call, or say it
        is stray. Only the socket a call went out on answers it: echoes are
        easy to guess, and one implementation must not settle another's."""
        echo = answer.echo
        key = str(echo) if type(echo) is int else echo  # a numeric echo whose text is ours
        if type(key) is not str or not key:
            self._stray(StrayAnswer(echo, "an answer with an echo we never send", late=False))
            return
        call_id = int(key) if key.isdigit() and len(key) < 20 else None
        if call_id in self._sockets and self._sockets[call_id] != tag:
            why = "an answer to an action sent on another connection"
            self._stray(StrayAnswer(echo, why, late=False))
            return
        final = not answer.continues
        try:
            call = self._calls.answer(key, final=final)
        except StrayAnswer as stray:  # an unknown echo, or a second answer
            self._stray(stray)
            return
        if final:
            self._sockets.pop(call.id, None)
            self._emit(Deliver(ActionResult(call.id, call.what, answer)))
        else:  # a stream goes on: each frame gives it call_timeout more (an upload is long)
            call.deadline = now + self._timeout
            self._emit(Deliver(StreamFrame(call.id, call.what, answer)))

    def http_answered(
        self, request_id: int, response: HttpResponse, api: HttpApi
    ) -> RemoteProtocolError | None:
        """The HTTP API answered ``request_id``: its call ends with the answer
        read, or with the error returned (a refused token among them, which
        the owner may act on too)."""
        call = self._take(request_id)
        if call is None:
            return None
        try:
            answer = api.read(response)
        except RemoteProtocolError as error:
            self.settle(call, error=error)
            return error
        self._emit(Deliver(ActionResult(call.id, call.what, answer)))
        return None

    def http_failed(self, request_id: int, reason: str) -> None:
        """``request_id`` got no answer (DNS, connect, a timeout): outcome unknown."""
        call = self._take(request_id)
        if call is not None:
            error = RemoteProtocolError(f"request failed: {reason}: the outcome is unknown")
            self.settle(call, error=error)

    def _take(self, request_id: int) -> Call[Action] | None:
        """The call an HTTP answer ends; None (and a violation) for one that
        ended already, its deadline first; an id never sent is the driver's
        mistake: :class:`LocalProtocolError`."""
        if request_id not in self._http:
            raise LocalProtocolError(
                "HTTP answer to no request",
                expected=f"one of {sorted(self._http)}",
                received=request_id,
            )
        self._http.discard(request_id)
        try:
            return self._calls.answer(request_id)
        except StrayAnswer as stray:  # its call ended first (a timeout, a close)
            self._stray(stray)
            return None

    # -- ends --------------------------------------------------------------------------

    def expire(self, now: float) -> None:
        """End the calls whose answer is overdue, each with its timeout."""
        for call, timeout in self._calls.expired(now):
            self._sockets.pop(call.id, None)
            self.settle(call, error=timeout)

    def socket_gone(self, why: str, tag: Hashable = None, *, every: bool = False) -> None:
        """The socket ``tag`` (any socket, with ``every``) went: its calls end
        with ``why``, their outcome unknown. Calls over HTTP live on."""

        def on_it(call: Call[Action]) -> bool:
            return call.id in self._sockets and (every or self._sockets[call.id] == tag)

        self._drop(why, on_it)

    def drop_all(self, why: str) -> None:
        """The endpoint is over: every call in flight ends with ``why``."""
        self._drop(why, None)

    def _drop(self, why: str, only: Callable[[Call[Action]], bool] | None) -> None:
        for call in self._calls.drop_all(why, only=only):
            self._sockets.pop(call.id, None)
            self.settle(call, error=RemoteProtocolError(why, expected="an answer", received=None))

    def _stray(self, error: RemoteProtocolError) -> None:
        self._emit(Deliver(ProtocolViolation(error)))

    def __repr__(self) -> str:
        return f"PendingActions(calls={self._calls!r}, over_http={len(self._http)})"
