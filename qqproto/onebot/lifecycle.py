"""A OneBot connection's lifecycle, as a table (:mod:`qqproto.machine`).

``CONNECTING``
    No WebSocket is open: one is being dialled, or the next attempt waits
    out its backoff.
``CONNECTED``
    The upgrade was accepted: events flow and actions go out.
``FAILED``
    Terminal: the access token was refused (HTTP 401 or 403 at the upgrade,
    or ``retcode: 1403`` then a close), or the attempts a bounded
    configuration allows are spent.
``CLOSED``
    Terminal: the application closed the connection.

A lost connection is retried, forever unless configured otherwise; an
authentication failure never is: a wrong token stays wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from ..machine import Guard, Row, Table

__all__ = ["TABLE", "Attempts", "OneBotInput", "OneBotState"]


class OneBotState(Enum):
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    FAILED = "FAILED"
    CLOSED = "CLOSED"


class OneBotInput(Enum):
    OPENED = "opened"  # the upgrade was accepted
    LOST = "lost"  # the connection ended, or an attempt failed: try again
    REFUSED = "refused"  # the access token was refused: final
    CLOSE = "close"  # the application closed the connection


@dataclass(slots=True)
class Attempts:
    """What the table's condition reads."""

    #: The attempt that just failed was the last a bounded budget allows.
    spent: bool = False


SPENT: Final[Guard[Attempts]] = Guard("attempts spent", lambda a: a.spent)

S = OneBotState
_LIVE: Final = (S.CONNECTING, S.CONNECTED)

#: The connection's lifecycle. For one input in one state the first row whose
#: condition holds wins; a destination of None keeps the state.
TABLE: Final[Table[OneBotState, OneBotInput, Attempts]] = Table(
    "onebot",
    OneBotState,
    (
        Row(OneBotInput.OPENED, (S.CONNECTING,), S.CONNECTED),
        Row(OneBotInput.LOST, _LIVE, S.FAILED, SPENT),
        Row(OneBotInput.LOST, (S.CONNECTED,), S.CONNECTING),
        Row(OneBotInput.LOST, (S.CONNECTING,), None),  # the next attempt, after its wait
        Row(OneBotInput.REFUSED, _LIVE, S.FAILED),
        Row(OneBotInput.CLOSE, _LIVE, S.CLOSED),
    ),
    starts={S.CONNECTING: ""},
)
