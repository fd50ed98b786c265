"""The fuzz target for ``EventDecoder`` and the typed events' computed properties.

Run it by hand::

    python fuzz/fuzz_events.py [libFuzzer options] [corpus dirs]

With atheris importable this is a coverage-guided libFuzzer run over raw
inputs (:func:`decode_input`), seeded with :func:`seed_inputs` when no corpus
directory is given. Without atheris (or with ``FUZZ_ENGINE=hypothesis``) it
runs two Hypothesis targets, raw bytes and structured frames (:func:`cases`:
a ``t`` from ``EVENT_TYPES``, mostly a message type, and a ``d`` shaped like
the spec's payloads, with drawn text, attachments and mentions, or with
fields dropped, retyped or full of odd strings), each for ``FUZZ_EXAMPLES``
examples (default 20000). ``FUZZ_MESSAGE_SHARE=N`` runs neither: it draws N
structured cases and prints how many reach a typed message event.

One case is one frame and the bot id the decoder knows. :func:`run_case`
holds the decoder to its contract:

- ``decode_frame`` raises only :class:`~qqproto.errors.RemoteProtocolError`
  (for a frame that is not a JSON object), and otherwise returns;
- a body that is an :class:`~qqproto.qq.decode.EventDecodeError` is a
  ``RemoteProtocolError`` naming the event type and a path under ``d``;
- a typed event is of the class its ``t`` names, and reading every public
  property (``text``, ``to_me``, ``empty``, ``attachments`` and each one's
  ``url`` and ``is_image``, ``raw``, ``as_dispatch()``...) never raises;
- an attachment's ``url`` is ``''`` or names a scheme;
- an undecoded op 0 dispatch goes through ``decode`` to an event, a
  ``Dispatch`` or an ``EventDecodeError``, and nothing else.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

if __name__ == "__main__":  # run as a script: import the fuzz package from the repo root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz import engine
from fuzz.numbers import NUMBER, NUMBER_JSON, number_texts, splice
from qqproto.errors import RemoteProtocolError
from qqproto.qq.decode import EventDecodeError, EventDecoder
from qqproto.qq.events import EVENT_TYPES, Dispatch, Event, Message
from qqproto.qq.parts import Attachment

BOT: Final = "6158788878435714165"  # READY user.id, spec 3.3
BOT_IDS: Final = (None, BOT, "", "<@!1>")
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


@dataclass(frozen=True, slots=True)
class Case:
    """One frame (text or bytes, as the WebSocket gave it) and the decoder's bot id."""

    frame: str | bytes
    bot_id: str | None = None


# -- the contract ---------------------------------------------------------------------------


def _check_attachment(attachment: Attachment) -> None:
    url = attachment.url
    assert isinstance(url, str)
    assert url == "" or _SCHEME.match(url), f"attachment url without a scheme: {url!r}"
    wav = attachment.voice_wav_url
    assert wav is None or wav == "" or _SCHEME.match(wav), f"voice url without a scheme: {wav!r}"
    assert isinstance(attachment.is_image, bool)


def read_all(event: Event) -> None:
    """Read every public property of ``event`` (and of its attachments); check their types."""
    repr(event)
    for name, _ in inspect.getmembers(type(event), lambda a: isinstance(a, property)):
        if not name.startswith("_"):
            getattr(event, name)
    text = getattr(event, "text", "")
    assert isinstance(text, str)
    assert isinstance(getattr(event, "to_me", False), bool)
    assert isinstance(getattr(event, "empty", False), bool)
    attachments: tuple[Attachment, ...] = getattr(event, "attachments", ())
    for element in getattr(event, "msg_elements", ()):
        attachments += element.attachments
    for attachment in attachments:
        _check_attachment(attachment)
    dispatch = event.as_dispatch()
    assert dispatch.type == event.TYPE and dispatch.seq == event.event_seq


def _check_decode_error(exc: EventDecodeError, t: object) -> str:
    assert isinstance(exc, RemoteProtocolError)
    assert exc.event_type == t, (exc.event_type, t)
    assert exc.path == "d" or exc.path.startswith(("d.", "d[")), exc.path
    str(exc)
    return "bad " + re.sub(r"\[\d+\]", "[]", exc.path)[:30]


