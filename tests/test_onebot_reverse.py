"""OneBotServer: implementations dialling the bot's reverse WebSocket, in memory.

Each "implementation" is qqproto's own WebSocket client, sending the headers
NapCat, Lagrange and go-cqhttp send (spec 1.5); the end-to-end tests against
another library's client live with the ``onebot serve`` command.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from typing import Any

import pytest

from qqproto.actions import Deliver, Disconnect, HttpRequest, Listen, SendData, StopListening
from qqproto.calls import CallTimeout
from qqproto.contract import Peer
from qqproto.errors import ConfigError, NotSent, ProtocolViolation
from qqproto.http import HttpConnection, HttpResponse
from qqproto.listener import ListenerState
from qqproto.onebot import ActionResult, MessageEvent, StreamFrame
from qqproto.onebot.actions import Action
from qqproto.onebot.reverse import OneBotServer
from qqproto.onebot.serving import Connected, Disconnected, ServeConfig, ServeRefused
from qqproto.ws import Closed, Opened, TextReceived, WebSocketClient

TOKEN = "s3cret"
NOW = 10.0


class Impl:
    """One implementation's connection, as the server sees it and as it sees the server."""

    def __init__(self, world: World, headers: tuple[tuple[str, str], ...], query: str = "") -> None:
        self.world = world
        self.conn = world.next_conn
        world.next_conn -= 1
        self.ws = WebSocketClient(
            f"ws://127.0.0.1:8080/{query}", random.Random(0).randbytes, extra_headers=headers
        )
        self.events: list[Any] = []  # what the server sent it
        self.closed = False
        world.server.connection_accepted(world.listener, self.conn, Peer("127.0.0.1", 5000), NOW)
        world.feed(self, self.ws.connect())

    @property
    def opened(self) -> bool:
        return any(isinstance(e, Opened) for e in self.events)

    def send(self, payload: object) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.world.feed(self, self.ws.send_text(text))

    def frames(self) -> list[Any]:
        return [json.loads(e.text) for e in self.events if isinstance(e, TextReceived)]


class World:
    def __init__(self, **config: Any) -> None:
        config.setdefault("access_token", TOKEN)
        self.server = OneBotServer(ServeConfig(port=0, **config))
        [listen] = self.server.actions()
        assert isinstance(listen, Listen)
        self.listener = listen.listener
        self.server.listening(self.listener, "127.0.0.1", 8080, NOW)
        self.server.actions()
        self.now = NOW
        self.next_conn = -1
        self.impls: dict[int, Impl] = {}
        self.delivered: list[object] = []
        self.posts: dict[int, HttpConnection] = {}  # POSTing clients, by connection
        self._posted_bytes: dict[int, bytes] = {}

    def answer_of(self, conn: int) -> HttpResponse:
        """The answer to connection ``conn``'s POST (a stand-in with status None
        while there is none yet)."""
        self.pump()
        data = self._posted_bytes.pop(conn, b"")
        responses = self.posts[conn].receive_data(data) if data else []
        if responses:
            return responses[0]
        return HttpResponse(None, (), b"")  # type: ignore[arg-type]  # "none yet"

    def feed(self, impl: Impl, data: bytes) -> None:
        self.impls[impl.conn] = impl
        self.server.receive_data(impl.conn, data, self.now)
        self.pump()

    def pump(self) -> None:
        for action in self.server.actions():
            if isinstance(action, SendData) and action.conn in self.posts:
                self._posted_bytes[action.conn] = (
                    self._posted_bytes.get(action.conn, b"") + action.data
                )
            elif isinstance(action, SendData):
                impl = self.impls[action.conn]
                impl.events += impl.ws.receive_data(action.data)
            elif isinstance(action, Disconnect):
                if action.conn in self.impls:
                    self.impls[action.conn].closed = True
                self.server.connection_lost(action.conn, self.now, None)
            elif isinstance(action, Deliver):
                self.delivered.append(action.event)

    def advance(self, seconds: float) -> None:
        end = self.now + seconds
        while (due := self.server.next_deadline()) is not None and due <= end:
            self.now = max(self.now, due)
            self.server.handle_timer(self.now)
            self.pump()
        self.now = end

    def of(self, kind: type) -> list[Any]:
        return [d for d in self.delivered if isinstance(d, kind)]

    def dial(self, self_id: str | None = "42", role: str | None = "Universal", **more: str) -> Impl:
        headers = [("Authorization", f"Bearer {TOKEN}")]
        if self_id is not None:
            headers.append(("X-Self-ID", self_id))
        if role is not None:
            headers.append(("X-Client-Role", role))
        headers += list(more.items())
        return Impl(self, tuple(headers))


