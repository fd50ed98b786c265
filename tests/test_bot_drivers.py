"""QQBot (asyncio) and ThreadedQQBot: the behaviour both promise, one test each.

Each test runs once per bot class against the same loopback platform (the
``websockets`` gateway and the h11 REST server of tests/e2e_servers.py, on a
loop thread of their own). :class:`BotOn` drives either bot from the test's
thread, so a test reads the same for both. What only one bot class does (the
asyncio bot's cancellation, the threaded bot's socket thread) stays in
``test_driver_asyncio.py`` and ``test_driver_threaded.py``.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import signal
from typing import Any

import pytest

from qqproto.adapters import DriverClosed, DriverFailed
from qqproto.adapters.bot import QQBot
from qqproto.adapters.threaded_bot import ThreadedQQBot
from qqproto.qq import ApiResult, BotConfig, GroupAtMessageCreate, Ready
from qqproto.qq import gateway as gateway_module
from qqproto.qq.api import SANDBOX_BASE_URL, ApiCall, get_me

from .bot_runner import BotRunner
from .e2e_servers import FakeGateway, FakeRest, LoopThread

pytestmark = pytest.mark.filterwarnings("error")

BOTS = ["asyncio", "threads"]


@pytest.fixture(autouse=True)
def quick_new_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new session after op 9 waits 1-5 s on the platform; milliseconds here."""
    monkeypatch.setattr(gateway_module, "NEW_SESSION_PAUSE", (0.0, 0.01))


def make_bot(kind: str, secret: str, rest: FakeRest) -> QQBot | ThreadedQQBot:
    bot_class = QQBot if kind == "asyncio" else ThreadedQQBot
    return bot_class("102000000", secret, **rest.options())


class BotOn(BotRunner[QQBot | ThreadedQQBot]):
    """A QQ bot of either class on the loopback platform (see tests/bot_runner.py)."""

    def __init__(self, kind: str, loop: LoopThread, secret: str, rest: FakeRest) -> None:
        super().__init__(make_bot(kind, secret, rest), loop)

    def call(self, api_call: ApiCall[Any]) -> ApiResult[Any]:
        return self.run(lambda: self.bot.call(api_call))


@pytest.mark.parametrize("kind", BOTS)
def test_a_wrong_secret_fails_with_the_platforms_reason(
    kind: str, loop: LoopThread, rest: FakeRest
) -> None:
    with BotOn(kind, loop, "wrong", rest) as on:
        with pytest.raises(DriverFailed, match=r"100016|appid"):
            on.read_to_the_end()
        assert on.bot.state.name == "FAILED" and on.bot.failure_reason


@pytest.mark.parametrize("kind", BOTS)
def test_calls_after_the_bot_gave_up_raise_why(kind: str, loop: LoopThread, rest: FakeRest) -> None:
    with BotOn(kind, loop, "wrong", rest) as on:
        with pytest.raises(DriverFailed):
            on.read_to_the_end()
        with pytest.raises(DriverFailed, match=r"100016|appid") as failed:
            on.call(get_me())
        assert failed.value.reason
    with BotOn(kind, loop, rest.secret, rest) as on:
        assert isinstance(on.next_event(), Ready)
    with pytest.raises(DriverClosed):  # stopped, not failed
        on.call(get_me())


@pytest.mark.parametrize("kind", BOTS)
def test_unread_events_are_bounded_the_oldest_dropped(
    kind: str, loop: LoopThread, gw: FakeGateway, rest: FakeRest, caplog: pytest.LogCaptureFixture
) -> None:
    """A bot that only sends never reads events(): its queue must not grow forever."""
    on = BotOn(kind, loop, rest.secret, rest)
    on.bot.max_queued_events = 3
    with on:
        loop.run(gw.wait_for(lambda g: len(g.ops(2)) == 1))  # Identify: READY is s=1
        for n in range(1, 7):  # s=2..7
            loop.run(gw.message(n))
        loop.run(gw.wait_for(lambda g: any(p["d"] == 7 for p in g.ops(1))))  # all taken
        assert on.bot.events_dropped == 4  # READY and messages 1-3
        kept = [on.next_event() for _ in range(3)]
        texts = [e.text for e in kept if isinstance(e, GroupAtMessageCreate)]
        assert texts == ["hello 4", "hello 5", "hello 6"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "unread" in r.message]
    assert len(warnings) == 1  # once; the rest at DEBUG


class Unhandled(BaseException):
    """Raised by the SIGTERM handler a test installs: run_forever() must replace it."""


@pytest.mark.parametrize("kind", BOTS)
def test_run_forever_closes_cleanly_on_sigterm(
    kind: str, loop: LoopThread, gw: FakeGateway, rest: FakeRest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="qqproto")
    bot = make_bot(kind, rest.secret, rest)

    def ready(event: Ready) -> None:
        signal.raise_signal(signal.SIGTERM)  # docker stop; the handler runs in this thread

    def refuse(signum: int, frame: object) -> None:
        raise Unhandled("SIGTERM reached the handler run_forever() should have replaced")

    bot.on(Ready)(ready)
    previous = signal.signal(signal.SIGTERM, refuse)
    try:
        bot.run_forever()
    finally:
        assert signal.signal(signal.SIGTERM, previous) is refuse  # put back after the run
    loop.run(gw.wait_for(lambda g: g.closes == [1000]))
    assert bot.state.name == "CLOSED"
    assert "SIGTERM" in caplog.text


def test_bots_from_one_config_draw_their_own_randomness() -> None:
    """Jitter and WebSocket masking keys (RFC 6455 5.3) differ between processes."""
    config = BotConfig.sandbox("102000000", "s")  # no rng, no entropy
    one, two = QQBot.from_config(config), ThreadedQQBot.from_config(config)
    assert one.config.rng is not None and two.config.rng is not None
    assert one.config.rng.random() != two.config.rng.random()
    assert one.config.entropy is not None and two.config.entropy is not None
    assert one.config.entropy(16) != two.config.entropy(16)
    assert one.config.api_base == SANDBOX_BASE_URL
    rng = random.Random(5)
    fixed = QQBot.from_config(dataclasses.replace(config, rng=rng, entropy=rng.randbytes))
    assert fixed.config.rng is rng  # a deterministic run stays possible
