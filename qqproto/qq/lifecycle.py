"""The gateway's lifecycle: its states, its inputs, and the table between them.

Theory of operation
-------------------

A gateway session lives through a handful of states:

``CONNECTING``
    No session is held. The object is getting a transport and waiting for
    Hello; Hello moves it to ``IDENTIFY``.
``IDENTIFY``
    Hello came; Identify is sent (as soon as a usable token is at hand) and
    READY is awaited.
``READY``
    The session is live: dispatches flow, heartbeats run.
``RESUMING``
    A session is held but its link is gone, or a Resume is out and RESUMED is
    awaited. The object reconnects and resumes; replayed dispatches arrive here.
    A server that answers the Resume with READY starts a new session instead.
``FAILED``
    Terminal: a fatal close code, intents refused, or the attempt cap.
``CLOSED``
    Terminal: the application closed the gateway.

Everything that changes the lifecycle is a row of :data:`TABLE` below, built
with :mod:`qqproto.machine`. What each way a connection ends means (a close
code, op 9) is here too, as the :class:`Loss` it is to the table. The gateway
fires an input only for lifecycle events, a handful per connection; a
heartbeat ACK or a dispatch never fires one. The choice between resuming,
starting a new session and giving up is made by the rows' conditions, which
read :class:`Counters`, kept here beside the table; the gateway only counts,
and acts on the row that fired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from ..machine import Guard, Lifecycle, Row, Table
from .payloads import CloseAction, close_policy

__all__ = [
    "MAX_FAILED_RESUMES",
    "RATE_LIMITED_PAUSE",
    "TABLE",
    "Counters",
    "GatewayLifecycle",
    "GatewayState",
    "Input",
    "Loss",
    "explain",
    "loss_of_close",
    "loss_of_invalid_session",
]


class GatewayState(Enum):
    CONNECTING = "CONNECTING"
    IDENTIFY = "IDENTIFY"
    READY = "READY"
    RESUMING = "RESUMING"
    FAILED = "FAILED"
    CLOSED = "CLOSED"

    def __repr__(self) -> str:
        return f"GatewayState.{self.name}"


class Input(Enum):
    """Lifecycle inputs. Each names what happened, not what to do."""

    HELLO = "hello"  # op 10 on a fresh link
    READY = "ready"  # the READY dispatch
    RESUMED = "resumed"  # the RESUMED dispatch
    LINK_LOST = "link_lost"  # the link is gone but the session (if any) may be resumed
    SESSION_LOST = "session_lost"  # the session cannot be resumed: start a new one
    TOKEN_REFUSED = "token_refused"  # close 4004: the token was refused
    INTENTS_REFUSED = "intents_refused"  # op 9 in answer to Identify
    FATAL = "fatal"  # a fatal close code
    CLOSE = "close"  # the application closed the gateway


#: Consecutive resumes that may fail before we start a new session instead.
MAX_FAILED_RESUMES = 3


@dataclass(slots=True)
class Counters:
    """What the conditions of :data:`TABLE` read. The gateway keeps them."""

    #: Resumes in a row that never got RESUMED.
    failed_resumes: int = 0
    #: Tokens in a row refused with close 4004.
    refused_tokens: int = 0
    #: A session is held (READY gave an id, or a saved one was restored).
    has_session: bool = False
    #: The connection that just ended spent the last attempt of the budget.
    attempts_spent: bool = False


#: The attempt budget is spent (a connection that never reached READY or
#: RESUMED is one failed attempt; a good one never spends).
SPENT: Final[Guard[Counters]] = Guard("attempts spent", lambda c: c.attempts_spent)
#: Resuming keeps failing: the session is likely gone on the server's side.
RESUMES_FAILED: Final[Guard[Counters]] = Guard(
    f"{MAX_FAILED_RESUMES} resumes failed",
    lambda c: c.has_session and c.failed_resumes >= MAX_FAILED_RESUMES,
)
#: A fresh token was refused too: it is not the token's age.
REFUSED_TWICE: Final[Guard[Counters]] = Guard("token refused twice", lambda c: c.refused_tokens > 1)

S = GatewayState
LIVE: Final = (S.CONNECTING, S.IDENTIFY, S.READY, S.RESUMING)
#: The states a connection that ends may not have been good in: it spends an attempt.
TRYING: Final = (S.CONNECTING, S.IDENTIFY, S.RESUMING)

#: The gateway's lifecycle. For one input in one state the first row whose
#: condition holds wins; a destination of None keeps the state.
TABLE: Final[Table[GatewayState, Input, Counters]] = Table(
    "gateway",
    GatewayState,
    (
        Row(Input.HELLO, (S.CONNECTING,), S.IDENTIFY),
        Row(Input.HELLO, (S.RESUMING,), None),  # Resume goes out; the state stays
        # From RESUMING: a server that answers a Resume with a new session.
        Row(Input.READY, (S.IDENTIFY, S.RESUMING), S.READY),
        Row(Input.RESUMED, (S.RESUMING,), S.READY),
        # Losses. A failed attempt may be the last the budget allows.
        Row(Input.LINK_LOST, TRYING, S.FAILED, SPENT),
        Row(Input.LINK_LOST, (S.RESUMING,), S.CONNECTING, RESUMES_FAILED),
        Row(Input.LINK_LOST, (S.READY, S.RESUMING), S.RESUMING),
        Row(Input.LINK_LOST, (S.CONNECTING, S.IDENTIFY), S.CONNECTING),
        Row(Input.SESSION_LOST, TRYING, S.FAILED, SPENT),
        Row(Input.SESSION_LOST, LIVE, S.CONNECTING),
        # A refused token is fetched again once, and the session resumed.
        Row(Input.TOKEN_REFUSED, LIVE, S.FAILED, REFUSED_TWICE),
        Row(Input.TOKEN_REFUSED, TRYING, S.FAILED, SPENT),
        Row(Input.TOKEN_REFUSED, (S.RESUMING,), S.CONNECTING, RESUMES_FAILED),
        Row(Input.TOKEN_REFUSED, (S.READY, S.RESUMING), S.RESUMING),
        Row(Input.TOKEN_REFUSED, (S.CONNECTING, S.IDENTIFY), S.CONNECTING),
        Row(Input.INTENTS_REFUSED, (S.IDENTIFY,), S.FAILED),
        Row(Input.FATAL, LIVE, S.FAILED),
        Row(Input.CLOSE, LIVE, S.CLOSED),
    ),
    starts={S.CONNECTING: "", S.RESUMING: "built with a saved session"},
)

GatewayLifecycle = Lifecycle[GatewayState, Input, Counters]


def explain(
    row: Row[GatewayState, Input, Counters], reason: str, counters: Counters, failures: int
) -> str:
    """``reason`` for a loss, with what the condition that picked ``row`` adds.

    ``failures`` is how many attempts in a row failed, the last included.
    """
    if row.when is SPENT:
        return f"gave up after {failures} failed attempts; last: {reason}"
    if row.when is RESUMES_FAILED:
        return f"{reason}; {counters.failed_resumes} resumes failed, starting a new session"
    if row.when is REFUSED_TWICE:
        return f"{reason} (again, with a fresh token)"
    return reason


#: The pause after close 4008 ("sending payloads too fast").
RATE_LIMITED_PAUSE = 60.0


@dataclass(frozen=True, slots=True)
class Loss:
    """Why a connection ended: the input it is to :data:`TABLE`, and what it asks for."""

    input: Input
    reason: str
    pause: float = 0.0  # the least wait before the next connection
    refresh_token: bool = False


def loss_of_close(code: int, text: str, new_session_pause: Callable[[], float]) -> Loss:
    """What the server's close ``code`` (with its ``text``) asks for (spec 4.1)."""
    policy = close_policy(code)
    reason = policy.describe() + (f": {text}" if text else "")
    action = policy.action
    if action is CloseAction.RESUME:
        return Loss(Input.LINK_LOST, reason)
    if action is CloseAction.RESUME_LATER:
        return Loss(Input.LINK_LOST, reason, pause=RATE_LIMITED_PAUSE)
    if action is CloseAction.REFRESH_TOKEN:
        return Loss(Input.TOKEN_REFUSED, reason, refresh_token=True)
    if action is CloseAction.IDENTIFY:
        return Loss(Input.SESSION_LOST, reason, pause=new_session_pause())
    return Loss(Input.FATAL, reason)


def loss_of_invalid_session(
    resumable: object, identifying: bool, intents: int, new_session_pause: Callable[[], float]
) -> Loss:
    """What op 9 asks for: ``resumable`` is its ``d``, ``identifying`` whether
    our Identify is what it answers."""
    if identifying:
        # Real servers refuse an Identify this way for intents the bot may
        # not use (spec 4.2).
        why = f"invalid session (op 9) in answer to Identify: intents {intents} refused"
        return Loss(Input.INTENTS_REFUSED, why)
    if resumable is True:  # exactly true: 1, "true" and {} are not
        return Loss(Input.LINK_LOST, "invalid session (op 9), resumable")
    return Loss(
        Input.SESSION_LOST, "invalid session (op 9)", pause=new_session_pause(), refresh_token=True
    )
