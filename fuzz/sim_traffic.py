"""What a client sends the simulator in a fuzz case, and the simulator it starts from.

Every case of ``fuzz/fuzz_simulator.py`` talks to the same fresh
:class:`~qqproto.testing.QQSimulator` (:func:`fresh`), which has issued
:data:`TOKEN` and has one group message, :data:`MSG_ID`, waiting for a
session. This module writes the client's side of that conversation: the
byte builders (:func:`request`, :func:`text`, :func:`close`), the canned
requests, the openings a raw input can follow, the :class:`Case` itself, and
the Hypothesis strategies that draw HTTP requests, upgrades, payloads and
client frames.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from hypothesis import strategies as st

from fuzz.frames import OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, frame
from qqproto.testing import QQSimulator

T0: Final = 10.0
#: The text of the scripted garbage frame (the one text frame that is not JSON).
GARBAGE: Final = "{not json"
MASK: Final = b"\x37\xfa\x21\x3d"


def fresh() -> tuple[QQSimulator, str, str]:
    """A new simulator with a token issued and a group message pending:
    (the simulator, the token, the message's id). The same every time."""
    sim = QQSimulator()
    token, _ = sim.issue_token(T0)
    msg_id = str(sim.group_at_message("hello", T0)["id"])
    return sim, token, msg_id


_SIM, TOKEN, MSG_ID = fresh()
GROUP: Final = _SIM.group_openid
APP_ID: Final = _SIM.config.app_id
SECRET: Final = _SIM.config.secret
DEADLINE: Final = _SIM.config.heartbeat_deadline


# -- client bytes ---------------------------------------------------------------------------


def request(
    method: str,
    path: str,
    body: bytes | None = None,
    *,
    auth: str | None = TOKEN,
    headers: tuple[str, ...] = (),
    version: str = "1.1",
) -> bytes:
    """One HTTP request, framed by Content-Length when it has a body."""
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
    if auth is not None:
        lines.append(f"Authorization: QQBot {auth}")
    lines += headers
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def json_bytes(payload: Any) -> bytes:
    """``payload`` as compact JSON, non-ASCII characters as they are."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def text(payload: Any, *, mask: bytes = MASK) -> bytes:
    """A masked client text frame carrying ``payload`` (JSON unless bytes)."""
    return frame(OP_TEXT, payload if isinstance(payload, bytes) else json_bytes(payload), mask=mask)


def close(code: int | None, reason: bytes = b"") -> bytes:
    """A masked client close frame (``None``: an empty body)."""
    body = b"" if code is None else code.to_bytes(2, "big") + reason
    return frame(OP_CLOSE, body, mask=MASK)


TOKEN_BODY: Final = json_bytes({"appId": APP_ID, "clientSecret": SECRET})
TOKEN_REQUEST: Final = request("POST", "/app/getAppAccessToken", TOKEN_BODY, auth=None)
GATEWAY_BOT: Final = request("GET", "/gateway/bot")
REPLY: Final = json_bytes({"content": "hi", "msg_type": 0, "msg_id": MSG_ID, "msg_seq": 1})
GROUP_REPLY: Final = request("POST", f"/v2/groups/{GROUP}/messages", REPLY)
UPGRADE: Final = request(
    "GET",
    "/websocket",
    auth=None,
    headers=(
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ),
)
IDENTIFY: Final[dict[str, Any]] = {
    "op": 2,
    "d": {"token": f"QQBot {TOKEN}", "intents": 1 << 25, "shard": [0, 1]},
}
HEARTBEAT: Final[dict[str, Any]] = {"op": 1, "d": None}

#: What a raw input's stream follows (picked by two flag bits).
OPENINGS: Final = (
    b"",
    UPGRADE,
    UPGRADE + text(IDENTIFY),
    request("POST", f"/v2/groups/{GROUP}/messages")[:-2],  # the head, open for more headers
)


# -- the case -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """A client's bytes (``OPENINGS[opening] + stream``), where they are cut,
    whether EOF follows, and scripted moves: (after which piece, name)."""

    stream: bytes
    cuts: tuple[int, ...] = ()
    eof: bool = True
    actions: tuple[tuple[int, str], ...] = ()
    opening: int = 0

    @property
    def data(self) -> bytes:
        return OPENINGS[self.opening] + self.stream


# -- Hypothesis strategies ------------------------------------------------------------------

_text = st.text(max_size=20)
_json_value: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def http_requests(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["token", "gateway", "reply", "send", "other", "odd"]))
    auth = draw(st.sampled_from([TOKEN, TOKEN, TOKEN, None, "stale"]))
    if kind == "token":
        body = draw(
            st.sampled_from([TOKEN_BODY, b"{}", b"[]", b"", b"\xff"])
            | st.builds(json_bytes, st.fixed_dictionaries({"appId": _text, "clientSecret": _text}))
        )
        return request(
            draw(st.sampled_from(["POST", "POST", "GET"])), "/app/getAppAccessToken", body
        )
    if kind == "gateway":
        return request(draw(st.sampled_from(["GET", "POST"])), "/gateway/bot", auth=auth)
    if kind in ("reply", "send"):
        scene = draw(st.sampled_from([f"v2/groups/{GROUP}", "v2/users/U", "channels/1", "dms/2"]))
        fields = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "content": st.sampled_from(["hi", ""]) | _json_value,
                    "msg_type": st.sampled_from([0, 0, 2, 7, 9]) | _json_value,
                    "msg_id": st.sampled_from([MSG_ID, MSG_ID, "ROBOT1.0_x"]) | _json_value,
                    "msg_seq": st.integers(-1, 6) | _json_value,
                    "event_id": _json_value,
                    "markdown": _json_value,
                    "media": _json_value,
                },
            )
        )
        if kind == "reply":
            fields = {"content": "hi", "msg_type": 0, "msg_id": MSG_ID, **fields}
        body = json_bytes(fields) if draw(st.integers(0, 9)) else draw(st.binary(max_size=20))
        path = f"/{scene}/{draw(st.sampled_from(['messages', 'files', 'messages/ROBOT1.0_x']))}"
        method = draw(st.sampled_from(["POST", "POST", "POST", "DELETE", "GET", "HEAD"]))
        return request(method, path, body, auth=auth)
    if kind == "other":
        path = draw(
            st.sampled_from(["/users/@me", "/interactions/i", "/gateway", "/", "/v2/groups//m"])
        )
        other = draw(st.none() | st.builds(json_bytes, _json_value))
        return request(draw(st.sampled_from(["GET", "PUT", "HEAD"])), path, other, auth=auth)
    return draw(
        st.sampled_from(
            [
                request("GET", "/users/@me", version="1.0"),
                request("GET", "/users/@me", headers=("Connection: close",)),
                request("POST", "/gateway/bot", b"{}", headers=("Expect: 100-continue",)),
                b"POST /app/getAppAccessToken HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                + b"%x\r\n%s\r\n0\r\n\r\n"
                % (len(TOKEN_BODY), TOKEN_BODY),
                b"GET /users/@me HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
                b"GET /users/@me HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
                b"GET /users/@me HTTP/1.1\r\n\r\n",
                b"GET  HTTP/1.1\r\nHost: x\r\n\r\n",
                b"\r\n\r\n",
                b"GET /users/@me HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                b"GET /users/@me HTTP/1.1\r\nHost: x\r\nX: " + b"y" * 2000 + b"\r\n\r\n",
            ]
        )
    )


@st.composite
def upgrades(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 5)):
        return UPGRADE
    return draw(
        st.sampled_from(
            [
                UPGRADE.replace(b"Version: 13", b"Version: 8"),
                UPGRADE.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b""),
                UPGRADE.replace(b"Connection: Upgrade\r\n", b""),
                UPGRADE.replace(b"Upgrade: websocket\r\n", b""),
                UPGRADE.replace(b"GET", b"POST"),
                UPGRADE.replace(b"/websocket", b"/websocket/?compress=0"),
                UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0"),
            ]
        )
    )


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["identify", "heartbeat", "resume", "any", "raw"]))
    if kind == "identify":
        d = dict(IDENTIFY["d"])
        for key, value in draw(
            st.dictionaries(
                st.sampled_from(["token", "intents", "shard"]),
                st.sampled_from([f"QQBot {TOKEN}", TOKEN, 0, -1, 1 << 31, [0, 1], [1, 1]])
                | _json_value,
                max_size=2,
            )
        ).items():
            d[key] = value
        return json_bytes({"op": 2, "d": d})
    if kind == "heartbeat":
        return json_bytes({"op": 1, "d": draw(st.none() | st.integers(-1, 5) | _json_value)})
    if kind == "resume":
        d = {"token": f"QQBot {TOKEN}", "session_id": draw(_text), "seq": draw(_json_value)}
        return json_bytes({"op": 6, "d": d})
    if kind == "any":
        return json_bytes(
            draw(st.fixed_dictionaries({"op": _json_value}, optional={"d": _json_value}))
        )
    return draw(
        st.sampled_from([b"{not json", b"[]", b"null", b'{"op":"1"}', b"[" * 5000, b"\xff\xfe"])
        | st.binary(max_size=30)
    )


_BAD_OPCODES: Final = (3, 4, 5, 6, 7, 11, 12, 15)


@st.composite
def client_frames(draw: st.DrawFn) -> bytes:
    """A few client frames: mostly masked text carrying payloads, and the odd ones."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(
            st.sampled_from(
                ["text"] * 6 + ["fragments", "control", "close", "unmasked", "bad", "huge"]
            )
        )
        mask = draw(st.sampled_from([MASK, b"\x00\x00\x00\x00"]))
        if kind == "text":
            out += text(draw(payloads()), mask=mask)
        elif kind == "fragments":
            payload = draw(payloads())
            at = draw(st.integers(0, len(payload)))
            out += frame(OP_TEXT, payload[:at], fin=False, mask=mask)
            if draw(st.booleans()):
                out += frame(OP_PING, b"x", mask=mask)
            out += frame(OP_CONT, payload[at:], fin=draw(st.integers(0, 5)) > 0, mask=mask)
        elif kind == "control":
            opcode = draw(st.sampled_from([OP_PING, OP_PONG]))
            out += frame(opcode, draw(st.binary(max_size=130)), mask=mask)
        elif kind == "close":
            code = draw(st.sampled_from([1000, 1001, 4009, 4914, 999, 1005, 3000, 5000]))
            out += close(None) if draw(st.integers(0, 4)) == 0 else close(code, b"r")
        elif kind == "unmasked":
            out += frame(OP_TEXT, json_bytes(HEARTBEAT))
        elif kind == "bad":
            out += frame(
                draw(st.sampled_from((*_BAD_OPCODES, OP_TEXT, OP_CONT))),
                draw(st.binary(max_size=8)),
                rsv=draw(st.integers(0, 7)),
                mask=mask,
                wide_length=draw(st.booleans()),
            )
        else:
            size = draw(st.sampled_from([(1 << 20) + 1, 1 << 40, 1 << 63, 200_000]))
            out += b"\x81\xff" + size.to_bytes(8, "big") + mask + draw(st.binary(max_size=40))
    return bytes(out)
