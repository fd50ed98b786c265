"""``qqproto qq work``: a worker on the event stream the ``qq run --redis`` processes feed.

It takes events from the app's stream in Redis (through the consumer group,
so each event goes to one worker), prints the same ``event`` lines as ``qq
run`` (each with its ``shard``), and with ``--echo`` answers each message
with its text, its ``msg_seq`` from the app's shared counter, so several
workers answering one message never repeat one. What a worker that dies
held is taken over by another after ``--min-idle`` seconds, and handled once.

The app is the one ``--app-id`` names; without it, the only app whose stream
is in that Redis (several there: a usage error). With ``--echo`` the worker
needs the AppSecret (``--secret`` or ``QQPROTO_SECRET``) for its replies;
without, it needs nothing but Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys

from qqproto.errors import ProtocolError
from qqproto.qq import BotConfig, Dispatch, Event, Message

from ._common import DriverError, DriverFailed
from .bot import QQBot
from .command import run_command, stop_signals
from .coordination import Coordination, Unavailable
from .feeder import SEQ_TTL
from .report import HumanReport, JsonReport, Report
from .runner import EXIT_FAILED, EXIT_OK, failure_code
from .worker import Worker

__all__ = ["find_app", "run"]

log = logging.getLogger("qqproto.work")


async def find_app(url: str) -> list[str]:
    """The apps whose event stream is in the Redis at ``url``; :class:`Unavailable`
    while that Redis cannot be reached."""
    import redis.asyncio as aioredis
    from redis import exceptions

    client = aioredis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match="qqproto:*:events", count=1000)]
    except (exceptions.ConnectionError, exceptions.TimeoutError) as error:
        raise Unavailable(f"redis: {error}") from error
    finally:
        await client.aclose()
    names = (k.decode() if isinstance(k, bytes) else str(k) for k in keys)
    return sorted({name.split(":")[1] for name in names})


class Echo:
    """Prints each event, and answers messages with their text (``--echo``)."""

    def __init__(self, report: Report, shared: Coordination, bot: QQBot | None) -> None:
        self.report = report
        self.shared = shared
        self.bot = bot

    async def handle(self, event: Event | Dispatch) -> None:
        self.report.event(event)
        bot = self.bot
        if bot is None or not isinstance(event, Message) or not event.text.strip():
            return
        await bot.inbound(event)
        seq = await self.shared.seqs.next(event.id, SEQ_TTL)
        try:
            result = await bot.reply(event, event.text, msg_seq=seq)
        except DriverFailed:
            raise  # the bot gave up: the worker stops (Worker's fatal), saying why
        except DriverError:
            code: int | str | None = "CLOSED"
        except ProtocolError as refused:  # refused here (ReplyRefused), before any request
            code = failure_code(refused)
        else:
            code = failure_code(result.error)
        self.report.reply(event.id, code)


def run(args: argparse.Namespace, config: BotConfig | None) -> int:
    """Work until a signal (0), or until the replying bot gives up (3)."""
    from .redis import connect

    async def main() -> int:
        report: Report = JsonReport(sys.stdout) if args.json else HumanReport(sys.stdout)
        app_id = args.app_id
        if app_id is None:
            apps: list[str] = []
            while not apps:  # no gateway process has fed this Redis yet: wait for one
                try:
                    apps = await find_app(args.redis)
                except Unavailable as error:
                    log.warning("%s: waiting", error)
                if not apps:
                    log.info("no bot's stream in %s yet: waiting", args.redis)
                    await asyncio.sleep(1.0)
            if len(apps) > 1:
                print(
                    "qqproto qq work: error: argument --app-id: required: several bots "
                    f"here: {', '.join(apps)}",
                    file=sys.stderr,
                )
                return 2
            app_id = apps[0]
        shared = connect(args.redis, app_id)
        bot = QQBot.from_config(config) if config is not None else None
        echo = Echo(report, shared, bot)
        consumer = f"{socket.gethostname()}-{os.getpid()}"
        worker = Worker(
            shared, consumer, echo.handle, min_idle=args.min_idle, fatal=(DriverFailed,)
        )
        failure: str | None = None
        with stop_signals(report) as stop:
            try:
                if bot is not None:
                    await bot.start()
                working = asyncio.create_task(worker.run(stop))
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait({working, stopped}, return_when=asyncio.FIRST_COMPLETED)
                stop.set()
                stopped.cancel()
                await working
            except DriverFailed as failed:
                failure = failed.reason
            finally:
                if bot is not None:
                    await bot.close()
                await shared.aclose()
        if failure is not None:
            report.failed(failure)
            return EXIT_FAILED
        return EXIT_OK

    return run_command(main, args)
