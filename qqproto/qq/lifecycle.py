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

Rule 1 (after h11): everything that changes the lifecycle is in the table
below. The gateway fires an input only for lifecycle events, a handful per
connection; a heartbeat ACK or a dispatch never fires one.

Rule 2: the table is data. The ``transitions`` machine is compiled from it,
the Mermaid diagram in ``docs/gateway-states.md`` is generated from it, and
a test checks both against it.

The machine is built once per process and shared. Gateway objects do not
register with it: each owns a tiny private model (:class:`Lifecycle`) and fires
triggers on it through the machine's events, so the machine never holds a
reference to a gateway and there is nothing to unregister.
"""

from __future__ import annotations

from enum import Enum
from typing import Final

from transitions import Machine, MachineError

from ..errors import LocalProtocolError

__all__ = ["TABLE", "GatewayState", "Input", "Lifecycle", "allowed", "next_state"]


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
    INTENTS_REFUSED = "intents_refused"  # op 9 in answer to Identify
    FATAL = "fatal"  # a fatal close code
    GAVE_UP = "gave_up"  # the attempt cap is reached
    CLOSE = "close"  # the application closed the gateway


S = GatewayState
LIVE: Final = (S.CONNECTING, S.IDENTIFY, S.READY, S.RESUMING)

#: (input, sources, destination). A destination equal to the source is an
#: internal transition: the state stays and no StateChanged is emitted.
TABLE: Final[tuple[tuple[Input, tuple[GatewayState, ...], GatewayState | None], ...]] = (
    (Input.HELLO, (S.CONNECTING,), S.IDENTIFY),
    (Input.HELLO, (S.RESUMING,), None),  # Resume goes out; the state stays
    # From RESUMING: a server that answers a Resume with a new session.
    (Input.READY, (S.IDENTIFY, S.RESUMING), S.READY),
    (Input.RESUMED, (S.RESUMING,), S.READY),
    (Input.LINK_LOST, (S.READY, S.RESUMING), S.RESUMING),
    (Input.LINK_LOST, (S.CONNECTING, S.IDENTIFY), S.CONNECTING),
    (Input.SESSION_LOST, LIVE, S.CONNECTING),
    (Input.INTENTS_REFUSED, (S.IDENTIFY,), S.FAILED),
    (Input.FATAL, LIVE, S.FAILED),
    # A connection in READY is a good one, so it never spends the budget.
    (Input.GAVE_UP, (S.CONNECTING, S.IDENTIFY, S.RESUMING), S.FAILED),
    (Input.CLOSE, LIVE, S.CLOSED),
)

_ALLOWED: Final[dict[tuple[GatewayState, Input], GatewayState]] = {
    (source, trigger): (dest or source) for trigger, sources, dest in TABLE for source in sources
}


def _compile() -> Machine:
    rows = []
    for trigger, sources, dest in TABLE:
        for source in sources:
            # dest=None makes transitions run an internal transition.
            rows.append({"trigger": trigger.value, "source": source, "dest": dest})
    return Machine(
        model=None,
        states=GatewayState,
        transitions=rows,
        initial=None,
        auto_transitions=False,
        send_event=False,
    )


MACHINE: Final = _compile()


def allowed(state: GatewayState, trigger: Input) -> bool:
    """Whether the table has a row for ``trigger`` in ``state``."""
    return (state, trigger) in _ALLOWED


def next_state(state: GatewayState, trigger: Input) -> GatewayState:
    """The table's answer, without running the machine (for tests and docs)."""
    try:
        return _ALLOWED[(state, trigger)]
    except KeyError:
        raise _no_transition(state, trigger) from None


def _no_transition(state: GatewayState, trigger: Input) -> LocalProtocolError:
    return LocalProtocolError(
        f"no transition for {trigger.value!r} in {state.name}",
        expected=f"one of {sorted(i.value for s, i in _ALLOWED if s is state)}",
        received=trigger.value,
    )


class Lifecycle:
    """The private model the shared machine moves. Holds nothing but a state."""

    __slots__ = ("state",)

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    def fire(self, trigger: Input) -> GatewayState:
        """Run ``trigger`` through the machine; return the new state.

        A pair the table does not list raises :class:`LocalProtocolError` and
        leaves the state as it was.
        """
        try:
            MACHINE.events[trigger.value].trigger(self)
        except MachineError:
            raise _no_transition(self.state, trigger) from None
        return self.state
