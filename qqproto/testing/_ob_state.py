"""The OneBot simulator's shared state: its configuration, the chats it knows,
the messages it holds, what the bot did, and how it answers an action.

Every part of the simulator (the connections in ``_ob_conn``, the public
object in ``onebot_simulator``) works on one :class:`ObState`; the parts
never import the simulator. Wire shapes follow the OneBot notes (spec 2, 3
and 7): v11 ids are numbers, v12 ids strings; v11 answers carry
``status``/``retcode``/``data`` (NapCat adds ``message``, ``wording`` and
``stream``); v12 answers carry all four of ``status``, ``retcode``, ``data``
and ``message``.
"""

from __future__ import annotations

import base64
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from ..errors import ConfigError, RemoteProtocolError
from ..onebot import cq
from ..onebot.segments import (
    Segment,
    plain_text,
    segment_to_v11,
    segment_to_v12,
    segments_from_json,
)

__all__ = ["NO_ECHO", "ObState", "OneBotSimConfig", "SimCall", "SimMessage"]

#: The echo of a request that carried none.
NO_ECHO: Final = object()
#: An echo the numeric-echo quirk turns into a number (ASCII digits, int64-sized).
_DECIMAL: Final = re.compile(r"[0-9]{1,18}\Z")


@dataclass(frozen=True)
class OneBotSimConfig:
    """How the simulated implementation behaves; :meth:`napcat` and
    :meth:`lagrange` are the two common ones, with their quirks on."""

    version: Literal[11, 12] = 11
    self_id: int = 2_000_000_001
    #: The token the bot must offer (``Authorization: Bearer``, or the
    #: ``access_token`` query); None lets everyone in.
    access_token: str | None = None
    #: Seconds between heartbeats (sent in ms, as the spec says); None: off.
    heartbeat_interval: float | None = 30.0
    #: The first heartbeat comes right after the connect event (Lagrange), not
    #: one interval later.
    heartbeat_at_once: bool = False
    #: How v11 events carry ``message``: a segment array, or a CQ string.
    message_format: Literal["array", "string"] = "array"
    #: A refused token: ``"http"`` answers the upgrade 401 (no token) or 403
    #: (a wrong one); ``"frame"`` accepts it, sends a ``retcode: 1403`` frame and
    #: closes (NapCat, LLOneBot).
    auth_failure: Literal["http", "frame"] = "http"
    #: The status of an upgrade without a token (Lagrange answers 403 to both).
    missing_token_status: int = 401
    #: A non-empty ``access_token`` query wins over the header (NapCat); else
    #: the header is read first and the query only without one (spec 1.6).
    query_first: bool = False
    #: A decimal echo comes back as a JSON number.
    numeric_echo: bool = False
    #: NapCat: ``stream`` on every answer, ``message``/``wording`` beside it,
    #: ``""`` for a missing echo, ``upload_file_stream`` answered in several frames,
    #: and the extra id fields on message events.
    napcat: bool = False
    #: Message ids may be negative (Lagrange, LLOneBot); else positive int32.
    signed_ids: bool = False
    #: The implementation's name (v12 ``impl``, ``X-Impl``).
    impl: str = "qqproto-sim"
    #: The wall time (Unix seconds) that the fake clock's 0 stands for: event
    #: ``time`` fields are ``time_base + now``.
    time_base: float = 1_765_000_000.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.version not in (11, 12):
            raise ConfigError("version", "11 or 12", self.version)
        interval = self.heartbeat_interval
        if interval is not None and not 0.001 <= interval < 86_400:
            # it goes in whole milliseconds, which must be above 0 (spec 7.2)
            raise ConfigError("heartbeat_interval", "0.001 s or more (or None: off)", interval)

    @classmethod
    def napcat_like(cls, **changes: Any) -> OneBotSimConfig:
        """NapCat's defaults: v11, arrays, 30 s heartbeats, a refused token as a
        1403 frame and a close, its extra fields and stream answers."""
        base = cls(impl="napcat", auth_failure="frame", napcat=True, query_first=True)
        return replace(base, **changes)

    @classmethod
    def lagrange_like(cls, **changes: Any) -> OneBotSimConfig:
        """Lagrange.OneBot's: v11, 5 s heartbeats from the start, 403 at the
        upgrade for a missing token as for a wrong one, ids that may be negative."""
        base = cls(impl="lagrange", heartbeat_interval=5.0, heartbeat_at_once=True)
        return replace(base, **{"signed_ids": True, "missing_token_status": 403, **changes})


