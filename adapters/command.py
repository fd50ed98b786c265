"""What every long-running command shares: running one protocol object until it ends.

A command builds its protocol object and a :class:`~.report.Report`, and
:func:`drive` runs the object on the asyncio driver: state changes become
the report's ``state`` lines, SIGINT, SIGTERM and a closed stdout stop it
cleanly (exit 0), and an object that gives up ends in a ``failed`` line and
exit 3. :func:`run_command` wraps it all in the process's setup.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from qqproto.contract import Driven

from ._common import DriverFailed
from .asyncio import AsyncioDriver
from .report import Report, prepare_output

__all__ = ["EXIT_FAILED", "EXIT_OK", "drive", "run_command", "stop_signals"]

EXIT_OK = 0
EXIT_FAILED = 3
log = logging.getLogger("qqproto.command")


@contextlib.contextmanager
def stop_signals(lines: Report) -> Iterator[asyncio.Event]:
    """An event that SIGINT, SIGTERM or a closed stdout (its reader went away)
    sets, while the block runs on the running loop."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    lines.on_closed = stop.set
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def drive(proto: Driven, on_event: Callable[[object, float], None], lines: Report) -> int:
    """Run ``proto`` on the asyncio driver until a signal or a closed stdout (0),
    or until it gives up (3, after its ``failed`` line)."""
    driver: AsyncioDriver

    def deliver(event: object) -> None:
        on_event(event, driver.now())

    driver = AsyncioDriver(proto, on_event=deliver, on_state=lines.state)
    failure: str | None = None
    with stop_signals(lines) as stop:
        running = asyncio.create_task(driver.run())
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                running.result()
        except DriverFailed as failed:
            failure = failed.reason
        except Exception as error:  # a bug, ours or the peer's: still said, as a failed line
            log.exception("stopped on an unexpected error")
            failure = f"internal error: {type(error).__name__}: {error}"
        finally:
            stopped.cancel()
            driver.stop()
            await asyncio.gather(running, stopped, return_exceptions=True)
    if failure is not None:
        lines.failed(failure)
        return EXIT_FAILED
    return EXIT_OK


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # before the loop's own handlers are in place: a clean exit


def run_command(main: Callable[[], Coroutine[Any, Any, int]], args: argparse.Namespace) -> int:
    """A command's run: signals clean from the start, its output set up, its exit status."""
    for signum in (signal.SIGINT, signal.SIGTERM):  # from the very start
        signal.signal(signum, _interrupted)
    prepare_output(verbose=args.verbose, as_json=args.json)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(main())
    return EXIT_OK
