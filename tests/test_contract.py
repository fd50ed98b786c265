"""qqproto.contract: every object answers every call; one executor loop for all drivers."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from qqproto.actions import (
    Action,
    Connect,
    Deliver,
    Disconnect,
    Failed,
    HttpRequest,
    Listen,
    SendData,
    StateChanged,
    StopListening,
)
from qqproto.contract import Driven, Peer, carry_out, driver_ids
from qqproto.errors import LocalProtocolError
from qqproto.http import HttpResponse
from qqproto.qq import GatewayConfig, GatewayProtocol

from .gateway_harness import Harness

CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("connection_made", (1, 0.0)),
    ("connection_accepted", (1, -1, Peer("127.0.0.1", 5000), 0.0)),
    ("receive_data", (1, b"x", 0.0)),
    ("connection_lost", (1, 0.0, "reset")),
    ("listening", (1, "127.0.0.1", 80, 0.0)),
    ("listener_lost", (1, 0.0, None)),
    ("http_response", (1, HttpResponse(200, (), b""), 0.0)),
    ("http_failed", (1, 0.0, "timed out")),
]


@pytest.mark.parametrize(("call", "args"), CALLS, ids=[c for c, _ in CALLS])
def test_a_call_an_object_does_not_use_is_a_local_protocol_error(
    call: str, args: tuple[Any, ...]
) -> None:
    class Quiet(Driven):
        pass

    with pytest.raises(LocalProtocolError, match=f"Quiet has nothing that {call} could answer"):
        getattr(Quiet(), call)(*args)


def test_the_calls_every_object_answers_do_nothing_by_default() -> None:
    quiet = Driven()
    assert quiet.actions() == [] and quiet.next_deadline() is None
    quiet.handle_timer(5.0)
    quiet.close(5.0)
    assert quiet.actions() == [] and quiet.failure_reason is None


def test_ids_of_the_object_and_of_the_driver_never_meet() -> None:
    ours = list(itertools.islice(Driven()._ids, 3))
    theirs = list(itertools.islice(driver_ids(), 3))
    assert ours == [1, 2, 3] and theirs == [-1, -2, -3]


def test_objects_built_inside_another_share_its_counter() -> None:
    outer = Driven()
    next(outer._ids)
    gateway = GatewayProtocol(GatewayConfig("1"), ids=outer._ids)
    [_, connect] = gateway.actions()
    assert connect == Connect(2, "wss://api.sgroup.qq.com/websocket/")


def test_a_peer_reads_as_an_address() -> None:
    assert str(Peer("10.0.0.1", 443)) == "10.0.0.1:443"
    assert str(Peer("::1", 8080)) == "[::1]:8080"


class Recorder:
    def __init__(self) -> None:
        self.done: list[tuple[Any, ...]] = []

    def connect(self, conn: int, url: str) -> None:
        self.done.append(("connect", conn, url))

    def send(self, conn: int, data: bytes) -> None:
        self.done.append(("send", conn, data))

    def disconnect(self, conn: int) -> None:
        self.done.append(("disconnect", conn))

    def listen(self, listener: int, host: str, port: int) -> None:
        self.done.append(("listen", listener, host, port))

    def stop_listening(self, listener: int) -> None:
        self.done.append(("stop_listening", listener))

    def http(self, request: HttpRequest) -> None:
        self.done.append(("http", request.request_id))

    def deliver(self, event: object) -> None:
        self.done.append(("deliver", event))

    def state_changed(self, change: StateChanged) -> None:
        self.done.append(("state", change.new))

    def failed(self, reason: str) -> None:
        self.done.append(("failed", reason))


class Scripted(Driven):
    """Queues what it is told; each connect queues one more action."""

    def __init__(self, *actions: Action) -> None:
        super().__init__()
        self._out.extend(actions)


def test_carry_out_hands_each_action_to_its_method_in_order() -> None:
    request = HttpRequest(7, "GET", "http://h/", ())
    proto = Scripted(
        Connect(1, "ws://h/"),
        SendData(1, b"hi"),
        Listen(2, "127.0.0.1", 0),
        StopListening(2),
        request,
        Deliver("event"),
        StateChanged("m", "A", "B", "why"),
        Disconnect(1),
        Failed("done"),
    )
    recorder = Recorder()
    carry_out(proto, recorder)
    assert recorder.done == [
        ("connect", 1, "ws://h/"),
        ("send", 1, b"hi"),
        ("listen", 2, "127.0.0.1", 0),
        ("stop_listening", 2),
        ("http", 7),
        ("deliver", "event"),
        ("state", "B"),
        ("disconnect", 1),
        ("failed", "done"),
    ]


def test_what_an_action_causes_is_carried_out_after_what_came_before() -> None:
    proto = Scripted(Connect(1, "ws://h/"), Deliver("first"))

    class Causing(Recorder):
        def connect(self, conn: int, url: str) -> None:
            super().connect(conn, url)
            proto._out.append(Deliver("caused"))

    recorder = Causing()
    carry_out(proto, recorder)
    assert [d[1] for d in recorder.done] == [1, "first", "caused"]


def test_an_action_no_driver_knows_is_refused() -> None:
    class Strange(Action):
        __slots__ = ()

    with pytest.raises(LocalProtocolError, match="an action no driver knows"):
        carry_out(Scripted(Strange()), Recorder())


def test_a_refused_token_is_said_to_be_stale() -> None:
    h = Harness()
    h.accept()
    h.hello()
    h.ready()
    h.close_from_server(4004)
    assert h.stale_tokens == [False, True]  # the first fetch, then the refused one's
