"""What the reply/dedup ledger costs per inbound message.

Run by hand (not a test)::

    .venv/bin/python benchmarks/bench_ledger.py [--events N] [--repeats R]

It decodes N frames of ``bench_events.py`` (group @, C2C, guild @, group with
an image, in turn) with :class:`~qqproto.qq.decode.EventDecoder`, then times
``Conversations.inbound`` (what ``BotProtocol`` does for every ``Deliver``)
over all of them on a fresh ledger, best of R, in two clocks:

- burst: 1 ms between messages, so nothing expires during the run;
- steady: 50 ms between messages, so the 300 s windows and the 600 s dedup
  expire entries all along once the run passes them (N >= 6000).

The cyclic GC stays on: the collections the growing maps cause are part of
the cost a bot pays.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_events import BOT_ID, payloads, texts

from qqproto.qq.conversation import Conversations
from qqproto.qq.decode import EventDecoder


def run(events: list[Any], step: float) -> float:
    """Seconds per message for one pass over ``events`` on a fresh ledger."""
    conversations = Conversations()
    inbound = conversations.inbound
    now = 1000.0
    gc.collect()
    start = time.perf_counter()
    for event in events:
        inbound(event, now)
        now += step
    elapsed = time.perf_counter() - start
    assert conversations.redeliveries == 0
    return elapsed / len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    decoder = EventDecoder(BOT_ID)
    events = [decoder.decode_frame(t)[4] for t in texts(payloads(args.events))]
    for name, step in (("burst (1 ms apart)", 0.001), ("steady (50 ms apart)", 0.05)):
        best = min(run(events, step) for _ in range(args.repeats))
        print(f"{name:22} {best * 1e6:6.2f} us per message ({args.events} messages)")


if __name__ == "__main__":
    main()
