"""``qqproto demo``: the gateway core through a scripted story, in memory.

No network and no credentials: a ``FakeServer`` plays the QQ gateway and the
clock is a number we move. It shows what the core decides at each turn:
Identify, heartbeats, a dropped link and the Resume with replayed events, a
server-requested reconnect (op 7), and a session timeout (close 4009).
Messages reach the application as typed events, and the story prints the
``text`` a bot matches commands against (the guild @bot already removed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from qqproto.actions import (
    Connect,
    Deliver,
    Disconnect,
    Failed,
    FetchToken,
    SendData,
    StateChanged,
)
from qqproto.qq import Dispatch, GatewayConfig, GatewayProtocol, Message, ProtocolViolation
from qqproto.testing import FakeServer

OPS = {1: "Heartbeat", 2: "Identify", 6: "Resume"}
BOT_ID = "42"  # the bot's user id, as READY gives it
USER = "E4F4A1B2C3D4E5F6A7B8C9D0E1F2D7ED"
GROUP = "82B3C5D7E9FA1B3C5D7E9F0A1B2C6064"


def message_data(kind: str, seq: int, content: str) -> dict[str, Any]:
    """``d`` of a message event of type ``kind``, shaped as the platform sends it."""
    d: dict[str, Any] = {"id": f"ROBOT1.0_{seq}", "content": content}
    if kind.startswith("GROUP_"):
        d.update(author={"member_openid": USER}, group_openid=GROUP)
    elif kind.startswith("C2C_"):
        d.update(author={"user_openid": USER})
    else:  # a guild channel
        d.update(author={"id": "1234", "username": "someone"}, channel_id="100", guild_id="200")
    return d


class Story:
    """A gateway, a fake server, a fake clock, and a narrator."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say
        self.now = 0.0
        self.gateway = GatewayProtocol(GatewayConfig(app_id="102000000", seed=7))
        self.server: FakeServer | None = None
        self.seq = 0
        self.log: list[dict[str, Any]] = []  # what the server sent, for replays
        self.delivered: list[int | None] = []  # seqs of messages handed to the app

    def run_actions(self) -> None:
        while actions := self.gateway.actions():
            for action in actions:
                self.carry_out(action)

    def carry_out(self, action: object) -> None:
        if isinstance(action, FetchToken):
            self.say(f"  token    fetched ({action.reason})")
            self.gateway.token_received("DEMO-TOKEN", self.now + 7200, self.now)
        elif isinstance(action, Connect):
            self.say(f"  connect  {action.url}")
            self.server = FakeServer()
            self.gateway.connection_made(self.now)
        elif isinstance(action, SendData) and self.server is not None:
            reply = self.server.receive(action.data)
            for payload in self.server.payloads():
                name = OPS.get(payload["op"], f"op {payload['op']}")
                data = payload.get("d")
                if isinstance(data, dict):
                    detail: object = {k: v for k, v in data.items() if k != "token"}
                else:
                    detail = {"last seq": data}
                self.say(f"  -> {name:9} {json.dumps(detail, ensure_ascii=False)}")
            if reply:
                self.gateway.receive_data(reply, self.now)
        elif isinstance(action, Disconnect):
            self.say("  socket   closed")
            self.server = None
            self.gateway.connection_lost(self.now, None)
        elif isinstance(action, StateChanged):
            self.say(f"  state    {action.old} -> {action.new} ({action.why})")
        elif isinstance(action, Deliver):
            event = action.event
            if isinstance(event, Message):
                self.delivered.append(event.event_seq)
                self.say(f"  <- {event.TYPE} #{event.event_seq}: {event.text!r}")
            elif isinstance(event, Dispatch):  # a type qqproto does not model
                self.delivered.append(event.seq)
                self.say(f"  <- {event.type} #{event.seq} (untyped): {event.data!r}")
            elif isinstance(event, ProtocolViolation):
                self.say(f"  !! {event.error}")
        elif isinstance(action, Failed):
            self.say(f"  FAILED   {action.reason}")

    def send(self, payload: dict[str, Any]) -> None:
        assert self.server is not None
        self.gateway.receive_data(self.server.send(payload), self.now)
        self.run_actions()

    def dispatch(self, kind: str, content: str) -> None:
        self.seq += 1
        payload = {"op": 0, "s": self.seq, "t": kind, "id": f"{kind}:{self.seq}"}
        payload["d"] = message_data(kind, self.seq, content)
        self.log.append(payload)
        self.send(payload)

    def drop(self, reason: str) -> None:
        """The transport dies under the gateway."""
        self.server = None
        self.gateway.connection_lost(self.now, reason)

    def close_from_server(self, code: int, reason: str) -> None:
        assert self.server is not None
        self.gateway.receive_data(self.server.close(code, reason), self.now)
        self.run_actions()

    def hello(self) -> None:
        self.send({"op": 10, "d": {"heartbeat_interval": 45000}})

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while (deadline := self.gateway.next_deadline()) is not None and deadline <= target:
            self.now = deadline
            self.gateway.handle_timer(self.now)
            self.run_actions()
        self.now = target

    def resume_with_replay(self, since: int) -> None:
        self.hello()
        for payload in self.log:
            if payload["s"] > since:
                before = self.gateway.seq
                self.send(payload)
                if self.gateway.seq == before:
                    self.say(f"  <- #{payload['s']} again: dropped, it was delivered before")
        self.seq += 1
        self.send({"op": 0, "s": self.seq, "t": "RESUMED", "d": ""})


def run(say: Callable[[str], None] = print) -> int:
    story = Story(say)
    say("qqproto demo: the gateway core against a scripted QQ gateway, in memory")
    say("\n1. Connect, Hello, Identify, READY")
    story.run_actions()
    story.hello()
    story.seq = 1
    ready = {"session_id": "demo-session", "user": {"id": BOT_ID, "username": "demo-bot"}}
    story.send({"op": 0, "s": 1, "t": "READY", "d": ready})

    say("\n2. Messages arrive; a heartbeat carries the last seq")
    story.dispatch("GROUP_AT_MESSAGE_CREATE", " hello from a group")
    story.dispatch("C2C_MESSAGE_CREATE", "hi in private")
    story.advance(45)
    story.send({"op": 11})

    say("\n3. The link drops; a message is sent while we are away")
    acknowledged = story.seq
    story.drop("connection reset by peer")
    story.seq += 1
    story.log.append(
        {
            "op": 0,
            "s": story.seq,
            "t": "AT_MESSAGE_CREATE",
            "id": f"x:{story.seq}",
            "d": message_data(
                "AT_MESSAGE_CREATE", story.seq, f"<@!{BOT_ID}> sent while you were away"
            ),
        }
    )
    story.run_actions()
    story.resume_with_replay(since=acknowledged - 1)

    say("\n4. The server asks us to reconnect (op 7)")
    story.send({"op": 7})
    story.resume_with_replay(since=story.seq)

    say("\n5. The session times out (close 4009): resume, not a new session")
    story.close_from_server(4009, "session timed out")
    story.resume_with_replay(since=story.seq)
    story.dispatch("GROUP_AT_MESSAGE_CREATE", " still here")

    sent = [payload["s"] for payload in story.log]
    if story.delivered != sent:
        say(f"\nFAILED: the server sent messages {sent}, the app got {story.delivered}")
        return 1
    say(f"\nDone: state {story.gateway.state.name}; messages {sent} each delivered once.")
    return 0