def run_case(case: Case) -> str:
    """Decode ``case.frame`` and hold what comes back to the contract; the tally key."""
    decoder = EventDecoder(case.bot_id)
    try:
        op, s, t, event_id, body = decoder.decode_frame(case.frame)
    except EventDecodeError:
        raise  # a bad field belongs in the body, not raised
    except RemoteProtocolError:
        return "not a JSON object"
    if isinstance(body, EventDecodeError):
        assert op == 0 and isinstance(t, str) and t in EVENT_TYPES, (op, t)
        return f"{t} {_check_decode_error(body, t)}"
    if isinstance(body, Event):
        assert op == 0 and type(t) is str and type(body) is EVENT_TYPES[t], (op, t, type(body))
        read_all(body)
        return f"{t} event"
    assert isinstance(body, msgspec.Raw), type(body)
    if op != 0 or type(op) is not int or type(t) is not str or not body:
        return f"op {op!r}"[:20]
    seq = s if type(s) is int else None
    try:
        event = decoder.decode(t, seq, event_id if type(event_id) is str else None, body)
    except EventDecodeError as exc:
        return f"dispatch {_check_decode_error(exc, t)}"
    if isinstance(event, Event):
        read_all(event)
        return f"{event.TYPE} event (decode)"
    assert isinstance(event, Dispatch) and event.type == t
    return "untyped dispatch"


# -- the raw input format (atheris, and st.binary()) ---------------------------------


def decode_input(data: bytes) -> Case:
    """Arbitrary bytes as a case. Layout: ``flags frame``; ``flags`` picks the
    bot id (bits 0-1) and whether the frame is text (bit 2: decoded as UTF-8,
    lone surrogates kept) or bytes."""
    flags = data[0] if data else 0
    frame: str | bytes = data[1:]
    if flags & 4:
        try:
            frame = data[1:].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            frame = data[1:].decode("utf-8", "surrogateescape")
    return Case(frame, BOT_IDS[flags & 3])


def encode_input(case: Case) -> bytes:
    """The raw input :func:`decode_input` turns into ``case``."""
    is_text = isinstance(case.frame, str)
    frame = (
        case.frame.encode("utf-8", "surrogatepass") if isinstance(case.frame, str) else case.frame
    )
    return bytes((BOT_IDS.index(case.bot_id) | is_text << 2,)) + frame


