"""What a signed QQ callback costs the webhook endpoint, against its floor.

Run by hand (not a test)::

    .venv/bin/python benchmarks/bench_webhook.py [--callbacks N] [--repeats R]

N signed C2C message callbacks (each its own envelope id, as the platform
sends them), best of R interleaved repeats, in one run:

- ours: :meth:`~qqproto.qq.webhook.QQWebhook.handle` on each request as the
  HTTP piece hands it over: the signature and timestamp checked, the body
  decoded into the typed event, the envelope id remembered, the answer made;
- floor: the ed25519 verify of the same bytes with ``cryptography`` (the
  public key made once) plus ``msgspec.json.decode`` of the same body into a
  dict. The issue's bar: ours within 1.3x of it.

For scale, the whole request too: bytes in through h11 and the answer's
bytes out (``receive_data``), HTTP work the floor does not include.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import msgspec
from bench_onebot import best
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from qqproto.contract import Peer
from qqproto.http_server import Request
from qqproto.qq.webhook import QQWebhook, WebhookConfig

SECRET = "bench-secret-0123456789"
WALL = 1_765_000_000.0


def callbacks(n: int) -> list[tuple[bytes, str, str]]:
    key = Ed25519PrivateKey.from_private_bytes((SECRET * 2).encode()[:32])
    out = []
    for i in range(n):
        d = {
            "id": f"ROBOT1.0_{i:020d}",
            "content": f"hello number {i}, how are you?",
            "timestamp": "2026-12-07T10:00:00+08:00",
            "author": {"id": f"U{i % 97}", "user_openid": f"U{i % 97}", "union_openid": "x"},
            "message_scene": {"source": "default"},
            "message_type": 0,
        }
        body = json.dumps({"id": f"C2C_MESSAGE_CREATE:{i}", "op": 0, "t": "C2C_MESSAGE_CREATE",
                           "d": d}).encode()  # fmt: skip
        stamp = str(int(WALL))
        out.append((body, key.sign(stamp.encode() + body).hex(), stamp))
    return out


def endpoint() -> QQWebhook:
    hook = QQWebhook(WebhookConfig("1", SECRET, port=0, wall_offset=WALL))
    [listen] = hook.actions()
    hook.listening(listen.listener, "127.0.0.1", 8443, 0.0)  # type: ignore[attr-defined]
    hook.actions()
    return hook


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--callbacks", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    signed = callbacks(args.callbacks)
    raw = [  # each a whole request, as a connection reads it (keep-alive, one after another)
        b"POST / HTTP/1.1\r\nHost: bot.example\r\nContent-Type: application/json\r\n"
        b"X-Signature-Ed25519: %s\r\nX-Signature-Timestamp: %s\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (sig.encode(), stamp.encode(), len(body), body)
        for body, sig, stamp in signed
    ]
    public = Ed25519PrivateKey.from_private_bytes((SECRET * 2).encode()[:32]).public_key()
    decode = msgspec.json.decode

    requests = [
        Request(
            "POST",
            "/",
            "/",
            {},
            (("x-signature-ed25519", sig), ("x-signature-timestamp", stamp)),
            body,
        )
        for body, sig, stamp in signed
    ]

    def handled() -> None:  # the endpoint's own work: checks, decode, dedup, the answer
        handle = endpoint().handle
        for request in requests:
            handle(request, 0.0)

    def whole() -> None:  # bytes in, through h11; the answer's bytes and the event out
        hook = endpoint()
        hook.connection_accepted(hook.listener, -1, Peer("1.2.3.4", 1), 0.0)
        for data in raw:
            hook.receive_data(-1, data, 0.0)
            hook.actions()

    def floor() -> None:
        for body, sig, stamp in signed:
            public.verify(bytes.fromhex(sig), stamp.encode() + body)
            decode(body)

    runs: dict[str, list[float]] = {"handled": [], "floor": [], "whole": []}
    for _ in range(args.repeats):  # interleaved: drift hits every side alike
        runs["handled"].append(best(handled, 1))
        runs["floor"].append(best(floor, 1))
        runs["whole"].append(best(whole, 1))
    n = args.callbacks
    o, f, w = (min(runs[k]) / n * 1e6 for k in ("handled", "floor", "whole"))
    print(f"{n} signed C2C callbacks ({sum(len(b) for b, _, _ in signed) / n:.0f} bytes each)")
    print(f"  ours: QQWebhook.handle             {o:7.2f} µs/callback")
    print(f"  floor: ed25519 verify + msgspec    {f:7.2f} µs/callback")
    print(f"  ours/floor = {o / f:.2f}x (the issue's bar: 1.3x)")
    print(f"  with HTTP both ways (h11)          {w:7.2f} µs/callback ({w / f:.2f}x the floor)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
