"""The fuzz target for ``GatewayProtocol.receive_data``: its inputs, and its engine hooks.

Run it by hand::

    python fuzz/fuzz_gateway.py [libFuzzer options] [corpus dirs]

With atheris importable this is a coverage-guided libFuzzer run over raw
inputs (:func:`decode_input`), seeded with :func:`seed_inputs` when no corpus
directory is given; stop it with ``-runs=N`` or ``-max_total_time=S``.
Without atheris (or with ``FUZZ_ENGINE=hypothesis``) it runs two Hypothesis
targets, raw bytes and structured frames (:func:`cases`), each for
``FUZZ_EXAMPLES`` examples (default 20000).

Every input is one :class:`~fuzz.harness.Case`, run by
:func:`~fuzz.harness.run_case`. Any exception is a crash: atheris writes the
input out and exits with libFuzzer's error code (77); Hypothesis shrinks it
and the script exits with 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

if __name__ == "__main__":  # run as a script: import the fuzz package from the repo root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from hypothesis import strategies as st

from fuzz import engine
from fuzz.frames import (
    ACCEPT,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Response,
    close_frame,
    frame,
)
from fuzz.harness import (
    FULL_101,
    HELLO,
    READY,
    REST_OF_101,
    RESUMED,
    STATES,
    Case,
    Piece,
    dispatch,
    run_case,
)
from fuzz.numbers import NUMBER, spliced

_SIZES: Final = (1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 64, 100, 127, 128, 1000)
_STEPS: Final = (0.0, 0.0, 0.0, 0.001, 0.5, 1.0, 5.0, 15.0, 29.9, 30.0, 31.0, 44.9, 45.0, 60.0)
_OPS: Final = (0, 0, 0, 1, 7, 9, 10, 11)
_TYPES: Final = (
    "READY",
    "RESUMED",
    "GROUP_AT_MESSAGE_CREATE",
    "C2C_MESSAGE_CREATE",
    "AT_MESSAGE_CREATE",
    "DIRECT_MESSAGE_CREATE",
    "INTERACTION_CREATE",
    "",
)
_BAD_OPCODES: Final = (3, 4, 5, 6, 7, 11, 12, 13, 14, 15)
#: What group, C2C and guild messages require beside ``id`` and ``content``.
_MESSAGE_FIELDS: Final = {
    "author": {"id": "1", "member_openid": "M", "user_openid": "U"},
    "group_openid": "G",
    "channel_id": "10",
    "guild_id": "20",
}


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


# -- the raw input format (atheris, and st.binary()) ---------------------------------


def _template_text(kind: int, payload: bytes) -> bytes:
    """A gateway envelope around the fuzz bytes, so JSON gets parsed deeply."""
    op = _OPS[payload[0] % len(_OPS)] if payload else 0
    t = _TYPES[payload[1] % len(_TYPES)] if len(payload) > 1 else "READY"
    s = payload[2] if len(payload) > 2 else 1
    rest = payload[3:].decode("utf-8", "replace")
    if kind == 1:  # the rest is d, verbatim (JSON or not)
        d = rest.encode() or b"{}"
    elif op == 10:
        d = _json({"heartbeat_interval": s * 1000})
    elif op == 9:
        d = b"true" if s & 1 else b"false"
    elif t == "READY":
        d = _json({"session_id": rest, "user": {"id": "1"}})
    else:  # the fields every typed message (and an interaction) needs: fuzz the text
        d = _json({"id": "m", "type": 11, "content": rest, **_MESSAGE_FIELDS})
    return b'{"op":%d,"s":%d,"t":"%s","id":"x","d":%s}' % (op, s, t.encode(), d)


def _raw_frame(kind: int, payload: bytes) -> bytes:
    """Decode one framed-mode record: ``kind`` bits pick the frame's shape."""
    shape: dict[str, Any] = {
        "fin": not kind & 0x08,
        "mask": b"\x37\xfa\x21\x3d" if kind & 0x10 else None,
        "rsv": 4 if kind & 0x20 else 0,
        "wide_length": bool(kind & 0x80),
    }
    if kind & 0x40:
        return frame(_BAD_OPCODES[len(payload) % len(_BAD_OPCODES)], payload, **shape)
    choice = kind & 7
    if choice in (1, 2):
        payload = _template_text(choice, payload)
    opcode = (OP_TEXT, OP_TEXT, OP_TEXT, OP_BINARY, OP_CONT, OP_PING, OP_CLOSE, OP_PONG)[choice]
    return frame(opcode, payload, **shape)


