"""A BotProtocol driven by hand on a fake clock: HTTP answered from a script, the
gateway played by a FakeServer. Shared by the bot's test files."""

from __future__ import annotations

import json
from typing import Any

from qqproto.actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    HttpRequest,
    SendData,
    StateChanged,
)
from qqproto.errors import ProtocolViolation
from qqproto.http import HttpResponse
from qqproto.qq.api import ApiResult
from qqproto.qq.bot import BotProtocol
from qqproto.qq.config import BotConfig
from qqproto.qq.events import C2CMessageCreate, Dispatch, GroupAtMessageCreate
from qqproto.testing import FakeServer

from .timers import fire_deadlines

SECRET = "s3cret-s3cret"
GATEWAY_BOT = {
    "url": "wss://api.sgroup.qq.com/websocket/",
    "shards": 1,
    "session_start_limit": {
        "total": 1000,
        "remaining": 999,
        "reset_after": 14400000,
        "max_concurrency": 1,
    },
}


def reply(payload: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(status, (), json.dumps(payload).encode())


def token_reply(token: str = "T1", expires_in: str = "7200") -> HttpResponse:
    return reply({"access_token": token, "expires_in": expires_in})


class World:
    """Drives a BotProtocol: answers HTTP from a script, plays the gateway."""

    def __init__(self, **config: Any) -> None:
        self.bot = BotProtocol(BotConfig("102000000", SECRET, **config))
        self.now = 0.0
        self.requests: list[HttpRequest] = []
        self.connects: list[str] = []
        self.delivered: list[object] = []
        self.failed: list[str] = []
        self.log: list[Action] = []  # state changes and failures, in order
        self.server: FakeServer | None = None
        self.conn = 0  # the id of the gateway's last connection
        self.collect()

    def collect(self) -> None:
        for action in self.bot.actions():
            self.handle(action)

    def handle(self, action: Action) -> None:
        if isinstance(action, HttpRequest):
            self.requests.append(action)
        elif isinstance(action, Connect):
            self.conn = action.conn
            self.connects.append(action.url)
            self.server = FakeServer()
            self.bot.connection_made(self.conn, self.now)
            self.collect()
        elif isinstance(action, SendData) and self.server is not None:
            if answer := self.server.receive(action.data):
                self.bot.receive_data(self.conn, answer, self.now)
                self.collect()
        elif isinstance(action, Disconnect):
            self.server = None
            self.bot.connection_lost(self.conn, self.now, None)
            self.collect()
        elif isinstance(action, Deliver):
            self.delivered.append(action.event)
        elif isinstance(action, Failed):
            self.failed.append(action.reason)
        if isinstance(action, StateChanged | Failed):
            self.log.append(action)

    def answer(self, response: HttpResponse, index: int = -1) -> HttpRequest:
        request = self.requests.pop(index)
        self.bot.http_response(request.request_id, response, self.now)
        self.collect()
        return request

    def call(self, api_call: Any) -> int:
        call_id = self.bot.call(api_call, self.now)
        self.collect()
        return call_id

    def gateway_send(self, payload: dict[str, Any]) -> None:
        assert self.server is not None
        self.bot.receive_data(self.conn, self.server.send(payload), self.now)
        self.collect()

    def start(self) -> None:
        self.answer(token_reply())
        self.answer(reply(GATEWAY_BOT))
        self.gateway_send({"op": 10, "d": {"heartbeat_interval": 45000}})
        self.gateway_send(
            {"op": 0, "s": 1, "t": "READY", "d": {"session_id": "s-1", "user": {"id": "1"}}}
        )

    def advance(self, seconds: float) -> None:
        target = self.now + seconds
        fire_deadlines(self.bot, self.now, target, self._fire)
        self.now = target

    def _fire(self, now: float) -> None:
        self.now = now
        self.bot.handle_timer(now)
        self.collect()


# -- the passive-reply scenes ---------------------------------------------------------------


GROUP, USER = "B0F4C2E1D3A5968778695A4B3C2D1E0F", "6836D8522EE75AD3732E75C0D3B6F33A"
# Seed 003 (AstrBot #6931): the user's message, and the id the bot's first reply got back.
INBOUND = (
    "ROBOT1.0_BJkd-tCn0-jaN8Z9LqrswYvSio4gBHeEZ4Ll8fWlRBz5mBnCjAPEqFq-p328W.tO3rRho2Cag"
    "BvejX2fLfQ0N2LBnPsOL4m9jxp8NoXJm8s!"
)
FIRST_SENT = (
    "ROBOT1.0_rPi8nvmC5Vd7prorHpcvSx.FVqNgftgITNJlZJEwDOLHhnWCzgZTp23GuJgkfG34mXFVGFiu0y9g"
    "fEfQ4oQHJg!!"
)
GROUP_MSG = "ROBOT1.0_yiT7pdisg1abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH!"
SENT_AT = "2026-03-25T15:03:20+08:00"


def dispatch(w: World, t: str, d: dict[str, Any], seq: int, event_id: str) -> None:
    w.gateway_send({"op": 0, "s": seq, "t": t, "id": event_id, "d": d})


def group_at(w: World, msg_id: str = GROUP_MSG, seq: int = 2) -> GroupAtMessageCreate:
    d = {
        "id": msg_id,
        "content": " hi",
        "timestamp": "2025-09-08T23:13:34+08:00",
        "author": {"id": "M1", "member_openid": "M1"},
        "group_openid": GROUP,
    }
    dispatch(w, "GROUP_AT_MESSAGE_CREATE", d, seq, f"GROUP_AT_MESSAGE_CREATE:{seq}")
    return [e for e in w.delivered if isinstance(e, GroupAtMessageCreate)][-1]


def c2c(w: World, msg_id: str, seq: int = 2) -> C2CMessageCreate:
    d = {"id": msg_id, "content": "hi", "author": {"user_openid": USER}}
    dispatch(w, "C2C_MESSAGE_CREATE", d, seq, f"C2C_MESSAGE_CREATE:{seq}")
    event = w.delivered[-1]
    assert isinstance(event, C2CMessageCreate)
    return event


def body(request: HttpRequest) -> Any:
    return json.loads(request.body)


def results(w: World) -> list[ApiResult[Any]]:
    return [e for e in w.delivered if isinstance(e, ApiResult)]


def broken_group_at(w: World, event_id: str, msg_id: str = GROUP_MSG, seq: int = 2) -> None:
    """A group message without ``group_openid``: it fails its type and comes raw."""
    d = {"id": msg_id, "content": " hi", "author": {"member_openid": "M1"}}
    dispatch(w, "GROUP_AT_MESSAGE_CREATE", d, seq, event_id)


def raw_dispatches(w: World) -> list[Dispatch]:
    return [e for e in w.delivered if isinstance(e, Dispatch)]


def violations(w: World) -> list[ProtocolViolation]:
    return [e for e in w.delivered if isinstance(e, ProtocolViolation)]
