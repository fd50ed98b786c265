"""The ``qqproto`` command.

``qqproto demo`` starts the simulator on 127.0.0.1 and a bot against it.
``qqproto qq run`` runs a bot on the real platform (or any compatible endpoint).
``qqproto onebot run`` dials a OneBot implementation's forward WebSocket.

Exit statuses: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for bad arguments
(argparse's message names the argument), 3 when the bot (or the connection)
gave up.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence

from qqproto import __version__
from qqproto.errors import ConfigError
from qqproto.qq import BotConfig, Intents
from qqproto.qq.api import PRODUCTION_BASE_URL, SANDBOX_BASE_URL
from qqproto.qq.auth import DEFAULT_TOKEN_URL
from qqproto.qq.shards import parse_slice
from qqproto.url import BadUrl, Url

from . import demo

__all__ = ["build_parser", "main"]

SECRET_VARIABLE = "QQPROTO_SECRET"
#: OneBot's token and signing secret, when not on the command line (other
#: users can read a process's arguments).
ONEBOT_TOKEN_VARIABLE = "QQPROTO_ONEBOT_TOKEN"
ONEBOT_SECRET_VARIABLE = "QQPROTO_ONEBOT_SECRET"
#: The option behind each BotConfig field a ConfigError may name.
OPTION_OF = {
    "app_id": "--app-id",
    "secret": "--secret",
    "api_base": "--api-base",
    "token_url": "--token-url",
    "gateway_url": "--gateway-url",
    "intents": "--intents",
    "shard": "--shard",
    "shards": "--shards",
    "shard_ids": "--shard-slice",
    "max_attempts": "--max-attempts",
}


def shard(text: str) -> tuple[int, int]:
    """``I/N``: shard I of N, with 0 <= I < N."""
    index, slash, count = text.partition("/")
    try:
        if not slash:
            raise ValueError
        i, n = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 0/1, got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"expected 0 <= I < N, got {i}/{n}")
    return i, n


def shard_count(text: str) -> int | str:
    """``N`` (at least 1) or ``auto``."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a count of at least 1 or auto, got {text!r}")
    return int(text)


def shard_slice(text: str) -> range:
    """``I..J``: shards I to J, both included."""
    try:
        return parse_slice(text)
    except ConfigError:
        raise argparse.ArgumentTypeError(f"expected I..J with I <= J, got {text!r}") from None


def intents(text: str) -> int:
    """A non-negative integer, decimal or ``0x``-prefixed; sent as given."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer bit mask, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative bit mask, got {value}")
    return value


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def url(*schemes: str) -> Callable[[str], str]:
    """A URL with one of ``schemes`` and a host."""

    def check(text: str) -> str:
        try:
            Url.parse(text, schemes)
        except BadUrl:
            want = " or ".join(f"{s}://host/..." for s in schemes)
            raise argparse.ArgumentTypeError(f"expected a URL {want}, got {text!r}") from None
        return text

    return check


def rest_options(parser: argparse.ArgumentParser, when: str = "") -> None:
    """Where the REST API is (``when``: the option that needs it, for the help)."""
    parser.add_argument("--sandbox", action="store_true", help=f"{when}use the sandbox API")
    parser.add_argument("--api-base", type=url("https", "http"), help=f"{when}REST API base URL")
    parser.add_argument("--token-url", type=url("https", "http"), help=f"{when}token endpoint")


def port(text: str) -> int:
    """A TCP port to listen on, 0 (any free one) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected 0 to 65535, got {value}")
    return value