def message(self_id: int, n: int) -> dict[str, object]:
    return {
        "post_type": "message",
        "message_type": "private",
        "self_id": self_id,
        "user_id": 7,
        "message_id": n,
        "message": [{"type": "text", "data": {"text": f"m{n}"}}],
    }


# -- the upgrade -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        ((), "", 401),
        ((("Authorization", "Bearer"),), "", 401),  # NapCat's "Bearer " (h11 strips the space)
        ((("Authorization", "Bearer nope"),), "", 403),
        ((("Authorization", "Basic s3cret"),), "", 403),
        ((), "?access_token=nope", 403),
    ],
)
def test_a_missing_or_wrong_token_is_refused_and_the_server_goes_on(
    headers: tuple[tuple[str, str], ...], query: str, status: int
) -> None:
    w = World()
    refused = Impl(w, (("X-Self-ID", "42"), *headers), query)
    assert not refused.opened and refused.closed
    [why] = w.of(ServeRefused)
    assert why.status == status
    assert w.dial().opened  # everyone else is served


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ((("Authorization", f"Token {TOKEN}"),), ""),  # go-cqhttp's scheme
        ((), f"?access_token={TOKEN}"),  # no header: the query
    ],
)
def test_other_ways_to_present_the_token(headers: tuple[tuple[str, str], ...], query: str) -> None:
    w = World()
    assert Impl(w, (("X-Self-ID", "42"), *headers), query).opened


def test_a_v11_upgrade_without_x_self_id_is_refused() -> None:
    w = World()
    impl = w.dial(self_id=None)
    assert not impl.opened and w.of(ServeRefused)[0].status == 400


def test_without_a_token_configured_everyone_is_let_in() -> None:
    w = World(access_token=None)
    assert Impl(w, (("X-Self-ID", "42"),)).opened


# -- events and actions ------------------------------------------------------------------------


def test_events_and_actions_of_two_accounts_on_one_endpoint() -> None:
    w = World()
    a, b = w.dial("1001"), w.dial("1002")
    assert [(c.self_id, c.role, c.version) for c in w.of(Connected)] == [
        ("1001", "universal", 11),
        ("1002", "universal", 11),
    ]
    a.send(message(1001, 1))
    b.send(message(1002, 2))
    assert [(e.self_id, e.text) for e in w.of(MessageEvent)] == [(1001, "m1"), (1002, "m2")]
    assert w.server.accounts == ["1001", "1002"]

    to_b = w.server.call("1002", Action("get_status"), w.now)
    w.pump()
    assert a.frames() == []
    [request] = b.frames()
    assert request == {"action": "get_status", "params": {}, "echo": str(to_b)}
    b.send({"status": "ok", "retcode": 0, "data": {"online": True}, "echo": request["echo"]})
    [result] = w.of(ActionResult)
    assert result.call_id == to_b and result.ok


def test_an_action_for_an_account_with_no_connection_is_not_sent() -> None:
    w = World()
    call = w.server.call("999", Action("get_status"), w.now)
    w.pump()
    [result] = w.of(ActionResult)
    assert result.call_id == call and isinstance(result.error, NotSent)


