"""The processes of the multi-process tests (tests/test_scale.py), one role each.

``python -m tests.scale_proc <role> ...`` runs one role against a Redis and a
simulator the test serves, and says what it did as JSON lines on stdout:

- ``gateway``: a QQBot for a slice of shards, with the shared identify slots,
  sessions and stream (a Feeder); prints ``{"ready": [i, n]}`` per shard;
- ``slot``: takes an identify slot, prints ``{"held": true}``, and waits to
  be killed;
- ``worker``: a Worker that prints ``{"handled": key}`` per event, and hangs
  forever on the event whose key is ``--hang-on`` (after printing
  ``{"hanging": key}``);
- ``reply``: a calls-only bot that answers one message with a shared
  ``msg_seq`` and prints ``{"seq": n, "ok": bool}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from qqproto.adapters.bot import QQBot
from qqproto.adapters.feeder import SEQ_TTL, Feeder, planned_shards
from qqproto.adapters.redis import connect
from qqproto.adapters.worker import Worker
from qqproto.qq import BotConfig, Dispatch, Event
from qqproto.qq.decode import EventDecoder
from qqproto.qq.lifecycle import GatewayState


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def gateway(args: argparse.Namespace) -> None:
    shared = connect(args.redis, args.app_id)
    ids = range(args.first, args.last + 1)
    config = BotConfig(
        args.app_id,
        args.secret,
        api_base=args.api_base,
        token_url=args.token_url,
        shards=args.shards,
        shard_ids=ids,
        external_gate=True,
        identify_window=args.window,
        rng=None,
    )
    bot = QQBot.from_config(config)
    feeder = Feeder(bot, shared, save_every=0.1)
    say(restored=await feeder.restore(planned_shards(config)))
    feeding = asyncio.create_task(feeder.run())
    told: set[int] = set()
    async with bot:
        async for event in bot.events():
            feeder.feed(event)
            for shard_id, gw in bot.protocol.gateways.items():
                if gw.state is GatewayState.READY and shard_id not in told:
                    told.add(shard_id)
                    say(ready=[shard_id, args.shards])
    feeding.cancel()


async def slot(args: argparse.Namespace) -> None:
    shared = connect(args.redis, args.app_id)
    await shared.slots.acquire(0, hold=args.window)
    say(held=True)
    await asyncio.Event().wait()  # until killed


async def worker(args: argparse.Namespace) -> None:
    shared = connect(args.redis, args.app_id)

    async def handle(event: Event | Dispatch) -> None:
        key = str(getattr(event, "id", None) or "")
        if key == args.hang_on:
            say(hanging=key)
            await asyncio.Event().wait()  # until killed, the event held
        say(handled=key)

    worker = Worker(shared, args.name, handle, block=0.2, min_idle=args.min_idle, lease=args.lease)
    await worker.run(asyncio.Event())


async def reply(args: argparse.Namespace) -> None:
    shared = connect(args.redis, args.app_id)
    config = BotConfig(
        args.app_id, args.secret, gateway=False, api_base=args.api_base, token_url=args.token_url
    )
    event = EventDecoder().decode_dispatch(args.frame)
    async with QQBot.from_config(config) as bot:
        await bot.inbound(event)
        seq = await shared.seqs.next(str(getattr(event, "id", "")), SEQ_TTL)
        result = await bot.reply(event, f"from {args.name}", msg_seq=seq)
        say(seq=seq, ok=result.ok)
    await shared.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["gateway", "slot", "worker", "reply"])
    parser.add_argument("--redis", required=True)
    parser.add_argument("--app-id", default="102000000")
    parser.add_argument("--secret", default="simulator-secret")
    parser.add_argument("--api-base", default="")
    parser.add_argument("--token-url", default="")
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--last", type=int, default=0)
    parser.add_argument("--window", type=float, default=0.3)
    parser.add_argument("--name", default="worker")
    parser.add_argument("--hang-on", default="")
    parser.add_argument("--min-idle", type=float, default=0.5)
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--frame", default="")
    args = parser.parse_args()
    role = {"gateway": gateway, "slot": slot, "worker": worker, "reply": reply}[args.role]
    try:
        asyncio.run(role(args))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
