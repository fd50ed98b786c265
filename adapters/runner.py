"""``qqproto qq run``: one bot on the asyncio driver, telling what happens.

The bot is a :class:`~qqproto.adapters.bot.QQBot`; this module only wires its
news to a :class:`~qqproto.adapters.report.Report` and, with ``--echo``,
answers each message with its own text. SIGINT and SIGTERM close the bot
cleanly (exit 0); a bot that gave up exits 3 after its ``failed`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys

from qqproto.actions import StateChanged
from qqproto.errors import ProtocolError
from qqproto.link import Retry
from qqproto.qq import (
    ApiError,
    BotConfig,
    Dispatch,
    Event,
    Message,
    ProtocolViolation,
    Ready,
    ReplyRefused,
    Resumed,
)
from qqproto.qq.api import PRODUCTION_BASE_URL, SANDBOX_BASE_URL
from qqproto.qq.auth import DEFAULT_TOKEN_URL

from ._common import DriverError, DriverFailed
from ._wall import keep_wall_offset
from .bot import QQBot
from .command import stop_signals
from .coordination import Coordination, Unavailable
from .feeder import Feeder, planned_shards
from .report import HumanReport, JsonReport, Report, prepare_output

__all__ = ["EXIT_FAILED", "EXIT_OK", "config_from", "run"]

EXIT_OK = 0
EXIT_FAILED = 3
#: How long replies under way may take to finish when the bot is asked to stop.
REPLY_GRACE = 5.0
log = logging.getLogger("qqproto.run")


def config_from(args: argparse.Namespace, secret: str) -> BotConfig:
    """The bot's configuration from parsed arguments (ConfigError if it is wrong)."""
    api_base = SANDBOX_BASE_URL if args.sandbox else args.api_base or PRODUCTION_BASE_URL
    return BotConfig(
        args.app_id,
        secret,
        intents=args.intents,
        shard=args.shard,
        shards=args.shards,
        shard_ids=args.shard_slice,
        gateway_url=args.gateway_url,
        max_attempts=args.max_attempts,
        api_base=api_base,
        token_url=args.token_url or DEFAULT_TOKEN_URL,
    )


def failure_code(error: ProtocolError | None) -> int | str | None:
    """What a reply line's ``code`` says: the platform's code, or why we refused."""
    if error is None:
        return None
    if isinstance(error, ApiError):
        return error.code if error.code is not None else error.status
    if isinstance(error, ReplyRefused):
        return error.code if error.code is not None else error.reason.name
    return type(error).__name__


class Runner:
    """One bot, its report, and the echo replies under way."""

    def __init__(
        self, bot: QQBot, report: Report, *, echo: bool, feeder: Feeder | None = None
    ) -> None:
        self.bot = bot
        self.report = report
        self.echo = echo
        self.feeder = feeder
        self._replies: set[asyncio.Task[None]] = set()

    async def events(self) -> None:
        async for event in self.bot.events():
            if self.feeder is not None and self.feeder.feed(event):
                continue  # an identify that waits for the shared slot
            if isinstance(event, Ready | Resumed):
                continue  # they show as state changes
            if isinstance(event, ProtocolViolation):
                log.warning("%s", event.error)
                continue
            if isinstance(event, Retry):  # the driver logged it; the report says it too
                self.report.retry(event)
                continue
            if not isinstance(event, Event | Dispatch):
                continue
            self.report.event(event)
            # Only text can be echoed: a bare "@bot" or a lone picture gets no reply.
            if self.echo and isinstance(event, Message) and event.text.strip():
                task = asyncio.create_task(self._echo(event))
                self._replies.add(task)
                task.add_done_callback(self._replies.discard)

    async def _echo(self, message: Message) -> None:
        try:
            seq = await self.feeder.next_seq(message) if self.feeder is not None else None
            result = await self.bot.reply(message, message.text, msg_seq=seq)
        except DriverFailed:
            return  # the bot gave up; its failed line says why
        except DriverError:  # closed before the answer came: it may or may not have landed
            code: int | str | None = "CLOSED"
        except ProtocolError as refused:  # refused here, before any request went out
            code = failure_code(refused)
        else:
            code = failure_code(result.error)
        self.report.reply(message.id, code)

    async def finish(self, grace: float) -> None:
        """Give the echo replies under way ``grace`` seconds to end."""
        if self._replies:
            await asyncio.wait(self._replies, timeout=grace)


