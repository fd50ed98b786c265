"""The asyncio driver and QQBot end to end, on loopback.

The gateway here is the ``websockets`` library's server (tests/e2e_servers.py),
so our WebSocket code is checked by someone else's; REST is a small h11
server. Heartbeat intervals are 100 ms and every wait has a 10 s deadline;
nothing sleeps to synchronise. Warnings are errors (pyproject), which covers
"Task was destroyed" and unclosed-transport ResourceWarnings.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import ssl
from collections.abc import AsyncIterator
from typing import Any

import pytest

from qqproto.actions import StateChanged
from qqproto.adapters import DriverFailed
from qqproto.adapters.asyncio import AsyncioDriver
from qqproto.adapters.bot import QQBot
from qqproto.qq import (
    BotConfig,
    Dispatch,
    GatewayConfig,
    GatewayProtocol,
    GroupAtMessageCreate,
    InteractionCreate,
    ProtocolViolation,
    Ready,
)
from qqproto.qq import gateway as gateway_module

from .e2e_servers import (
    MEMBER,
    WAIT,
    FakeGateway,
    FakeRest,
    group_message,
)
from .tokens import answering_tokens

pytestmark = pytest.mark.filterwarnings("error")


def run(coro: Any) -> Any:
    """Each test is a coroutine run to the end in a fresh loop, under a deadline."""

    async def bounded() -> Any:
        async with asyncio.timeout(30):
            return await coro

    result = asyncio.run(bounded())
    gc.collect()  # a leaked transport or task warns now, while warnings are errors
    return result


class Client:
    """A bare GatewayProtocol on an AsyncioDriver, with its events in a queue."""

    def __init__(self, url: str, *, lifetime: float = 7200.0, **config: Any) -> None:
        config.setdefault("rng", random.Random(7))
        config.setdefault("backoff_base", 0.01)
        config.setdefault("backoff_cap", 0.05)
        self.proto = GatewayProtocol(GatewayConfig("102000000", gateway_url=url, **config))
        self.events: asyncio.Queue[object] = asyncio.Queue()
        self.tokens = 0
        self.lifetime = lifetime
        on_event = answering_tokens(self.proto, self.events.put_nowait, token=self.token)
        self.driver = AsyncioDriver(self.proto, on_event=on_event)
        self.task: asyncio.Task[None] | None = None

    def token(self) -> tuple[str, float]:
        self.tokens += 1
        return f"tok-{self.tokens}", self.lifetime

    async def __aenter__(self) -> Client:
        self.task = asyncio.create_task(self.driver.run())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.driver.stop()
        assert self.task is not None
        await asyncio.gather(self.task, return_exceptions=True)

    async def next(self, kind: type[Any] = object) -> Any:
        async with asyncio.timeout(WAIT):
            while True:
                event = await self.events.get()
                if isinstance(event, kind):
                    return event

    async def messages(self, n: int) -> list[GroupAtMessageCreate]:
        return [await self.next(GroupAtMessageCreate) for _ in range(n)]


@pytest.fixture(autouse=True)
def quick_new_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new session after op 9 waits 1-5 s on the platform; milliseconds here."""
    monkeypatch.setattr(gateway_module, "NEW_SESSION_PAUSE", (0.0, 0.01))


# -- the gateway, bare -----------------------------------------------------------------------


def test_token_expiry_mid_session_gets_a_new_token_for_the_resume() -> None:
    async def main() -> None:
        async with FakeGateway() as gw, Client(gw.url, lifetime=0.5) as client:
            await client.next(Ready)
            # Six heartbeats 100 ms apart: the 0.5 s token has expired by now.
            await gw.wait_for(lambda g: len(g.ops(1)) >= 6)
            gw.drop()
            await gw.wait_for(lambda g: len(g.ops(6)) >= 1)
            assert gw.ops(6)[-1]["d"]["token"] != gw.ops(2)[0]["d"]["token"]
            assert client.tokens >= 2

    run(main())


def test_hostile_frames_become_violations_and_the_session_goes_on() -> None:
    async def main() -> None:
        async with FakeGateway() as gw, Client(gw.url) as client:
            await client.next(Ready)
            await gw.send_raw("not json {")
            await gw.send_raw(b"\x00\x01binary")
            await gw.send_raw({"op": 0, "s": 99, "t": "GROUP_AT_MESSAGE_CREATE", "d": []})
            assert isinstance(await client.next(ProtocolViolation), ProtocolViolation)
            gw.seq = 99
            await gw.message(100)
            assert (await client.messages(1))[0].text == "hello 100"

    run(main())