@dataclass(frozen=True, slots=True)
class SimCall:
    """One action the bot called, as it came: ``echo`` is :data:`NO_ECHO` when
    the request had none; ``via`` is ``"ws"`` or ``"http"``."""

    action: str
    params: Mapping[str, Any]
    echo: object
    via: Literal["ws", "http"]
    at: float


@dataclass(frozen=True, slots=True)
class SimMessage:
    """A message the bot sent, as the implementation read it. Ids are strings
    (the simulator's, in either version); ``segments`` in the model's names."""

    message_id: str
    detail_type: str
    user_id: str | None
    group_id: str | None
    segments: tuple[Segment, ...]
    at: float

    @property
    def text(self) -> str:
        return plain_text(self.segments)


class _Refusal(Exception):
    """An action answered with a failure."""

    def __init__(self, retcode: int, message: str) -> None:
        super().__init__(message)
        self.retcode, self.message = retcode, message


#: Unknown actions and bad parameters, per version (spec 2.3 and 7.3).
_UNKNOWN: Final = {11: 1404, 12: 10002}
_BAD_PARAM: Final = {11: 1400, 12: 10003}

Handler = Callable[["ObState", Mapping[str, Any], float], Any]


@dataclass
class ObState:
    """What the simulated implementation knows and what the bot did."""

    config: OneBotSimConfig
    rng: random.Random = field(init=False)
    #: Every action the bot called, in order.
    calls: list[SimCall] = field(default_factory=list)
    #: Every message the bot sent (and the implementation accepted).
    sent: list[SimMessage] = field(default_factory=list)
    #: Messages by id (a string): what ``get_msg`` finds and ``delete_msg`` removes.
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Actions left unanswered (the bot's call times out).
    held: set[str] = field(default_factory=set)
    #: Actions answered with a failure: the retcode.
    failing: dict[str, int] = field(default_factory=dict)
    #: Answer each action twice (a duplicate the bot must shrug off).
    answer_twice: bool = False
    groups: dict[str, str] = field(default_factory=dict)  # id -> name
    friends: dict[str, str] = field(default_factory=dict)  # id -> nickname
    #: WebSocket upgrades the bot asked for, refused ones included.
    connects: int = 0
    #: The statuses (401, 403) of the tokens refused, in order.
    refused: list[int] = field(default_factory=list)
    #: The ``Authorization`` header of each WebSocket upgrade (None: none), in order.
    authorizations: list[str | None] = field(default_factory=list)
    #: Heartbeats go out (``stop_heartbeats`` clears it; their timers go on).
    heartbeats_on: bool = True

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)

    # -- shapes ----------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self.config.version

    def wire_id(self, value: str) -> int | str:
        """An id as this version sends it: a number in v11 (when it is one), a string in v12."""
        if self.version == 11:
            try:
                return int(value)
            except ValueError:
                return value
        return value

    def time(self, now: float) -> float | int:
        wall = self.config.time_base + now
        return int(wall) if self.version == 11 else round(wall, 6)

    def new_message_id(self) -> str:
        if self.version == 12:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        low = -(2**31) if self.config.signed_ids else 1
        while True:
            value = str(self.rng.randint(low, 2**31 - 1))
            if value not in self.messages:
                return value

    def self_object(self) -> dict[str, str]:
        return {"platform": "qq", "user_id": str(self.config.self_id)}

    def envelope(self, now: float, kind: str, detail: str, sub: str = "") -> dict[str, Any]:
        """The fields every event starts with, in this version's names."""
        if self.version == 11:
            head: dict[str, Any] = {"time": self.time(now), "self_id": self.config.self_id}
            key = {"message": "message_type", "meta_event": "meta_event_type"}.get(kind)
            head |= {"post_type": kind, key or f"{kind}_type": detail}
            if sub:
                head["sub_type"] = sub
            return head
        head = {"id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4))}
        head |= {"time": self.time(now), "type": kind, "detail_type": detail, "sub_type": sub}
        if kind != "meta":
            head["self"] = self.self_object()
        return head

    def connect_events(self, now: float) -> list[dict[str, Any]]:
        """What a new WebSocket gets first: v11's lifecycle ``connect``; v12's
        ``meta.connect`` (which must come first) and a ``status_update``."""
        if self.version == 11:
            return [self.envelope(now, "meta_event", "lifecycle", "connect")]
        connect = self.envelope(now, "meta", "connect")
        connect["version"] = _version_info(self, {}, now)
        status = self.envelope(now, "meta", "status_update")
        status["status"] = _status(self, {}, now)
        return [connect, status]

    def heartbeat(self, now: float) -> dict[str, Any]:
        interval = self.config.heartbeat_interval
        assert interval is not None
        event = self.envelope(now, "meta_event" if self.version == 11 else "meta", "heartbeat")
        event["interval"] = round(interval * 1000)
        if self.version == 11:
            event["status"] = _status(self, {}, now)
        return event

    def message_field(self, segments: list[Segment]) -> object:
        """``message`` as this implementation puts it in an event."""
        if self.version == 12:
            return [_wire(*segment_to_v12(s)) for s in segments]
        if self.config.message_format == "string":
            return cq.format(segments)
        return [_wire(*segment_to_v11(s)) for s in segments]

    # -- actions ---------------------------------------------------------------------------------

    def answers(
        self, request: object, via: Literal["ws", "http"], now: float
    ) -> list[dict[str, Any]]:
        """The frames (or, over HTTP, the one body) that answer ``request``; none
        for a held action. Bad requests are answered, never raised."""
        if not isinstance(request, dict) or not isinstance(request.get("action"), str):
            return [self._answer(None, 1400 if self.version == 11 else 10001, "bad request", None)]
        name = request["action"]
        echo = request.get("echo", NO_ECHO)
        params = request.get("params")
        if params is None and self.version == 11:
            params = {}
        self.calls.append(SimCall(name, params if isinstance(params, dict) else {}, echo, via, now))
        if name in self.held:
            return []
        if not isinstance(params, dict):  # v12 requires it (10001); v11 params must be one
            code = 1400 if self.version == 11 else 10001 if params is None else 10003
            return [self._answer(echo, code, "params is no object", None)]
        if name in self.failing:
            return [self._answer(echo, self.failing[name], f"{name} failed (scripted)", None)]
        if self.config.napcat and name == "upload_file_stream":
            return self._stream(echo, params)
        handler = _HANDLERS[self.version].get(name)
        try:
            if handler is None:
                raise _Refusal(_UNKNOWN[self.version], f"unknown action {name}")
            data = handler(self, params, now)
        except _Refusal as refusal:
            frames = [self._answer(echo, refusal.retcode, refusal.message, None)]
        else:
            frames = [self._answer(echo, 0, "", data)]
        return frames * 2 if self.answer_twice else frames

    def _answer(self, echo: object, retcode: int, message: str, data: Any) -> dict[str, Any]:
        status = "ok" if retcode == 0 else "failed"
        body: dict[str, Any] = {"status": status, "retcode": retcode, "data": data}
        if self.version == 12 or self.config.napcat:
            body["message"] = message
        if self.config.napcat:
            body |= {"wording": message, "stream": "normal-action"}
        if echo is NO_ECHO:
            if self.config.napcat:
                body["echo"] = ""  # NapCat answers a missing echo with ""
        elif self.config.numeric_echo and isinstance(echo, str) and _DECIMAL.match(echo):
            body["echo"] = int(echo)
        else:
            body["echo"] = echo
        return body

    def _stream(self, echo: object, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """NapCat's stream actions: progress frames, then the final response."""
        chunks = params.get("total_chunks", 2)
        if type(chunks) is not int or not 1 <= chunks <= 100:
            return [self._answer(echo, 1400, "total_chunks: an integer from 1 to 100", None)]
        frames = []
        for index in range(chunks):
            frame = self._answer(echo, 0, "", {"type": "stream", "received_chunks": index + 1})
            frames.append(frame | {"stream": "stream-action"})
        final = {"type": "response", "file_path": f"/tmp/napcat/{params.get('file_name', 'f')}"}
        frames.append(self._answer(echo, 0, "", final) | {"stream": "stream-action"})
        return frames

    # -- messages the bot sends --------------------------------------------------------------

    def accept_message(
        self, detail: object, params: Mapping[str, Any], now: float
    ) -> dict[str, Any]:
        """Record a message the bot sent; the data its send answers with."""
        user, group = params.get("user_id"), params.get("group_id")
        if detail is None:  # v11 send_msg may leave it out: the id given decides
            detail = "group" if group is not None else "private"
        if detail not in ("group", "private"):
            raise _Refusal(_BAD_PARAM[self.version], f"unsupported detail type {detail!r}")
        target = group if detail == "group" else user
        if target is None or isinstance(target, bool) or not isinstance(target, int | str):
            raise _Refusal(_BAD_PARAM[self.version], f"no {detail} id to send to")
        if self.version == 12 and not isinstance(target, str):
            raise _Refusal(10003, "v12 ids are strings")
        segments = self._segments(params.get("message"), params.get("auto_escape"))
        if not segments:
            raise _Refusal(100 if self.version == 11 else 10003, "empty message")
        message_id = self.new_message_id()
        group_id = str(target) if detail == "group" else None
        user_id = str(target) if detail == "private" else None
        self.sent.append(SimMessage(message_id, detail, user_id, group_id, tuple(segments), now))
        self.messages[message_id] = {
            "message_id": message_id,
            "detail_type": detail,
            "user_id": str(self.config.self_id),
            "group_id": group_id,
            "segments": segments,
            "time": self.time(now),
        }
        if self.version == 11:
            return {"message_id": int(message_id)}
        return {"message_id": message_id, "time": self.time(now)}

    def _segments(self, message: object, auto_escape: object) -> list[Segment]:
        if isinstance(message, str):  # v11: CQ unless auto_escape; v12: one text segment
            if self.version == 12 or auto_escape is True:
                return [Segment.text(message)] if message else []
            return cq.parse(message)
        if isinstance(message, dict):  # one segment (v12 allows it)
            message = [message]
        try:
            return segments_from_json(message, self.version)
        except RemoteProtocolError as exc:
            raise _Refusal(_BAD_PARAM[self.version], f"bad message: {exc}") from None

    def find(self, params: Mapping[str, Any]) -> dict[str, Any]:
        key = params.get("message_id")
        if isinstance(key, bool) or not isinstance(key, int | str):
            raise _Refusal(_BAD_PARAM[self.version], "message_id missing")
        found = self.messages.get(str(key))
        if found is None:
            raise _Refusal(100 if self.version == 11 else 35001, f"no message {key}")
        return found


def _wire(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": kind, "data": dict(data)}


# -- the action handlers, per version --------------------------------------------------------------


def _send(detail: str | None) -> Handler:
    def send(state: ObState, params: Mapping[str, Any], now: float) -> Any:
        given = params.get("message_type", params.get("detail_type"))
        return state.accept_message(detail or given, params, now)

    return send


def _delete(state: ObState, params: Mapping[str, Any], now: float) -> None:
    state.messages.pop(state.find(params)["message_id"])


def _get_msg(state: ObState, params: Mapping[str, Any], now: float) -> dict[str, Any]:
    found = state.find(params)
    data = {
        "time": found["time"],
        "message_type": found["detail_type"],
        "message_id": int(found["message_id"]),
        "real_id": int(found["message_id"]),
        "sender": {"user_id": state.wire_id(found["user_id"]), "nickname": ""},
        "message": state.message_field(found["segments"]),
    }
    if found["group_id"] is not None:
        data["group_id"] = state.wire_id(found["group_id"])
    return data


def _login_info(state: ObState, params: Mapping[str, Any], now: float) -> dict[str, Any]:
    return {"user_id": state.config.self_id, "nickname": "sim-bot"}


def _self_info(state: ObState, params: Mapping[str, Any], now: float) -> dict[str, Any]:
    user = str(state.config.self_id)
    return {"user_id": user, "user_name": "sim-bot", "user_displayname": ""}


def _status(state: ObState, params: Mapping[str, Any], now: float) -> dict[str, Any]:
    if state.version == 11:
        return {"online": True, "good": True}
    return {"good": True, "bots": [{"self": state.self_object(), "online": True}]}


def _version_info(state: ObState, params: Mapping[str, Any], now: float) -> dict[str, Any]:
    if state.version == 11:
        return {"app_name": state.config.impl, "app_version": "1.0", "protocol_version": "v11"}
    return {"impl": state.config.impl, "version": "1.0", "onebot_version": "12"}


def _friends(state: ObState, params: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
    if state.version == 11:
        return [
            {"user_id": state.wire_id(k), "nickname": v, "remark": ""}
            for k, v in state.friends.items()
        ]
    return [
        {"user_id": k, "user_name": v, "user_displayname": "", "user_remark": ""}
        for k, v in state.friends.items()
    ]


def _group(state: ObState, group: str) -> dict[str, Any]:
    info: dict[str, Any] = {"group_id": state.wire_id(group), "group_name": state.groups[group]}
    if state.version == 11:
        info |= {"member_count": 2, "max_member_count": 200}
    return info


def _group_info(state: ObState, params: Mapping[str, Any], now: float) -> dict[str, Any]:
    group = str(params.get("group_id"))
    if group not in state.groups:
        raise _Refusal(100 if state.version == 11 else 35001, f"no group {group}")
    return _group(state, group)


def _group_list(state: ObState, params: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
    return [_group(state, group) for group in state.groups]


def _member(state: ObState, group: str, user: str) -> dict[str, Any]:
    if state.version == 12:
        return {"user_id": user, "user_name": state.friends.get(user, ""), "user_displayname": ""}
    return {
        "group_id": state.wire_id(group),
        "user_id": state.wire_id(user),
        "nickname": state.friends.get(user, ""),
        "card": "",
        "role": "owner" if user == str(state.config.self_id) else "member",
    }


def _member_info(state: ObState, params: Mapping[str, Any], now: float) -> dict[str, Any]:
    group = str(_group_info(state, params, now)["group_id"])
    return _member(state, group, str(params.get("user_id")))


def _member_list(state: ObState, params: Mapping[str, Any], now: float) -> list[dict[str, Any]]:
    group = str(_group_info(state, params, now)["group_id"])
    return [_member(state, group, user) for user in [str(state.config.self_id), *state.friends]]


def _file(state: ObState, params: Mapping[str, Any], now: float) -> dict[str, Any]:
    """Any file id is a file here: a path in v11, what ``type`` asks for in v12."""
    name = params.get("file_id", params.get("file"))
    if not isinstance(name, str) or not name:
        raise _Refusal(_BAD_PARAM[state.version], "no file to get")
    path = f"/tmp/{state.config.impl}/{name}"
    if state.version == 11:
        return {"file": path, "file_name": name}
    form = params.get("type", "url")
    if form == "url":
        return {"name": name, "url": f"http://127.0.0.1/files/{name}"}
    if form == "path":
        return {"name": name, "path": path}
    if form == "data":
        return {"name": name, "data": base64.b64encode(name.encode()).decode()}
    raise _Refusal(10003, f"type: url, path or data, not {form!r}")


def _supported(state: ObState, params: Mapping[str, Any], now: float) -> list[str]:
    return sorted(_HANDLERS[12])


_COMMON: Final[dict[str, Handler]] = {
    "get_status": _status,
    "get_friend_list": _friends,
    "get_group_info": _group_info,
    "get_group_list": _group_list,
    "get_group_member_info": _member_info,
    "get_group_member_list": _member_list,
}
_HANDLERS: Final[dict[int, dict[str, Handler]]] = {
    11: _COMMON
    | {
        "send_msg": _send(None),
        "send_group_msg": _send("group"),
        "send_private_msg": _send("private"),
        "delete_msg": _delete,
        "get_msg": _get_msg,
        "get_login_info": _login_info,
        "get_version_info": _version_info,
        "get_image": _file,
        "get_record": _file,
        "get_file": _file,
    },
    12: _COMMON
    | {
        "send_message": _send(None),
        "delete_message": _delete,
        "get_self_info": _self_info,
        "get_version": _version_info,
        "get_supported_actions": _supported,
        "get_file": _file,
    },
}

#: The v11 actions served over HTTP (``POST /<action>``).
V11_ACTIONS: Final = frozenset(_HANDLERS[11]) | {"upload_file_stream"}
