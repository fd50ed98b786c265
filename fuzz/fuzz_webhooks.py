"""The fuzz target for the serving endpoints: ``QQWebhook`` and ``OneBotServer``.

Run it by hand::

    python fuzz/fuzz_webhooks.py [libFuzzer options] [corpus dirs]

With atheris importable this is a coverage-guided libFuzzer run over raw
inputs (:func:`decode_input`), seeded with :func:`seed_inputs`. Without it (or
with ``FUZZ_ENGINE=hypothesis``) Hypothesis runs structured streams
(:func:`cases`) for ``FUZZ_EXAMPLES`` examples (default 20000).

One case is what a client sends one accepted connection of one endpoint, cut
into reads. :func:`run_case` plays the driver and holds each endpoint to its
contract:

- nothing is raised, whatever the bytes;
- every answer's status is one the endpoint promises (the QQ callback's 200,
  400, 401, 404, 405, 413, 426 and 431; OneBot's 101, 204 and the same
  refusals, 403 too);
- a QQ event is delivered only for a request that carried a good signature
  (the seeds carry some), once per envelope id, and a 200 to a dispatch is
  the acknowledgement;
- a OneBot event is delivered only after a good token (an upgrade that was
  accepted) or on an event POST, never from a refused request; and a POST is
  accepted only with a signature (the endpoint has a secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

if __name__ == "__main__":  # run as a script: import the fuzz package from the repo root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st

from fuzz import engine
from qqproto.actions import Deliver, Disconnect, Listen, SendData
from qqproto.contract import Driven, Peer
from qqproto.onebot.events import Event as OneBotEvent
from qqproto.onebot.reverse import OneBotServer
from qqproto.onebot.serving import ServeConfig
from qqproto.qq.events import Event as QQEvent
from qqproto.qq.webhook import ACK, QQWebhook, WebhookConfig

SECRET: Final = "fuzz-secret-0123"
ONEBOT_SECRET: Final = "hush"
TOKEN: Final = "t"
WALL: Final = 1_765_000_000
QQ_STATUSES: Final = {200, 400, 401, 404, 405, 413, 426, 431}
ONEBOT_STATUSES: Final = {101, 204, 400, 401, 403, 404, 405, 413, 426, 431}


def _signed(body: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes((SECRET * 2).encode()[:32])
    stamp = str(WALL).encode()
    signature = key.sign(stamp + body).hex().encode()
    return (
        b"POST / HTTP/1.1\r\nHost: b\r\nX-Signature-Ed25519: " + signature + b"\r\n"
        b"X-Signature-Timestamp: " + stamp + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )


def _dispatch(n: int) -> bytes:
    d = {
        "id": f"M{n}",
        "content": "hi",
        "timestamp": "2026-01-01T00:00:00+08:00",
        "author": {"user_openid": "u"},
    }
    return json.dumps({"id": f"E:{n}", "op": 0, "t": "C2C_MESSAGE_CREATE", "d": d}).encode()


def _hmac_signed(body: bytes) -> bytes:
    """A v11 event POST signed with the endpoint's secret (spec 1.2)."""
    digest = hmac.new(ONEBOT_SECRET.encode(), body, hashlib.sha1).hexdigest()
    return _post("/onebot/event", body, f"X-Signature: sha1={digest}\r\n".encode())


def _post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: b\r\nContent-Length: {len(body)}\r\n".encode()
    return head + extra + b"\r\n" + body


_UPGRADE: Final = (
    b"GET / HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"X-Self-ID: 42\r\nAuthorization: Bearer t\r\n\r\n"
)


def _frame(text: bytes) -> bytes:
    """A masked client text frame (mask 0: the payload as it is)."""
    size = len(text)
    head = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0xFE]) + size.to_bytes(2)
    return head + b"\0\0\0\0" + text


_EVENT: Final = json.dumps(
    {
        "post_type": "message",
        "message_type": "private",
        "self_id": 42,
        "user_id": 1,
        "message_id": 5,
        "message": "hi",
    }
).encode()

QQ_SEEDS: Final = (
    _signed(_dispatch(1)),
    _signed(_dispatch(1)) + _signed(_dispatch(2)),
    _post("/", b'{"op":13,"d":{"plain_token":"abc","event_ts":"1"}}'),
    _post("/", _dispatch(3)),  # unsigned
    _signed(b"not json"),
    b"GET / HTTP/1.1\r\nHost: b\r\n\r\n",
    _post("/elsewhere", b"{}"),
)
ONEBOT_SEEDS: Final = (
    _UPGRADE + _frame(_EVENT),
    _UPGRADE + _frame(b'{"echo":"1","status":"ok"}') + _frame(b"[[[["),
    _UPGRADE.replace(b"Bearer t", b"Bearer x"),
    _UPGRADE.replace(b"X-Self-ID: 42\r\n", b""),
    _post("/onebot/event", _EVENT),  # unsigned: 401
    _post("/onebot/event", b"[1]"),
    _post("/onebot/event", _EVENT, b"X-OneBot-Version: 12\r\n"),
    _hmac_signed(_EVENT),
    _hmac_signed(_EVENT) + _hmac_signed(b"[1]"),
)


