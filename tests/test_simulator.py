"""The real BotProtocol against QQSimulator, through MemoryNetwork, on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from qqproto.actions import HttpRequest
from qqproto.errors import LocalProtocolError
from qqproto.qq import BotConfig, BotPhase, BotProtocol, GatewayState, Target
from qqproto.qq.api import (
    ApiCall,
    ApiResult,
    FileType,
    ReplyTo,
    acknowledge_interaction,
    recall_message,
    send_media,
    send_text,
    upload_media,
)
from qqproto.qq.codes import ApiError
from qqproto.qq.events import InteractionCreate, Message, Ready, Resumed
from qqproto.testing import HttpLatency, MemoryNetwork, QQSimulator, SimulatorConfig

ORIGIN = "http://127.0.0.1:1"


def bot_config(secret: str = "simulator-secret", **kwargs: Any) -> BotConfig:
    return BotConfig(
        "102000000",
        secret,
        api_base=ORIGIN,
        token_url=f"{ORIGIN}/app/getAppAccessToken",
        **kwargs,
    )


class World:
    """A simulator, a bot, the network, and an application that echoes every message."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        echo: int = 1,
        secret: str = "simulator-secret",
        http_latency: HttpLatency = 0.0,
    ) -> None:
        self.sim = QQSimulator(config)
        self.bot = BotProtocol(bot_config(secret))
        self.echo = echo
        self.net = MemoryNetwork(
            self.sim, self.bot, on_event=self.on_event, http_latency=http_latency
        )

    def on_event(self, event: object, now: float) -> None:
        if isinstance(event, Message):
            for n in range(self.echo):
                self.bot.reply(event, f"echo {n + 1}: {event.text}", now)

    @property
    def now(self) -> float:
        return self.net.now

    def messages(self) -> list[Message]:
        return [e for e in self.net.events if isinstance(e, Message)]

    def results(self) -> list[ApiResult[Any]]:
        return [e for e in self.net.events if isinstance(e, ApiResult)]

    def login(self) -> None:
        assert self.net.wait_for(lambda: self.sim.live, within=60)

    def call(self, call: Any) -> ApiResult[Any]:
        request_id = self.bot.call(call, self.now)
        self.net.settle()
        result: ApiResult[Any] = self.net.results[request_id]
        return result


@pytest.fixture
def world() -> World:
    w = World()
    w.login()
    return w


def codes(error: object) -> tuple[int | None, int | None]:
    assert isinstance(error, ApiError)
    return error.code, error.err_code


# -- logging in ----------------------------------------------------------------------------


def test_login_fetches_a_token_discovers_the_gateway_and_reaches_ready(world: World) -> None:
    sim, bot = world.sim, world.bot
    assert bot.phase is BotPhase.RUNNING
    assert bot.gateway is not None and bot.gateway.state is GatewayState.READY
    assert sim.token_requests == [(0.0, True)]
    assert bot.gateway_info is not None and bot.gateway_info.url == "ws://127.0.0.1:1/websocket"
    [identify] = sim.identifies
    assert identify.outcome == "READY" and identify.shard == [0, 1]
    ready = next(e for e in world.net.events if isinstance(e, Ready))
    assert ready.session_id == sim.session_id() == identify.session_id
    assert ready.user.id == sim.config.bot_id
    assert sim.session_starts_remaining == sim.config.session_start_remaining - 1


def test_heartbeats_carry_the_last_seq_and_are_acknowledged(world: World) -> None:
    world.net.advance(45)
    world.sim.c2c_message("one", world.now)
    world.sim.c2c_message("two", world.now)
    world.net.advance(90)
    beats = world.sim.heartbeats
    assert [b.d for b in beats] == [1, 3, 3]  # READY was s=1; two messages
    assert world.sim.unacked == []
    assert beats[1].now - beats[0].now == pytest.approx(41.25)
    assert world.sim.live