MEMBER: Final = "0BA1C3D5E7F90B1D3F5A7C9E1B3D7F13"
GROUP: Final = "82B3C5D7E9FA1B3C5D7E9F0A1B2C6064"
BOT_OPENID: Final = "42F7A0D6B3C1E5F79A8B2C4D6E8F5C57"
USER: Final = "E4F4A1B2C3D4E5F6A7B8C9D0E1F2D7ED"
_IMAGE: Final = {
    "content_type": "image/png",
    "filename": "a.png",
    "size": 1024,
    "width": 64,
    "height": 64,
    "url": "gchat.qpic.cn/qmeetpic/0/0-0-ABC/0",
}
_VOICE: Final = {
    "content_type": "voice",
    "url": "https://multimedia.nt.qq.com.cn/download?x=1",
    "voice_wav_url": "//multimedia.nt.qq.com.cn/wav?x=1",
    "asr_refer_text": "你好",
}
GROUP_AT_D: Final = {  # 6.1
    "id": "ROBOT1.0_yiT7pdisg1abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH!",
    "content": " lssv",
    "timestamp": "2025-09-08T23:13:34+08:00",
    "author": {"id": MEMBER, "member_openid": MEMBER, "union_openid": MEMBER},
    "group_id": GROUP,
    "group_openid": GROUP,
    "message_scene": {"source": "default", "ext": ["ref_msg_idx=REFIDX_1"]},
    "message_type": 103,
    "msg_elements": [{"msg_idx": "REFIDX_1", "content": "q", "attachments": [_IMAGE]}],
    "attachments": [_IMAGE, _VOICE],
}
GROUP_MSG_D: Final = {  # 6.1, GROUP_MESSAGE_CREATE
    **GROUP_AT_D,
    "content": f"<@{BOT_OPENID}> 签到 &lt;x&gt;",
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
}
C2C_D: Final = {  # 6.2
    "id": "ROBOT1.0_.b6nxABC!",
    "content": "123",
    "timestamp": "2023-11-06T13:37:18+08:00",
    "author": {"user_openid": USER},
    "attachments": [_VOICE],
}
GUILD_D: Final = {  # 6.3
    "author": {"avatar": "http://thirdqq.qlogo.cn/0", "bot": False, "id": "1234", "username": "a"},
    "channel_id": "100010",
    "content": f"<@!{BOT}> hello",
    "guild_id": "18700000000001",
    "id": "0812345677890abcdef",
    "member": {"joined_at": "2021-04-12T16:34:42+08:00", "roles": ["1"]},
    "mentions": [{"id": BOT, "username": "bot", "bot": True}],
    "timestamp": "2021-05-20T15:14:58+08:00",
    "seq": 101,
    "attachments": [_IMAGE],
}
DM_D: Final = {**GUILD_D, "content": "hi", "direct_message": True, "src_guild_id": "187"}
INTERACTION_D: Final = {  # 6.5
    "id": "30540ff7-9d8f-4737-83f1-e116ce6afa8b",
    "type": 11,
    "version": 1,
    "chat_type": 2,
    "scene": "c2c",
    "timestamp": "2023-11-06T13:37:18+08:00",
    "application_id": "102000000",
    "user_openid": USER,
    "data": {"type": 11, "resolved": {"button_data": "ok", "button_id": "21"}},
}
GROUP_LIFE_D: Final = {"group_openid": GROUP, "op_member_openid": MEMBER, "timestamp": 1699240248}
FRIEND_LIFE_D: Final = {"openid": USER, "timestamp": 1699240365}
READY_D: Final = {  # 3.3
    "version": 1,
    "session_id": "082ee18c-0be3-491b-9d8b-fbd95c51673a",
    "user": {"id": BOT, "username": "群pro测试机器人", "bot": True},
    "shard": [0, 0],
}
SAMPLES: Final[dict[str, Any]] = {
    "GROUP_AT_MESSAGE_CREATE": GROUP_AT_D,
    "GROUP_MESSAGE_CREATE": GROUP_MSG_D,
    "C2C_MESSAGE_CREATE": C2C_D,
    "AT_MESSAGE_CREATE": GUILD_D,
    "MESSAGE_CREATE": GUILD_D,
    "DIRECT_MESSAGE_CREATE": DM_D,
    "INTERACTION_CREATE": INTERACTION_D,
    "GROUP_ADD_ROBOT": GROUP_LIFE_D,
    "GROUP_DEL_ROBOT": GROUP_LIFE_D,
    "GROUP_MSG_REJECT": GROUP_LIFE_D,
    "GROUP_MSG_RECEIVE": GROUP_LIFE_D,
    "FRIEND_ADD": FRIEND_LIFE_D,
    "FRIEND_DEL": FRIEND_LIFE_D,
    "C2C_MSG_REJECT": FRIEND_LIFE_D,
    "C2C_MSG_RECEIVE": FRIEND_LIFE_D,
    "READY": READY_D,
    "RESUMED": "",
}
assert set(SAMPLES) == set(EVENT_TYPES)


def frame_text(t: Any, d: Any, *, op: Any = 0, s: Any = 42, event_id: Any = "e") -> str:
    """A dispatch frame in the docs' key order."""
    return json.dumps({"op": op, "s": s, "t": t, "id": event_id, "d": d}, ensure_ascii=False)


SEED_FRAMES: Final = (
    *(frame_text(t, d) for t, d in SAMPLES.items()),
    '{"op":10,"d":{"heartbeat_interval":41250}}',
    '{"op":11}',
    '{"op":7,"d":null}',
    '{"op":9,"d":false}',
    frame_text("PUBLIC_MESSAGE_DELETE", {"message": {"id": "1"}}),
    '{"d":{"openid":"U"},"t":"FRIEND_ADD","op":0,"s":"7"}',
    '{"op":0,"t":"C2C_MESSAGE_CREATE","d":{"id":"x","author":{"user_openid":"\\ud800"}}}',
    '{"op":0,"t":"READY","d":{"session_id":1}}',
    "[]",
    # Numbers past int64, past a float, past what int() reads: a raw Dispatch, never a crash.
    frame_text("GROUP_ADD_ROBOT", {"group_openid": "G"}).replace(
        '"G"}', '"G","timestamp":' + "9" * 5000 + "}"
    ),
    frame_text("FRIEND_ADD", {"openid": "U"}, s=2**63).replace('"U"}', '"U","timestamp":1e999}'),
    '{"op":0,"s":' + "1" + "0" * 400 + ',"t":"C2C_MSG_RECEIVE","d":{"openid":"U"}}',
)


