"""How fast a READY gateway turns dispatch frames into Deliver actions of typed events.

Run by hand (not a test)::

    .venv/bin/python benchmarks/bench_dispatch.py [--events N] [--repeats R]
    .venv/bin/python benchmarks/bench_dispatch.py --profile   # cProfile, one pass

It prepares N realistic ``GROUP_AT_MESSAGE_CREATE`` dispatches (increasing
``s``), each as the raw unmasked text frame a server sends, and times, best of
R interleaved repeats:

- ours: a READY ``GatewayProtocol`` fed the frames, ``receive_data`` then
  ``actions()`` per call (each frame delivered as a ``GroupAtMessageCreate``,
  its fields checked);
- floor: a wsproto client ``WSConnection`` already OPEN, fed the same bytes,
  iterating its events and ``json.loads`` of each text message (the least
  any gateway on wsproto must do);
- floor (frame layer): the same on ``wsproto.connection.Connection``, the
  layer ``qqproto.ws`` talks to once the upgrade is done.

Each is run one frame per call, and with 100 frames per call. The ratio is
ours / floor (time per event).
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import gc
import hashlib
import json
import pstats
import random
import re
import string
import sys
import time
from collections.abc import Callable
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import AcceptConnection, Request, TextMessage

from qqproto.actions import Deliver, SendData
from qqproto.qq.config import GatewayConfig
from qqproto.qq.events import GroupAtMessageCreate
from qqproto.qq.gateway import GatewayProtocol
from qqproto.qq.lifecycle import GatewayState

NOW = 1000.0
CHUNK = 100  # frames per call in the chunked mode
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_KEY = re.compile(rb"(?im)^sec-websocket-key:[ \t]*([^\r\n]*?)[ \t]*\r?$")


# -- bytes a server sends ------------------------------------------------------------


def server_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked, final server-to-client frame."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 1 << 16:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


def text(payload: dict[str, Any]) -> bytes:
    return server_frame(json.dumps(payload, ensure_ascii=False).encode())


def switching_protocols(request: bytes) -> bytes:
    """The server's 101 answer to a client upgrade request."""
    match = _KEY.search(request)
    assert match is not None, "no Sec-WebSocket-Key in the request"
    accept = base64.b64encode(hashlib.sha1(match.group(1) + _GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def dispatch_frames(n: int, first_seq: int = 2, seed: int = 42) -> list[bytes]:
    """``n`` GROUP_AT_MESSAGE_CREATE frames shaped like the gateway's."""
    return [server_frame(p) for p in dispatch_payloads(n, first_seq, seed)]


def dispatch_payloads(n: int, first_seq: int = 2, seed: int = 42) -> list[bytes]:
    """The JSON text of ``dispatch_frames``: seqs from ``first_seq``, ids all distinct."""
    rng = random.Random(seed)
    lower = string.ascii_lowercase + string.digits
    mixed = string.ascii_letters + string.digits
    groups = ["".join(rng.choices("0123456789ABCDEF", k=32)) for _ in range(20)]
    members = ["".join(rng.choices("0123456789ABCDEF", k=32)) for _ in range(200)]
    commands = [" lssv", " /help", " 签到", " roll 1d100", " 今日运势", " weather 北京"]
    payloads = []
    for k in range(n):
        seq = first_seq + k
        member, group = rng.choice(members), rng.choice(groups)
        minute, second = divmod(k // 4, 60)
        payload = {
            "op": 0,
            "id": "GROUP_AT_MESSAGE_CREATE:" + "".join(rng.choices(lower, k=54)),
            "t": "GROUP_AT_MESSAGE_CREATE",
            "s": seq,
            "d": {
                "id": "ROBOT1.0_" + "".join(rng.choices(mixed, k=54)) + "!",
                "content": rng.choice(commands),
                "timestamp": f"2025-09-08T23:{minute % 60:02d}:{second:02d}+08:00",
                "author": {"id": member, "member_openid": member, "union_openid": member},
                "group_id": group,
                "group_openid": group,
                "message_scene": {"source": "default"},
                "message_type": 0,
            },
        }
        payloads.append(json.dumps(payload, ensure_ascii=False).encode())
    return payloads


def chunked(frames: list[bytes], size: int) -> list[bytes]:
    return [b"".join(frames[i : i + size]) for i in range(0, len(frames), size)]


# -- the subjects -----------------------------------------------------------------------


def ready_gateway() -> GatewayProtocol:
    """A GatewayProtocol driven to READY (seq 1) with bytes, as a driver would."""
    proto = GatewayProtocol(GatewayConfig(app_id="102000000", seed=1))
    proto.actions()  # Deliver(TokenWanted), Connect(1, ...)
    proto.token_received("bench-token", NOW + 7200.0, NOW)
    proto.connection_made(1, NOW)
    request = b"".join(a.data for a in proto.actions() if isinstance(a, SendData))
    hello = text({"op": 10, "d": {"heartbeat_interval": 45000}})
    ready = text(
        {
            "op": 0,
            "s": 1,
            "t": "READY",
            "d": {"version": 1, "session_id": "bench", "user": {"id": "1"}, "shard": [0, 1]},
        }
    )
    proto.receive_data(1, switching_protocols(request) + hello + ready, NOW)
    proto.actions()
    assert proto.state is GatewayState.READY, proto.state
    return proto


def open_wsconnection() -> WSConnection:
    """A wsproto client connection with the upgrade done in memory."""
    ws = WSConnection(ConnectionType.CLIENT)
    request = ws.send(Request(host="api.sgroup.qq.com", target="/websocket/"))
    ws.receive_data(switching_protocols(request))
    assert any(isinstance(e, AcceptConnection) for e in ws.events())
    return ws


# Each runner takes the chunks to feed; it returns the events it produced and
# the seconds the feeding took (set-up excluded).


def run_ours(chunks: list[bytes]) -> tuple[int, float]:
    proto = ready_gateway()
    receive, actions = proto.receive_data, proto.actions
    delivered = 0
    gc.collect()
    start = time.perf_counter()
    for chunk in chunks:
        receive(1, chunk, NOW)
        delivered += len(actions())
    return delivered, time.perf_counter() - start


def run_floor(chunks: list[bytes]) -> tuple[int, float]:
    ws = open_wsconnection()
    loads = json.loads
    messages = 0
    gc.collect()
    start = time.perf_counter()
    for chunk in chunks:
        ws.receive_data(chunk)
        for event in ws.events():
            if isinstance(event, TextMessage):
                loads(event.data)
                messages += 1
    return messages, time.perf_counter() - start


def run_floor_frame_layer(chunks: list[bytes]) -> tuple[int, float]:
    conn = Connection(ConnectionType.CLIENT)
    loads = json.loads
    messages = 0
    gc.collect()
    start = time.perf_counter()
    for chunk in chunks:
        conn.receive_data(chunk)
        for event in conn.events():
            if isinstance(event, TextMessage):
                loads(event.data)
                messages += 1
    return messages, time.perf_counter() - start


def timed(run: Callable[[list[bytes]], tuple[int, float]], chunks: list[bytes], n: int) -> float:
    got, seconds = run(chunks)
    assert got == n, f"{run.__name__}: {got} events, expected {n}"
    return seconds


# -- main ----------------------------------------------------------------------------------------


def check_output(frames: list[bytes]) -> None:
    """The gateway delivers every frame as the right typed event, in order."""
    proto = ready_gateway()
    proto.receive_data(1, b"".join(frames[:3]), NOW)
    out = proto.actions()
    assert [type(a) for a in out] == [Deliver] * 3, out
    first = out[0]
    assert isinstance(first, Deliver) and isinstance(first.event, GroupAtMessageCreate)
    assert first.event.event_seq == 2 and first.event.text == first.event.content.lstrip()


def profile(chunks: list[bytes], limit: int) -> None:
    proto = ready_gateway()
    receive, actions = proto.receive_data, proto.actions

    def feed() -> None:
        for chunk in chunks:
            receive(1, chunk, NOW)
            actions()

    profiler = cProfile.Profile()
    profiler.runcall(feed)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile one pass of ours")
    parser.add_argument("--chunked", action="store_true", help="with --profile: 100 per call")
    args = parser.parse_args(argv)

    n = args.events
    frames = dispatch_frames(n)
    check_output(frames)
    big = chunked(frames, CHUNK)
    size = sum(map(len, frames))
    print(f"{n} dispatch frames, {size / n:.0f} bytes each on average; best of {args.repeats}")

    if args.profile:
        profile(big if args.chunked else frames, 30)
        return 0

    subjects: list[tuple[str, Callable[[list[bytes]], tuple[int, float]], str]] = [
        ("ours", run_ours, "frame"),
        ("floor: WSConnection + json.loads", run_floor, "frame"),
        ("floor: frame layer + json.loads", run_floor_frame_layer, "frame"),
        ("ours", run_ours, "chunk"),
        ("floor: WSConnection + json.loads", run_floor, "chunk"),
        ("floor: frame layer + json.loads", run_floor_frame_layer, "chunk"),
    ]
    best: dict[tuple[str, str], float] = {}
    started = time.perf_counter()
    for _ in range(args.repeats):
        for name, run, mode in subjects:  # interleaved: drift hits all alike
            seconds = timed(run, frames if mode == "frame" else big, n)
            key = (name, mode)
            best[key] = min(best.get(key, seconds), seconds)

    for mode, title in (("frame", "one frame per call"), ("chunk", f"{CHUNK} frames per call")):
        print(f"\n{title}:")
        ours = best[("ours", mode)]
        for name, _, m in subjects:
            if m != mode:
                continue
            t = best[(name, mode)]
            line = f"  {name:34s} {n / t:>10,.0f} events/s  {t / n * 1e6:7.2f} µs/event"
            if name != "ours":
                line += f"   ours/floor = {ours / t:.2f}x (+{(ours - t) / n * 1e6:.2f} µs/event)"
            print(line)
    print(f"\n(took {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
