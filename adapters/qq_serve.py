"""``qqproto qq serve``: the platform's callbacks (webhook mode), on the asyncio driver.

The endpoint is a :class:`~qqproto.qq.webhook.QQWebhook` on ``--host``:``--port``
and ``--path``, and the lines are ``qqproto qq run``'s (``docs/cli.md``): a
``state`` line as it starts listening, one ``event`` line per event (a
redelivered envelope gives none), a ``failed`` line and exit 3 when the port
cannot be had. Without ``--echo`` that is all it does: no token, no network.
With ``--echo`` it runs a whole bot on callbacks alone
(``BotConfig(gateway=False, webhook=...)``): it fetches a token, and answers
each message with its text through the REST client and the reply ledger, as
``qq run --echo`` does. SIGINT and SIGTERM stop it cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from qqproto.errors import ProtocolViolation
from qqproto.qq import BotConfig, Dispatch, Event
from qqproto.qq.api import PRODUCTION_BASE_URL, SANDBOX_BASE_URL
from qqproto.qq.auth import DEFAULT_TOKEN_URL
from qqproto.qq.webhook import QQWebhook, WebhookConfig, WebhookRefused

from . import runner
from ._wall import keep_wall_offset, wall_offset
from .command import drive, run_command
from .report import HumanReport, JsonReport, Report

__all__ = ["config_from", "run"]

log = logging.getLogger("qqproto.qq.serve")


def config_from(args: argparse.Namespace, secret: str) -> WebhookConfig:
    """The endpoint's configuration (ConfigError if it is wrong). The driver's
    clock is monotonic; the signatures' timestamps are wall time."""
    return WebhookConfig(
        args.app_id,
        secret,
        host=args.host,
        port=args.port,
        path=args.path,
        wall_offset=wall_offset(),
    )


def run(config: WebhookConfig, args: argparse.Namespace) -> int:
    """Serve until a signal (0), or until the port is lost or the bot gives up (3)."""

    def report() -> Report:
        return JsonReport(sys.stdout) if args.json else HumanReport(sys.stdout)

    async def endpoint() -> int:
        lines = report()
        hook = QQWebhook(config)

        def on_event(event: object, now: float) -> None:
            if isinstance(event, Event | Dispatch):
                lines.event(event)
            elif isinstance(event, WebhookRefused | ProtocolViolation):
                log.warning("%s", event)

        keeper = asyncio.create_task(keep_wall_offset(lambda: hook))
        try:
            return await drive(hook, on_event, lines)
        finally:
            keeper.cancel()

    async def bot() -> int:
        api_base = SANDBOX_BASE_URL if args.sandbox else args.api_base or PRODUCTION_BASE_URL
        bot_config = BotConfig(
            config.app_id,
            config.secret,
            api_base=api_base,
            token_url=args.token_url or DEFAULT_TOKEN_URL,
            webhook=config,
            gateway=False,
        )
        args.allow_from = None  # what qq run's loop reads
        return await runner.serve(bot_config, args, report())

    return run_command(bot if args.echo else endpoint, args)