def decode_input(data: bytes) -> Case:
    """Turn arbitrary bytes into a :class:`Case`.

    Layout: ``state flags extra body``. ``flags``: bits 0-1 the mode (1 and
    2: the body is records ``kind len [len16] payload``, each made into a
    frame; else the body is fed raw), bit 2 puts the valid 101 (or the rest
    of it) first in the handshake states, bit 3 ends with EOF, bits 4-7 pick
    a read size. ``extra``: the 101 cut (mid_handshake) and the time step.
    """
    state = STATES[data[0] % len(STATES)] if data else STATES[0]
    flags = data[1] if len(data) > 1 else 0
    extra = data[2] if len(data) > 2 else 0
    body = data[3:]
    pieces: list[Piece] = []
    if flags & 0x04 and state in ("awaiting_101", "mid_handshake"):
        pieces.append(FULL_101 if state == "awaiting_101" else REST_OF_101)
    if flags & 3 in (1, 2):
        out = bytearray()
        j = 0
        while j + 1 < len(body):
            kind, n = body[j], body[j + 1]
            j += 2
            if n == 255 and j + 2 <= len(body):
                n = int.from_bytes(body[j : j + 2], "big")
                j += 2
            out += _raw_frame(kind, body[j : j + n])
            j += n
        body = bytes(out)
    pieces.append(body)
    size_index = flags >> 4
    return Case(
        state,
        tuple(pieces),
        sizes=(_SIZES[size_index - 1],) if size_index else (),
        eof=bool(flags & 0x08),
        cut=extra,
        step=_STEPS[(extra >> 4) % len(_STEPS)],
    )


def encode_input(
    state: str,
    records: Sequence[tuple[int, bytes]] | bytes,
    *,
    prefix_101: bool = False,
    eof: bool = False,
    size_index: int = 0,
    extra: int = 0,
) -> bytes:
    """The raw input :func:`decode_input` turns into such a case (for seeds)."""
    framed = not isinstance(records, bytes)
    flags = framed | prefix_101 << 2 | eof << 3 | size_index << 4
    head = bytes((STATES.index(state), flags, extra))
    if isinstance(records, bytes):
        return head + records
    body = bytearray()
    for kind, payload in records:
        n = len(payload)
        body += bytes((kind, 255)) + n.to_bytes(2, "big") if n >= 255 else bytes((kind, n))
        body += payload
    return head + bytes(body)


def seed_inputs() -> list[bytes]:
    """Inputs that walk each state somewhere interesting (the atheris corpus)."""

    def text(payload: dict[str, Any]) -> tuple[int, bytes]:
        return (0, _json(payload))

    def close(code: int, reason: bytes = b"") -> tuple[int, bytes]:
        return (6, code.to_bytes(2, "big") + reason)

    hello, ready, message = text(HELLO), text(READY), text(dispatch(5))
    lifecycle: list[list[tuple[int, bytes]]] = [
        [hello, ready, message],
        [message, message, text({"op": 11})],
        [text({"op": 1, "d": None}), (5, b"ping"), (7, b"pong")],
        [text({"op": 7})],
        [text({"op": 9, "d": True})],
        [text({"op": 9, "d": False})],
        [text(RESUMED), message],
        [close(4009, b"session timed out")],
        [close(4004)],
        [close(4914, b"offline")],
        [(6, b"")],
        [(8, b'{"op":0,"s":9,"t":"X","d":'), (4, b'{"a":1}}')],
        [(3, b"\x00\x01binary")],
        [(1, b'\x00\x02\x05{"content":"x"}'), (2, b"\x07\x00\x09")],
        [(0, b"[1, 2, {}]"), (0, b'{"op": "0"}'), (0, b'{"op":0,"s":-1,"t":1}')],
        # Numbers past int64, past a float, past what int() reads.
        [(0, b'{"op":10,"d":{"heartbeat_interval":1' + b"0" * 400 + b"}}"), ready],
        [(0, b'{"op":10,"d":{"heartbeat_interval":' + b"9" * 5000 + b"}}"), ready],
        [hello, ready, (0, b'{"op":0,"s":' + b"9" * 5000 + b',"t":"X","d":{}}'), message],
        [hello, ready, (0, b'{"op":0,"s":%d,"t":"X","d":{}}' % 2**63), message],
    ]
    seeds: list[bytes] = []
    for state in STATES:
        seeds += [encode_input(state, records, prefix_101=True) for records in lifecycle]
        seeds.append(encode_input(state, [hello, ready], prefix_101=True, size_index=1))
        seeds.append(encode_input(state, [hello, message], prefix_101=True, eof=True))
    return [
        *seeds,
        encode_input("awaiting_101", b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\n\r\nno!"),
        encode_input("awaiting_101", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
        encode_input("mid_handshake", [hello], prefix_101=True, extra=40),
    ]


# -- Hypothesis strategies ------------------------------------------------------------------

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.just(NUMBER),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

#: ``d`` of a typed message that decodes, with fuzzed text, mentions and attachments.
_typed_d = st.fixed_dictionaries(
    {
        "id": st.text(max_size=8),
        "content": st.lists(
            st.sampled_from(["<@!1>", "<@1>", " ", "\xa0", "&lt;", "&amp;", "<#2>", "x"])
            | st.text(max_size=4),
            max_size=6,
        ).map("".join),
        **{key: st.just(value) for key, value in _MESSAGE_FIELDS.items()},
    },
    optional={
        "mentions": st.lists(
            st.fixed_dictionaries({"id": st.sampled_from(["1", "M"]), "is_you": st.booleans()}),
            max_size=2,
        ),
        "attachments": st.lists(st.fixed_dictionaries({"url": st.text(max_size=12)}), max_size=2),
    },
)

_d = st.one_of(
    st.fixed_dictionaries(
        {"heartbeat_interval": st.integers(-10, 10**7) | st.just(NUMBER) | json_values}
    ),
    st.fixed_dictionaries(
        {"session_id": st.text(max_size=8) | json_values},
        optional={"user": json_values, "version": json_values, "shard": json_values},
    ),
    st.fixed_dictionaries(
        {"id": st.text(max_size=8), "content": st.text(max_size=20)},
        optional={"author": json_values, "group_openid": st.text(max_size=32)},
    ),
    _typed_d,
    st.booleans(),
    json_values,
)
envelopes: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"op": st.sampled_from(_OPS) | st.integers(-3, 20) | json_values},
    optional={
        "s": st.integers(0, 60) | st.integers(-(2**64), 2**64) | st.just(NUMBER) | json_values,
        "t": st.sampled_from(_TYPES) | st.text(max_size=12) | json_values,
        "d": _d,
        "id": json_values,
    },
)

