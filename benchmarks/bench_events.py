"""How fast gateway frames become typed events, and which JSON library to use.

Run by hand (not a test)::

    .venv/bin/python benchmarks/bench_events.py [--events N] [--repeats R]

It prepares N frames shaped like spec section 6, a quarter of each:

- GROUP_AT_MESSAGE_CREATE, the real 2025 sample (32-char hex openids);
- C2C_MESSAGE_CREATE with a message scene;
- AT_MESSAGE_CREATE in a guild, content led by ``<@!bot_id>``;
- GROUP_MESSAGE_CREATE with an is_you mention and an image attachment.

and times, best of R interleaved repeats, per event:

**text -> typed event** (the JSON text of a frame, as wsproto hands it over):

- floor: ``msgspec.json.decode`` of the text straight into plain frozen
  Structs with the same typed fields and options (no hooks, the decoder for
  each frame picked in advance): the least a typed decode can cost;
- msgspec (ours): ``EventDecoder.decode_frame``, which reads op/s/id/t,
  picks the event class by ``t``, decodes ``d`` into it in the same pass,
  and sets the envelope id, seq and frame on it;
- orjson + msgspec.convert: orjson to dicts, then msgspec's checks (in C)
  into the same event Structs: "parse with orjson, type with Structs";
- orjson / json + checks -> dataclasses: ``orjson.loads`` or ``json.loads``
  to dicts, then generated, inlined type checks for the same fields, into
  frozen slotted dataclasses shaped like the events (the stdlib route);
- the JSON parsers alone, into dicts, for scale;
- reading ``text`` (and ``to_me``, ``empty``) of the decoded events: the
  work the events leave for when it is asked for.

All typed routes check the same fields and build an object with the same
envelope data; derived values (``text``, ``Attachment.url``) are properties
in all of them.

**bytes -> typed events** (unmasked server frames, one per call, then 100):

- floor: wsproto's frame layer (``wsproto.connection.Connection``) fed the
  bytes, each ``TextMessage`` decoded as in the floor above;
- the same frames through ``decode_frame`` (the decoder's share alone);
- ``qqproto.ws.WebSocketClient`` (the gateway's WebSocket layer) fed the same
  bytes, each ``TextReceived`` through ``decode_frame``;
- gateway: a READY ``GatewayProtocol``, which delivers typed events,
  ``receive_data`` then ``actions()``;
- the two WebSocket layers alone, for scale.

The bars: text -> event within 1.5x of the floor; bytes -> events within
1.25x of (wsproto frame parsing + floor). Ratios are against the floor
measured in the same run; other work on the machine moves the absolute
figures far more than the ratios.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import json
import random
import re
import string
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import MISSING as MISSING_FIELD
from dataclasses import dataclass, field, fields
from typing import Any, Generic, TypeVar

import msgspec
import orjson
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import TextMessage

from qqproto.actions import Deliver, SendData
from qqproto.errors import ProtocolViolation, RemoteProtocolError
from qqproto.qq.config import GatewayConfig
from qqproto.qq.decode import EventDecoder
from qqproto.qq.events import (
    AtMessageCreate,
    C2CMessageCreate,
    Dispatch,
    Event,
    GroupAtMessageCreate,
    GroupMessageCreate,
    Message,
)
from qqproto.qq.gateway import GatewayProtocol
from qqproto.qq.lifecycle import GatewayState
from qqproto.qq.text import clean_content, with_scheme
from qqproto.ws import Closed, TextReceived, WebSocketClient

NOW = 1000.0
CHUNK = 100
BOT_ID = "6158788878435714165"  # READY user.id in spec 3.3
BOT_OPENID = "42F7A0D6B3C1E5F79A8B2C4D6E8F5C57"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_KEY = re.compile(rb"(?im)^sec-websocket-key:[ \t]*([^\r\n]*?)[ \t]*\r?$")


# -- frames ------------------------------------------------------------------------------


def server_frame(payload: bytes) -> bytes:
    """One unmasked, final server-to-client text frame."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


