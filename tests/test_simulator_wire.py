"""QQSimulator at the byte level: HTTP keep-alive and upgrade, gateway checks, garbage."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from qqproto.actions import HttpRequest
from qqproto.http import HttpConnection, HttpResponse
from qqproto.testing import QQSimulator, SimConnection, SimulatorConfig
from qqproto.ws import Closed, TextReceived, WebSocketClient

BASE = "http://127.0.0.1:9"


class Raw:
    """A hand-driven client on one simulator connection: HTTP requests, then maybe WS."""

    def __init__(self, sim: QQSimulator, now: float = 0.0) -> None:
        self.sim = sim
        self.conn: SimConnection = sim.accept(now)
        self.http = HttpConnection()
        self.ws: WebSocketClient | None = None
        self.closed: Closed | None = None
        self._ids = 0

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, now: float = 0.0
    ) -> HttpResponse:
        headers = [("Authorization", f"QQBot {token}")] if token else []
        data = json.dumps(body).encode() if body is not None else b""
        self._ids += 1
        request = HttpRequest(self._ids, method, BASE + path, tuple(headers), data)
        self.conn.receive_data(self.http.send(request), now)
        [response] = self.http.receive_data(self.conn.data_to_send())
        return response

    def token(self, now: float = 0.0) -> str:
        body = {"appId": self.sim.config.app_id, "clientSecret": self.sim.config.secret}
        token: str = self.request("POST", "/app/getAppAccessToken", body, now=now).json()[
            "access_token"
        ]
        return token

    def upgrade(self, now: float = 0.0) -> list[Any]:
        self.ws = WebSocketClient("ws://127.0.0.1:9/websocket", random.Random(1).randbytes)
        self.conn.receive_data(self.ws.connect(), now)
        return self.recv()

    def send(self, payload: Any, now: float = 0.0) -> list[Any]:
        assert self.ws is not None
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.conn.receive_data(self.ws.send_text(text), now)
        return self.recv()

    def recv(self) -> list[Any]:
        """The payloads the server sent since last time (a Closed last, if it closed)."""
        assert self.ws is not None
        out: list[Any] = []
        data = self.conn.data_to_send()
        if not data:  # b"" would be EOF
            return out
        for event in self.ws.receive_data(data):
            if isinstance(event, TextReceived):
                out.append(json.loads(event.text))
            elif isinstance(event, Closed):
                self.closed = event
                out.append(event)
        return out

    def identify(self, access_token: str, now: float = 0.0, **d: Any) -> list[Any]:
        body = {"token": f"QQBot {access_token}", "intents": 1 << 25, "shard": [0, 1], **d}
        return self.send({"op": 2, "d": body}, now)


def test_keep_alive_requests_then_an_upgrade_on_one_connection() -> None:
    sim = QQSimulator()
    raw = Raw(sim)
    token = raw.token()
    info = raw.request("GET", "/gateway/bot", token=token).json()
    assert info == {
        "url": "ws://127.0.0.1:9/websocket",
        "shards": 1,
        "session_start_limit": {
            "total": 1000,
            "remaining": 1000,
            "reset_after": 14_400_000,
            "max_concurrency": 1,
        },
    }
    assert raw.request("GET", "/users/@me", token=token).json()["id"] == sim.config.bot_id
    [hello] = raw.upgrade()
    assert hello == {"op": 10, "d": {"heartbeat_interval": 41250}}
    [ready] = raw.identify(token)
    assert ready["op"] == 0 and ready["s"] == 1 and ready["t"] == "READY"
    assert ready["d"]["user"] == {"id": sim.config.bot_id, "username": "qqproto-sim", "bot": True}
    assert ready["d"]["shard"] == [0, 1] and ready["d"]["version"] == 1
    assert sim.live and not raw.conn.closed
    assert raw.send({"op": 1, "d": 1}) == [{"op": 11}]
    assert sim.session_starts_remaining == 999


def test_token_errors_and_rest_auth() -> None:
    sim = QQSimulator()
    raw = Raw(sim)
    wrong = raw.request(
        "POST", "/app/getAppAccessToken", {"appId": "102000000", "clientSecret": "x"}
    )
    assert wrong.status == 200 and wrong.json() == {
        "code": 100016,
        "message": "invalid appid or secret",
    }
    token = raw.token(now=0)
    again = raw.request(
        "POST",
        "/app/getAppAccessToken",
        {"appId": "102000000", "clientSecret": "simulator-secret"},
        now=100,
    )
    assert again.json() == {"access_token": token, "expires_in": "7100"}  # same token, less life
    no_auth = raw.request("GET", "/gateway/bot")
    assert no_auth.status == 401 and no_auth.json()["code"] == 11244
    assert no_auth.header("x-tps-trace-id") == no_auth.json()["trace_id"]
    assert raw.request("GET", "/nowhere", token=token).status == 404
    sim.expire_tokens(200)
    assert raw.request("GET", "/gateway", token=token, now=200).status == 401


def test_gateway_refuses_bad_identifies() -> None:
    sim = QQSimulator(SimulatorConfig(shards=2, allowed_intents=1 << 25))
    token = Raw(sim).token()

    def closed_with(**d: Any) -> int | None:
        raw = Raw(sim)
        raw.upgrade()
        result = raw.identify(token, **d)
        if raw.closed is None:
            op: int = result[0]["op"]
            return op * 1000 + int(bool(result[0]["d"]))  # op 9 -> 9000
        return raw.closed.code

    assert closed_with(token="QQBot nope") == 4004
    assert closed_with(shard=[2, 2]) == 4010
    assert closed_with(shard=[0, 1]) == 4011
    assert closed_with(intents="all") == 4013
    assert closed_with(intents=1 << 30, shard=[0, 2]) == 9000  # not granted: op 9 false
    raw = Raw(sim)
    raw.upgrade()
    assert raw.identify(token, shard=[1, 2])[0]["t"] == "READY"
    raw.identify(token, shard=[1, 2])
    assert raw.closed is not None and raw.closed.code == 4005


def test_resume_checks_and_replay() -> None:
    sim = QQSimulator()
    raw = Raw(sim)
    token = raw.token()
    raw.upgrade()
    session = raw.identify(token)[0]["d"]["session_id"]
    sim.c2c_message("one", 1.0)
    [one] = raw.recv()
    assert one["s"] == 2 and one["id"].startswith("C2C_MESSAGE_CREATE:")
    sim.drop(2.0)
    assert raw.conn.closed and raw.conn.data_to_send() == b""  # no close frame
    sim.c2c_message("two", 3.0)
    sim.c2c_message("three", 3.0)
    resume = {"token": f"QQBot {token}", "session_id": session, "seq": 2}

    bad = Raw(sim)
    bad.upgrade()
    bad.send({"op": 6, "d": {**resume, "seq": 99}})
    assert bad.closed is not None and bad.closed.code == 4007
    unknown = Raw(sim)
    unknown.upgrade()
    assert unknown.send({"op": 6, "d": {**resume, "session_id": "nope"}}) == [{"op": 9, "d": False}]

    again = Raw(sim)
    again.upgrade()
    replay = again.send({"op": 6, "d": resume}, now=4.0)
    assert [(p["s"], p["t"], p["d"] and p["d"].get("content")) for p in replay] == [
        (3, "C2C_MESSAGE_CREATE", "two"),
        (4, "C2C_MESSAGE_CREATE", "three"),
        (5, "RESUMED", ""),
    ]
    assert [d.seq for d in sim.delivered] == [2, 3, 4]
    assert sim.resumes[-1].replayed == 2
    # past the resume window the session is gone
    sim.drop(5.0)
    late = Raw(sim, now=400.0)
    late.upgrade(now=400.0)
    late_resume = {**resume, "seq": 5}
    assert late.send({"op": 6, "d": late_resume}, now=400.0)[0] == {"op": 9, "d": False}


def test_a_silent_client_is_closed_with_4009_and_op7_dismisses() -> None:
    sim = QQSimulator()
    raw = Raw(sim)
    raw.upgrade()
    assert sim.next_deadline() == 82.5  # twice the interval
    sim.handle_timer(82.5)
    assert raw.recv()[-1].code == 4009
    token = Raw(sim).token()
    other = Raw(sim)
    other.upgrade()
    other.identify(token)
    sim.reconnect(1.0)
    assert other.recv() == [{"op": 7, "d": None}]
    sim.c2c_message("held back", 1.0)
    assert other.recv() == []  # no dispatch after op 7
    sim.handle_timer(6.0)
    assert other.recv()[-1].code == 4009


def test_bad_frames_get_the_gateway_close_codes() -> None:
    sim = QQSimulator()
    for payload, code in [("not json", 4002), ('{"op": 5}', 4001), ("[1]", 4002)]:
        raw = Raw(sim)
        raw.upgrade()
        raw.send(payload)
        assert raw.closed is not None and raw.closed.code == code


def test_wakeup_fires_for_output_outside_the_connections_own_receive() -> None:
    sim = QQSimulator()
    calls: list[int] = []
    sim.wakeup = lambda: calls.append(len(calls))
    token = Raw(sim).token()
    raw = Raw(sim)
    raw.upgrade()
    raw.identify(token)
    assert calls == []  # all of that was answered within receive_data
    sim.c2c_message("hi", 1.0)
    assert calls == [0]
    sim.lose_acks(1)  # no output: no wakeup
    sim.close(4009, 2.0)
    assert calls == [0, 1] and raw.conn.closed


@given(st.binary(max_size=300), st.booleans())
def test_garbage_bytes_never_raise(data: bytes, upgraded: bool) -> None:
    sim = QQSimulator()
    raw = Raw(sim)
    if upgraded:
        raw.upgrade()
    raw.conn.receive_data(data, 1.0)
    raw.conn.data_to_send()
    raw.conn.receive_data(data[::-1], 2.0)
    raw.conn.receive_data(b"", 3.0)
    raw.conn.connection_lost(3.0)
    raw.conn.receive_data(data, 4.0)
    sim.handle_timer(1000.0)
    assert raw.conn.closed


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
payloads = st.one_of(
    json_values,
    st.fixed_dictionaries({"op": st.sampled_from([1, 2, 6, 0, 11, -1]), "d": json_values}),
    st.fixed_dictionaries(
        {
            "op": st.just(2),
            "d": st.fixed_dictionaries(
                {"token": st.just("QQBot T")},
                optional={"intents": json_values, "shard": json_values},
            ),
        }
    ),
)


@given(st.lists(payloads, max_size=4), st.booleans())
def test_any_json_payload_gets_an_answer_or_a_close_never_an_exception(
    sent: list[Any], log_in: bool
) -> None:
    sim = QQSimulator()
    token = Raw(sim).token()
    raw = Raw(sim)
    raw.upgrade()
    if log_in:
        raw.identify(token)
    for payload in sent:
        if raw.conn.closed:
            break
        raw.send(json.dumps(payload).replace("QQBot T", f"QQBot {token}"), 1.0)
    sim.c2c_message("still fine?", 2.0)
    sim.handle_timer(1000.0)
    assert raw.conn.closed


def test_frames_in_the_same_read_as_the_upgrade_are_not_lost() -> None:
    sim = QQSimulator()
    token = Raw(sim).token()
    raw = Raw(sim)
    raw.ws = WebSocketClient("ws://127.0.0.1:9/websocket", random.Random(1).randbytes)
    identify = {"op": 2, "d": {"token": f"QQBot {token}", "intents": 0, "shard": [0, 1]}}
    frame = Connection(ConnectionType.CLIENT).send(TextMessage(json.dumps(identify)))
    raw.conn.receive_data(raw.ws.connect() + frame, 0.0)
    assert [p["op"] for p in raw.recv()] == [10, 0]
    assert sim.live


def test_identify_and_resume_need_the_qqbot_prefix() -> None:
    # Spec 1.3: `QQBot <token>` for both; a bare token on Resume is one SDK's bug.
    sim = QQSimulator()
    raw = Raw(sim)
    token = raw.token()
    raw.upgrade()
    session = raw.identify(token)[0]["d"]["session_id"]
    sim.drop(1.0)
    for name, value in [("bare", token), ("Bot", f"Bot {sim.config.app_id}.{token}")]:
        bare = Raw(sim)
        bare.upgrade()
        bare.send({"op": 6, "d": {"token": value, "session_id": session, "seq": 1}})
        assert bare.closed is not None and bare.closed.code == 4004, name
        other = Raw(sim)
        other.upgrade()
        other.identify(token, token=value)
        assert other.closed is not None and other.closed.code == 4004, name
    assert [r.outcome for r in sim.resumes] == ["4004 authentication failed"] * 2
    good = Raw(sim)
    good.upgrade()
    resumed = good.send({"op": 6, "d": {"token": f"QQBot {token}", "session_id": session}})
    assert resumed[-1]["t"] == "RESUMED"  # the refusals left the session alone
