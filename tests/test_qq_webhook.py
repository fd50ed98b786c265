"""The QQ webhook endpoint (spec section 10): keys, signatures, every answer it gives.

Requests are signed here with ``cryptography`` directly, from the seed rule of
spec 10.1 written out again, not with qqproto's signing module: a mistake in
ours cannot hide behind the same mistake in the test.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from qqproto.actions import Deliver, Disconnect, HttpRequest, Listen, SendData, StateChanged
from qqproto.contract import Peer
from qqproto.errors import ConfigError, ProtocolViolation
from qqproto.http import HttpConnection, HttpResponse
from qqproto.listener import ListenerState
from qqproto.qq import C2CMessageCreate, Dispatch
from qqproto.qq.signing import CallbackKey, derive_seed
from qqproto.qq.webhook import ACK, QQWebhook, WebhookConfig, WebhookRefused

APP_ID, SECRET = "102000000", "DG5g3B4j9X2KOErG"
NOW, WALL = 100.0, 1_725_442_341.0  # the driver's clock, and the wall time it stands for
PEER = Peer("203.0.113.7", 40000)


def platform_key(secret: str = SECRET) -> Ed25519PrivateKey:
    raw = secret.encode()
    while len(raw) < 32:
        raw += raw
    return Ed25519PrivateKey.from_private_bytes(raw[:32])


def signed(body: bytes, *, ts: str | None = None, key: Ed25519PrivateKey | None = None) -> Any:
    stamp = ts or str(int(WALL))
    signature = (key or platform_key()).sign(stamp.encode() + body).hex()
    return (("X-Signature-Ed25519", signature), ("X-Signature-Timestamp", stamp))


def dispatch(event_id: str = "C2C_MESSAGE_CREATE:abc", content: str = "hi") -> bytes:
    d = {
        "id": "ROBOT1.0_msg",
        "content": content,
        "timestamp": "2024-09-04T17:32:21+08:00",
        "author": {"id": "u1", "user_openid": "u1", "union_openid": "u1"},
    }
    envelope = {"id": event_id, "op": 0, "s": 7, "t": "C2C_MESSAGE_CREATE", "d": d}
    return json.dumps(envelope).encode()


class Served:
    """A QQWebhook, listening, with one client connection."""

    def __init__(self, **config: Any) -> None:
        config.setdefault("wall_offset", WALL - NOW)
        self.hook = QQWebhook(WebhookConfig(APP_ID, SECRET, port=0, **config))
        [listen] = self.hook.actions()
        assert isinstance(listen, Listen)
        self.hook.listening(listen.listener, "127.0.0.1", 8443, NOW)
        self.changes = [a for a in self.hook.actions() if isinstance(a, StateChanged)]
        self.listener = listen.listener
        self.conn = -1
        self.delivered: list[object] = []
        self._open()

    def _open(self) -> None:
        self.hook.connection_accepted(self.listener, self.conn, PEER, NOW)
        self.client = HttpConnection()

    def post(
        self,
        body: bytes,
        headers: Any = (),
        *,
        method: str = "POST",
        path: str = "/",
        now: float = NOW,
    ) -> HttpResponse:
        request = HttpRequest(1, method, f"http://127.0.0.1:8443{path}", tuple(headers), body)
        self.hook.receive_data(self.conn, self.client.send(request), now)
        out = b""
        closed = False
        for action in self.hook.actions():
            if isinstance(action, SendData):
                out += action.data
            elif isinstance(action, Deliver):
                self.delivered.append(action.event)
            elif isinstance(action, Disconnect):
                closed = True
        [response] = self.client.receive_data(out)
        if closed:  # the server let the connection go: a new one for the next request
            self.hook.connection_lost(self.conn, now)
            self.conn -= 1
            self._open()
        return response

    def refusals(self) -> list[WebhookRefused]:
        return [d for d in self.delivered if isinstance(d, WebhookRefused)]


# -- keys --------------------------------------------------------------------------------------


def test_the_seed_is_the_secret_repeated_to_32_bytes() -> None:
    assert derive_seed("naOC0ocQE3shWLAfffVLB1rhYPG7") == b"naOC0ocQE3shWLAfffVLB1rhYPG7naOC"
    assert derive_seed("ab") == b"ab" * 16
    assert derive_seed("x" * 40) == b"x" * 32
    with pytest.raises(ConfigError):
        derive_seed("")


def test_the_official_public_key_vector() -> None:
    key = CallbackKey("naOC0ocQE3shWLAfffVLB1rhYPG7")
    assert list(key.public_bytes) == [
        215, 195, 98, 254, 120, 174, 248, 31, 242, 50, 135, 180, 147, 98, 139, 93,
        176, 42, 60, 79, 227, 11, 33, 94, 77, 25, 96, 155, 93, 118, 103, 58,
    ]  # fmt: skip


OFFICIAL_SIGNATURE = (
    "87befc99c42c651b3aac0278e71ada338433ae26fcb24307bdc5ad38c1adc2d0"
    "1bcfcadc0842edac85e85205028a1132afe09280305f13aa6909ffc2d652c706"
)


def test_the_official_validation_vector() -> None:
    key = CallbackKey(SECRET)
    message = b"1725442341Arq0D5A61EgUu4OxUvOp"
    assert key.sign(message).hex() == OFFICIAL_SIGNATURE
    assert key.verify(OFFICIAL_SIGNATURE, message)


@pytest.mark.parametrize(
    "signature",
    [
        "zz" * 64,  # not hex
        OFFICIAL_SIGNATURE[:-2],  # 63 bytes
        OFFICIAL_SIGNATURE[:-2] + "ff",  # top bits of the last byte set
        OFFICIAL_SIGNATURE[:-2] + "07",  # a valid form, the wrong value
        "",
    ],
)
def test_a_bad_signature_is_refused(signature: str) -> None:
    assert not CallbackKey(SECRET).verify(signature, b"1725442341Arq0D5A61EgUu4OxUvOp")


# -- the endpoint ----------------------------------------------------------------------------


def test_it_listens_and_says_where() -> None:
    served = Served()
    assert served.hook.state is ListenerState.LISTENING and served.hook.port == 8443
    assert [(c.old, c.new) for c in served.changes] == [("STARTING", "LISTENING")]


@pytest.mark.parametrize("signed_too", [False, True])
def test_op_13_is_answered_with_the_official_signature(signed_too: bool) -> None:
    served = Served()
    body = b'{"d": {"plain_token": "Arq0D5A61EgUu4OxUvOp", "event_ts": "1725442341"}, "op": 13}'
    response = served.post(body, signed(body) if signed_too else ())
    assert response.status == 200
    assert response.json() == {
        "plain_token": "Arq0D5A61EgUu4OxUvOp",
        "signature": OFFICIAL_SIGNATURE,
    }


@pytest.mark.parametrize(
    "d",
    [
        {"plain_token": '{"op":0}', "event_ts": "1"},  # would sign a callback body
        {"plain_token": "ok", "event_ts": "1 {"},
        {"plain_token": "", "event_ts": "1"},
        {"event_ts": "1"},
        "nope",
    ],
)
def test_op_13_signs_only_a_token_and_a_timestamp(d: object) -> None:
    served = Served()
    response = served.post(json.dumps({"op": 13, "d": d}).encode())
    assert response.status == 400 and b"signature" not in response.body


def test_a_signed_dispatch_is_acknowledged_and_delivered_once() -> None:
    served = Served()
    body = dispatch()
    first = served.post(body, signed(body))
    assert (first.status, first.body) == (200, ACK)
    [event] = served.delivered
    assert isinstance(event, C2CMessageCreate) and event.content == "hi"
    assert event.event_id == "C2C_MESSAGE_CREATE:abc"

    again = served.post(body, signed(body, ts=str(int(WALL) + 5)), now=NOW + 5)
    assert (again.status, again.body) == (200, ACK)  # acknowledged, not delivered again
    assert len(served.delivered) == 1 and served.hook.redeliveries == 1


def test_an_unknown_event_type_is_delivered_raw() -> None:
    served = Served()
    body = b'{"id": "X:1", "op": 0, "t": "SOMETHING_NEW", "d": {"a": 1}}'
    assert served.post(body, signed(body)).status == 200
    [event] = served.delivered
    assert isinstance(event, Dispatch) and event.type == "SOMETHING_NEW" and event.data == {"a": 1}


def test_a_typed_event_with_a_bad_field_is_delivered_raw_and_reported() -> None:
    served = Served()
    body = b'{"id": "X:2", "op": 0, "t": "C2C_MESSAGE_CREATE", "d": {"id": 5}}'
    assert served.post(body, signed(body)).status == 200
    violation, event = served.delivered
    assert isinstance(violation, ProtocolViolation) and isinstance(event, Dispatch)


@pytest.mark.parametrize(
    ("make", "status", "why"),
    [
        (lambda b: (), 401, "no X-Signature"),
        (lambda b: signed(b + b" "), 401, "does not match"),
        (lambda b: signed(b, key=platform_key("another-secret")), 401, "does not match"),
        (  # another bot's callback: the 401 names the likely cause
            lambda b: (*signed(b, key=platform_key("another-secret")), ("X-Bot-Appid", "999")),
            401,
            "X-Bot-Appid '999' names another bot",
        ),
        (lambda b: signed(b, ts=str(int(WALL) - 86_400)), 401, "outside the window"),
        (lambda b: signed(b, ts=str(int(WALL) + 3600)), 401, "outside the window"),
        (lambda b: signed(b, ts="soon"), 401, "outside the window"),
    ],
)
def test_an_unsigned_forged_or_stale_dispatch_gets_401_and_no_event(
    make: Any, status: int, why: str
) -> None:
    served = Served()
    body = dispatch()
    response = served.post(body, make(body))
    assert response.status == status
    [refused] = served.refusals()
    assert why in refused.why and refused.peer == PEER
    assert not [d for d in served.delivered if not isinstance(d, WebhookRefused)]


@pytest.mark.parametrize(
    ("body", "why"),
    [(b"not json", "no JSON object"), (b"[1]", "no JSON object"), (b'{"op": 7}', "op 7")],
)
def test_a_signed_body_that_is_no_callback_gets_400(body: bytes, why: str) -> None:
    served = Served()
    response = served.post(body, signed(body))
    assert response.status == 400
    assert why in served.refusals()[0].why


def test_the_http_piece_answers_wrong_methods_paths_and_sizes() -> None:
    served = Served(max_body_size=1024)
    assert served.post(b"", method="GET").status == 405
    assert served.post(b"{}", path="/elsewhere").status == 404
    big = b"{" + b" " * 2000 + b"}"
    assert served.post(big, signed(big)).status == 413
    assert [r.status for r in served.refusals()] == [405, 404, 413]
    body = dispatch()
    assert served.post(body, signed(body)).status == 200  # and it goes on serving


def test_keep_alive_serves_several_callbacks_on_one_connection() -> None:
    served = Served()
    for n in range(3):
        body = dispatch(event_id=f"E:{n}", content=str(n))
        assert served.post(body, signed(body)).status == 200
    assert served.conn == -1  # the same connection throughout
    assert [e.content for e in served.delivered if isinstance(e, C2CMessageCreate)] == [
        "0",
        "1",
        "2",
    ]


def test_close_stops_listening_and_lets_connections_go() -> None:
    served = Served()
    served.hook.close(NOW)
    actions = served.hook.actions()
    assert served.hook.state is ListenerState.CLOSED
    assert any(isinstance(a, Disconnect) and a.conn == served.conn for a in actions)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), sign=st.booleans(), op13=st.booleans())
def test_any_body_gets_an_answer_and_never_an_exception(
    body: bytes, sign: bool, op13: bool
) -> None:
    served = Served()
    if op13:
        body = b'{"op":13,"d":' + body + b"}"
    response = served.post(body, signed(body) if sign else ())
    assert response.status in (200, 400, 401)
    if response.status == 200 and not op13 and b"plain_token" not in response.body:
        assert response.body == ACK  # (a body that is an op 13 itself gets its signature)


# -- what a review found -------------------------------------------------------------------------


def test_a_thousand_pipelined_callbacks_are_answered_in_order_without_recursion() -> None:
    served = Served()
    stream = b""
    for n in range(1200):
        body = dispatch(event_id=f"E:{n}", content=str(n))
        head = "".join(f"{k}: {v}\r\n" for k, v in signed(body))
        stream += (
            f"POST / HTTP/1.1\r\nHost: b\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode()
        )
        stream += body
    served.hook.receive_data(served.conn, stream, NOW)
    actions = served.hook.actions()
    out = b"".join(a.data for a in actions if isinstance(a, SendData))
    assert out.count(b"HTTP/1.1 200 ") == 1200
    events = [a.event for a in actions if isinstance(a, Deliver)]
    contents = [e.content for e in events if isinstance(e, C2CMessageCreate)]
    assert contents == [str(n) for n in range(1200)]  # in the order they came


def test_a_signed_op_13_that_msgspec_cannot_read_gets_400_not_a_crash() -> None:
    served = Served()
    body = b'{"op": 13, "d": {"plain_token": "a", "event_ts": "1"}, "x": "\\ud800"}'
    assert served.post(body, signed(body)).status == 400


def test_an_endpoint_needs_to_be_told_the_wall_clock() -> None:
    with pytest.raises(ConfigError, match="wall_offset"):
        QQWebhook(WebhookConfig(APP_ID, SECRET))


def test_a_connection_that_brings_no_whole_request_is_let_go() -> None:
    served = Served()
    served.hook.receive_data(served.conn, b"POST / HTTP/1.1\r\nHost: b\r\nContent-Len", NOW)
    served.hook.actions()
    deadline = served.hook.next_deadline()
    assert deadline == NOW + 60.0
    served.hook.handle_timer(deadline - 0.1)
    assert not [a for a in served.hook.actions() if isinstance(a, Disconnect)]
    served.hook.handle_timer(deadline)
    actions = served.hook.actions()
    assert any(isinstance(a, Disconnect) and a.conn == served.conn for a in actions)
    refused = [a.event for a in actions if isinstance(a, Deliver)]
    assert isinstance(refused[0], WebhookRefused) and "no whole request" in refused[0].why


def test_connections_past_the_cap_are_let_go_at_once() -> None:
    served = Served()
    served.hook.max_connections = 1  # the one Served opened
    served.hook.connection_accepted(served.listener, -50, PEER, NOW)
    assert any(isinstance(a, Disconnect) and a.conn == -50 for a in served.hook.actions())