def test_stop_sends_a_close_frame_and_ends_cleanly_mid_send() -> None:
    async def main() -> None:
        async with FakeGateway(heartbeat_ms=20) as gw:
            client = Client(gw.url)
            task = asyncio.create_task(client.driver.run())
            await client.next(Ready)
            sends = [asyncio.create_task(gw.message(n)) for n in range(20)]  # in flight
            client.driver.stop()
            async with asyncio.timeout(WAIT):
                await task  # returns, no error
            await asyncio.gather(*sends, return_exceptions=True)
            await gw.wait_for(lambda g: g.closes == [1000])
            assert client.proto.state.name == "CLOSED"

    run(main())


def test_cancelling_run_closes_too() -> None:
    """As stop(): the close frame goes out and on_end hears None; then the cancel."""

    async def main() -> None:
        async with FakeGateway() as gw:
            client = Client(gw.url)
            ended: list[BaseException | None] = []
            client.driver.on_end = ended.append
            task = asyncio.create_task(client.driver.run())
            await client.next(Ready)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await gw.wait_for(lambda g: g.closes == [1000])
            assert ended == [None]
            assert not client.driver.running

    run(main())


# -- TLS -----------------------------------------------------------------------------------


def test_wss_and_https_use_tls_with_sni(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    async def fake_open(host: str, port: int, **kwargs: Any) -> Any:
        seen.append({"host": host, "port": port, **kwargs})
        raise ConnectionRefusedError("not really")

    monkeypatch.setattr(asyncio, "open_connection", fake_open)
    context = ssl.create_default_context()

    async def main() -> None:
        proto = GatewayProtocol(
            GatewayConfig("1", gateway_url="wss://gw.example.com/ws", max_attempts=1)
        )
        driver = AsyncioDriver(proto, on_event=answering_tokens(proto), ssl_context=context)
        with pytest.raises(DriverFailed):
            await driver.run()

    run(main())
    [call] = seen
    assert call["host"] == "gw.example.com" and call["port"] == 443
    assert call["ssl"] is context and call["server_hostname"] == "gw.example.com"


# -- QQBot ---------------------------------------------------------------------------------


@pytest.fixture
def quiet_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="qqproto")
    return caplog


async def platform() -> AsyncIterator[tuple[FakeGateway, FakeRest]]:
    async with FakeGateway() as gw, FakeRest(gw.url) as rest:
        yield gw, rest