def test_a_lost_ack_makes_the_client_resume_and_replay_arrives_once(world: World) -> None:
    sim, net = world.sim, world.net
    first = sim.group_at_message("before", world.now)
    sim.lose_acks(1)
    net.refuse_connections = True  # keep the bot away once it leaves
    assert net.wait_for(lambda: not sim.live, within=200)
    assert sim.unacked == [sim.heartbeats[-1]]
    missed = [sim.group_at_message(f"while away {n}", world.now)["id"] for n in range(3)]
    net.refuse_connections = False
    assert net.wait_for(lambda: sim.live, within=120)
    assert sim.resumes[-1].outcome == "RESUMED" and sim.resumes[-1].replayed == 3
    ids = [m.id for m in world.messages()]
    assert ids == [first["id"], *missed]
    assert [d.d["id"] for d in sim.delivered] == ids  # type: ignore[index]
    assert any(isinstance(e, Resumed) for e in net.events)
    assert len(sim.identifies) == 1


def test_op7_reconnects_and_resumes(world: World) -> None:
    world.sim.reconnect(world.now)
    world.net.settle()
    assert world.sim.resumes[-1].outcome == "RESUMED"
    world.sim.c2c_message("after", world.now)
    assert [m.text for m in world.messages()] == ["after"]
    assert len(world.sim.sent) == 1


def test_op9_false_starts_a_new_session_and_keeps_what_was_pushed_between(world: World) -> None:
    sim, net = world.sim, world.net
    old = sim.session_id()
    sim.invalid_session(False, world.now)
    pushed = sim.c2c_message("queued", world.now)  # no session at all: it waits for READY
    assert net.wait_for(lambda: sim.live, within=30)
    assert len(sim.identifies) == 2 and sim.session_id() != old
    assert [m.id for m in world.messages()] == [pushed["id"]]
    assert sim.lost == []


def end_a_session_holding_two_messages(w: World) -> tuple[str, list[str]]:
    """The bot is away (connections refused) with two messages waiting in its
    session's log when the session ends (op 9 false); then it comes back."""
    sim, net = w.sim, w.net
    old = sim.session_id()
    assert old is not None
    net.refuse_connections = True
    sim.drop(w.now)
    waiting = [sim.c2c_message(f"waiting {n}", w.now)["id"] for n in range(2)]
    sim.invalid_session(False, w.now)
    net.refuse_connections = False
    assert net.wait_for(lambda: sim.live, within=120)
    assert len(sim.identifies) == 2
    return old, waiting


def test_a_session_that_ends_loses_what_it_never_sent(world: World) -> None:
    sim = world.sim
    old, waiting = end_a_session_holding_two_messages(world)
    assert [(x.t, x.d["id"], x.session_id) for x in sim.lost] == [  # type: ignore[index]
        ("C2C_MESSAGE_CREATE", waiting[0], old),
        ("C2C_MESSAGE_CREATE", waiting[1], old),
    ]
    assert world.messages() == []
    assert sim.delivered == []
    after = sim.c2c_message("after", world.now)  # the new session works
    assert [m.id for m in world.messages()] == [after["id"]]


def test_carry_over_undelivered_hands_them_to_the_next_session() -> None:
    w = World(SimulatorConfig(carry_over_undelivered=True))
    w.login()
    _, waiting = end_a_session_holding_two_messages(w)
    assert w.sim.lost == []
    assert [m.id for m in w.messages()] == waiting


def test_a_new_identify_loses_what_the_old_session_never_sent() -> None:
    w = World(SimulatorConfig(resume_window=10.0))
    w.login()
    sim, net = w.sim, w.net
    net.refuse_connections = True
    sim.drop(w.now)
    missed = sim.group_at_message("nobody hears this", w.now)
    net.advance(30)  # past the resume window
    net.refuse_connections = False
    assert net.wait_for(lambda: sim.live, within=300)
    assert [r.outcome for r in sim.resumes][-1] == "op 9: unknown or expired session"
    assert [x.d["id"] for x in sim.lost] == [missed["id"]]  # type: ignore[index]
    assert w.messages() == []