def test_a_new_connection_replaces_the_old_and_its_actions_end() -> None:
    w = World()
    old = w.dial("42")
    in_flight = w.server.call("42", Action("get_status"), w.now)
    w.pump()
    new = w.dial("42")
    assert old.closed and any(
        isinstance(e, Closed) and e.code == 1000 and "replaced" in e.reason for e in old.events
    )
    assert not new.closed and w.of(Connected)[-1].replaced
    [gone] = w.of(Disconnected)
    assert gone.conn == old.conn and "replaced" in gone.why
    [result] = w.of(ActionResult)
    assert result.call_id == in_flight and "outcome unknown" in str(result.error)
    w.server.call("42", Action("get_status"), w.now)
    w.pump()
    assert len(new.frames()) == 1  # the account's actions go to the new one


def test_lagranges_split_pair_events_on_one_actions_on_the_other() -> None:
    w = World()
    events = w.dial("42", role="Event")
    api = w.dial("42", role="Api")
    w.server.call("42", Action("get_status"), w.now)
    w.pump()
    assert events.frames() == [] and len(api.frames()) == 1
    events.send(message(42, 1))
    assert [e.text for e in w.of(MessageEvent)] == ["m1"]
    assert not events.closed and not api.closed  # two roles, no replacement


def test_v12_offers_its_subprotocol_and_names_its_account_by_its_events() -> None:
    w = World()
    impl = w.dial(self_id=None, **{"Sec-WebSocket-Protocol": "12.walle-q"})
    assert impl.opened
    [connected] = w.of(Connected)
    assert (connected.self_id, connected.version, connected.impl) == (None, 12, "walle-q")
    assert not w.of(ProtocolViolation)
    impl.send(
        {
            "id": "e1",
            "time": 1.5,
            "type": "message",
            "detail_type": "private",
            "sub_type": "",
            "self": {"platform": "qq", "user_id": "777"},
            "message_id": "m1",
            "message": [{"type": "text", "data": {"text": "hi"}}],
            "user_id": "9",
        }
    )
    assert w.server.accounts == ["777"]


def test_an_implementation_name_outside_the_grammar_is_let_in_and_said() -> None:
    w = World()
    impl = w.dial("42", **{"Sec-WebSocket-Protocol": "12.go_cqhttp"})  # go-cqhttp's v12
    assert impl.opened
    [connected] = w.of(Connected)
    assert connected.impl == "go_cqhttp"
    [violation] = w.of(ProtocolViolation)
    assert "grammar" in str(violation.error) and "go_cqhttp" in str(violation.error)


def test_a_streamed_answer_comes_frame_by_frame() -> None:
    w = World()
    impl = w.dial("42")
    call = w.server.call("42", Action("upload_file_stream"), w.now)
    w.pump()
    frame = {"status": "ok", "retcode": 0, "echo": str(call), "stream": "stream-action"}
    impl.send(frame | {"data": {"type": "stream"}})
    impl.send(frame | {"data": {"type": "response"}})
    assert len(w.of(StreamFrame)) == 1 and w.of(ActionResult)[0].ok


def test_hostile_frames_never_end_a_connection() -> None:
    w = World()
    impl = w.dial("42")
    for frame in ["{", "[]", "null", "[" * 3000, '{"echo": "77", "status": "ok"}']:
        impl.send(frame)
    impl.send(message(42, 1))
    assert not impl.closed and [e.text for e in w.of(MessageEvent)] == ["m1"]
    assert len(w.of(ProtocolViolation)) == 5


# -- time ---------------------------------------------------------------------------------------


def test_an_unanswered_action_times_out() -> None:
    w = World(call_timeout=5.0)
    w.dial("42")
    call = w.server.call("42", Action("get_status"), w.now)
    w.advance(5.1)
    [result] = w.of(ActionResult)
    assert result.call_id == call and isinstance(result.error, CallTimeout)