def test_qqbot_events_and_replies(quiet_logs: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        async with FakeGateway() as gw, FakeRest(gw.url) as rest:
            async with QQBot("102000000", rest.secret, **rest.options()) as bot:
                events = bot.events()
                assert isinstance(await anext(events), Ready)
                assert bot.state.name == "RUNNING"
                await gw.message(1)
                event = await anext(events)
                assert isinstance(event, GroupAtMessageCreate)
                result = await bot.reply(event, "hi")
                assert result.ok and result.result is not None and result.result.id == "out-1"
                [sent] = rest.sent
                assert sent["content"] == "hi" and sent["msg_id"] == event.id
            assert bot.state.name == "CLOSED"
            await gw.wait_for(lambda g: g.closes == [1000])
        # The secret never reaches a log line; frames are logged by size only.
        assert rest.secret not in quiet_logs.text
        assert "tok-1" not in quiet_logs.text
        assert "READY" in quiet_logs.text or "RUNNING" in quiet_logs.text

    run(main())


def test_qqbot_allow_from_keeps_strangers_out() -> None:
    async def main() -> None:
        async with FakeGateway() as gw, FakeRest(gw.url) as rest:
            bot = QQBot("102000000", rest.secret, allow_from={MEMBER}, **rest.options())
            async with bot:
                events = bot.events()
                await anext(events)  # Ready
                await gw.message(1, member="STRANGER")
                await gw.message(2)
                event = await anext(events)
                assert isinstance(event, GroupAtMessageCreate) and event.text == "hello 2"

    run(main())


def press(n: int, **fields: Any) -> dict[str, Any]:
    """An INTERACTION_CREATE (a button press) with its sender among ``fields``."""
    return {"id": f"press-{n}", "type": 11, "application_id": "1", **fields}


def test_qqbot_allow_from_fails_closed_for_raw_messages_and_button_presses() -> None:
    """A message that failed typed decoding (a raw Dispatch) passes only with a known
    author; so does a button press, by the sender its scene names."""

    async def main() -> None:
        async with FakeGateway() as gw, FakeRest(gw.url) as rest:
            bot = QQBot("102000000", rest.secret, allow_from={MEMBER}, **rest.options())
            async with bot:
                events = bot.events()
                await anext(events)  # Ready
                for n, author in enumerate([{"member_openid": "STRANGER"}, {}, "x", None]):
                    broken = group_message(n)
                    del broken["group_openid"]  # fails typed decoding
                    broken["author"] = author
                    await gw.dispatch("GROUP_AT_MESSAGE_CREATE", broken)
                await gw.dispatch("C2C_MESSAGE_CREATE", {"author": {"user_openid": "STRANGER"}})
                await gw.dispatch("INTERACTION_CREATE", press(1, group_member_openid="STRANGER"))
                await gw.dispatch("INTERACTION_CREATE", press(2, user_openid="STRANGER"))
                await gw.dispatch("INTERACTION_CREATE", press(3))  # no sender at all
                guild = {"resolved": {"user_id": "STRANGER"}}
                await gw.dispatch("INTERACTION_CREATE", press(4, data=guild))
                broken = group_message(9)
                del broken["group_openid"]
                await gw.dispatch("GROUP_AT_MESSAGE_CREATE", broken)  # from MEMBER
                await gw.dispatch("INTERACTION_CREATE", press(9, group_member_openid=MEMBER))
                await gw.message(10)
                passed = []
                async for event in bot.events():
                    if not isinstance(event, ProtocolViolation):
                        passed.append(event)
                    if isinstance(event, GroupAtMessageCreate):
                        break
                raw, pressed, message = passed
                assert isinstance(raw, Dispatch) and raw.data["id"] == "ROBOT1.0_msg-9"
                assert isinstance(pressed, InteractionCreate) and pressed.id == "press-9"
                assert isinstance(message, GroupAtMessageCreate)
                assert bot._router.dropped == 9

    run(main())


def test_qqbot_on_state_and_driver_options() -> None:
    async def main() -> None:
        async with FakeGateway() as gw, FakeRest(gw.url) as rest:
            changes: list[StateChanged] = []
            options = {"connect_timeout": 3.0, "io_timeout": 4.0, "pool_size": 2}
            config = BotConfig("102000000", rest.secret, **rest.options())
            bot = QQBot.from_config(config, on_state=changes.append, driver_options=options)
            driver = bot.driver
            assert (driver.connect_timeout, driver.io_timeout, driver.pool_size) == (3, 4, 2)
            async with bot:
                assert isinstance(await anext(bot.events()), Ready)
            assert changes and all(isinstance(c, StateChanged) for c in changes)
        with pytest.raises(TypeError, match="driver_options"):
            QQBot("1", "s", io_timeout=5)
        with pytest.raises(TypeError, match="unknown driver option"):
            QQBot("1", "s", driver_options={"listen": print})

    run(main())


def test_qqbot_handlers_skip_empty_messages_and_survive_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        async with FakeGateway() as gw, FakeRest(gw.url) as rest:
            bot = QQBot("102000000", rest.secret, **rest.options())
            seen: list[str] = []

            async def echo(event: GroupAtMessageCreate) -> None:
                seen.append(event.text)
                if event.text == "boom":
                    raise RuntimeError("handler bug")
                await bot.reply(event, event.text)
                if event.text == "bye":
                    await bot.close()

            def ready(event: Ready) -> None:
                scripts.append(asyncio.get_running_loop().create_task(script()))

            async def script() -> None:
                await gw.message(1, content=" ")  # empty: no handler sees it
                await gw.message(2, content="boom")
                await gw.message(3, content="bye")

            scripts: list[asyncio.Task[None]] = []
            bot.on(GroupAtMessageCreate)(echo)  # the decorator, called: mypy sees no types here
            bot.on(Ready)(ready)
            await bot.run()
            await asyncio.gather(*scripts)
            assert seen == ["boom", "bye"]
            assert [s["content"] for s in rest.sent] == ["bye"]

    run(main())
    assert "handler bug" in caplog.text


def test_qqbot_http_failures_reach_http_failed() -> None:
    async def main() -> None:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        url = f"http://127.0.0.1:{port}"
        bot = QQBot("1", "s", api_base=url, token_url=f"{url}/token", max_attempts=1)
        async with bot:
            with pytest.raises(DriverFailed, match=r"refused|Connect"):
                async for _ in bot.events():
                    pass

    run(main())
