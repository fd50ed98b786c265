"""The fuzz target for OneBot event decoding: ``qqproto.onebot.events``.

Run it by hand::

    python fuzz/fuzz_onebot_events.py [libFuzzer options] [corpus dirs]

With atheris importable this is a coverage-guided libFuzzer run over raw
inputs (bytes read by :func:`~qqproto.onebot.frames.event_from_json` the way a
connection reads a frame); without it (or with ``FUZZ_ENGINE=hypothesis``)
Hypothesis runs real events of both versions with fields replaced by any
JSON value, for ``FUZZ_EXAMPLES`` examples (default 20000), each read by
both paths, which must agree.

:func:`run_case` holds the decoder to its promises: it gives an event or
raises :class:`~qqproto.errors.RemoteProtocolError`, and the latter only for
what is no event (spec 8's classifier); an event's fields have their
documented types (ids an int or a non-empty string, ``time`` a finite float
or None, segments whose types are strings), and ``repr``, ``kind`` and a
message's ``text`` never raise.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Final

if __name__ == "__main__":  # run as a script: import the fuzz package from the repo root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import msgspec
from hypothesis import strategies as st
from msgspec.structs import replace

from fuzz import engine
from qqproto.errors import RemoteProtocolError
from qqproto.onebot.events import Event, MessageEvent, MetaEvent, decode_event, event_version
from qqproto.onebot.frames import event_from_json

SEEDS: Final[tuple[dict[str, Any], ...]] = (
    {
        "time": 1765000000,
        "self_id": 2000000001,
        "post_type": "message",
        "message_type": "group",
        "sub_type": "normal",
        "message_id": -123,
        "user_id": 10001,
        "group_id": 20002,
        "message": [
            {"type": "at", "data": {"qq": "2000000001"}},
            {"type": "text", "data": {"text": "hi"}},
        ],
        "raw_message": "[CQ:at,qq=2000000001]hi",
        "sender": {"user_id": 10001, "nickname": "a"},
    },
    {
        "post_type": "message",
        "message_type": "private",
        "message_id": 1,
        "user_id": 1,
        "message": "a [CQ:face,id=1] &#91;b&#93;",
    },
    {
        "post_type": "notice",
        "notice_type": "notify",
        "sub_type": "poke",
        "user_id": 1,
        "target_id": 2,
    },
    {"post_type": "request", "request_type": "friend", "user_id": 1, "comment": None, "flag": "f"},
    {
        "post_type": "meta_event",
        "meta_event_type": "heartbeat",
        "status": {"online": None},
        "interval": 30000,
    },
    {
        "id": "1",
        "time": 1.5,
        "type": "message",
        "detail_type": "group",
        "sub_type": "",
        "self": {"platform": "qq", "user_id": "s"},
        "message_id": "m",
        "message": [{"type": "mention", "data": {"user_id": "u"}}],
        "alt_message": "@u",
        "user_id": "u",
        "group_id": "g",
    },
    {"id": "2", "time": 2.0, "type": "meta", "detail_type": "heartbeat", "interval": 5000},
    {"status": "ok", "retcode": 0, "data": None, "echo": "1"},
)
#: Any JSON value, for a field's place.
JSON: Final = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**64 + 2)
    | st.floats()
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


class ContractViolation(AssertionError):
    """The decoder broke a promise of its docstrings."""


def seed_inputs() -> list[bytes]:
    return [msgspec.json.encode(seed) for seed in SEEDS]


def decode_input(data: bytes) -> bytes:
    """The bytes are a frame's text, as a connection receives it."""
    return data


def run_case(frame: object) -> str:
    """Read one frame (bytes, through :func:`event_from_json`) or one object
    (through both paths, which must agree); the outcome's tally key."""
    if isinstance(frame, bytes):
        try:
            event = event_from_json(frame)
        except RemoteProtocolError:
            return "no event"
        _check(event)
        return f"v{event.version} {type(event).__name__}"
    try:
        event = decode_event(frame)
    except RemoteProtocolError:
        if isinstance(frame, dict) and event_version(frame) is not None:
            raise ContractViolation(f"an event refused: {frame!r}") from None
        return "no event"
    _check(event)
    text = json.dumps(frame, ensure_ascii=False).encode("utf-8", "surrogatepass")
    fast = event_from_json(text)
    # raw compared as JSON text: a NaN in it is unequal to itself.
    same_raw = json.dumps(dict(fast.raw), sort_keys=True) == json.dumps(frame, sort_keys=True)
    if replace(fast, raw={}) != replace(event, raw={}) or not same_raw:
        raise ContractViolation(f"the fast path reads {frame!r} otherwise")
    return f"v{event.version} {type(event).__name__}"


def _check(event: Event) -> None:
    for name in ("self_id", "message_id", "user_id", "group_id"):
        value = getattr(event, name, None)
        if not (value is None or type(value) is int or (type(value) is str and value)):
            raise ContractViolation(f"{name} is {value!r}")
    if event.time is not None and not math.isfinite(event.time):
        raise ContractViolation(f"time is {event.time!r}")
    if not isinstance(event.sub_type, str) or not isinstance(event.kind, str):
        raise ContractViolation(f"sub_type or kind of {event!r}")
    repr(event)
    if isinstance(event, MessageEvent):
        if not all(isinstance(s.type, str) and isinstance(s.data, dict) for s in event.segments):
            raise ContractViolation(f"segments {event.segments!r}")
        if not isinstance(event.text, str):
            raise ContractViolation("text")
    if isinstance(event, MetaEvent) and event.online not in (None, True, False):
        raise ContractViolation(f"online is {event.online!r}")


@st.composite
def objects(draw: st.DrawFn) -> object:
    """A real event of either version with some fields replaced, added or removed."""
    obj = dict(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(sorted(obj)) | st.text(max_size=8))
        if draw(st.booleans()):
            obj[key] = draw(JSON)
        else:
            obj.pop(key, None)
    return obj


def main(argv: list[str]) -> int:
    return engine.run(
        argv,
        corpus_prefix="qqproto-fuzz-onebot-events-",
        seed_inputs=seed_inputs,
        decode=decode_input,
        check=run_case,
        structured=("events with fields replaced", objects()),
        rows=lambda tally: Counter(tally).most_common(12),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
