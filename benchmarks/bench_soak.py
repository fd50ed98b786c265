"""How much of the gateway state machine test's time goes to schedules that count.

Run by hand (not a test)::

    .venv/bin/python benchmarks/bench_soak.py [--schedules N]

It runs ``tests/test_gateway_stateful.py``'s machine for N valid schedules
(derandomized: the same seed every run, so two versions of the machine can
be compared on one machine in one sitting) and prints:

- valid schedules per second;
- how many schedules Hypothesis started and threw away: it turns a random
  share of the rules off in each schedule (swarm testing), and a state where
  no rule left on can act ends the schedule as invalid;
- the share of the steps taken that changed anything (the client's state,
  the clock, the wire, the server's logs).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from tests.test_gateway_stateful import GatewayMachine


def fingerprint(machine: GatewayMachine) -> tuple[Any, ...]:
    """What a step that does work changes."""
    conn, proto = machine.conn, machine.proto
    return (
        machine.now,
        proto.state,
        proto.link,
        proto.seq,
        id(proto),
        machine.pending_connect,
        id(conn),
        conn and (conn.hello, conn.login, conn.answered, conn.drop_acks, conn.open),
        machine.fetches_outstanding,
        machine.token_gen,
        len(machine.server.entries),
        sum(s.invalidated for s in machine.server.sessions.values()),
        machine.violations,
        machine.disconnects,
        len(machine.state_changes),
        len(machine.heartbeats),
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=2000)
    args = parser.parse_args(argv)
    steps: Counter[str] = Counter()
    started = 0

    class Counted(GatewayMachine):
        def __init__(self) -> None:
            nonlocal started
            super().__init__()
            started += 1
            self._before: tuple[Any, ...] | None = None

        @invariant()
        def count_work(self) -> None:
            now = fingerprint(self)
            if self._before is not None:
                steps["work" if now != self._before else "no-op"] += 1
            self._before = now

    began = time.perf_counter()
    run_state_machine_as_test(
        Counted,
        settings=settings(
            max_examples=args.schedules,
            stateful_step_count=50,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
    took = time.perf_counter() - began
    total = steps.total()
    thrown = started - args.schedules
    print(
        f"{args.schedules} valid schedules in {took:.1f} s: {args.schedules / took:.1f} per second"
    )
    print(f"{started} started, {thrown} thrown away ({thrown / started:.1%})")
    print(f"{total} steps, {steps['work'] / total:.1%} of them doing work")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