@dataclass(frozen=True, slots=True)
class Case:
    """Which endpoint, the bytes a client sends, and where they are cut."""

    onebot: bool
    stream: bytes
    cuts: tuple[int, ...]


class ContractViolation(AssertionError):
    """An endpoint broke a promise of its docstring."""


def _endpoint(onebot: bool) -> Driven:
    if onebot:
        config = ServeConfig(
            port=0, access_token=TOKEN, secret=ONEBOT_SECRET, max_message_size=4096
        )
        return OneBotServer(config)
    return QQWebhook(WebhookConfig("1", SECRET, port=0, wall_offset=WALL, max_body_size=4096))


def _statuses(out: bytes) -> list[int]:
    """The status of each answer written, read in turn (a 101's WebSocket ends it)."""
    statuses, at = [], 0
    while at < len(out):
        if not out.startswith(b"HTTP/1.1 ", at):
            raise ContractViolation(f"not an answer at byte {at}: {out[at : at + 40]!r}")
        status = int(out[at + 9 : at + 12])
        statuses.append(status)
        end = out.find(b"\r\n\r\n", at)
        if status == 101 or end < 0:
            break
        head = out[at:end].lower()
        length = int(head.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        at = end + 4 + length
    return statuses


def run_case(case: Case) -> str:
    """Serve one connection's bytes; the outcome's tally key."""
    endpoint = _endpoint(case.onebot)
    [listen] = endpoint.actions()
    assert isinstance(listen, Listen)
    endpoint.listening(listen.listener, "127.0.0.1", 8080, 0.0)
    endpoint.connection_accepted(listen.listener, -1, Peer("127.0.0.1", 1), 0.0)
    out, delivered, gone = b"", [], False
    for piece in [*engine.reads(case.stream, case.cuts), b""]:
        if gone:
            break
        endpoint.receive_data(-1, piece, 0.0)
        for action in endpoint.actions():
            if isinstance(action, SendData):
                out += action.data
            elif isinstance(action, Deliver):
                delivered.append(action.event)
            elif isinstance(action, Disconnect):
                gone = True
    statuses = _statuses(out)
    allowed = ONEBOT_STATUSES if case.onebot else QQ_STATUSES
    if bad := [s for s in statuses if s not in allowed]:
        raise ContractViolation(f"answered {bad}")
    if case.onebot:
        onebot_events = [e for e in delivered if isinstance(e, OneBotEvent)]
        opened = 101 in statuses or 204 in statuses
        if onebot_events and not opened:
            raise ContractViolation(f"{len(onebot_events)} events, no accepted upgrade nor POST")
        if 204 in statuses and b"X-Signature: sha1=" not in case.stream:
            raise ContractViolation("an event POST accepted with no signature")
        return f"onebot, answered {sorted(set(statuses))}, events {min(len(onebot_events), 2)}"
    events = [e for e in delivered if isinstance(e, QQEvent)]
    ids = [e.event_id for e in events]
    if len(ids) != len(set(ids)):
        raise ContractViolation(f"an envelope delivered twice: {ids}")
    if events and b"X-Signature-Ed25519" not in case.stream:
        raise ContractViolation("an event from an unsigned request")
    if 200 in statuses and events and ACK not in out:
        raise ContractViolation("a dispatch answered without the acknowledgement")
    return f"qq, answered {sorted(set(statuses))}, events {min(len(events), 2)}"


# -- the raw input format (atheris, and st.binary()) ---------------------------------


def decode_input(data: bytes) -> Case:
    """Arbitrary bytes as a case. Layout: ``which cut1 cut2 cut3 stream``;
    bit 0 of ``which`` picks OneBot's endpoint."""
    which = data[0] if data else 0
    return Case(bool(which & 1), data[4:], tuple(data[1:4]))


def seed_inputs() -> list[bytes]:
    seeds = [(0, s) for s in QQ_SEEDS] + [(1, s) for s in ONEBOT_SEEDS]
    return [bytes((which, cut, cut * 3, 200)) + seed for which, seed in seeds for cut in (0, 7)]


# -- Hypothesis strategies ------------------------------------------------------------------


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Seeds of one endpoint spliced, sometimes with a byte changed, cut at random."""
    onebot = draw(st.booleans())
    seeds = ONEBOT_SEEDS if onebot else QQ_SEEDS
    stream, cuts = engine.spliced(
        draw, draw(st.lists(st.sampled_from(seeds), min_size=1, max_size=3))
    )
    return Case(onebot, stream, cuts)


def main(argv: list[str]) -> int:
    return engine.run(
        argv,
        corpus_prefix="qqproto-fuzz-webhooks-",
        seed_inputs=seed_inputs,
        decode=decode_input,
        check=run_case,
        structured=("structured streams", cases()),
        rows=lambda tally: Counter(tally).most_common(20),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
