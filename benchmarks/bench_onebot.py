"""How fast OneBot events and CQ strings are read, against the floors the issue sets.

Run by hand (not a test)::

    .venv/bin/python benchmarks/bench_onebot.py [--events N] [--repeats R]

Two measurements, best of R interleaved repeats, on the same data in one run:

- events: N NapCat-shaped v11 group messages (array format, 1 to 6 segments,
  NapCat's extra fields), each as the JSON text a connection receives.
  ``ours`` is :func:`~qqproto.onebot.frames.event_from_json`: the
  normalized :class:`~qqproto.onebot.events.MessageEvent` with its segments. The floor is
  ``msgspec.json.decode(text, type=Floor)``: the same text straight into a
  typed struct of the fields the model names (with typed segments). The
  issue's bar: ours/floor within 2x.
- CQ: N CQ strings (text, faces, mentions, images, escapes). ``ours`` is
  :func:`qqproto.onebot.cq.parse`; the floor is one ``re.split`` over the
  same string with the same code pattern. The bar: within 1.5x.
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import msgspec

from qqproto.onebot import cq
from qqproto.onebot.events import MessageEvent, decode_event
from qqproto.onebot.frames import event_from_json


class FloorSegment(msgspec.Struct):
    type: str
    data: dict[str, Any] | None = None


class Floor(msgspec.Struct):
    """The fields the model names, typed: what a fast, strict decoder would make."""

    time: int
    self_id: int
    post_type: str
    message_type: str
    sub_type: str
    message_id: int
    user_id: int
    group_id: int
    message: list[FloorSegment]
    sender: dict[str, Any]


def napcat_event(rng: random.Random, n: int) -> bytes:
    segments: list[dict[str, Any]] = []
    for _ in range(rng.randint(1, 6)):
        kind = rng.choice(["text", "text", "text", "at", "face", "image", "reply"])
        if kind == "text":
            data: dict[str, Any] = {"text": "hello world " * rng.randint(1, 4)}
        elif kind == "at":
            data = {"qq": str(rng.randint(10**8, 10**10)), "name": "someone"}
        elif kind == "face":
            data = {"id": str(rng.randint(1, 300)), "raw": {"faceIndex": 1}, "resultId": None}
        elif kind == "image":
            data = {
                "summary": "[图片]",
                "file": "ABCDEF0123456789.jpg",
                "sub_type": 0,
                "url": "https://multimedia.nt.qq.com.cn/download?appid=1407&fileid=xyz",
                "file_size": "123456",
            }
        else:
            data = {"id": str(rng.randint(-(2**31), 2**31 - 1))}
        segments.append({"type": kind, "data": data})
    event = {
        "self_id": 2000000001,
        "user_id": 10001 + n % 50,
        "time": 1765000000 + n,
        "message_id": rng.randint(-(2**31), 2**31 - 1),
        "message_seq": n,
        "real_id": n,
        "real_seq": str(n),
        "message_type": "group",
        "sender": {"user_id": 10001, "nickname": "Alice", "card": "", "role": "member"},
        "raw_message": "hello",
        "font": 14,
        "sub_type": "normal",
        "message": segments,
        "message_format": "array",
        "post_type": "message",
        "group_id": 20002,
        "group_name": "test group",
    }
    return msgspec.json.encode(event)


def cq_string(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 8)):
        parts.append(
            rng.choice(
                [
                    "hello world, how are you? ",
                    "[CQ:face,id=178]",
                    "[CQ:at,qq=1234567890]",
                    "[CQ:image,file=ABCDEF.jpg,url=https://x/y?a=1&amp;b=2]",
                    "a &#91;b&#93; c&amp;d ",
                    "[CQ:reply,id=-12345]",
                ]
            )
        )
    return "".join(parts)


_CQ_PATTERN = re.compile(r"\[CQ:([A-Za-z0-9_.\-]+)((?:,[A-Za-z0-9_.\-]+=[^,\]]*)*),?\]")


def best(fn: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(7)
    texts = [napcat_event(rng, n) for n in range(args.events)]
    strings = [cq_string(rng) for _ in range(args.events)]

    decode = msgspec.json.decode
    floor_decoder = msgspec.json.Decoder(Floor)

    def ours_events() -> None:
        for text in texts:
            event_from_json(text)

    def floor_events() -> None:
        for text in texts:
            floor_decoder.decode(text)

    def ours_cq() -> None:
        for s in strings:
            cq.parse(s)

    def floor_cq() -> None:
        split = _CQ_PATTERN.split
        for s in strings:
            split(s)

    event = event_from_json(texts[0])
    assert isinstance(event, MessageEvent) and event.segments  # the model, really made
    assert event == decode_event(decode(texts[0]))  # the same as the general path's
    runs: dict[str, list[float]] = {name: [] for name in ("oe", "fe", "oc", "fc")}
    for _ in range(args.repeats):  # interleaved: drift hits both sides alike
        runs["oe"].append(best(ours_events, 1))
        runs["fe"].append(best(floor_events, 1))
        runs["oc"].append(best(ours_cq, 1))
        runs["fc"].append(best(floor_cq, 1))
    n = args.events
    oe, fe, oc, fc = (min(runs[k]) / n * 1e6 for k in ("oe", "fe", "oc", "fc"))
    size = sum(map(len, texts)) / n
    chars = sum(map(len, strings)) / n
    print(f"{n} NapCat group messages ({size:.0f} bytes of JSON each), best of {args.repeats}")
    print(f"  ours: event_from_json              {oe:6.2f} µs/event")
    print(f"  floor: msgspec into a typed struct {fe:6.2f} µs/event")
    print(f"  ours/floor = {oe / fe:.2f}x (the issue's bar: 2x)")
    print(f"{n} CQ strings ({chars:.0f} characters each)")
    print(f"  ours: cq.parse                     {oc:6.2f} µs/string")
    print(f"  floor: one re.split                {fc:6.2f} µs/string")
    print(f"  ours/floor = {oc / fc:.2f}x (the issue's bar: 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
