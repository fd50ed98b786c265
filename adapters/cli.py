"""The ``qqproto`` command.

``qqproto demo`` runs the gateway core through a scripted story in memory.
``qqproto qq run`` (a bot on the real platform) arrives with the drivers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import demo

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qqproto", description="A sans-IO protocol core for QQ bots."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("demo", help="the gateway core through a scripted story, no network")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return demo.run(lambda line: print(line, flush=True))
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