def seed_inputs() -> list[bytes]:
    """Every seed frame under every bot id, as bytes and as text (the atheris corpus)."""
    return [
        encode_input(Case(frame, bot_id))
        for text in SEED_FRAMES
        for frame in (text, text.encode())
        for bot_id in BOT_IDS
    ]


# -- Hypothesis strategies ------------------------------------------------------------------

ODD_PARTS: Final = (
    f"<@!{BOT}>",
    f"<@{BOT}>",
    f"<@{BOT_OPENID}>",
    "<@!123>",
    "<@!>",
    "<@",
    "<#100010>",
    "<emoji:4>",
    '<faceType=1,faceId="13",ext="x">',
    "&lt;",
    "&gt;",
    "&amp;",
    "&amp;lt;",
    "&#39;",
    "&",
    "<",
    "\xa0",
    "\u3000",
    " ",
    "\n",
    "\t",
    "/",
    "签到",
    "\U0001f600",
    "\ud800",
    "\udfff",
    "\x00",
    "@everyone",
    "",
)
URLS: Final = (
    "",
    "gchat.qpic.cn/qmeetpic/0/0",
    "//multimedia.nt.qq.com.cn/x",
    "https://a/b",
    "http://a/b",
    "HTTPS://A/B",
    "ftp://x/y",
    "x://",
    "://x",
    ":",
    "/",
    "//",
    "a:b",
    " https://x",
    "javascript:alert(1)",
    "\ud800://x",
    "1a://x",
)
HUGE: Final = (2**64, -(2**63) - 1, 10**30, 2**63 - 1, -1, 0)

_odd_text = st.lists(st.sampled_from(ODD_PARTS) | st.text(max_size=4), max_size=6).map("".join)
_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.sampled_from(HUGE),
    st.just(NUMBER),
    st.floats(allow_nan=False),
    _odd_text,
    st.sampled_from(URLS),
)
json_values = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _leaf(draw: st.DrawFn, key: str, value: Any, wild: bool) -> Any:
    """A value like ``value`` (same type, odd content) or any JSON value."""
    if isinstance(value, str):
        pool = URLS if "url" in key else ODD_PARTS
        return draw(st.sampled_from(pool) | _odd_text)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        if wild:
            return draw(st.sampled_from(HUGE) | st.just(NUMBER) | st.integers())
        return draw(st.integers(0, 9))
    return draw(json_values)


def mutate(draw: st.DrawFn, value: Any, key: str = "", depth: int = 0, wild: bool = True) -> Any:
    """``value`` with odd values of the same types; when ``wild``, also with
    some of its fields dropped, retyped or added."""
    roll = draw(st.integers(0, 19))
    if wild and roll == 0 and depth > 0:
        return draw(json_values)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            keep = draw(st.integers(0, 9))
            if wild and keep == 0:
                continue  # missing field
            out[k] = mutate(draw, v, k, depth + 1, wild)
        for k in draw(
            st.lists(st.sampled_from(("extra", "qqproto.frame", "url", "id")), max_size=int(wild))
        ):
            out[k] = draw(json_values)
        return out
    if isinstance(value, list):
        items = [mutate(draw, v, key, depth + 1, wild) for v in value]
        if value and draw(st.integers(0, 4)) == 0:
            items += [mutate(draw, value[0], key, depth + 1, wild)]
        return items
    if roll < 8 or key in ("content", "url", "voice_wav_url", "content_type"):
        return _leaf(draw, key, value, wild)
    return value