@pytest.mark.parametrize(
    ("code", "resumed"),
    [(4009, True), (4008, True), (4006, False), (4007, False), (4902, False)],
)
def test_close_codes_resume_or_identify(world: World, code: int, resumed: bool) -> None:
    world.sim.close(code, world.now)
    assert world.net.wait_for(lambda: world.sim.live, within=120)
    assert (len(world.sim.resumes) == 1) is resumed
    assert len(world.sim.identifies) == (1 if resumed else 2)


def test_close_4914_stops_the_bot(world: World) -> None:
    world.sim.close(4914, world.now, "offline")
    world.net.advance(600)
    assert world.bot.phase is BotPhase.FAILED
    assert world.net.failure is not None and "4914" in world.net.failure
    assert world.net.connects == 1


def test_a_wrong_secret_fails_the_bot_before_any_connection() -> None:
    w = World(secret="wrong")
    w.net.advance(600)
    assert w.bot.phase is BotPhase.FAILED
    assert w.bot.failure_reason is not None and "100016" in w.bot.failure_reason
    assert w.sim.token_requests == [(0.0, False)]
    assert w.net.connects == 0


def test_tokens_expiring_mid_session_are_refreshed_on_the_401(world: World) -> None:
    sim = world.sim
    sim.expire_tokens(world.now)
    sim.group_at_message("hello", world.now)
    assert [r.code for r in sim.rejected] == [11244]
    assert sim.rejected[0].status == 401
    assert len(sim.token_requests) == 2
    assert [s.content for s in sim.sent] == ["echo 1: hello"]
    assert world.results()[-1].ok
    # the bot handed the new token to the gateway too: its next Resume works at once
    sim.drop(world.now)
    world.net.settle()
    assert [r.outcome for r in sim.resumes] == ["RESUMED"]


TOKEN_PATH = "/app/getAppAccessToken"


def slow_tokens(request: HttpRequest) -> float:
    return 5.0 if request.url.endswith(TOKEN_PATH) else 0.0


def test_a_slow_token_endpoint_delays_login_and_resume_but_both_succeed() -> None:
    w = World(http_latency=slow_tokens)
    sim, net = w.sim, w.net
    assert net.http_in_flight == 1 and not sim.live
    w.login()
    assert sim.identifies[0].now == 5.0
    net.advance(60)
    sim.expire_tokens(w.now)
    sim.drop(w.now)  # the Resume gets 4004; the gateway asks for a token: 5 s
    asked = w.now
    assert net.wait_for(lambda: sim.live, within=60)
    assert [r.outcome for r in sim.resumes] == ["4004 authentication failed", "RESUMED"]
    assert sim.resumes[-1].now >= asked + 5.0
    assert len(sim.identifies) == 1 and w.bot.failure_reason is None


def test_a_reply_in_flight_across_a_drop_settles_exactly_once() -> None:
    w = World(http_latency=2.0)
    w.login()
    sim, net = w.sim, w.net
    message = sim.group_at_message("hi", w.now)
    assert [s.msg_id for s in sim.sent] == [message["id"]]  # accepted at once...
    assert net.http_in_flight == 1 and w.results() == []  # ...the answer is on its way
    sim.drop(w.now)
    net.advance(1.0)
    assert sim.resumes[-1].outcome == "RESUMED" and net.http_in_flight == 1
    net.advance(10.0)
    [result] = w.results()
    assert result.ok and net.http_in_flight == 0
    assert len(sim.sent) == 1 and sim.rejected == []


def test_http_latency_must_be_finite_and_not_negative() -> None:
    with pytest.raises(LocalProtocolError):
        World(http_latency=-1.0)
    with pytest.raises(LocalProtocolError):
        World(http_latency=lambda request: float("inf"))