def test_a_connection_whose_heartbeats_stop_is_closed() -> None:
    w = World()
    impl = w.dial("42")
    impl.send({"post_type": "meta_event", "meta_event_type": "heartbeat", "interval": 5000})
    w.advance(12.4)
    assert not impl.closed
    w.advance(0.2)
    assert impl.closed and "heartbeats stopped" in w.of(Disconnected)[0].why
    assert w.server.accounts == []


def test_without_heartbeats_a_silent_connection_is_pinged_then_closed() -> None:
    w = World(ping_interval=10.0, ping_timeout=5.0)
    impl = w.dial("42")
    sent = len(impl.events)
    w.advance(10.1)
    assert not impl.closed  # a ping went out; our client's pong is not fed back here
    assert impl.ws.data_to_send()  # the pong it owes
    w.advance(5.0)
    assert impl.closed and "ping" in w.of(Disconnected)[0].why
    assert len(impl.events) > sent


def test_close_ends_every_connection_and_stops_listening() -> None:
    w = World()
    a = w.dial("1")
    w.server.close(w.now)
    actions = w.server.actions()
    assert any(isinstance(x, StopListening) for x in actions)
    assert w.server.state is ListenerState.CLOSED
    for action in actions:
        if isinstance(action, SendData):
            a.events += a.ws.receive_data(action.data)
    assert any(isinstance(e, Closed) and e.code == 1001 for e in a.events)


# -- events POSTed -------------------------------------------------------------------------------