#: Well-formed message dispatches: the typed path, with fuzzed text, past any seq.
_typed_messages = st.fixed_dictionaries(
    {
        "op": st.just(0),
        "s": st.integers(0, 80),
        "t": st.sampled_from(
            [
                "GROUP_AT_MESSAGE_CREATE",
                "GROUP_MESSAGE_CREATE",
                "C2C_MESSAGE_CREATE",
                "AT_MESSAGE_CREATE",
                "MESSAGE_CREATE",
                "DIRECT_MESSAGE_CREATE",
            ]
        ),
        "id": st.text(max_size=8),
        "d": _typed_d,
    }
)

#: Payloads that move the lifecycle, so a case can walk several states.
_canned = st.sampled_from(
    [
        HELLO,
        READY,
        RESUMED,
        dispatch(61),
        {"op": 0, "s": 2, "t": "C2C_MESSAGE_CREATE", "d": {"content": "b"}},
        {"op": 11},
        {"op": 1, "d": None},
        {"op": 7},
        {"op": 9, "d": True},
        {"op": 9, "d": False},
    ]
)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # lone surrogates: invalid UTF-8


def _nested(depth: int, where: int) -> bytes:
    """JSON nested ``depth`` deep: alone, as ``d``, or as ``op``."""
    inner = "[" * depth + "]" * depth
    message = f'{{"op":0,"s":7,"t":"GROUP_AT_MESSAGE_CREATE","d":{inner}}}'
    return (inner, message, f'{{"op":{inner}}}')[where].encode()


_text_payloads: st.SearchStrategy[bytes] = st.one_of(
    _canned.map(_json),
    st.builds(
        _nested,
        st.sampled_from([1, 50, 500, 900, 950, 980, 990, 1000, 1100, 5000, 20000]),
        st.integers(0, 2),
    ),
    spliced(envelopes),
    _typed_messages.map(_json),
    spliced(json_values),
    st.text(max_size=40).map(_utf8),
    st.binary(max_size=40),
)


@st.composite
def _message_frames(draw: st.DrawFn) -> bytes:
    """A text or binary message, whole or in fragments (pings in between)."""
    binary = draw(st.integers(0, 9)) == 0 and draw(st.booleans())
    data = draw(st.binary(max_size=60) if binary else _text_payloads)
    opcode = OP_BINARY if binary else OP_TEXT
    n = draw(st.integers(1, 4)) if draw(st.integers(0, 3)) == 0 else 1
    if n == 1:
        return frame(opcode, data)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), min_size=n - 1, max_size=n - 1)))
    bounds = [0, *cuts, len(data)]
    out = bytearray()
    for k in range(n):
        out += frame(OP_CONT if k else opcode, data[bounds[k] : bounds[k + 1]], fin=k == n - 1)
        if draw(st.integers(0, 4)) == 0:
            out += frame(OP_PING, draw(st.binary(max_size=8)))
    return bytes(out)


