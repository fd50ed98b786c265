"""OneBot actions: requests in either version's dialect, answers as values or typed errors.

An :class:`Action` is a request without its echo: the action's name and its
params, already in the dialect of the version it is for. The builders below
(:func:`send_message`, :func:`delete_message`, :func:`get_self_info`, ...)
make the minimal set of the reference's section 6 in both dialects; any
other action, an implementation's extensions included, is ``Action(name,
params)``. :meth:`Action.frame` writes the request with an echo, as one
WebSocket text frame.

:func:`read_answer` reads what came back: an :class:`Answer` whose
:meth:`~Answer.result` is the data, or raises :class:`ActionFailed` (a
:class:`~qqproto.errors.RemoteProtocolError`) with the retcode and the
implementation's own words. Any retcode but 0, or ``status: failed``, is a
failure; ``status: async`` with retcode 1 is accepted (its outcome is
unknown). Lagrange's ``status: ""`` with retcode 0 is a success.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec

from ..errors import LocalProtocolError, RemoteProtocolError
from .events import MessageEvent
from .segments import Segment, segment_to_v11, segment_to_v12

__all__ = [
    "RETCODES",
    "Action",
    "ActionFailed",
    "Answer",
    "Chat",
    "delete_message",
    "describe_retcode",
    "get_file",
    "get_friend_list",
    "get_group_info",
    "get_group_list",
    "get_group_member_info",
    "get_group_member_list",
    "get_message",
    "get_self_info",
    "is_answer",
    "read_answer",
    "reply_to",
    "send_message",
]

Version = Literal[11, 12]

#: What each retcode means (v11's table and v12's ranges, spec 2.3 and 7.3).
RETCODES: Final[Mapping[int, str]] = {
    1: "accepted for async processing (outcome unknown)",
    100: "parameter or logic error",
    200: "the handler raised",
    400: "bad request",
    404: "unknown action",
    1200: "the handler raised",
    1400: "bad request: bad JSON or bad params",
    1401: "access token missing",
    1403: "access token wrong",
    1404: "unknown action",
    9000: "send failed",
    10001: "bad request",
    10002: "unsupported action",
    10003: "bad param",
    10004: "unsupported param",
    10005: "unsupported segment",
    10006: "bad segment data",
    10007: "unsupported segment data",
    10101: "who am I: several bots on this connection, no self given",
    10102: "unknown self",
    20001: "bad handler",
    20002: "internal handler error",
}
#: v12's ranges, by the first two digits (spec 7.3).
_V12_RANGES: Final = {
    "31": "database error",
    "32": "filesystem error",
    "33": "network error",
    "34": "platform error",
    "35": "logic error",
    "36": "I am tired",
}


def describe_retcode(retcode: int | None) -> str:
    """What a retcode means, as far as the references say."""
    if retcode is None:
        return "no retcode"
    if (known := RETCODES.get(retcode)) is not None:
        return known
    text = str(retcode)
    if len(text) == 5 and (ranged := _V12_RANGES.get(text[:2])) is not None:
        return ranged
    return "an implementation's own code"


@dataclass(frozen=True, slots=True)
class Action:
    """One request, in one version's dialect, without its echo."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def frame(self, echo: str, *, self_id: str | None = None) -> str:
        """The request as a WebSocket text frame. ``self_id`` names the bot on
        a v12 connection that serves several (``self``: ``{"user_id"}``)."""
        body: dict[str, Any] = {"action": self.name, "params": dict(self.params), "echo": echo}
        if self_id is not None:
            body["self"] = {"platform": "qq", "user_id": self_id}
        try:
            return msgspec.json.encode(body).decode()
        except UnicodeEncodeError:  # a lone surrogate in the text: JSON escapes it
            return json.dumps(body, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Chat:
    """Where a message goes: a group or one user."""

    kind: Literal["group", "private"]
    id: int | str

    @classmethod
    def group(cls, group_id: int | str) -> Chat:
        return cls("group", group_id)

    @classmethod
    def private(cls, user_id: int | str) -> Chat:
        return cls("private", user_id)

    @classmethod
    def of(cls, event: MessageEvent) -> Chat:
        """The chat ``event`` came from; :class:`LocalProtocolError` when the
        event names none (a message whose ids the model could not read)."""
        kind: Literal["group", "private"] = "group" if event.detail_type == "group" else "private"
        where = event.group_id if kind == "group" else event.user_id
        if event.detail_type != kind or where is None:
            raise LocalProtocolError(
                "no chat to answer in",
                expected="a group message with a group_id or a private one with a user_id",
                received=f"{event.kind} (group_id={event.group_id!r}, user_id={event.user_id!r})",
            )
        return cls(kind, where)


def send_message(chat: Chat, message: Iterable[Segment] | str, version: Version) -> Action:
    """A message to ``chat``: v11 ``send_msg``, v12 ``send_message``.

    A ``str`` is one text segment (never read as CQ codes: text is text).
    """
    segments = [Segment.text(message)] if isinstance(message, str) else list(message)
    key = "group_id" if chat.kind == "group" else "user_id"
    if version == 11:
        array = [_wire(*segment_to_v11(s)) for s in segments]
        return Action("send_msg", {"message_type": chat.kind, key: chat.id, "message": array})
    array = [_wire(*segment_to_v12(s)) for s in segments]
    return Action("send_message", {"detail_type": chat.kind, key: str(chat.id), "message": array})


def reply_to(
    event: MessageEvent, message: Iterable[Segment] | str, *, quote: bool = False
) -> Action:
    """An answer in the chat ``event`` came from, in its version's dialect;
    ``quote`` puts a reply segment to it first."""
    segments = [Segment.text(message)] if isinstance(message, str) else list(message)
    if quote and event.message_id is not None:
        segments.insert(0, Segment.reply(event.message_id))
    return send_message(Chat.of(event), segments, 12 if event.version == 12 else 11)


def get_message(message_id: int | str, version: Version) -> Action:
    """v11 ``get_msg``. v12 has none in its main spec: a v12 call raises
    :class:`LocalProtocolError` (call an implementation's own by name)."""
    if version == 12:
        raise LocalProtocolError(
            "v12 has no get_message", expected="a v11 connection", received="v12"
        )
    return Action("get_msg", {"message_id": message_id})


def delete_message(message_id: int | str, version: Version) -> Action:
    if version == 11:
        return Action("delete_msg", {"message_id": message_id})
    return Action("delete_message", {"message_id": str(message_id)})


def get_self_info(version: Version) -> Action:
    return Action("get_login_info" if version == 11 else "get_self_info")


def get_friend_list(version: Version) -> Action:
    """The same name in both versions (``version`` is taken for a uniform call)."""
    return Action("get_friend_list")


def get_group_info(group_id: int | str, version: Version) -> Action:
    return Action("get_group_info", {"group_id": _id_for(group_id, version)})


def get_group_list(version: Version) -> Action:
    """The same name in both versions (``version`` is taken for a uniform call)."""
    return Action("get_group_list")


def get_group_member_info(group_id: int | str, user_id: int | str, version: Version) -> Action:
    params = {"group_id": _id_for(group_id, version), "user_id": _id_for(user_id, version)}
    return Action("get_group_member_info", params)


def get_group_member_list(group_id: int | str, version: Version) -> Action:
    return Action("get_group_member_list", {"group_id": _id_for(group_id, version)})


def get_file(
    file_id: str,
    version: Version,
    *,
    kind: Literal["image", "voice", "file"] = "file",
    form: Literal["url", "path", "data"] = "url",
) -> Action:
    """A file a message carried (its segment's ``file_id``).

    v12: ``get_file`` with ``type`` ``form`` (a URL, a local path, or the
    bytes as base64). v11 has no one action: an image is ``get_image`` and a
    voice ``get_record`` (as mp3), each answering with a local path; any other
    file is the ``get_file`` NapCat and Lagrange add (``form`` is v12's alone).
    """
    if version == 12:
        return Action("get_file", {"file_id": file_id, "type": form})
    if kind == "image":
        return Action("get_image", {"file": file_id})
    if kind == "voice":
        return Action("get_record", {"file": file_id, "out_format": "mp3"})
    return Action("get_file", {"file_id": file_id})


def _id_for(value: int | str, version: Version) -> int | str:
    """v12 ids are strings; v11's go as they came (NapCat and Lagrange read both)."""
    return str(value) if version == 12 else value


def _wire(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": kind, "data": dict(data)}


# -- answers ------------------------------------------------------------------------------------


class ActionFailed(RemoteProtocolError):
    """The implementation answered an action with a failure.

    ``retcode`` and ``status`` are as they came; ``wording`` is the
    implementation's own words (``wording``, else ``message``, else ``msg``).
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.retcode = answer.retcode
        self.status = answer.status
        self.wording = answer.wording
        said = f": {answer.wording}" if answer.wording else ""
        super().__init__(
            f"action failed, retcode {answer.retcode} ({describe_retcode(answer.retcode)}){said}"
        )


@dataclass(frozen=True, slots=True)
class Answer:
    """What an implementation answered; ``raw`` is the whole object."""

    status: str
    retcode: int | None
    data: Any
    echo: Any
    wording: str
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Retcode 0, or an ``async`` acceptance; and never ``status: failed``."""
        if self.status == "failed":
            return False
        if self.retcode is None:  # no retcode: the status says it
            return self.status in ("ok", "async")
        return self.retcode == 0 or (self.status == "async" and self.retcode == 1)

    @property
    def continues(self) -> bool:
        """More frames of this answer follow (NapCat's stream actions send
        ``stream: "stream-action"`` frames of ``data.type`` ``stream`` first)."""
        if self.raw.get("stream") != "stream-action":
            return False
        data = self.data
        return isinstance(data, dict) and data.get("type") == "stream"

    def result(self) -> Any:
        """The data; :class:`ActionFailed` when the answer is a failure."""
        if not self.ok:
            raise ActionFailed(self)
        return self.data


def is_answer(obj: Mapping[str, Any]) -> bool:
    """An object with ``status`` or ``retcode`` and no event's keys (spec 8)."""
    if "post_type" in obj or ("type" in obj and "detail_type" in obj):
        return False
    return "status" in obj or "retcode" in obj


def read_answer(obj: object) -> Answer:
    """The answer ``obj`` (a decoded JSON object) is; :class:`RemoteProtocolError`
    when it is none. Missing fields are tolerated (Lagrange sends no
    ``message``, LLOneBot no ``echo``)."""
    if not isinstance(obj, dict) or not is_answer(obj):
        raise RemoteProtocolError(
            "not an action answer", expected="an object with status or retcode", received=obj
        )
    status, retcode = obj.get("status"), obj.get("retcode")
    words = (obj.get(key) for key in ("wording", "message", "msg"))
    wording = next((w for w in words if isinstance(w, str) and w), "")
    return Answer(
        status=status if isinstance(status, str) else "",
        retcode=retcode if type(retcode) is int else None,
        data=obj.get("data"),
        echo=obj.get("echo"),
        wording=wording,
        raw=obj,
    )