def test_a_resume_with_an_expired_token_gets_4004_then_works_with_a_fresh_one(
    world: World,
) -> None:
    sim = world.sim
    sim.expire_tokens(world.now)
    sim.drop(world.now)
    assert world.net.wait_for(lambda: sim.live, within=60)
    assert [r.outcome for r in sim.resumes] == ["4004 authentication failed", "RESUMED"]
    assert len(sim.token_requests) == 2
    assert len(sim.identifies) == 1


# -- passive replies -----------------------------------------------------------------------


def test_echo_replies_count_msg_seq_from_one() -> None:
    w = World(echo=3)
    w.login()
    message = w.sim.group_at_message("hi", w.now)
    sent = w.sim.sent
    assert [(s.msg_id, s.msg_seq) for s in sent] == [(message["id"], n) for n in (1, 2, 3)]
    assert all(r.ok for r in w.results())
    assert sent[0].target == w.sim.group_openid
    assert sent[0].id.startswith("ROBOT1.0_") and sent[0].id != message["id"]


def test_replying_to_the_bots_own_message_is_40034024(world: World) -> None:
    # The seed-003 / AstrBot #6931 bug: a sent message's id reused as msg_id.
    world.sim.group_at_message("hi", world.now)
    own = world.sim.sent[0].id
    call = send_text(Target.group(world.sim.group_openid), "x", reply=ReplyTo(msg_id=own))
    result = world.call(call)
    assert codes(result.error) == (40034024, 40034024)
    assert world.sim.rejected[-1].code == 40034024
    assert len(world.sim.sent) == 1


def test_another_conversations_msg_id_is_40034024(world: World) -> None:
    message = world.sim.group_at_message("hi", world.now)
    call = send_text(Target.group("ANOTHERGROUP"), "x", reply=ReplyTo(msg_id=message["id"]))
    assert codes(world.call(call).error)[0] == 40034024


def test_a_repeated_msg_seq_is_40054005(world: World) -> None:
    message = world.sim.group_at_message("hi", world.now)  # echo used msg_seq 1
    call = send_text(
        Target.group(world.sim.group_openid), "x", reply=ReplyTo(msg_id=message["id"], msg_seq=1)
    )
    assert codes(world.call(call).error)[0] == 40054005


def test_a_message_delivered_twice_keeps_its_first_seqs_window_and_budget() -> None:
    # Spec 14, quirk 7: the platform may deliver one message twice (same d.id,
    # a new envelope). The (msg_id, msg_seq) pair stays unique; the window and
    # the budget count from the first delivery.
    w = World(echo=0)
    w.login()
    sim, net = w.sim, w.net
    target = Target.group(sim.group_openid)
    message = sim.group_at_message("hi", w.now)

    def reply(seq: int) -> ApiResult[Any]:
        return w.call(send_text(target, "x", reply=ReplyTo(msg_id=message["id"], msg_seq=seq)))

    assert reply(1).ok
    net.advance(200)
    sim.dispatch("GROUP_AT_MESSAGE_CREATE", message, w.now)  # delivered again
    assert codes(reply(1).error)[0] == 40054005
    assert all(reply(seq).ok for seq in (2, 3, 4, 5))
    assert codes(reply(6).error)[0] == 40034128  # five in all, both deliveries together
    net.advance(101)  # 301 s after the first delivery, 101 s after the second
    assert codes(reply(6).error)[0] == 40034005  # the window ran from the first


def test_a_test_can_tighten_the_c2c_budget_to_four() -> None:
    # Spec 7.3: 5 per the docs, 4 per Tencent's own plugin; 5 is the default.
    w = World(SimulatorConfig(c2c_reply_budget=4), echo=0)
    w.login()
    message = w.sim.c2c_message("hi", w.now)
    target = Target.c2c(w.sim.user_openid)
    results = [
        w.call(send_text(target, "x", reply=ReplyTo(msg_id=message["id"], msg_seq=seq)))
        for seq in range(1, 6)
    ]
    assert [r.ok for r in results] == [True, True, True, True, False]
    assert codes(results[-1].error)[0] == 40034128