async def serve(config: BotConfig, args: argparse.Namespace, report: Report) -> int:
    """Run the bot until a signal or a closed stdout (0) or until it gives up (3)."""
    allow_from: frozenset[str] | None = args.allow_from

    def state(change: StateChanged) -> None:
        if change.machine != "token":  # the token's moves are logged, not lines
            report.state(change)

    redis_url: str | None = getattr(args, "redis", None)
    shared = None
    if redis_url:
        from .redis import connect  # the qqproto[redis] extra: the command checked it is there

        shared = connect(redis_url, config.app_id)
    if shared is not None:  # the identify slots are the app's, across processes
        config = dataclasses.replace(config, external_gate=True)
    bot = QQBot.from_config(config, allow_from=allow_from, on_state=state)
    feeder = Feeder(bot, shared) if shared is not None else None
    runner = Runner(bot, report, echo=args.echo, feeder=feeder)
    feeding: asyncio.Task[None] | None = None
    if feeder is not None:
        try:
            restored = await feeder.restore(planned_shards(config))
        except Unavailable as error:
            log.warning("no saved sessions read: %s", error)
            restored = 0
        log.info("%d saved sessions to resume", restored)
        feeding = asyncio.create_task(feeder.run())
    failure: str | None = None  # reported last, after the close's own state lines
    with stop_signals(report) as stop:
        events = asyncio.create_task(runner.events())
        stopped = asyncio.create_task(stop.wait())
        keeper = asyncio.create_task(keep_wall_offset(lambda: bot.protocol.webhook))
        try:
            await asyncio.wait({events, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if events.done():
                events.result()  # DriverFailed, or what broke
            else:
                log.info("stopping: replies under way get %.0f s", REPLY_GRACE)
                events.cancel()  # no new events, hence no new echoes
                await runner.finish(REPLY_GRACE)
        except DriverFailed as failed:
            failure = failed.reason
        except Exception as error:  # a bug, ours or the platform's: still say why
            log.exception("the bot stopped on an unexpected error")
            failure = f"internal error: {type(error).__name__}: {error}"
        finally:
            stopped.cancel()
            keeper.cancel()
            if feeder is not None:  # the sessions stay on the platform, for a restart to resume
                with contextlib.suppress(DriverError):
                    bot.driver.call(lambda now: bot.protocol.close(now, keep_sessions=True))
            await bot.close()
            await runner.finish(REPLY_GRACE)  # replies the close cut short report "CLOSED"
            await asyncio.gather(events, stopped, keeper, return_exceptions=True)
            if feeder is not None and feeding is not None and shared is not None:
                await _wind_up(feeder, feeding, shared)
    if failure is not None:
        report.failed(failure)
        return EXIT_FAILED
    return EXIT_OK


async def _wind_up(feeder: Feeder, feeding: asyncio.Task[None], shared: Coordination) -> None:
    """Publish what waits and save the sessions (a restart resumes them from
    the last event published), then let go. Every wait is bounded, and nothing
    here relies on a cancel: the client's own timeouts can swallow one."""
    feeder.stop()
    await asyncio.wait({feeding}, timeout=REPLY_GRACE)
    flushing = asyncio.create_task(feeder.flush())
    done, _ = await asyncio.wait({flushing}, timeout=REPLY_GRACE)
    error = flushing.exception() if flushing in done else None
    if flushing not in done or error is not None:
        log.warning("events or sessions not saved at the end: %s", error or "timed out")
    await shared.aclose()


def run(config: BotConfig, args: argparse.Namespace) -> int:
    """Run until a signal (0) or until the bot gives up (3)."""
    prepare_output(verbose=args.verbose, as_json=args.json)
    report: Report = JsonReport(sys.stdout) if args.json else HumanReport(sys.stdout)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(config, args, report))
    return EXIT_OK
