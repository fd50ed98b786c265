"""``qqproto onebot serve``: implementations call us, on the asyncio driver, telling what happens.

One :class:`~qqproto.onebot.reverse.OneBotServer` on ``--host``:``--port``:
reverse WebSockets on ``/`` and events POSTed to ``/onebot/event`` (v11 HTTP
POST, signed with ``--secret``; v12 webhooks, with the access token). The
lines are ``qqproto onebot run``'s (``docs/cli.md``). With ``--echo`` each
message is answered once with its text: on its account's WebSocket with a
correlated action (its ``reply`` line has the retcode), or, for a POSTed one,
as the POST's quick operation (its ``reply`` line has no retcode: the
implementation does it after our answer). SIGINT and SIGTERM stop the server
cleanly (exit 0); a port that cannot be listened on exits 3 after a
``failed`` line.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from qqproto.onebot import Event, MessageEvent
from qqproto.onebot.reverse import OneBotServer
from qqproto.onebot.serving import Connected, Disconnected, ServeConfig, ServeRefused

from .command import drive, run_command
from .onebot_run import Answers, Lines, echo_of

__all__ = ["config_from", "run"]

log = logging.getLogger("qqproto.onebot.serve")
#: How long a POSTed message's answer waits for its echo, with ``--echo``
#: (implementations wait 5 s at least for it).
QUICK_WINDOW = 2.0


def config_from(args: argparse.Namespace) -> ServeConfig:
    """The server's configuration (ConfigError if it is wrong)."""
    return ServeConfig(
        host=args.host,
        port=args.port,
        access_token=args.access_token,
        secret=args.secret,
        quick_window=QUICK_WINDOW if args.echo else 0.0,
    )


class ServeEcho(Answers):
    """Answers each message once, where it came from, and reports how each answer went."""

    def __init__(self, server: OneBotServer, lines: Lines, *, echo: bool) -> None:
        super().__init__(lines, echo=echo)
        self.server = server

    def on_event(self, event: object, now: float) -> None:
        if isinstance(event, MessageEvent) and event.type == "message":
            self.lines.message(event, event.self_id)
            if self.echo and event.text and self._answer(event, now):
                return
        elif isinstance(event, Connected):
            impl = f", {event.impl}" if event.impl else ""
            log.info(
                "%s connected from %s (%s, v%d%s)",
                event.self_id,
                event.peer,
                event.role,
                event.version,
                impl,
            )
        elif isinstance(event, Disconnected):
            log.info("%s disconnected: %s", event.self_id, event.why)
        elif isinstance(event, ServeRefused):
            log.warning("%s", event)
        else:
            self.on_news(event)
        if isinstance(event, Event):  # nothing to answer with: a POST held for one goes now
            self.server.quick_reply(event, None, now)

    def _answer(self, event: MessageEvent, now: float) -> bool:
        """Echo ``event``; False when there is nothing to echo."""
        action = echo_of(event)
        if action is None:
            return False
        operation: Any = (
            [{"action": action.name, "params": dict(action.params)}]  # v12: actions to run
            if event.version == 12
            else {"reply": event.text, "auto_escape": True, "at_sender": False}
        )
        if self.server.quick_reply(event, operation, now):
            to = str(event.message_id) if event.message_id is not None else None
            self.lines.answered(to, None, True)  # done by the implementation, after our answer
        elif event.self_id is not None:
            self.sent(self.server.call(event.self_id, action, now), event)
        return True


def run(config: ServeConfig, args: argparse.Namespace) -> int:
    """Serve until a signal (0) or until the port is lost (3)."""
    if config.access_token is not None and config.secret is None:
        # The token guards the WebSockets; NapCat's and LLOneBot's POSTs carry
        # none (they sign with it), so without a secret POSTs go unchecked.
        log.warning(
            "no --secret: v11 events POSTed to %s are taken unsigned (one that "
            "presents a token must present the right one)",
            config.event_path,
        )

    async def main() -> int:
        lines = Lines(sys.stdout, as_json=args.json)
        server = OneBotServer(config)
        echo = ServeEcho(server, lines, echo=args.echo)
        return await drive(server, echo.on_event, lines)

    return run_command(main, args)