def post(w: World, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    """One POST to the event path on a new connection; the answer, if one came yet."""
    conn = w.next_conn
    w.next_conn -= 1
    client = HttpConnection()
    w.server.connection_accepted(w.listener, conn, Peer("127.0.0.1", 6000), w.now)
    request = HttpRequest(1, "POST", "http://127.0.0.1:8080/onebot/event", headers, body)
    w.server.receive_data(conn, client.send(request), w.now)
    w.posts[conn] = client
    return w.answer_of(conn)


def sign(body: bytes, secret: str = "hush") -> tuple[tuple[str, str], ...]:
    digest = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return (("X-Signature", f"sha1={digest}"), ("X-Self-ID", "42"))


BODY = json.dumps(message(42, 5)).encode()


def test_a_signed_post_is_answered_204_and_delivered() -> None:
    w = World(secret="hush")
    response = post(w, BODY, sign(BODY))
    assert response.status == 204
    assert [e.text for e in w.of(MessageEvent)] == ["m5"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [((), 401), (sign(BODY, "other"), 403), (sign(BODY + b" "), 403)],
)
def test_an_unsigned_or_forged_post_is_refused_and_dropped(
    headers: tuple[tuple[str, str], ...], status: int
) -> None:
    w = World(secret="hush")
    assert post(w, BODY, headers).status == status
    assert w.of(MessageEvent) == [] and w.of(ServeRefused)[0].status == status


def test_a_post_that_is_no_event_is_400() -> None:
    w = World()
    for body in (b"not json", b"[1]", b'{"status": "ok", "retcode": 0}'):
        assert post(w, body).status == 400
    assert w.of(MessageEvent) == []


def test_a_v12_webhook_is_checked_by_the_token() -> None:
    w = World()
    v12 = json.dumps(
        {
            "id": "1",
            "time": 1.0,
            "type": "message",
            "detail_type": "private",
            "sub_type": "",
            "self": {"platform": "qq", "user_id": "9"},
            "message_id": "m",
            "user_id": "3",
            "message": [{"type": "text", "data": {"text": "v12 hi"}}],
        }
    ).encode()
    headers = (("X-OneBot-Version", "12"), ("X-Impl", "walle-q"))
    assert post(w, v12, headers).status == 401
    good = (*headers, ("Authorization", f"Bearer {TOKEN}"))
    assert post(w, v12, good).status == 204
    assert [e.text for e in w.of(MessageEvent)] == ["v12 hi"]


def test_a_quick_operation_within_the_window_is_the_answer() -> None:
    w = World(quick_window=2.0)
    assert post(w, BODY).status is None  # waiting for the application
    [event] = w.of(MessageEvent)
    assert w.server.quick_reply(event, {"reply": "pong", "auto_escape": True}, w.now)
    [conn] = w.posts
    response = w.answer_of(conn)
    assert response.status == 200 and response.json() == {"reply": "pong", "auto_escape": True}
    assert not w.server.quick_reply(event, {"reply": "twice"}, w.now)  # answered already


def test_without_a_quick_operation_the_window_ends_in_204() -> None:
    w = World(quick_window=2.0)
    post(w, BODY)
    w.advance(2.1)
    [conn] = w.posts
    assert w.answer_of(conn).status == 204


# -- what a review found -------------------------------------------------------------------------


def test_a_thousand_pipelined_posts_are_answered_in_order_without_recursion() -> None:
    w = World()
    bodies = [json.dumps(message(42, n)).encode() for n in range(1500)]
    stream = b"".join(
        b"POST /onebot/event HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b)
        for b in bodies
    )
    w.server.connection_accepted(w.listener, -99, Peer("127.0.0.1", 1), w.now)
    w.server.receive_data(-99, stream, w.now)
    out = b"".join(a.data for a in w.server.actions() if isinstance(a, SendData))
    assert out.count(b"HTTP/1.1 204 ") == 1500
    w.pump()


def test_events_of_pipelined_posts_reach_the_application_in_order() -> None:
    w = World()
    stream = b"".join(
        b"POST /onebot/event HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b)
        for b in (json.dumps(message(42, n)).encode() for n in range(5))
    )
    w.server.connection_accepted(w.listener, -99, Peer("127.0.0.1", 1), w.now)
    w.server.receive_data(-99, stream, w.now)
    events = [a.event for a in w.server.actions() if isinstance(a, Deliver)]
    assert [e.text for e in events if isinstance(e, MessageEvent)] == [f"m{n}" for n in range(5)]


def test_a_v12_header_never_skips_the_secret() -> None:
    w = World(secret="hush", access_token=None)
    headers = (("X-OneBot-Version", "12"),)
    assert post(w, BODY, headers).status == 401
    assert w.of(MessageEvent) == []


def test_a_body_of_the_other_version_is_refused() -> None:
    w = World()
    headers = (("X-OneBot-Version", "12"), ("Authorization", f"Bearer {TOKEN}"))
    assert post(w, BODY, headers).status == 400  # a v11 body under a v12 header


def test_frames_sent_with_the_upgrade_are_read_at_once() -> None:
    w = World()
    client = WebSocketClient("ws://127.0.0.1:8080/", random.Random(0).randbytes, extra_headers=(
        ("Authorization", f"Bearer {TOKEN}"), ("X-Self-ID", "42")))  # fmt: skip
    w.server.connection_accepted(w.listener, -50, Peer("127.0.0.1", 1), w.now)
    client_bytes = client.connect()
    # the client may not send before the 101, but nothing stops a peer that does
    early = b"\x81\x80\0\0\0\0"  # an empty masked text frame: a frame, and no event
    frame = client_bytes + early
    w.server.receive_data(-50, frame, w.now)
    delivered = [a.event for a in w.server.actions() if isinstance(a, Deliver)]
    assert isinstance(delivered[0], Connected)
    assert any(isinstance(d, ProtocolViolation) for d in delivered[1:])  # the "" frame, read


def test_a_universal_connection_replaces_an_event_one_of_its_account() -> None:
    w = World()
    event = w.dial("42", role="Event")
    w.dial("42")  # Universal
    assert event.closed and "replaced" in w.of(Disconnected)[0].why


def test_a_close_from_the_implementation_is_answered() -> None:
    w = World()
    impl = w.dial("42")
    w.server.receive_data(impl.conn, impl.ws.close(1000), w.now)
    actions = w.server.actions()
    sent = b"".join(a.data for a in actions if isinstance(a, SendData) and a.conn == impl.conn)
    assert sent[:1] == b"\x88"  # a close frame back, before the transport goes
    assert any(isinstance(a, Disconnect) and a.conn == impl.conn for a in actions)


def test_an_empty_authorization_header_is_no_token() -> None:
    w = World()
    Impl(w, (("X-Self-ID", "42"), ("Authorization", "")))
    assert w.of(ServeRefused)[0].status == 401


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match="secret"):
        ServeConfig(secret="")