def test_the_budget_and_the_window_per_msg_id() -> None:
    w = World(echo=0)
    w.login()
    target = Target.group(w.sim.group_openid)
    message = w.sim.group_at_message("hi", w.now)
    for seq in range(1, 7):
        result = w.call(send_text(target, "x", reply=ReplyTo(msg_id=message["id"], msg_seq=seq)))
        assert result.ok is (seq <= 5)
    assert codes(result.error)[0] == 40034128
    late = w.sim.c2c_message("hi", w.now)
    w.net.advance(3601)
    call = send_text(Target.c2c(w.sim.user_openid), "x", reply=ReplyTo(msg_id=late["id"]))
    assert codes(w.call(call).error)[0] == 40034005


def test_guild_and_dm_replies_and_the_guild_own_message_rule(world: World) -> None:
    sim = world.sim
    sim.guild_at_message("ping", world.now)
    sim.direct_message("psst", world.now)
    assert [(s.scene.name, s.target, s.msg_seq) for s in sim.sent] == [
        ("GUILD_CHANNEL", sim.channel_id, None),
        ("GUILD_DM", sim.dm_guild_id, None),
    ]
    assert [m.text for m in world.messages()] == ["ping", "psst"]
    own = sim.sent[0].id
    call = send_text(Target.channel(sim.channel_id), "x", reply=ReplyTo(msg_id=own))
    assert codes(world.call(call).error)[0] == 50045


def test_upload_send_media_recall_and_acknowledge_an_interaction(world: World) -> None:
    sim = world.sim
    target = Target.group(sim.group_openid)
    uploaded = world.call(upload_media(target, FileType.IMAGE, data=b"\x89PNG fake"))
    assert uploaded.ok and uploaded.result is not None and uploaded.result.ttl == 3600
    sent = world.call(send_media(target, uploaded.result))
    assert sent.ok and sim.sent[-1].msg_type == 7 and not sim.sent[-1].passive
    good = upload_media(target, FileType.IMAGE, url="https://example.com/a.png")
    assert world.call(good).ok
    bad = world.call(ApiCall("POST", good.path, {"file_type": 1, "file_data": "%%"}, good.parser))
    assert codes(bad.error) == (850026, 40034001)
    assert sent.result is not None
    assert world.call(recall_message(target, sent.result.id)).ok
    assert [r[3] for r in sim.recalled] == [sent.result.id]
    assert not world.call(recall_message(target, sent.result.id)).ok  # recalled already
    d = sim.interaction(world.now)
    [click] = [e for e in world.net.events if isinstance(e, InteractionCreate)]
    assert click.id == d["id"]
    assert world.call(acknowledge_interaction(click.id)).ok
    assert sim.interaction_acks == [(world.now, d["id"], 0)]


def test_proactive_sends_can_be_refused_like_the_2025_platform() -> None:
    w = World(SimulatorConfig(proactive=False))
    w.login()
    result = w.call(send_text(Target.c2c(w.sim.user_openid), "news"))
    assert codes(result.error)[0] == 40034105
    w.sim.c2c_message("hi", w.now)  # passive replies still work
    assert [s.passive for s in w.sim.sent] == [True]


# -- the whole thing is deterministic ----------------------------------------------------------


def run_story(seed: int) -> list[Any]:
    w = World(SimulatorConfig(seed=seed))
    w.login()
    w.sim.group_at_message("a", w.now)
    w.sim.drop(w.now)
    w.sim.c2c_message("b", w.now)
    w.net.advance(100)
    return [*w.sim.sent, *w.sim.delivered, w.sim.session_id(), w.sim.heartbeats]


def test_same_seed_same_story_different_seed_different_ids() -> None:
    assert run_story(7) == run_story(7)
    assert run_story(7) != run_story(8)