#: The dispatch types of messages: the events with text, attachments and mentions to read.
MESSAGE_TYPES: Final = frozenset(t for t, cls in EVENT_TYPES.items() if issubclass(cls, Message))
_MESSAGE_T: Final = sorted(MESSAGE_TYPES)
_ALL_T: Final = sorted(EVENT_TYPES)
#: Ids a mention, or a mention in ``content``, may name: the bot's (both
#: kinds), a member's, and ids that look close to them.
MENTION_IDS: Final = (BOT, BOT_OPENID, MEMBER, USER, "", "123", BOT_OPENID.lower(), f"{BOT}0")
CONTENT_TYPES: Final = ("image/png", "image/jpeg", "IMAGE/GIF", "voice", "video/mp4", "file", "")
#: Integers a field typed ``int`` takes (the odd ones are for wild cases).
_INTS: Final = st.sampled_from((0, 1, 64, 1280, 2**31 - 1, 2**63 - 1)) | st.integers(0, 10**6)
_maybe_text = st.none() | st.sampled_from(ODD_PARTS) | _odd_text


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True about one time in ``n``.

    On the largest value, not on 0: Hypothesis draws the simplest value (0)
    far more often than its share, and the rare branch must stay rare.
    """
    return draw(st.integers(1, n)) == n


@st.composite
def contents(draw: st.DrawFn) -> str:
    """Message text: odd parts, entities and mentions of the bot and of others."""
    mention = st.builds(
        lambda form, ident, space: form.format(ident) + space,
        st.sampled_from(("<@{}>", "<@!{}>", "<@{}", "<@!{} >")),
        st.sampled_from(MENTION_IDS),
        st.sampled_from(("", " ", "\xa0", "\u3000", "\n")),
    )
    parts = draw(st.lists(mention | st.sampled_from(ODD_PARTS) | _odd_text, max_size=8))
    return "".join(parts)


@st.composite
def attachment(draw: st.DrawFn) -> dict[str, Any]:
    """One attachment: any type, any URL form, the optional fields or not."""
    out: dict[str, Any] = {
        "content_type": draw(st.sampled_from(CONTENT_TYPES) | _odd_text),
        "url": draw(st.sampled_from(URLS)),
    }
    for key, value in (
        ("voice_wav_url", st.sampled_from(URLS)),
        ("asr_refer_text", _maybe_text),
        ("filename", _maybe_text),
        ("size", _INTS),
        ("width", _INTS),
        ("height", _INTS),
    ):
        if draw(st.booleans()):
            out[key] = draw(value)
    return out


@st.composite
def group_mention(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"is_you": draw(st.booleans()), "bot": draw(st.booleans())}
    for key in ("id", "member_openid"):
        if not one_in(draw, 4):
            out[key] = draw(st.sampled_from(MENTION_IDS) | st.none())
    if draw(st.booleans()):
        out["scope"] = draw(st.sampled_from(("single", "all", "")))
    if draw(st.booleans()):
        out["username"] = draw(_maybe_text)
    return out


@st.composite
def guild_mention(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"id": draw(st.sampled_from(MENTION_IDS))}  # required here
    if draw(st.booleans()):
        out["bot"] = draw(st.booleans())
    if draw(st.booleans()):
        out["username"] = draw(_maybe_text)
    return out


@st.composite
def quoted(draw: st.DrawFn) -> dict[str, Any]:
    """One of ``msg_elements`` (spec 6.7): a quoted message with its own attachments."""
    return {
        "msg_idx": draw(st.sampled_from(("REFIDX_1", "REFIDX_2", "")) | st.none()),
        "message_type": draw(st.sampled_from((0, 103)) | st.none()),
        "content": draw(contents()),
        "attachments": draw(st.lists(attachment(), max_size=2)),
    }


#: The fields :func:`message_payload` draws itself.
_VARIED: Final = frozenset(
    {"content", "attachments", "mentions", "mention_everyone"}
    | {"msg_elements", "message_type", "message_scene"}
)


def message_payload(draw: st.DrawFn, t: str) -> dict[str, Any]:
    """Message ``d`` with drawn content, attachments, mentions and quotes.

    Every value has the type its field takes, so the message still decodes
    and its ``text``, ``to_me``, ``empty``, URLs and ``quote`` are computed
    from odd inputs: the part of the decoder the budget should go to. The
    other fields get odd values of their types (drawing them all again would
    spend the time on generating, not on decoding).
    """
    sample: dict[str, Any] = SAMPLES[t]
    d: dict[str, Any] = mutate(
        draw, {k: v for k, v in sample.items() if k not in _VARIED}, wild=False
    )
    d["content"] = draw(contents())
    if not one_in(draw, 4):
        d["attachments"] = draw(st.lists(attachment(), max_size=3))
    guild = "channel_id" in sample
    if not one_in(draw, 4):
        mention = guild_mention() if guild else group_mention()
        d["mentions"] = draw(st.lists(mention, max_size=3))
    if guild:
        if one_in(draw, 2):
            d["mention_everyone"] = draw(st.booleans())
    elif one_in(draw, 2):
        d["msg_elements"] = draw(st.lists(quoted(), max_size=2))
        d["message_type"] = draw(st.sampled_from((0, 103, 7)))
        ext = st.sampled_from(("ref_msg_idx=REFIDX_1", "ref_msg_idx=", "x"))
        d["message_scene"] = {"source": "default", "ext": draw(st.lists(ext, max_size=2))}
    for key in _VARIED & sample.keys() - d.keys():  # not drawn: as in the sample
        d[key] = sample[key]
    return d


def odd_envelope(draw: st.DrawFn, envelope: dict[str, Any]) -> None:
    """Make ``envelope``'s op, s, t or id odd, or drop one of them, in place."""
    t = envelope["t"]
    envelope["op"] = draw(st.sampled_from((0, 0, 1, 7, "0", None, False, 0.0)))
    envelope["s"] = draw(st.sampled_from((42, None, "7", -1, 2**64, NUMBER)))
    if one_in(draw, 4):
        envelope["t"] = draw(st.sampled_from(("UNKNOWN", 1, None, t.lower())))
    envelope["id"] = draw(st.sampled_from(("e", None, 5, "\ud800", "")))
    for key in draw(st.lists(st.sampled_from(("op", "s", "t", "id", "d")), max_size=1)):
        envelope.pop(key)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A dispatch frame shaped like the spec's, with odd values, fields and envelope.

    Most of the budget goes to what is hardest to get right: the text,
    attachments, mentions and quotes of typed messages. Three cases in four
    are messages, whose text and parts are drawn (:func:`message_payload`),
    but one in eight has fields dropped or retyped instead (the other types:
    one in two); one envelope in eight is odd; one frame in
    forty is cut short. ``FUZZ_MESSAGE_SHARE=N python fuzz/fuzz_events.py``
    prints how many of N cases reach a typed message event (over half).
    """
    t = draw(st.sampled_from(_ALL_T if one_in(draw, 4) else _MESSAGE_T))
    is_message = t in MESSAGE_TYPES
    if one_in(draw, 8 if is_message else 2):
        d = mutate(draw, SAMPLES[t])  # fields dropped, retyped, added
    elif is_message:
        d = message_payload(draw, t)
    else:
        d = mutate(draw, SAMPLES[t], wild=False)
    envelope: dict[str, Any] = {
        "op": 0,
        "s": draw(st.sampled_from((42, 1, 2**31 - 1))),
        "t": t,
        "id": draw(st.sampled_from(("e", f"{t}:ab12"))),
        "d": d,
    }
    if one_in(draw, 8):
        odd_envelope(draw, envelope)
    order = draw(st.permutations(list(envelope)))
    text = json.dumps({k: envelope[k] for k in order}, ensure_ascii=draw(st.booleans()))
    text = splice(text, [draw(number_texts) for _ in range(text.count(NUMBER_JSON))])
    if one_in(draw, 40):  # cut short, or something after it
        text = text[: draw(st.integers(0, len(text)))] + draw(st.sampled_from(("", "}", " ", "x")))
    bot_id = draw(st.sampled_from(BOT_IDS))
    try:
        as_bytes = text.encode()
    except UnicodeEncodeError:  # lone surrogates unescaped: only text can carry them
        return Case(text, bot_id)
    return Case(as_bytes if draw(st.booleans()) else text, bot_id)


# -- how much of the budget reaches typed messages ------------------------------------------------


def reached_a_message(outcome: str) -> bool:
    """Whether :func:`run_case`'s tally key is a typed message event."""
    t, _, rest = outcome.partition(" ")
    return t in MESSAGE_TYPES and rest in ("event", "event (decode)")


def message_share(examples: int) -> Counter[str]:
    """The outcomes of ``examples`` structured cases, tallied (no fuzzing)."""
    tally: Counter[str] = Counter()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def target(case: Case) -> None:
        tally[run_case(case)] += 1

    target()
    return tally


def print_message_share(examples: int) -> None:
    tally = message_share(examples)
    total = tally.total()
    hits = sum(n for key, n in tally.items() if reached_a_message(key))
    print(f"{hits} of {total} structured cases ({hits / total:.0%}) reached a typed message event")
    for key, n in sorted(tally.items(), key=lambda item: -item[1])[:15]:
        print(f"  {n:7d}  {key}")


# -- the engine hooks --------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    # FUZZ_MESSAGE_SHARE=N: only measure where N structured cases go, and print it.
    if examples := int(os.environ.get("FUZZ_MESSAGE_SHARE", "0")):
        print_message_share(examples)
        return 0
    return engine.run(
        argv,
        corpus_prefix="qqproto-fuzz-events-",
        seed_inputs=seed_inputs,
        decode=decode_input,
        check=run_case,
        structured=("structured frames", cases()),
        rows=lambda tally: tally.most_common(25),
        heading="the most common outcomes:",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
