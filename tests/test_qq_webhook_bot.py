"""A BotProtocol in webhook mode: callbacks in, replies out through the same REST,
token and reply ledger as a gateway bot's (against the QQ simulator, in memory)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from qqproto.actions import Action, HttpRequest, Listen, SendData
from qqproto.contract import Peer
from qqproto.errors import ConfigError
from qqproto.http import HttpConnection
from qqproto.qq import (
    ApiResult,
    AtMessageCreate,
    BotConfig,
    BotPhase,
    BotProtocol,
    C2CMessageCreate,
)
from qqproto.qq.decode import EventDecoder
from qqproto.qq.webhook import ACK, WebhookConfig
from qqproto.testing import MemoryNetwork, QQSimulator, SimulatorConfig

APP_ID, SECRET = "102000000", "test-secret-0123"
WALL = 1_765_000_000.0


class Net(MemoryNetwork):
    """MemoryNetwork, keeping the bytes sent on the callback connections."""

    def __init__(self, sim: QQSimulator, bot: BotProtocol) -> None:
        self.listens: list[Listen] = []
        self.served: dict[int, bytes] = {}
        super().__init__(sim, bot)

    def _do(self, action: Action) -> None:
        if isinstance(action, Listen):
            self.listens.append(action)
        elif isinstance(action, SendData) and action.conn < 0:
            self.served[action.conn] = self.served.get(action.conn, b"") + action.data
        else:
            super()._do(action)


def make(gateway: bool = False) -> tuple[QQSimulator, BotProtocol, Net]:
    sim = QQSimulator(SimulatorConfig(app_id=APP_ID, secret=SECRET))
    hook = WebhookConfig(APP_ID, SECRET, port=0, wall_offset=WALL)
    config = BotConfig(
        APP_ID,
        SECRET,
        api_base="http://127.0.0.1:1",
        token_url="http://127.0.0.1:1/app/getAppAccessToken",
        webhook=hook,
        gateway=gateway,
    )
    bot = BotProtocol(config)
    net = Net(sim, bot)
    [listen] = net.listens
    bot.listening(listen.listener, "127.0.0.1", 8443, net.now)
    net.settle()
    return sim, bot, net


def callback(bot: BotProtocol, net: Net, conn: int, t: str, d: Any, envelope: str) -> Any:
    body = json.dumps({"id": envelope, "op": 0, "t": t, "d": d}).encode()
    stamp = str(int(WALL + net.now))
    key = Ed25519PrivateKey.from_private_bytes((SECRET * 3).encode()[:32])
    headers = (
        ("X-Signature-Ed25519", key.sign(stamp.encode() + body).hex()),
        ("X-Signature-Timestamp", stamp),
    )
    client = HttpConnection()
    assert net.listens
    bot.connection_accepted(net.listens[0].listener, conn, Peer("203.0.113.9", 4000), net.now)
    bot.receive_data(
        conn, client.send(HttpRequest(1, "POST", "https://b/", headers, body)), net.now
    )
    net.settle()
    [response] = client.receive_data(net.served.pop(conn))
    return response


def test_a_callback_bot_runs_on_a_token_alone_and_replies_through_rest() -> None:
    sim, bot, net = make()
    net.advance(1)
    assert bot.phase is BotPhase.RUNNING and bot.gateway is None and net.connects == 0
    d = sim.c2c_message("hello", net.now)  # the platform's message, known to its REST
    response = callback(bot, net, -1, "C2C_MESSAGE_CREATE", d, "E:1")
    assert (response.status, response.body) == (200, ACK)
    [event] = [e for e in net.events if isinstance(e, C2CMessageCreate)]
    assert event.content == "hello"

    call = bot.reply(event, "hi back", net.now)
    net.advance(1)
    result = net.results[call]
    assert isinstance(result, ApiResult) and result.ok, result
    assert [(s.msg_id, s.msg_seq) for s in sim.sent] == [(d["id"], 1)]


def test_a_message_that_comes_twice_reaches_the_application_once() -> None:
    sim, bot, net = make()
    net.advance(1)
    d = sim.c2c_message("once", net.now)
    callback(bot, net, -1, "C2C_MESSAGE_CREATE", d, "E:1")
    again = callback(bot, net, -2, "C2C_MESSAGE_CREATE", d, "E:2")  # a new envelope, same id
    assert again.status == 200
    assert len([e for e in net.events if isinstance(e, C2CMessageCreate)]) == 1
    assert bot.redeliveries == 1


def test_a_port_that_cannot_be_had_fails_the_bot() -> None:
    _, bot, net = make()
    bot.listener_lost(net.listens[0].listener, net.now, "address in use")
    net.settle()
    assert bot.phase is BotPhase.FAILED and "address in use" in (bot.failure_reason or "")
    assert net.failure is not None and "address in use" in net.failure  # Failed went out


def test_a_webhook_for_another_app_is_refused() -> None:
    with pytest.raises(ConfigError, match="webhook"):
        BotConfig(APP_ID, SECRET, webhook=WebhookConfig("another-app", SECRET))


def test_a_bot_with_neither_only_calls_and_replies_to_what_it_is_given() -> None:
    """A worker: its events come another way (a stream), and it answers them."""
    sim = QQSimulator(SimulatorConfig(app_id=APP_ID, secret=SECRET))
    origin = "http://127.0.0.1:1"
    config = BotConfig(
        APP_ID, SECRET, gateway=False, api_base=origin, token_url=f"{origin}/app/getAppAccessToken"
    )
    bot = BotProtocol(config)
    net = MemoryNetwork(sim, bot)
    assert net.wait_for(lambda: bot.phase is BotPhase.RUNNING, within=30)
    assert net.connects == 0  # no gateway, no listener
    d = sim.group_at_message("from the stream", net.now)  # nobody connected: it waits there
    frame = {"op": 0, "s": 1, "t": "GROUP_AT_MESSAGE_CREATE", "id": "E1", "d": d}
    event = EventDecoder().decode_dispatch(json.dumps(frame))
    assert bot.inbound(event, net.now) and not bot.inbound(event, net.now)
    call = bot.reply(event, "answered", net.now, msg_seq=2)  # the shared counter said 2
    net.settle()
    assert net.results[call].ok
    assert [(s.msg_id, s.msg_seq) for s in sim.sent] == [(d["id"], 2)]


def test_a_message_seen_on_the_gateway_and_the_webhook_reaches_the_application_once() -> None:
    sim, bot, net = make(gateway=True)
    assert net.wait_for(lambda: sim.live)
    d = sim.c2c_message("both ways", net.now)  # down the gateway
    net.advance(0.1)
    assert callback(bot, net, -1, "C2C_MESSAGE_CREATE", d, "E:9").status == 200  # and called back
    assert [e.content for e in net.events if isinstance(e, C2CMessageCreate)] == ["both ways"]


def test_a_connection_accepted_as_the_bot_closes_is_let_go_quietly() -> None:
    _, bot, net = make()
    bot.close(net.now)
    bot.connection_accepted(net.listens[0].listener, -7, Peer("203.0.113.9", 1), net.now)
    bot.receive_data(-7, b"GET / HTTP/1.1\r\n\r\n", net.now)  # queued before it was cut
    bot.connection_lost(-7, net.now)
    assert bot.phase is BotPhase.CLOSED


def test_a_callback_bot_learns_its_id_so_guild_messages_read_as_the_gateways_do() -> None:
    sim, bot, net = make()
    net.advance(1)
    assert bot.webhook is not None and bot.webhook.bot_id == sim.config.bot_id
    d = sim.guild_at_message("hi there", net.now)  # "<@!bot_id> hi there"
    callback(bot, net, -1, "AT_MESSAGE_CREATE", d, "E:7")
    [event] = [e for e in net.events if isinstance(e, AtMessageCreate)]
    assert event.text == "hi there"