def openids(text: str) -> frozenset[str]:
    ids = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not ids:
        raise argparse.ArgumentTypeError(f"expected OPENID[,OPENID...], got {text!r}")
    return ids


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qqproto", description="A sans-IO protocol core for QQ bots."
    )
    parser.add_argument("--version", action="version", version=f"qqproto {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("demo", help="a bot against the local simulator; no network")
    qq = commands.add_parser("qq", help="the QQ Official Bot platform")
    qq_commands = qq.add_subparsers(dest="qq_command", required=True, metavar="COMMAND")
    run = qq_commands.add_parser("run", help="run a bot", description="Run a bot.")
    run.add_argument("--app-id", required=True, help="the bot's AppID")
    run.add_argument(
        "--secret", help=f"the bot's AppSecret (default: the {SECRET_VARIABLE} variable)"
    )
    rest_options(run)
    run.add_argument(
        "--gateway-url", type=url("wss", "ws"), help="connect here instead of discovering"
    )
    run.add_argument(
        "--intents",
        type=intents,
        default=int(Intents.default()),
        help="intents bit mask (default: group + C2C + public guild messages)",
    )
    run.add_argument("--shard", type=shard, default=(0, 1), help="shard I/N (default 0/1)")
    run.add_argument(
        "--shards",
        type=shard_count,
        help="run N shards in this process, or auto for the count the platform recommends",
    )
    run.add_argument(
        "--shard-slice",
        type=shard_slice,
        help="with --shards: run only shards I..J of them (both included)",
    )
    run.add_argument(
        "--redis",
        type=url("redis", "rediss"),
        help="share identifies, sessions and events with other processes through this Redis",
    )
    run.add_argument(
        "--max-attempts",
        type=positive,
        default=30,
        help="give up after N connection attempts in a row that reach no session",
    )
    run.add_argument(
        "--allow-from",
        type=openids,
        help="only these senders reach the bot (comma-separated openids)",
    )
    run.add_argument("--echo", action="store_true", help="answer each message with its text")
    run.add_argument("--json", action="store_true", help="JSON lines on stdout, logs on stderr")
    run.add_argument("-v", "--verbose", action="store_true", help="log frames on stderr")
    run.set_defaults(run_parser=run)  # so that errors found later name "qqproto qq run"
    qs = qq_commands.add_parser(
        "serve",
        help="serve the platform's callbacks (webhook mode)",
        description="Serve a bot's HTTP callbacks.",
    )
    qs.add_argument("--app-id", required=True, help="the bot's AppID")
    qs.add_argument(
        "--secret", help=f"the bot's AppSecret (default: the {SECRET_VARIABLE} variable)"
    )
    qs.add_argument("--host", required=True, help="the address to listen on")
    qs.add_argument("--port", required=True, type=port, help="the port (0: any free one)")
    qs.add_argument("--path", default="/", help="the callback path (default: /)")
    rest_options(qs, when="--echo: ")
    qs.add_argument("--echo", action="store_true", help="answer each message with its text")
    qs.add_argument("--json", action="store_true", help="JSON lines on stdout, logs on stderr")
    qs.add_argument("-v", "--verbose", action="store_true", help="log frames on stderr")
    qs.set_defaults(run_parser=qs)
    work = qq_commands.add_parser(
        "work",
        help="handle the events of qq run --redis processes",
        description="Run a worker on the event stream that qq run --redis processes feed.",
    )
    work.add_argument(
        "--redis", required=True, type=url("redis", "rediss"), help="the Redis they share"
    )
    work.add_argument("--app-id", help="the bot's AppID (default: the only app in that Redis)")
    work.add_argument(
        "--secret", help=f"--echo: the bot's AppSecret (default: the {SECRET_VARIABLE} variable)"
    )
    rest_options(work, when="--echo: ")
    work.add_argument(
        "--min-idle",
        type=float,
        default=30.0,
        help="take over events another worker held this many seconds (default 30)",
    )
    work.add_argument("--echo", action="store_true", help="answer each message with its text")
    work.add_argument("--json", action="store_true", help="JSON lines on stdout, logs on stderr")
    work.add_argument("-v", "--verbose", action="store_true", help="log on stderr")
    work.set_defaults(run_parser=work)
    onebot = commands.add_parser("onebot", help="a OneBot v11/v12 implementation")
    onebot_commands = onebot.add_subparsers(dest="onebot_command", required=True, metavar="COMMAND")
    ob = onebot_commands.add_parser(
        "run", help="dial an implementation's WebSocket", description="Run a OneBot client."
    )
    ob.add_argument("--ws-url", required=True, type=url("ws", "wss"), help="the forward WebSocket")
    ob.add_argument(
        "--access-token",
        help=f"sent as Authorization: Bearer (default: the {ONEBOT_TOKEN_VARIABLE} variable)",
    )
    ob.add_argument(
        "--protocol", choices=("auto", "v11", "v12"), default="auto", help="default: auto"
    )
    ob.add_argument(
        "--api-url", type=url("http", "https"), help="v12: send actions as HTTP POSTs here"
    )
    ob.add_argument("--echo", action="store_true", help="answer each message with its text")
    ob.add_argument("--json", action="store_true", help="JSON lines on stdout, logs on stderr")
    ob.add_argument("-v", "--verbose", action="store_true", help="log frames on stderr")
    ob.set_defaults(run_parser=ob)
    obs = onebot_commands.add_parser(
        "serve",
        help="be dialled: reverse WebSocket and HTTP POST",
        description="Serve OneBot implementations: reverse WebSocket on /, events POSTed to "
        "/onebot/event.",
    )
    obs.add_argument("--host", required=True, help="the address to listen on")
    obs.add_argument("--port", required=True, type=port, help="the port (0: any free one)")
    obs.add_argument(
        "--access-token",
        help="what implementations must present (Bearer; default: the "
        f"{ONEBOT_TOKEN_VARIABLE} variable)",
    )
    obs.add_argument(
        "--secret",
        help="v11 HTTP POST: the X-Signature HMAC key (default: the "
        f"{ONEBOT_SECRET_VARIABLE} variable)",
    )
    obs.add_argument("--echo", action="store_true", help="answer each message with its text")
    obs.add_argument("--json", action="store_true", help="JSON lines on stdout, logs on stderr")
    obs.add_argument("-v", "--verbose", action="store_true", help="log frames on stderr")
    obs.set_defaults(run_parser=obs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return demo.run(lambda line: print(line, flush=True))
    run_parser: argparse.ArgumentParser = args.run_parser
    if args.command == "onebot":
        args.access_token = args.access_token or os.environ.get(ONEBOT_TOKEN_VARIABLE) or None
    if args.command == "onebot" and args.onebot_command == "serve":
        args.secret = args.secret or os.environ.get(ONEBOT_SECRET_VARIABLE) or None
        from . import onebot_serve  # the driver loads only for a real run

        try:
            serve_config = onebot_serve.config_from(args)
        except ConfigError as error:
            run_parser.error(
                f"argument --{error.name.replace('_', '-')}: expected {error.expected}"
            )
        return onebot_serve.run(serve_config, args)
    if args.command == "onebot":
        from . import onebot_run  # the driver loads only for a real run

        try:
            onebot_config = onebot_run.config_from(args)
        except ConfigError as error:
            option = {"url": "--ws-url"}.get(error.name, "--" + error.name.replace("_", "-"))
            run_parser.error(f"argument {option}: expected {error.expected}")
        return onebot_run.run(onebot_config, args)
    if getattr(args, "redis", None) and importlib.util.find_spec("redis") is None:
        run_parser.error("argument --redis: needs the redis extra (pip install 'qqproto[redis]')")
    if args.sandbox and args.api_base:
        run_parser.error("argument --sandbox: not allowed with --api-base")
    if args.qq_command == "work":
        return _work(args, run_parser)
    if args.qq_command == "run" and args.shards is not None and args.shard != (0, 1):
        run_parser.error("argument --shard: not allowed with --shards (use --shard-slice)")
    secret = args.secret or os.environ.get(SECRET_VARIABLE)
    if not secret:
        run_parser.error(f"argument --secret: required (or set {SECRET_VARIABLE})")
    if args.qq_command == "serve":
        from . import qq_serve  # the driver loads only for a real run

        try:
            hook = qq_serve.config_from(args, secret)
        except ConfigError as error:
            option = "--" + error.name.replace("_", "-")
            run_parser.error(f"argument {option}: expected {error.expected}")
        return qq_serve.run(hook, args)
    from . import runner  # the driver loads only for a real run

    try:
        config = runner.config_from(args, secret)
    except ConfigError as error:
        option = OPTION_OF.get(error.name.split(".")[0], error.name)
        run_parser.error(f"argument {option}: expected {error.expected}, got {error.received!r}")
    return runner.run(config, args)


def _work(args: argparse.Namespace, run_parser: argparse.ArgumentParser) -> int:
    from . import qq_work  # the driver loads only for a real run

    if not 0 < args.min_idle < 86_400:
        run_parser.error(
            f"argument --min-idle: expected seconds > 0 (under a day), got {args.min_idle}"
        )
    config = None
    if args.echo:
        secret = args.secret or os.environ.get(SECRET_VARIABLE)
        if not secret:
            run_parser.error(f"argument --secret: required with --echo (or set {SECRET_VARIABLE})")
        if args.app_id is None:
            run_parser.error("argument --app-id: required with --echo")
        api_base = SANDBOX_BASE_URL if args.sandbox else args.api_base or PRODUCTION_BASE_URL
        try:
            config = BotConfig(
                args.app_id,
                secret,
                gateway=False,
                api_base=api_base,
                token_url=args.token_url or DEFAULT_TOKEN_URL,
            )
        except ConfigError as error:
            run_parser.error(
                f"argument --{error.name.replace('_', '-')}: expected {error.expected}"
            )
    return qq_work.run(args, config)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