def test_an_event_for_another_account_on_a_socket_is_its_sockets_and_said() -> None:
    w = World()
    impl = w.dial("42")
    impl.send(message(7, 1))  # self_id 7 on account 42's connection
    [event] = w.of(MessageEvent)
    assert event.self_id == 42  # answers go back where it came from
    [violation] = w.of(ProtocolViolation)
    assert "another account" in str(violation.error)


def test_an_answer_on_another_accounts_socket_settles_nothing() -> None:
    w = World()
    a, b = w.dial("1"), w.dial("2")
    call = w.server.call("1", Action("get_status"), w.now)
    w.pump()
    [frame] = a.frames()
    b.send({"status": "failed", "retcode": 1404, "data": None, "echo": frame["echo"]})
    assert not w.of(ActionResult)
    assert "another connection" in str(w.of(ProtocolViolation)[0].error)
    a.send({"status": "ok", "retcode": 0, "data": {}, "echo": frame["echo"]})
    [result] = w.of(ActionResult)
    assert result.call_id == call and result.ok


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/", (), 426),  # the WebSocket path is no event path
        ("POST", "/onebot/event", (("Authorization", "Bearer nope"),), 403),  # a wrong token
        ("POST", "/onebot/event", (("X-Self-ID", "43"),), 400),  # another account's header
    ],
)
def test_requests_that_are_no_good_event_posts(
    method: str, path: str, headers: tuple[tuple[str, str], ...], status: int
) -> None:
    w = World()
    conn = w.next_conn
    w.next_conn -= 1
    client = HttpConnection()
    w.server.connection_accepted(w.listener, conn, Peer("127.0.0.1", 6000), w.now)
    request = HttpRequest(1, method, f"http://127.0.0.1:8080{path}", headers, BODY)
    w.server.receive_data(conn, client.send(request), w.now)
    w.posts[conn] = client
    assert w.answer_of(conn).status == status
    assert not w.of(MessageEvent)


def test_an_empty_bearer_falls_back_to_the_query_token() -> None:
    w = World()
    empty = (("Authorization", "Bearer"), ("X-Self-ID", "42"))  # NapCat's, as h11 sends it
    impl = Impl(w, empty, query=f"?access_token={TOKEN}")
    assert impl.opened


def test_bytes_sent_ahead_of_a_pending_answer_are_bounded() -> None:
    """A POST waiting for its quick operation: a client that streams on is let
    go once it sent more than one whole request could hold, and the late
    quick operation has nowhere to go (no error)."""
    w = World(quick_window=30.0, max_body_size=1024)
    post(w, BODY)
    [conn] = w.posts
    [event] = w.of(MessageEvent)
    for _ in range(100):
        w.server.receive_data(conn, b"x" * 1024, w.now)
    out = w.server.actions()
    assert Disconnect(conn) in out  # let go, its bytes dropped
    refusals = [
        a.event for a in out if isinstance(a, Deliver) and isinstance(a.event, ServeRefused)
    ]
    assert len(refusals) == 1 and "ahead of an answer" in refusals[0].why
    # Before the driver says the connection is gone, the answer has nowhere to go.
    assert w.server.quick_reply(event, {"reply": "late"}, w.now)
    assert not [a for a in w.server.actions() if isinstance(a, SendData)]
