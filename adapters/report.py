"""What ``qqproto qq run`` tells its user: one line per thing that happened.

Two voices for the same four kinds of news (a state change, an event for the
application, the outcome of an echo reply, giving up): JSON objects, one per
line, for programs that read stdout; short sentences for people. Both flush
each line as it is written, so a reader on the other end of a pipe sees it at
once. Nothing here does I/O beyond writing to the stream it is given.
"""

from __future__ import annotations

import json
from typing import Any, Protocol, TextIO

from qqproto.qq import Dispatch, Event, Message

__all__ = ["HumanReport", "JsonReport", "Report", "event_fields"]


class Report(Protocol):
    def state(self, old: str, new: str, why: str) -> None: ...
    def event(self, event: Event | Dispatch) -> None: ...
    def reply(self, to: str, code: int | str | None) -> None: ...
    def failed(self, reason: str) -> None: ...


def event_fields(event: Event | Dispatch) -> dict[str, Any]:
    """The fields an ``event`` line carries, in the order a reader expects."""
    if isinstance(event, Dispatch):
        return {"type": event.type, "seq": event.seq, "id": event.id}
    fields: dict[str, Any] = {
        "type": type(event).TYPE,
        "seq": event.event_seq,
        "id": getattr(event, "id", None) or event.event_id,
    }
    if isinstance(event, Message):
        fields["content"] = event.text
        fields["attachments"] = [
            {"url": a.url, "content_type": a.content_type} for a in event.attachments
        ]
    return fields


class JsonReport:
    """``--json``: one object per line on the stream, and nothing else there."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def _line(self, kind: str, **fields: Any) -> None:
        # ensure_ascii=False: Chinese message text stays readable in the log.
        line = json.dumps({"kind": kind, **fields}, ensure_ascii=False, separators=(",", ":"))
        self._stream.write(line + "\n")
        self._stream.flush()

    def state(self, old: str, new: str, why: str) -> None:
        self._line("state", **{"from": old, "to": new})

    def event(self, event: Event | Dispatch) -> None:
        self._line("event", **event_fields(event))

    def reply(self, to: str, code: int | str | None) -> None:
        self._line("reply", to=to, status="ok" if code is None else "error", code=code)

    def failed(self, reason: str) -> None:
        self._line("failed", reason=reason)


class HumanReport:
    """Without ``--json``: one readable line per state change and message."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def _line(self, text: str) -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def state(self, old: str, new: str, why: str) -> None:
        self._line(f"{old} -> {new}" + (f" ({why})" if why else ""))

    def event(self, event: Event | Dispatch) -> None:
        fields = event_fields(event)
        text = f"#{fields['seq']} {fields['type']}"
        if "content" in fields:
            text += f" {fields['content']!r}"
            text += "".join(f" [{a['content_type']} {a['url']}]" for a in fields["attachments"])
        self._line(text)

    def reply(self, to: str, code: int | str | None) -> None:
        self._line(f"  replied to {to}" if code is None else f"  reply to {to} failed: {code}")

    def failed(self, reason: str) -> None:
        self._line(f"FAILED: {reason}")