_close_codes = st.one_of(
    st.sampled_from([1000, 1001, 1002, 1003, 1005, 1006, 1007, 1009, 1011, 1015, 3000, 4999]),
    st.integers(4000, 4015),
    st.integers(4900, 4915),
    st.integers(0, 65535),
)


@st.composite
def _control_frames(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["close", "close", "ping", "pong", "close-empty", "close-1"]))
    if kind == "close":
        reason = draw(st.text(max_size=30).map(_utf8) | st.binary(max_size=30))
        return close_frame(draw(_close_codes), reason)
    if kind == "close-empty":
        return close_frame(None)
    if kind == "close-1":
        return frame(OP_CLOSE, draw(st.binary(min_size=1, max_size=1)))
    return frame(OP_PING if kind == "ping" else OP_PONG, draw(st.binary(max_size=130)))


#: Any header bits at all: bad opcodes, RSV bits, masks, padded lengths.
_odd_frames = st.builds(
    frame,
    st.integers(0, 15),
    st.binary(max_size=140),
    fin=st.booleans(),
    rsv=st.integers(0, 7),
    mask=st.none() | st.binary(min_size=4, max_size=4),
    wide_length=st.booleans(),
)

frames: st.SearchStrategy[bytes] = st.one_of(
    _message_frames(),
    _message_frames(),
    _message_frames(),
    _control_frames(),
    _odd_frames,
    st.binary(min_size=1, max_size=40),  # garbage between frames
)

_UPGRADE: Final = ((b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"))
_OK: Final = (*_UPGRADE, (b"Sec-WebSocket-Accept", ACCEPT))
_UPGRADE_HEADERS: Final = (
    _OK,
    _UPGRADE,  # no Sec-WebSocket-Accept
    (*_UPGRADE, (b"Sec-WebSocket-Accept", b"dGhlIHNhbXBsZSBub25jZQ==")),
    _OK[1:],  # no Upgrade
    (*_OK, (b"Sec-WebSocket-Extensions", b"permessage-deflate")),
    (*_OK, (b"Sec-WebSocket-Protocol", b"chat")),
    (*_OK, (b"Content-Length", b"5")),
    ((b"Transfer-Encoding", b"chunked"),),
    ((b"Connection", b"close"),),
    (),
)


@st.composite
def responses(draw: st.DrawFn) -> Piece:
    """Answers to the upgrade: mostly the valid 101, else refusals and junk."""
    pick = draw(st.integers(0, 9))
    if pick < 5:
        return FULL_101
    if pick < 9:
        return Response(
            draw(
                st.sampled_from([101, 101, 100, 199, 200, 204, 301, 400, 401, 403, 426, 500, 503])
                | st.integers(0, 999)
            ),
            draw(st.sampled_from(_UPGRADE_HEADERS)),
            draw(st.binary(max_size=20)),
            draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2"])),
        )
    return draw(st.binary(max_size=80))


@st.composite
def cases(draw: st.DrawFn, state: str | None = None) -> Case:
    """A structured case: valid frames around arbitrary payloads, cut anywhere."""
    if state is None:
        state = draw(st.sampled_from(STATES))
    pieces: list[Piece] = []
    if state == "awaiting_101":
        pieces.append(draw(responses()))
    elif state == "mid_handshake" and draw(st.integers(0, 4)) > 0:
        pieces.append(REST_OF_101)
    pieces += draw(st.lists(frames, max_size=8))
    return Case(
        state,
        tuple(pieces),
        sizes=tuple(draw(st.lists(st.integers(1, 200), max_size=4))),
        eof=draw(st.integers(0, 5)) == 0,
        cut=draw(st.integers(0, 255)),
        step=draw(st.sampled_from(_STEPS)),
    )


# -- the engine hooks --------------------------------------------------------------------------


def _check(case: Case) -> str:
    return f"{case.state} -> {run_case(case).after_bytes.name}"


def main(argv: list[str]) -> int:
    return engine.run(
        argv,
        corpus_prefix="qqproto-fuzz-corpus-",
        seed_inputs=seed_inputs,
        decode=decode_input,
        check=_check,
        structured=("structured frames", cases()),
        rows=lambda tally: sorted(tally.items()),
        heading="where the bytes left each gateway:",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
