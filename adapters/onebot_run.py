"""``qqproto onebot run``: a forward WebSocket client on the asyncio driver, telling what happens.

The connection is a :class:`~qqproto.onebot.connection.OneBotProtocol` on an
:class:`~qqproto.adapters.asyncio.AsyncioDriver`; this module prints its news,
as JSON lines with ``--json`` (``docs/cli.md``), and with ``--echo`` answers
each message with its own text, once, in the same chat. SIGINT and SIGTERM
close the connection cleanly (exit 0); a connection that gave up (a refused
token, say) exits 3 after its ``failed`` line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, TextIO

from qqproto.actions import StateChanged
from qqproto.errors import ProtocolViolation
from qqproto.link import Retry
from qqproto.onebot import (
    Action,
    ActionResult,
    Chat,
    MessageEvent,
    OneBotConfig,
    OneBotProtocol,
    OneBotState,
    send_message,
    to_me,
)

from .command import drive, run_command
from .report import Report

__all__ = [
    "Answers",
    "Echo",
    "Lines",
    "config_from",
    "echo_of",
    "event_line",
    "run",
    "serve",
]

log = logging.getLogger("qqproto.onebot.run")


def config_from(args: argparse.Namespace) -> OneBotConfig:
    """The connection's configuration (ConfigError if it is wrong)."""
    return OneBotConfig(
        args.ws_url, access_token=args.access_token, protocol=args.protocol, api_url=args.api_url
    )


def _id(event: MessageEvent, name: str) -> str | None:
    """An id as the lines carry it: a number in decimal (its sign kept), a string
    as it came. One the model refused (past 64 bits, say) is read from ``raw``."""
    value = getattr(event, name)
    if value is None:
        value = event.raw.get(name)
        if isinstance(value, bool) or not isinstance(value, int | str):
            return None
    return str(value)


def event_line(event: MessageEvent, self_id: int | str | None = None) -> dict[str, Any]:
    """A message event's ``event`` line; ``self_id`` is the bot's, when the event
    does not say it."""
    return {
        "kind": "event",
        "type": event.kind,
        "id": _id(event, "message_id"),
        "user": _id(event, "user_id"),
        "group": _id(event, "group_id"),
        "content": event.text,
        "to_me": to_me(event, event.self_id if event.self_id is not None else self_id),
    }


class Lines(Report):
    """The command's output: JSON lines, or the same news for people."""

    def __init__(self, stream: TextIO, *, as_json: bool) -> None:
        super().__init__(stream)
        self.as_json = as_json

    def line(self, fields: dict[str, Any], human: str) -> None:
        if self.as_json:
            self._write(json.dumps(fields, ensure_ascii=False, separators=(",", ":")))
        else:
            self._write(human)

    def state(self, change: StateChanged) -> None:
        fields = {"kind": "state", "from": change.old, "to": change.new, "why": change.why}
        self.line(fields, f"{change.old} -> {change.new} ({change.why})")

    def message(self, event: MessageEvent, self_id: int | str | None) -> None:
        fields = event_line(event, self_id)
        self.line(
            fields, f"{fields['type']} {fields['id']} from {fields['user']}: {fields['content']}"
        )

    def answered(self, to: str | None, code: int | None, ok: bool) -> None:
        """An echo's ``reply`` line."""
        fields = {"kind": "reply", "to": to, "status": "ok" if ok else "error", "code": code}
        self.line(fields, f"  replied to {to}" if ok else f"  reply to {to} failed: {code}")

    def retry(self, retry: Retry) -> None:
        fields = {
            "kind": "retry",
            "attempt": retry.attempt,
            "of": retry.of,
            "delay": round(retry.delay, 3),
            "reason": retry.reason,
            "what": retry.what,
        }
        self.line(fields, str(retry))

    def failed(self, reason: str) -> None:
        self.line({"kind": "failed", "reason": reason}, f"FAILED: {reason}")


class Answers:
    """The news of a command's connection: each echo's reply line, retries, violations."""

    def __init__(self, lines: Lines, *, echo: bool) -> None:
        self.lines, self.echo = lines, echo
        self._to: dict[int, str | None] = {}  # call id -> the message it answers

    def on_news(self, event: object) -> bool:
        """Say what ``event`` is, if it is news: an answer, a retry, a violation."""
        if isinstance(event, ActionResult) and event.call_id in self._to:
            to = self._to.pop(event.call_id)
            answer = event.answer
            if answer is None:  # no answer in time, or the connection went: no retcode
                self.lines.answered(to, None, False)
            else:  # an error when failed, or with any retcode but 0 (async's 1 too)
                ok = answer.status != "failed" and answer.retcode in (0, None)
                self.lines.answered(to, None if ok else answer.retcode, ok)
        elif isinstance(event, Retry):
            self.lines.retry(event)
        elif isinstance(event, ProtocolViolation):
            log.warning("%s", event.error)
        else:
            return False
        return True

    def sent(self, call_id: int, event: MessageEvent) -> None:
        """``call_id`` answers ``event``: its reply line comes with its result."""
        self._to[call_id] = _id(event, "message_id")


class Echo(Answers):
    """Answers each message once on the connection, and reports how each answer went."""

    def __init__(self, proto: OneBotProtocol, lines: Lines, *, echo: bool) -> None:
        super().__init__(lines, echo=echo)
        self.proto = proto

    def on_event(self, event: object, now: float) -> None:
        if isinstance(event, MessageEvent) and event.type == "message":
            self.lines.message(event, self.proto.self_id)
            if self.echo and event.text and self.proto.state is OneBotState.CONNECTED:
                action = echo_of(event)
                if action is not None:
                    self.sent(self.proto.call(action, now), event)
        else:
            self.on_news(event)


def echo_of(event: MessageEvent) -> Action | None:
    """``event``'s text, sent back as plain text to its chat (None: it named no chat)."""
    where = event.user_id if event.private else event.group_id
    if where is None:
        return None
    chat = Chat.private(where) if event.private else Chat.group(where)
    return send_message(chat, event.text, 12 if event.version == 12 else 11)


async def serve(config: OneBotConfig, args: argparse.Namespace, lines: Lines) -> int:
    """Run until a signal (0) or until the connection gives up (3)."""
    proto = OneBotProtocol(config)
    echo = Echo(proto, lines, echo=args.echo)
    return await drive(proto, echo.on_event, lines)


def run(config: OneBotConfig, args: argparse.Namespace) -> int:
    return run_command(lambda: serve(config, args, Lines(sys.stdout, as_json=args.json)), args)
