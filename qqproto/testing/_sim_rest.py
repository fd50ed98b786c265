"""The simulator's REST side: routing, authentication, and the passive-reply rules.

One request in, one :class:`Reply` out; the connection (``_sim_http``) does
the bytes. The rules are the platform's (spec 1, 7, 8, 9, 13):

- the token endpoint answers wrong credentials with HTTP 200 and code 100016;
- every other call needs ``Authorization: QQBot <token>`` with a live token
  (else HTTP 401, code 11244); an ``X-Union-Appid`` other than the app's is
  400, 11251 (a missing one is accepted: the docs only require the token);
- a send with ``msg_id`` must name an inbound user message of the same
  conversation: an unknown id, another conversation's, or one the bot's own
  send returned is 40034024 (guild: 304026, the bot's own 50045); past the
  scene's window 40034005 (guild 304027); a repeated ``(msg_id, msg_seq)``
  40054005; past the budget 40034128. ``event_id`` likewise with 40034025
  (unknown), 40034026 (expired), 40034027 (an event that takes no reply);
- malformed bodies the spec gives no code for get HTTP 400 with
  :data:`BAD_REQUEST` (40000), a simulator code.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from ..qq.scenes import Scene
from ._sim_common import (
    SimRejected,
    SimSent,
    guild_message_id,
    hex_id,
    pick,
    rfc3339,
    robot_id,
)
from ._sim_state import Inbound, Own, SimState

__all__ = ["BAD_REQUEST", "Reply", "handle", "remember"]

#: The code of a malformed request the spec has no code for (a simulator code).
BAD_REQUEST = 40000
_V2 = (Scene.GROUP, Scene.C2C)
_PREFIX = {"v2/groups": Scene.GROUP, "v2/users": Scene.C2C, "channels": Scene.GUILD_CHANNEL}
_PREFIX["dms"] = Scene.GUILD_DM
_CONVERSATION = re.compile(
    r"/(v2/groups|v2/users|channels|dms)/([^/?]+)/(messages|files)(?:/([^/?]+))?"
)
_BODY_KEYS = {2: "markdown", 3: "ark", 4: "embed", 7: "media"}


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    payload: Any = None  # JSON; None: no body


class Refused(Exception):
    """Raised inside a handler: the call is refused with this status and code."""

    def __init__(self, status: int, code: int, message: str, err_code: int | None = None):
        self.status, self.code, self.message = status, code, message
        self.err_code = code if err_code is None else err_code
        super().__init__(message)


def handle(
    state: SimState, method: str, target: str, headers: dict[str, str], body: bytes, now: float
) -> Reply:
    """Answer one request; refusals are recorded in ``state.rejected``."""
    path = target.split("?", 1)[0]
    try:
        if path == "/app/getAppAccessToken":
            return _token(state, method, body, now)
        _authenticate(state, headers, now)
        return _route(state, method, path, headers, body, now)
    except Refused as refused:
        try:
            request: object = json.loads(body) if body else None
        except (ValueError, RecursionError):
            request = body[:200]
        state.rejected.append(
            SimRejected(now, method, path, refused.status, refused.code, refused.message, request)
        )
        payload = {
            "message": refused.message,
            "code": refused.code,
            "err_code": refused.err_code,
            "trace_id": hex_id(state.rng),
        }
        return Reply(refused.status, payload)


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise Refused(400, BAD_REQUEST, "request body is not JSON") from None
    if not isinstance(data, dict):
        raise Refused(400, BAD_REQUEST, "request body is not a JSON object")
    return data


def _token(state: SimState, method: str, body: bytes, now: float) -> Reply:
    if method != "POST":
        raise Refused(405, BAD_REQUEST, "method not allowed")
    data = _json_body(body)
    config = state.config
    if data.get("appId") != config.app_id or data.get("clientSecret") != config.secret:
        state.token_requests.append((now, False))
        return Reply(200, {"code": 100016, "message": "invalid appid or secret"})
    state.token_requests.append((now, True))
    token, expires_at = state.issue_token(now)
    return Reply(200, {"access_token": token, "expires_in": str(int(expires_at - now))})


def _authenticate(state: SimState, headers: dict[str, str], now: float) -> None:
    if not state.token_ok(headers.get("authorization"), now):
        raise Refused(401, 11244, "token not exist or expire")
    appid = headers.get("x-union-appid")
    if appid is not None and appid != state.config.app_id:
        raise Refused(400, 11251, "appid is wrong")


def _route(
    state: SimState, method: str, path: str, headers: dict[str, str], body: bytes, now: float
) -> Reply:
    config = state.config
    if path in ("/gateway", "/gateway/bot"):
        if method != "GET":
            raise Refused(405, BAD_REQUEST, "method not allowed")
        url = f"ws://{headers.get('host', '127.0.0.1')}/websocket"
        if path == "/gateway":
            return Reply(200, {"url": url})
        limit = {
            "total": config.session_start_total,
            "remaining": state.session_starts,
            "reset_after": config.session_start_reset_after_ms,
            "max_concurrency": config.max_concurrency,
        }
        return Reply(200, {"url": url, "shards": config.shards, "session_start_limit": limit})
    if path == "/users/@me" and method == "GET":
        return Reply(
            200,
            {
                "id": config.bot_id,
                "username": config.bot_name,
                "avatar": "",
                "union_openid": "",
                "union_user_account": "",
            },
        )
    if path.startswith("/interactions/") and path.count("/") == 2:
        if method != "PUT":
            raise Refused(405, BAD_REQUEST, "method not allowed")
        return _ack_interaction(state, unquote(path[len("/interactions/") :]), body, now)
    match = _CONVERSATION.fullmatch(path)
    if match is None:
        raise Refused(404, BAD_REQUEST, f"no such API: {method} {path}")
    scene, target = _PREFIX[match[1]], unquote(match[2])
    if match[3] == "files" and match[4] is None and scene in _V2 and method == "POST":
        return _upload(state, scene, target, _json_body(body), now)
    if match[3] == "messages" and match[4] is None and method == "POST":
        return _send(state, scene, target, _json_body(body), now)
    if match[3] == "messages" and match[4] is not None and method == "DELETE":
        return _recall(state, scene, target, unquote(match[4]), now)
    raise Refused(
        405 if match[3] == "messages" else 404, BAD_REQUEST, f"no such API: {method} {path}"
    )


#: Message types whose ``d.id`` a passive reply may name as ``msg_id``, and their scene.
_MESSAGE_SCENES = {
    "GROUP_AT_MESSAGE_CREATE": (Scene.GROUP, "group_openid"),
    "GROUP_MESSAGE_CREATE": (Scene.GROUP, "group_openid"),
    "C2C_MESSAGE_CREATE": (Scene.C2C, "author.user_openid"),
    "AT_MESSAGE_CREATE": (Scene.GUILD_CHANNEL, "channel_id"),
    "MESSAGE_CREATE": (Scene.GUILD_CHANNEL, "channel_id"),
    "DIRECT_MESSAGE_CREATE": (Scene.GUILD_DM, "guild_id"),
}
#: Events whose envelope id a passive reply may name as ``event_id`` (spec 7.2).
_EVENT_SCENES = {
    "GROUP_ADD_ROBOT": (Scene.GROUP, "group_openid"),
    "GROUP_MSG_RECEIVE": (Scene.GROUP, "group_openid"),
    "FRIEND_ADD": (Scene.C2C, "openid"),
    "C2C_MSG_RECEIVE": (Scene.C2C, "openid"),
}
_INTERACTION_SCENES = {
    0: (Scene.GUILD_CHANNEL, "channel_id"),
    1: (Scene.GROUP, "group_openid"),
    2: (Scene.C2C, "user_openid"),
}


def _field(d: Any, dotted: str) -> str | None:
    for key in dotted.split("."):
        d = d.get(key) if isinstance(d, dict) else None
    return d if isinstance(d, str) and d else None


def remember(state: SimState, t: str, d: Any, eid: str, now: float) -> None:
    """Note the ids a passive reply may name: a message's ``d.id``, an event's envelope id.

    The platform may deliver one message twice (same ``d.id``, a new envelope;
    spec 14, quirk 7). The first record stays: a ``(msg_id, msg_seq)`` pair is
    unique for good, and the window and the budget count from the first delivery.
    """
    if t in _MESSAGE_SCENES and isinstance(d, dict) and isinstance(d.get("id"), str):
        scene, path = _MESSAGE_SCENES[t]
        if d["id"] not in state.inbound:
            state.inbound[d["id"]] = Inbound(scene, _field(d, path), now, "msg_id")
    where = _EVENT_SCENES.get(t)
    if t == "INTERACTION_CREATE" and isinstance(d, dict):
        where = _INTERACTION_SCENES.get(d.get("chat_type", -1))
        if isinstance(d.get("id"), str):
            state.interactions.add(d["id"])
    if eid in state.inbound:  # the same envelope again (a retry): the first record stays
        return
    if where is not None:
        state.inbound[eid] = Inbound(where[0], _field(d, where[1]), now, "event_id")
    else:
        state.inbound[eid] = Inbound(None, None, now, "event_id", replyable=False)


# -- sending, and the passive-reply rules -----------------------------------------------------


def _send(state: SimState, scene: Scene, target: str, body: dict[str, Any], now: float) -> Reply:
    msg_type = _check_body(state, scene, body, now)
    msg_id, event_id, seq = body.get("msg_id"), body.get("event_id"), body.get("msg_seq", 1)
    if scene not in _V2:
        seq = None
    elif type(seq) is not int or seq < 1:
        raise Refused(400, BAD_REQUEST, "msg_seq must be an integer >= 1")
    if msg_id not in (None, "") or event_id not in (None, ""):
        _check_reply(state, scene, target, msg_id, event_id, seq, now)
    elif not state.config.proactive:
        raise Refused(400, 40034105, "主动消息失败, 无权限")
    return _accept(state, scene, target, body, msg_type, now)


def _accept(
    state: SimState,
    scene: Scene,
    target: str,
    body: dict[str, Any],
    msg_type: int | None,
    now: float,
) -> Reply:
    rng = state.rng
    msg_id, event_id = body.get("msg_id") or None, body.get("event_id") or None
    seq = body.get("msg_seq", 1) if scene in _V2 and (msg_id or event_id) else None
    message_id = robot_id(rng) if scene in _V2 else guild_message_id(rng)
    state.own[message_id] = Own(scene, target, now)
    content = body.get("content") if isinstance(body.get("content"), str) else None
    state.sent.append(
        SimSent(now, scene, target, message_id, content, msg_id, event_id, seq, msg_type, body)
    )
    stamp = rfc3339(state.config.epoch + now)
    if scene in _V2:
        ref = f"REFIDX_{pick(rng, '0123456789ABCDEFabcdef', 24)}"
        return Reply(200, {"id": message_id, "timestamp": stamp, "ext_info": {"ref_idx": ref}})
    config = state.config
    return Reply(
        200,
        {
            "id": message_id,
            "channel_id": target if scene is Scene.GUILD_CHANNEL else "",
            "guild_id": target if scene is Scene.GUILD_DM else "",
            "content": content or "",
            "timestamp": stamp,
            "author": {"id": config.bot_id, "username": config.bot_name, "bot": True},
        },
    )


def _check_body(state: SimState, scene: Scene, body: dict[str, Any], now: float) -> int | None:
    content = body.get("content")
    if content is not None and not isinstance(content, str):
        raise Refused(400, BAD_REQUEST, "content must be a string")
    for key in ("msg_id", "event_id"):
        if body.get(key) is not None and not isinstance(body.get(key), str):
            raise Refused(400, BAD_REQUEST, f"{key} must be a string")
    if scene not in _V2:
        if not any(body.get(key) for key in ("content", "embed", "ark", "image", "markdown")):
            raise Refused(400, 50006, "message is empty")
        return None
    msg_type = body.get("msg_type")
    if type(msg_type) is not int or msg_type not in (0, 1, 2, 3, 4, 7):
        raise Refused(400, BAD_REQUEST, "msg_type must be 0, 1, 2, 3, 4 or 7")
    if msg_type == 0 and not content:
        raise Refused(400, 50006, "message is empty")
    needed = _BODY_KEYS.get(msg_type)
    if needed is not None and not isinstance(body.get(needed), dict):
        raise Refused(400, BAD_REQUEST, f"msg_type {msg_type} needs a {needed} object")
    if msg_type == 7:
        if not content:
            raise Refused(400, 50006, "a media message needs content (send ' ')")
        info = body["media"].get("file_info")
        media = state.media.get(info) if isinstance(info, str) else None
        if media is None or media[0] is not scene or now > media[1]:
            raise Refused(400, BAD_REQUEST, "media.file_info unknown, expired or of another kind")
    return msg_type


def _check_reply(
    state: SimState,
    scene: Scene,
    target: str,
    msg_id: Any,
    event_id: Any,
    seq: int | None,
    now: float,
) -> None:
    v2 = scene in _V2
    config = state.config
    if msg_id not in (None, ""):
        kind = "msg_id"
        inbound = state.inbound.get(msg_id)
        if (
            inbound is None
            or inbound.kind != kind
            or (inbound.scene, inbound.target) != (scene, target)
        ):
            if not v2 and msg_id in state.own:
                raise Refused(400, 50045, "cannot reply to the bot's own message")
            raise Refused(400, 40034024 if v2 else 304026, "请求参数msg_id无效或越权")
        expired = (40034005, "reply msg_id expired") if v2 else (304027, "message expired")
    else:
        kind = "event_id"
        inbound = state.inbound.get(event_id)
        if inbound is None or inbound.kind != kind:
            raise Refused(400, 40034025, "event_id invalid")
        if not inbound.replyable:
            raise Refused(400, 40034027, "this event does not support replies")
        if (inbound.scene, inbound.target) != (scene, target):
            raise Refused(400, 40034025, "event_id invalid (another conversation)")
        expired = (40034026, "event_id expired")
    window, budget = {
        Scene.GROUP: (config.group_reply_window, config.group_reply_budget),
        Scene.C2C: (config.c2c_reply_window, config.c2c_reply_budget),
    }.get(scene, (config.guild_reply_window, None))
    if now - inbound.at > window:
        raise Refused(400, *expired)
    if seq is not None and seq in inbound.seqs:
        raise Refused(400, 40054005, "消息被去重，请检查请求msgseq")
    if budget is not None and inbound.replies >= budget:
        raise Refused(400, 40034128, f"passive reply limit for this {kind} reached")
    inbound.replies += 1
    if seq is not None:
        inbound.seqs.add(seq)


# -- media, recall, interactions ------------------------------------------------------------


def _upload(state: SimState, scene: Scene, target: str, body: dict[str, Any], now: float) -> Reply:
    file_type = body.get("file_type")
    if type(file_type) is not int or file_type not in (1, 2, 3, 4):
        raise Refused(400, BAD_REQUEST, "file_type must be 1, 2, 3 or 4")
    url, data = body.get("url"), body.get("file_data")
    if (url is None) == (data is None):
        raise Refused(400, BAD_REQUEST, "give exactly one of url and file_data")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise Refused(400, 850026, "富媒体文件下载失败", err_code=40034001)
    if data is not None:
        try:
            ok = isinstance(data, str) and bool(base64.b64decode(data, validate=True))
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise Refused(400, 850026, "富媒体文件下载失败", err_code=40034001)
    send = body.get("srv_send_msg") is True
    if send and not state.config.proactive:
        raise Refused(400, 40034105, "主动消息失败, 无权限")
    rng, ttl = state.rng, 3600
    info = pick(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 64)
    state.media[info] = (scene, now + ttl)
    reply: dict[str, Any] = {"file_uuid": hex_id(rng, 32), "file_info": info, "ttl": ttl}
    if send:
        sent = _accept(state, scene, target, {"msg_type": 7, "media": {"file_info": info}}, 7, now)
        reply["id"] = sent.payload["id"]
    return Reply(200, reply)


def _recall(state: SimState, scene: Scene, target: str, message_id: str, now: float) -> Reply:
    own = state.own.get(message_id)
    if own is None or own.recalled or (own.scene, own.target) != (scene, target):
        raise Refused(404, BAD_REQUEST, "no such message of this bot here")
    if scene in _V2 and now - own.at > state.config.recall_window:
        raise Refused(400, BAD_REQUEST, "too late to recall (2 minutes)")
    own.recalled = True
    state.recalled.append((now, scene, target, message_id))
    return Reply(204)


def _ack_interaction(state: SimState, interaction_id: str, body: bytes, now: float) -> Reply:
    data = _json_body(body)
    code = data.get("code")
    if type(code) is not int or not 0 <= code <= 5:
        raise Refused(400, BAD_REQUEST, "code must be 0 to 5")
    if interaction_id not in state.interactions:
        raise Refused(404, BAD_REQUEST, "no such interaction")
    state.interaction_acks.append((now, interaction_id, code))
    return Reply(204)
