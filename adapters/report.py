"""What ``qqproto qq run`` tells its user: one line per thing that happened.

Two voices for the same five kinds of news (a state change, an event for the
application, the outcome of an echo reply, a failed attempt that will be
retried, giving up): JSON objects, one per line, for programs that read
stdout; short sentences for people. Both flush each line as it is written,
so a reader on the other end of a pipe sees it at once.

When the reader goes away (``qqproto qq run --json | head -3``), the next
write fails with ``BrokenPipeError``. That is a request to stop, not a crash:
the report goes quiet, points stdout at ``/dev/null`` (so that the flush at
exit cannot fail again, as the Python docs advise) and calls ``on_closed``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from qqproto.actions import StateChanged
from qqproto.link import Retry
from qqproto.qq import MESSAGE_TYPES, Dispatch, Event, Message

__all__ = ["HumanReport", "JsonReport", "Report", "event_fields", "prepare_output", "state_names"]


def state_names(change: StateChanged) -> tuple[str, str]:
    """``from`` and ``to`` as the lines name them: the bot's phases keep the
    ``BOT_`` prefix they have always had, so they cannot be read as the
    gateway's ``FAILED`` or ``CLOSED``."""
    if change.machine == "bot":
        return f"BOT_{change.old}", f"BOT_{change.new}"
    return change.old, change.new


def event_fields(event: Event | Dispatch) -> dict[str, Any]:
    """The fields an ``event`` line carries, in the order a reader expects.

    A message that came untyped (a field failed its check) still reports its
    message id and content as they came, so that every message has the same
    line shape; its content is not cleaned, since nothing about it was checked.
    """
    if isinstance(event, Dispatch):
        fields: dict[str, Any] = {"type": event.type, "seq": event.seq, "id": event.id}
        data = event.data
        if event.type in MESSAGE_TYPES and isinstance(data, dict):
            content = data.get("content")
            fields["id"] = data.get("id", event.id)
            fields["content"] = content if isinstance(content, str) else ""
            fields["attachments"] = []
        if event.on_shard is not None:  # a gateway's (a callback comes on none)
            fields["shard"] = list(event.on_shard)
        return fields
    fields = {
        "type": type(event).TYPE,
        "seq": event.event_seq,
        "id": getattr(event, "id", None) or event.event_id,
    }
    if isinstance(event, Message):
        fields["content"] = event.text
        fields["attachments"] = [
            {"url": a.url, "content_type": a.content_type} for a in event.attachments
        ]
    if event.on_shard is not None:  # a gateway's (a callback comes on none)
        fields["shard"] = list(event.on_shard)
    return fields


class Report:
    """Writes lines to ``stream``; subclasses choose the voice."""

    def __init__(self, stream: TextIO, on_closed: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self.on_closed = on_closed
        self.closed = False

    def _write(self, line: str) -> None:
        if self.closed:
            return
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except BrokenPipeError:
            self.closed = True
            self._silence()
            if self.on_closed is not None:
                self.on_closed()

    def _silence(self) -> None:
        try:
            fileno = self._stream.fileno()
        except (OSError, ValueError):
            return  # not a real file (a test's StringIO): nothing to flush at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fileno)
        os.close(devnull)

    def state(self, change: StateChanged) -> None:
        raise NotImplementedError

    def event(self, event: Event | Dispatch) -> None:
        raise NotImplementedError

    def retry(self, retry: Retry) -> None:
        raise NotImplementedError

    def reply(self, to: str, code: int | str | None) -> None:
        raise NotImplementedError

    def failed(self, reason: str) -> None:
        raise NotImplementedError


class JsonReport(Report):
    """``--json``: one object per line on the stream, and nothing else there."""

    def _line(self, kind: str, **fields: Any) -> None:
        # ensure_ascii=False: Chinese message text stays readable in the log.
        self._write(json.dumps({"kind": kind, **fields}, ensure_ascii=False, separators=(",", ":")))

    def state(self, change: StateChanged) -> None:
        old, new = state_names(change)
        self._line("state", **{"from": old, "to": new}, why=change.why, machine=change.machine)

    def event(self, event: Event | Dispatch) -> None:
        self._line("event", **event_fields(event))

    def retry(self, retry: Retry) -> None:
        self._line(
            "retry",
            attempt=retry.attempt,
            of=retry.of,
            delay=round(retry.delay, 3),
            reason=retry.reason,
            what=retry.what,
        )

    def reply(self, to: str, code: int | str | None) -> None:
        self._line("reply", to=to, status="ok" if code is None else "error", code=code)

    def failed(self, reason: str) -> None:
        self._line("failed", reason=reason)


class HumanReport(Report):
    """Without ``--json``: one readable line per state change and message."""

    def state(self, change: StateChanged) -> None:
        old, new = state_names(change)
        self._write(f"{old} -> {new}" + (f" ({change.why})" if change.why else ""))

    def event(self, event: Event | Dispatch) -> None:
        fields = event_fields(event)
        text = f"#{fields['seq']} {fields['type']}"
        if "content" in fields:
            text += f" {fields['content']!r}"
            text += "".join(f" [{a['content_type']} {a['url']}]" for a in fields["attachments"])
        self._write(text)

    def reply(self, to: str, code: int | str | None) -> None:
        self._write(f"  replied to {to}" if code is None else f"  reply to {to} failed: {code}")

    def retry(self, retry: Retry) -> None:
        self._write(str(retry))

    def failed(self, reason: str) -> None:
        self._write(f"FAILED: {reason}")


def prepare_output(*, verbose: bool, as_json: bool) -> None:
    """What a command sets up before it prints: logs on stderr (qqproto's at
    DEBUG with ``-v``: frames and state changes, not transitions' or asyncio's
    chatter), and stdout in UTF-8 for JSON whatever the console's code page;
    people get escapes rather than a crash on text their console cannot show."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("qqproto").setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("transitions").setLevel(logging.WARNING)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8" if as_json else None, errors="backslashreplace")
