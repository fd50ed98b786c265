"""Logging in: what goes out after Hello, and what may answer it.

After Hello a connection sends Identify (no session is held) or Resume (one
is), once a usable access token is at hand. READY answers an Identify, and
RESUMED a Resume; both must come in turn, as the lifecycle table and the
login step sent on this connection say. A READY must also carry a session id.
This module holds those rules; the gateway keeps the step and acts on them.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, NamedTuple

from ..errors import RemoteProtocolError
from .config import GatewayConfig
from .lifecycle import TABLE, GatewayState, Input
from .payloads import encode_identify, encode_resume

__all__ = ["Login", "ReadyFields", "login_frame", "out_of_turn", "read_ready", "ready_to_resume"]


class Login(Enum):
    """How far this connection's login got."""

    NONE = "none"
    PENDING = "waiting for a token"
    IDENTIFY = "identify sent"
    RESUME = "resume sent"


#: What READY answers, in the states the lifecycle table lets it come in.
_READY_ANSWERS = {GatewayState.IDENTIFY: Login.IDENTIFY, GatewayState.RESUMING: Login.RESUME}


class ReadyFields(NamedTuple):
    """What a READY's ``d`` gives the session."""

    session_id: str
    user: Any  # d.user as it came: the bot's own user object
    bot_id: str | None  # user.id, when it is a non-empty string


def login_frame(
    state: GatewayState,
    token: str,
    session_id: str | None,
    seq: int | None,
    config: GatewayConfig,
) -> tuple[str, Login]:
    """The frame that logs in (Resume when a session is held), and the step it is."""
    if state is GatewayState.RESUMING and session_id is not None:
        return encode_resume(token, session_id, seq), Login.RESUME
    properties = dict(config.properties or {})
    return encode_identify(token, config.intents, config.shard, properties), Login.IDENTIFY


def out_of_turn(t: str, login: Login, state: GatewayState) -> RemoteProtocolError | None:
    """Why READY or RESUMED (``t``) may not come now, or None when it may."""
    if t == "READY":
        if login is _READY_ANSWERS.get(state) and TABLE.allowed(state, Input.READY):
            return None
        expected = "READY after Identify (or Resume)"
    else:
        if login is Login.RESUME and TABLE.allowed(state, Input.RESUMED):
            return None
        expected = "RESUMED after Resume"
    return RemoteProtocolError(f"{t} out of turn", expected=expected, received=state.name)


def ready_to_resume(session_id: str | None, seq: int | None) -> RemoteProtocolError:
    """What a READY in answer to a Resume costs.

    Not what the spec says a server does, but some do: the READY starts a
    new session, whose events then come (numbered anew). What the old session
    sent after our seq is lost, and said so.
    """
    return RemoteProtocolError(
        "READY in answer to Resume: a new session starts, and the events of"
        f" session {session_id} after seq {seq} are not replayed",
        expected="RESUMED after Resume",
        received="READY",
    )


def read_ready(data: Any) -> ReadyFields | RemoteProtocolError:
    """What READY's ``d`` gives the session, or why it starts no session.

    The bot id (``user.id``) is how guild messages mention the bot; their
    ``text`` loses that mention. It is None when READY does not carry one.
    """
    session_id = data.get("session_id") if type(data) is dict else None
    if type(session_id) is not str or not session_id:
        return RemoteProtocolError(
            "READY without a session id", expected="d.session_id", received=data
        )
    user = data.get("user")
    bot_id = user.get("id") if type(user) is dict else None
    return ReadyFields(session_id, user, bot_id if type(bot_id) is str and bot_id else None)