def switching_protocols(request: bytes) -> bytes:
    match = _KEY.search(request)
    assert match is not None, "no Sec-WebSocket-Key in the request"
    accept = base64.b64encode(hashlib.sha1(match.group(1) + _GUID).digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def payloads(n: int, seed: int = 42) -> list[dict[str, Any]]:
    """``n`` dispatches, the four kinds in turn, keys in the real sample's order."""
    rng = random.Random(seed)
    lower, mixed = string.ascii_lowercase + string.digits, string.ascii_letters + string.digits

    def hexid() -> str:
        return "".join(rng.choices("0123456789ABCDEF", k=32))

    def word(k: int, alphabet: str = mixed) -> str:
        return "".join(rng.choices(alphabet, k=k))

    groups = [hexid() for _ in range(20)]
    members = [hexid() for _ in range(200)]
    commands = ["lssv", "/help", "签到", "roll 1d100", "今日运势", "weather 北京"]
    out: list[dict[str, Any]] = []
    for k in range(n):
        kind = ("GROUP_AT_MESSAGE_CREATE", "C2C_MESSAGE_CREATE", "AT_MESSAGE_CREATE")
        t = (*kind, "GROUP_MESSAGE_CREATE")[k % 4]
        member, group = rng.choice(members), rng.choice(groups)
        when = f"2025-09-08T23:{k // 240 % 60:02d}:{k // 4 % 60:02d}+08:00"
        ids = {"id": member, "union_openid": member}
        d: dict[str, Any]
        if t == "GROUP_AT_MESSAGE_CREATE":  # spec 6.1, the real sample
            d = {
                "id": "ROBOT1.0_" + word(54) + "!",
                "content": " " + rng.choice(commands),
                "timestamp": when,
                "author": {"id": member, "member_openid": member, "union_openid": member},
                "group_id": group,
                "group_openid": group,
                "message_scene": {"source": "default"},
                "message_type": 0,
            }
        elif t == "C2C_MESSAGE_CREATE":  # spec 6.2, a newer payload
            d = {
                "author": {**ids, "user_openid": member},
                "content": rng.choice(commands),
                "id": "ROBOT1.0_" + word(54) + "!",
                "message_scene": {"source": "default", "ext": ["msg_idx=REFIDX_" + word(22)]},
                "message_type": 0,
                "timestamp": when,
            }
        elif t == "AT_MESSAGE_CREATE":  # spec 6.3
            user = str(rng.randrange(10**18, 10**19))
            d = {
                "author": {"avatar": "http://thirdqq.qlogo.cn/0", "bot": False, "id": user},
                "channel_id": str(rng.randrange(10**5, 10**6)),
                "content": f"<@!{BOT_ID}> {rng.choice(commands)}",
                "guild_id": "18700000000001",
                "id": "08" + word(40, "0123456789abcdef"),
                "member": {"joined_at": "2021-04-12T16:34:42+08:00", "roles": ["1"]},
                "seq": k,
                "seq_in_channel": str(k),
                "timestamp": when,
            }
            d["author"]["username"] = "abc"
        else:  # spec 6.1 (2026 shape) with an image (6.6)
            d = {
                "id": "ROBOT1.0_" + word(54) + "!",
                "content": f"<@{BOT_OPENID}> 看看这张",
                "timestamp": when,
                "author": {**ids, "member_openid": member, "bot": False, "username": "某人"},
                "attachments": [
                    {
                        "content_type": "image/jpeg",
                        "filename": word(32, "0123456789ABCDEF") + ".jpg",
                        "height": 1280,
                        "width": 960,
                        "size": rng.randrange(10**4, 10**6),
                        "url": "multimedia.nt.qq.com.cn/download?appid=1407&fileid=" + word(60),
                    }
                ],
                "group_id": group,
                "group_openid": group,
                "mentions": [
                    {
                        "bot": True,
                        "id": BOT_OPENID,
                        "is_you": True,
                        "member_openid": BOT_OPENID,
                        "scope": "single",
                        "username": "趣测酱",
                    }
                ],
                "message_scene": {"ext": ["msg_idx=REFIDX_" + word(22)], "source": "default"},
                "message_type": 0,
            }
        out.append({"op": 0, "id": f"{t}:{word(54, lower)}", "t": t, "s": k + 2, "d": d})
    return out


def texts(items: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(p, ensure_ascii=False, separators=(",", ":")) for p in items]


# -- the floor: plain Structs, the same typed fields, nothing else -------------------------


class FAttachment(msgspec.Struct, frozen=True, gc=False):
    content_type: str = ""
    filename: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    url: str = ""
    voice_wav_url: str | None = None
    asr_refer_text: str | None = None


class FScene(msgspec.Struct, frozen=True, gc=False):
    source: str | None = None
    ext: tuple[str, ...] = ()


class FGroupAuthor(msgspec.Struct, frozen=True, gc=False):
    member_openid: str
    id: str | None = None
    union_openid: str | None = None
    username: str | None = None
    bot: bool = False
    member_role: str | None = None


class FC2CAuthor(msgspec.Struct, frozen=True, gc=False):
    user_openid: str
    id: str | None = None
    union_openid: str | None = None
    username: str | None = None
    bot: bool = False


class FMention(msgspec.Struct, frozen=True, gc=False):
    scope: str | None = None
    id: str | None = None
    member_openid: str | None = None
    username: str | None = None
    bot: bool = False
    is_you: bool = False


class FGuildAuthor(msgspec.Struct, frozen=True, gc=False):
    id: str
    username: str | None = None
    avatar: str | None = None
    bot: bool = False


class FMember(msgspec.Struct, frozen=True, gc=False):
    nick: str | None = None
    roles: tuple[str, ...] = ()
    joined_at: str | None = None


class FRef(msgspec.Struct, frozen=True, gc=False):
    message_id: str | None = None


class FQQ(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    id: str
    content: str = ""
    timestamp: str = ""
    attachments: tuple[FAttachment, ...] = ()
    message_type: int = 0
    message_scene: FScene | None = None
    msg_elements: tuple[Any, ...] = ()  # not in these frames
    message_reference: FRef | None = None


class FGroup(FQQ, frozen=True, kw_only=True):
    author: FGroupAuthor
    group_openid: str
    group_id: str | None = None
    mentions: tuple[FMention, ...] = ()


class FC2C(FQQ, frozen=True, kw_only=True):
    author: FC2CAuthor


class FGuild(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    id: str
    content: str = ""
    timestamp: str = ""
    attachments: tuple[FAttachment, ...] = ()
    author: FGuildAuthor
    channel_id: str
    guild_id: str
    member: FMember | None = None
    mentions: tuple[FGuildAuthor, ...] = ()
    mention_everyone: bool = False
    edited_timestamp: str | None = None
    seq: int | None = None
    seq_in_channel: str | None = None
    message_reference: FRef | None = None


D = TypeVar("D")


class FFrame(msgspec.Struct, Generic[D], frozen=True, gc=False):
    op: int
    id: str
    t: str
    s: int
    d: D


FLOOR_TYPES: dict[str, Any] = {
    "GROUP_AT_MESSAGE_CREATE": FGroup,
    "GROUP_MESSAGE_CREATE": FGroup,
    "C2C_MESSAGE_CREATE": FC2C,
    "AT_MESSAGE_CREATE": FGuild,
}


def floor_decoders(items: list[dict[str, Any]]) -> list[Callable[[str], Any]]:
    by_type = {t: msgspec.json.Decoder(FFrame[cls]).decode for t, cls in FLOOR_TYPES.items()}  # type: ignore[valid-type]
    return [by_type[p["t"]] for p in items]


# -- the stdlib route: dicts, generated checks, frozen slotted dataclasses ------------------


class Bad(Exception):
    """A field failed its check (the alternative decoders' EventDecodeError)."""


@dataclass(frozen=True, slots=True)
class Attachment_:
    content_type: str = ""
    filename: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    url_as_sent: str = field(default="", metadata={"key": "url"})
    voice_wav_url_as_sent: str | None = field(default=None, metadata={"key": "voice_wav_url"})
    asr_refer_text: str | None = None

    @property
    def url(self) -> str:
        return with_scheme(self.url_as_sent)


@dataclass(frozen=True, slots=True)
class Scene_:
    source: str | None = None
    ext: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupAuthor_:
    member_openid: str
    id: str | None = None
    union_openid: str | None = None
    username: str | None = None
    bot: bool = False
    member_role: str | None = None


@dataclass(frozen=True, slots=True)
class C2CAuthor_:
    user_openid: str
    id: str | None = None
    union_openid: str | None = None
    username: str | None = None
    bot: bool = False


@dataclass(frozen=True, slots=True)
class Mention_:
    scope: str | None = None
    id: str | None = None
    member_openid: str | None = None
    username: str | None = None
    bot: bool = False
    is_you: bool = False


@dataclass(frozen=True, slots=True)
class GuildAuthor_:
    id: str
    username: str | None = None
    avatar: str | None = None
    bot: bool = False


@dataclass(frozen=True, slots=True)
class Member_:
    nick: str | None = None
    roles: tuple[str, ...] = ()
    joined_at: str | None = None


@dataclass(frozen=True, slots=True)
class Ref_:
    message_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Group_:
    event_id: str | None
    event_seq: int | None
    frame: str
    id: str
    author: GroupAuthor_
    group_openid: str
    content: str = ""
    timestamp: str = ""
    attachments: tuple[Attachment_, ...] = ()
    message_type: int = 0
    message_scene: Scene_ | None = None
    message_reference: Ref_ | None = None
    group_id: str | None = None
    mentions: tuple[Mention_, ...] = ()
    is_at: bool  # GROUP_AT_MESSAGE_CREATE, else GROUP_MESSAGE_CREATE

    @property
    def text(self) -> str:
        ids: tuple[str | None, ...] = ()
        if not self.is_at:
            for m in self.mentions:
                if m.is_you:
                    ids += (m.id, m.member_openid)
        return clean_content(self.content, ids, anywhere=True, lstrip=True)[0]

    @property
    def to_me(self) -> bool:
        return self.is_at or any(m.is_you for m in self.mentions)


@dataclass(frozen=True, slots=True, kw_only=True)
class C2C_:
    event_id: str | None
    event_seq: int | None
    frame: str
    id: str
    author: C2CAuthor_
    content: str = ""
    timestamp: str = ""
    attachments: tuple[Attachment_, ...] = ()
    message_type: int = 0
    message_scene: Scene_ | None = None
    message_reference: Ref_ | None = None
    to_me: bool = True

    @property
    def text(self) -> str:
        return clean_content(self.content)[0]


@dataclass(frozen=True, slots=True, kw_only=True)
class Guild_:
    event_id: str | None
    event_seq: int | None
    frame: str
    id: str
    author: GuildAuthor_
    channel_id: str
    guild_id: str
    content: str = ""
    timestamp: str = ""
    attachments: tuple[Attachment_, ...] = ()
    member: Member_ | None = None
    mentions: tuple[GuildAuthor_, ...] = ()
    mention_everyone: bool = False
    edited_timestamp: str | None = None
    seq: int | None = None
    seq_in_channel: str | None = None
    message_reference: Ref_ | None = None
    bot_id: str | None
    to_me: bool = True

    @property
    def text(self) -> str:
        return clean_content(self.content, (self.bot_id,) if self.bot_id else ())[0]


_COMPUTED = ("event_id", "event_seq", "frame", "bot_id", "is_at", "to_me")
_SCALARS = ("str", "int", "bool")
_MISSING = object()


def generate_builders(classes: Iterable[type], namespace: dict[str, Any], top: set[type]) -> None:
    """Write ``build_<Class>(d, path)`` per class: one inlined check per field.

    The checks are msgspec's (a wrong type or a missing required field
    raises; null only where the type says ``| None``), written inline, as
    fast as we could make plain Python: no loop over a schema, no isinstance
    chains.
    A ``top`` class's builder returns its checked fields as keyword
    arguments, so the event is built once, with the computed fields.
    """
    for cls in classes:
        out = [f"def build_{cls.__name__}(d, path):", "    if type(d) is not dict: raise Bad(path)"]
        args = []
        for f in fields(cls):
            if f.name in _COMPUTED:
                continue
            kind = str(f.type).replace(" ", "")
            optional = kind.endswith("|None")
            kind = kind.removesuffix("|None")
            name = f.metadata.get("key", f.name)
            v, key, where = f"v_{f.name}", f'"{name}"', f"path + '.{name}'"
            default = "MISSING" if f.default is MISSING_FIELD else repr(f.default)
            args.append(f"{f.name}={v}")
            out.append(f"    {v} = d.get({key}, {default})")
            if kind in _SCALARS:
                guard = f"{v} is not None and " if optional else ""
                out.append(f"    if {guard}type({v}) is not {kind}: raise Bad({where})")
            elif kind.startswith("tuple["):
                inner = kind[len("tuple[") : -len(",...]")]
                item = "x" if inner in _SCALARS else f"build_{inner}(x, {where})"
                out.append(f"    if {v} != ():")
                out.append(f"        if type({v}) is not list: raise Bad({where})")
                if inner in _SCALARS:
                    out.append(
                        f"        if any(type(x) is not {inner} for x in {v}): raise Bad({where})"
                    )
                out.append(f"        {v} = tuple([{item} for x in {v}])")
            else:  # a nested class
                guard = f"if {v} is not None: " if optional else ""
                out.append(f"    {guard}{v} = build_{kind}({v}, {where})")
        ret = "dict" if cls in top else cls.__name__
        out.append(f"    return {ret}({', '.join(args)})")
        exec("\n".join(out), namespace)


_PARTS = (Attachment_, Scene_, GroupAuthor_, C2CAuthor_, Mention_, GuildAuthor_, Member_, Ref_)
_DATACLASS_EVENTS: dict[str, type] = {
    "GROUP_AT_MESSAGE_CREATE": Group_,
    "GROUP_MESSAGE_CREATE": Group_,
    "C2C_MESSAGE_CREATE": C2C_,
    "AT_MESSAGE_CREATE": Guild_,
}


class DataclassDecoder:
    """json or orjson to dicts, the generated checks, into frozen slotted
    dataclasses shaped like the events of ``qqproto/qq/events.py`` (derived values as
    properties, as there): the stdlib route."""

    def __init__(self, loads: Callable[[str], Any]) -> None:
        tops = set(_DATACLASS_EVENTS.values())
        ns: dict[str, Any] = {"Bad": Bad, "MISSING": _MISSING}
        ns.update({c.__name__: c for c in (*_PARTS, *tops)})
        generate_builders((*_PARTS, *tops), ns, tops)
        self.loads = loads
        self.build = {t: (ns[f"build_{c.__name__}"], c) for t, c in _DATACLASS_EVENTS.items()}
        self.bot_id = BOT_ID

    def decode_frame(self, frame: str) -> tuple[Any, Any, Any, Any, Any]:
        payload = self.loads(frame)
        if type(payload) is not dict:
            raise RemoteProtocolError("not an object")
        get = payload.get
        op, s, t, event_id = get("op"), get("s"), get("t"), get("id")
        entry = self.build.get(t) if op == 0 and type(t) is str else None
        if entry is None:
            return op, s, t, event_id, get("d")
        build, cls = entry
        m = build(get("d"), "d")
        if cls is Group_:
            m["is_at"] = t == "GROUP_AT_MESSAGE_CREATE"
        elif cls is Guild_:
            m["bot_id"] = self.bot_id
        event = cls(
            event_id=event_id if type(event_id) is str else None,
            event_seq=s if type(s) is int else None,
            frame=frame,
            **m,
        )
        return op, s, t, event_id, event


_EVENT_STRUCTS: dict[str, type[Event]] = {
    "GROUP_AT_MESSAGE_CREATE": GroupAtMessageCreate,
    "GROUP_MESSAGE_CREATE": GroupMessageCreate,
    "C2C_MESSAGE_CREATE": C2CMessageCreate,
    "AT_MESSAGE_CREATE": AtMessageCreate,
}


class ConvertDecoder:
    """orjson to dicts, then ``msgspec.convert`` into the real event Structs
    (msgspec's checks, in C): the best case for "parse with orjson, type
    with Structs"."""

    def __init__(self, loads: Callable[[str], Any]) -> None:
        self.loads = loads
        self.bot_id = BOT_ID

    def decode_frame(self, frame: str) -> tuple[Any, Any, Any, Any, Any]:
        payload = self.loads(frame)
        if type(payload) is not dict:
            raise RemoteProtocolError("not an object")
        get = payload.get
        op, s, t, event_id = get("op"), get("s"), get("t"), get("id")
        cls = _EVENT_STRUCTS.get(t) if op == 0 and type(t) is str else None
        if cls is None:
            return op, s, t, event_id, get("d")
        event = msgspec.convert(get("d"), cls)
        force = msgspec.structs.force_setattr
        if type(event_id) is str:
            force(event, "event_id", event_id)
        if type(s) is int:
            force(event, "event_seq", s)
        force(event, "frame", frame)
        if event._WANTS_BOT_ID:
            force(event, "bot_id", self.bot_id)
        return op, s, t, event_id, event


# -- the runs --------------------------------------------------------------------------------


def ready(proto: GatewayProtocol) -> GatewayProtocol:
    proto.actions()
    proto.token_received("bench-token", NOW + 7200.0, NOW)
    proto.connection_made(1, NOW)
    request = b"".join(a.data for a in proto.actions() if isinstance(a, SendData))
    hello = server_frame(b'{"op":10,"d":{"heartbeat_interval":45000}}')
    ready_d = {"version": 1, "session_id": "bench", "user": {"id": BOT_ID}, "shard": [0, 1]}
    ready_frame = server_frame(json.dumps({"op": 0, "s": 1, "t": "READY", "d": ready_d}).encode())
    proto.receive_data(1, switching_protocols(request) + hello + ready_frame, NOW)
    out = proto.actions()
    assert proto.state is GatewayState.READY, (proto.state, out)
    return proto


def open_client() -> WebSocketClient:
    ws = WebSocketClient("wss://api.sgroup.qq.com/websocket/", random.Random(1).randbytes)
    ws.receive_data(switching_protocols(ws.connect()))
    assert ws.is_open
    return ws


Run = Callable[[list[Any]], tuple[int, float]]


def text_run(decode_frame: Callable[[str], Any]) -> Run:
    def run(frames: list[Any]) -> tuple[int, float]:
        gc.collect()
        start = time.perf_counter()
        for frame in frames:
            decode_frame(frame)
        return len(frames), time.perf_counter() - start

    return run


def floor_text_run(pairs: list[Any]) -> tuple[int, float]:
    """The floor: each frame's decoder was picked in advance."""
    gc.collect()
    start = time.perf_counter()
    for decode, text in pairs:
        decode(text)
    return len(pairs), time.perf_counter() - start


def loads_run(loads: Callable[[str], Any]) -> Run:
    return text_run(loads)


def wsproto_run(decode: Callable[[Any, str], Any] | None) -> Run:
    """wsproto's frame layer; each TextMessage through ``decode(floor_decoder, text)``."""

    def run(chunks_and_decoders: list[Any]) -> tuple[int, float]:
        conn = Connection(ConnectionType.CLIENT)
        n = 0
        gc.collect()
        start = time.perf_counter()
        for chunk, decoders in chunks_and_decoders:
            conn.receive_data(chunk)
            k = 0
            for event in conn.events():
                if isinstance(event, TextMessage):
                    if decode is not None:
                        decode(decoders[k], event.data)
                    k += 1
            n += k
        return n, time.perf_counter() - start

    return run


def qqproto_ws_run(decode: bool) -> Run:
    """``qqproto.ws.WebSocketClient``; each TextReceived through ``decode_frame``."""

    def run(chunks_and_decoders: list[Any]) -> tuple[int, float]:
        ws = open_client()
        decode_frame = EventDecoder(BOT_ID).decode_frame
        n = 0
        gc.collect()
        start = time.perf_counter()
        for chunk, _ in chunks_and_decoders:
            for event in ws.receive_data(chunk):
                if type(event) is TextReceived:
                    if decode:
                        decode_frame(event.text)
                    n += 1
                elif type(event) is Closed:
                    raise AssertionError(event)
        return n, time.perf_counter() - start

    return run


def gateway_run(chunks_and_decoders: list[Any]) -> tuple[int, float]:
    proto = ready(GatewayProtocol(GatewayConfig(app_id="102000000", seed=1)))
    receive, actions = proto.receive_data, proto.actions
    n = 0
    gc.collect()
    start = time.perf_counter()
    for chunk, _ in chunks_and_decoders:
        receive(1, chunk, NOW)
        n += len(actions())
    return n, time.perf_counter() - start


def text_access_run(names: tuple[str, ...]) -> Run:
    """Reading derived properties of decoded events (the lazy part)."""

    def run(events: list[Any]) -> tuple[int, float]:
        gc.collect()
        start = time.perf_counter()
        if names == ("text",):
            for event in events:
                event.text  # noqa: B018
        else:
            for event in events:
                event.text, event.to_me, event.empty  # noqa: B018
        return len(events), time.perf_counter() - start

    return run


_ours = EventDecoder(BOT_ID).decode_frame


def _floor(decode: Callable[[str], Any], text: str) -> Any:
    return decode(text)


def _decode_frame(decode: Callable[[str], Any], text: str) -> Any:
    return _ours(text)


def check(items: list[dict[str, Any]], frames: list[str]) -> None:
    """Every candidate gives the same events; the gateway delivers typed ones."""
    ours = EventDecoder(BOT_ID)
    others: list[Any] = [
        DataclassDecoder(json.loads),
        DataclassDecoder(orjson.loads),
        ConvertDecoder(orjson.loads),
    ]
    for frame in frames[:8]:
        event: Any = ours.decode_frame(frame)[4]
        assert isinstance(event, Message), event
        for other in others:
            twin = other.decode_frame(frame)[4]
            for name in ("event_id", "event_seq", "id", "content", "text", "to_me"):
                assert getattr(twin, name) == getattr(event, name), (name, twin, event)
            assert [a.url for a in twin.attachments] == [a.url for a in event.attachments]
    firsts: list[Any] = [ours.decode_frame(f)[4] for f in frames[:4]]
    assert [e.text for e in firsts] == [
        items[0]["d"]["content"].lstrip(),
        items[1]["d"]["content"],
        items[2]["d"]["content"].split("> ", 1)[1],
        "看看这张",
    ]
    proto = ready(GatewayProtocol(GatewayConfig(app_id="102000000", seed=1)))
    proto.receive_data(1, b"".join(server_frame(f.encode()) for f in frames[:4]), NOW)
    out = proto.actions()
    assert all(type(a) is Deliver and isinstance(a.event, Event) for a in out), out
    assert not any(
        isinstance(a.event, ProtocolViolation | Dispatch) for a in out if type(a) is Deliver
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    n = args.events - args.events % CHUNK
    items = payloads(n)
    frames = texts(items)
    check(items, frames)
    decoders = floor_decoders(items)
    raw = [server_frame(f.encode()) for f in frames]
    one = [(raw[i], [decoders[i]]) for i in range(n)]
    hundred = [(b"".join(raw[i : i + CHUNK]), decoders[i : i + CHUNK]) for i in range(0, n, CHUNK)]
    ours = EventDecoder(BOT_ID)
    decoded = [ours.decode_frame(f)[4] for f in frames]
    size = sum(map(len, frames)) / n
    print(f"{n} frames ({size:.0f} bytes of JSON each on average), best of {args.repeats}")
    versions = f"msgspec {msgspec.__version__}, orjson {orjson.__version__}"
    print(f"Python {sys.version.split()[0]}, {versions}")

    pairs = list(zip(decoders, frames, strict=True))
    groups: list[tuple[str, str, list[tuple[str, Run, list[Any]]]]] = [
        (
            "text -> typed event",
            "bar: msgspec (ours) within 1.5x of the floor",
            [
                ("floor: msgspec -> plain Structs", floor_text_run, pairs),
                ("msgspec -> events (ours)", text_run(ours.decode_frame), frames),
                (
                    "orjson + msgspec.convert -> events",
                    text_run(ConvertDecoder(orjson.loads).decode_frame),
                    frames,
                ),
                (
                    "orjson + checks -> dataclasses",
                    text_run(DataclassDecoder(orjson.loads).decode_frame),
                    frames,
                ),
                (
                    "json + checks -> dataclasses",
                    text_run(DataclassDecoder(json.loads).decode_frame),
                    frames,
                ),
                ("msgspec.json.decode -> dicts", loads_run(msgspec.json.decode), frames),
                ("orjson.loads -> dicts", loads_run(orjson.loads), frames),
                ("json.loads -> dicts", loads_run(json.loads), frames),
                ("then reading .text", text_access_run(("text",)), decoded),
                (
                    "then reading .text, .to_me, .empty",
                    text_access_run(("text", "to_me", "empty")),
                    decoded,
                ),
            ],
        ),
    ]
    for title, data in (("one frame per call", one), (f"{CHUNK} frames per call", hundred)):
        groups.append((f"bytes -> typed events, {title}", "bar: within 1.25x of the floor", [
            ("floor: wsproto frames + floor", wsproto_run(_floor), data),
            ("wsproto frames + decode_frame", wsproto_run(_decode_frame), data),
            ("qqproto.ws + decode_frame", qqproto_ws_run(True), data),
            ("gateway (GatewayProtocol)", gateway_run, data),
            ("(wsproto frames alone)", wsproto_run(None), data),
            ("(qqproto.ws alone)", qqproto_ws_run(False), data),
        ]))  # fmt: skip
    subjects = [subject for _, _, members in groups for subject in members]
    best = [float("inf")] * len(subjects)
    started = time.perf_counter()
    for _ in range(args.repeats):
        for k, (name, run, data) in enumerate(subjects):  # interleaved: drift hits all alike
            got, seconds = run(data)
            assert got == n, (name, got, n)
            best[k] = min(best[k], seconds)
    us = iter([b / n * 1e6 for b in best])
    for title, bar, members in groups:
        print(f"\n{title} ({bar}):")
        floor = None
        for name, _, _ in members:
            t = next(us)
            floor = floor or t
            print(f"  {name:36s} {t:6.2f} µs/event   {t / floor:5.2f}x floor")
    print(f"\n(took {time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
