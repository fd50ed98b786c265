"""The fuzz target for ``HttpConnection.receive_data`` and the REST answer parsers.

Run it by hand::

    python fuzz/fuzz_http.py [libFuzzer options] [corpus dirs]

With atheris importable this is a coverage-guided libFuzzer run over raw
inputs (:func:`decode_input`), seeded with :func:`seed_inputs` when no corpus
directory is given. Without atheris (or with ``FUZZ_ENGINE=hypothesis``) it
runs two Hypothesis targets, raw bytes and structured responses
(:func:`cases`), each for ``FUZZ_EXAMPLES`` examples (default 20000).

One case is one request on a fresh connection and the server's bytes, cut
into pieces. :func:`run_case` holds the connection to its contract:

- only :class:`~qqproto.errors.RemoteProtocolError` is ever raised (the
  harness itself never misuses the connection);
- at most one response comes back (no request was pipelined), and it is
  within the size limit, with lower-case header names;
- a failed connection stays failed, and is not reusable;
- the outcome does not depend on where the bytes were cut: the same input
  fed whole gives the same response and the same kind of error;
- a response's body goes through every REST answer parser without any
  exception but a ``RemoteProtocolError``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

if __name__ == "__main__":  # run as a script: import the fuzz package from the repo root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from hypothesis import strategies as st

from fuzz import engine
from fuzz.numbers import NUMBER, number_texts, spliced
from qqproto.actions import HttpRequest
from qqproto.errors import RemoteProtocolError
from qqproto.http import HttpConnection, HttpResponse
from qqproto.qq import api
from qqproto.qq.auth import AuthConfig, TokenError, TokenManager

METHODS: Final = ("GET", "POST", "HEAD", "DELETE")
LIMITS: Final = (8 * 1024 * 1024, 64, 0)
URL: Final = "https://api.sgroup.qq.com/v2/groups/G/messages"
CALLS: Final = (api.get_gateway_bot(), api.get_me(), api.send_text(api.Target.c2c("U"), "x"))
CALLS2: Final = (api.upload_media(api.Target.group("G"), api.FileType.IMAGE, url="https://a/b"),)


@dataclass(frozen=True, slots=True)
class Case:
    """One request, the server's bytes, where they are cut, and whether EOF follows."""

    method: str
    stream: bytes
    cuts: tuple[int, ...] = ()
    eof: bool = True
    limit: int = LIMITS[0]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a case came to: the response (if any) and the kind of error (if any)."""

    response: HttpResponse | None
    error: type[RemoteProtocolError] | None


def _pieces(case: Case) -> list[bytes]:
    bounds = sorted({0, len(case.stream), *(c % (len(case.stream) + 1) for c in case.cuts)})
    return [case.stream[a:b] for a, b in itertools.pairwise(bounds)]


def _feed(case: Case, pieces: list[bytes]) -> Outcome:
    conn = HttpConnection(max_response_size=case.limit)
    conn.send(HttpRequest(1, case.method, URL, (), b"{}" if case.method == "POST" else b""))
    responses: list[HttpResponse] = []
    for piece in [*pieces, b""] if case.eof else pieces:
        try:
            responses += conn.receive_data(piece)
        except RemoteProtocolError as exc:
            raised: RemoteProtocolError | None = exc
            break
    else:
        raised = None
    error = conn.error  # also bytes after the response, which the next call raises
    assert raised is None or raised is error
    if error is not None:
        assert not conn.reusable and not conn.awaiting_response
        again: RemoteProtocolError | None = None
        try:
            conn.receive_data(b"")
        except RemoteProtocolError as exc:
            again = exc
        assert again is error, "a failed connection must stay failed"
    assert len(responses) <= 1, "one request, more than one response"
    for response in responses:
        assert len(response.body) <= case.limit
        assert all(name == name.lower() for name, _ in response.headers)
        if case.method == "HEAD" or response.status in (204, 304):
            assert response.body == b""
    return Outcome(responses[0] if responses else None, type(error) if error else None)


def _parse_all(response: HttpResponse) -> None:
    for call in (*CALLS, *CALLS2):
        with contextlib.suppress(RemoteProtocolError):
            call.parse(response)
    _parse_token(response)


def _parse_token(response: HttpResponse) -> None:
    """The token endpoint's answer: a token with a finite life, or a TokenError."""
    tokens = TokenManager(AuthConfig("102000000", "secret"), random.Random(0))
    tokens.want(1, 0.0)
    try:
        token = tokens.response(1, response, 0.0)
    except TokenError:
        assert not tokens.current(0.0)
        return
    assert 0.0 < token.refresh_at < token.expires_at < math.inf, token
    assert tokens.current(0.0) is token


def run_case(case: Case) -> Outcome:
    """Run ``case`` cut as it says, and whole, and check the two agree."""
    outcome = _feed(case, _pieces(case))
    whole = _feed(case, [case.stream] if case.stream else [])
    assert outcome == whole, f"cutting changed the outcome: {outcome} vs {whole}"
    if outcome.response is not None:
        _parse_all(outcome.response)
    return outcome


# -- the raw input format (atheris, and st.binary()) ---------------------------------


def decode_input(data: bytes) -> Case:
    """Arbitrary bytes as a case. Layout: ``flags cut1 cut2 stream``; ``flags``
    picks the method (bits 0-1), the size limit (bits 2-3) and EOF (bit 4)."""
    flags = data[0] if data else 0
    cuts = tuple(data[1:3])
    return Case(
        METHODS[flags & 3],
        data[3:],
        cuts,
        eof=not flags & 0x10,
        limit=LIMITS[(flags >> 2 & 3) % len(LIMITS)],
    )


def encode_input(case: Case) -> bytes:
    """The raw input :func:`decode_input` turns into ``case`` (cuts: the first two)."""
    cuts = (*case.cuts, 0, 0)[:2]
    flags = METHODS.index(case.method) | LIMITS.index(case.limit) << 2 | (not case.eof) << 4
    return bytes((flags, *(c % 256 for c in cuts))) + case.stream


SEEDS: Final = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\nT: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{}",
    b"HTTP/1.0 200 OK\r\n\r\n{}",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 400 Bad\r\nX-Tps-trace-ID: t\r\nContent-Length: 52\r\n\r\n"
    b'{"message":"x","code":850026,"err_code":40034001} ',
    b'HTTP/1.1 200 OK\r\nContent-Length: 29\r\n\r\n{"id":"R","timestamp":"2026"}',
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
    b"HTTP/1.1 2x0 OK\r\n\r\n",
    b"garbage\r\n\r\n",
)


def seed_inputs() -> list[bytes]:
    """Every seed response under every method, limit and cut (the atheris corpus)."""
    return [
        encode_input(Case(method, seed, (cut, cut * 7), eof, limit))
        for seed in SEEDS
        for method in METHODS
        for limit in LIMITS
        for eof in (True, False)
        for cut in (0, 1, 17)
    ]


# -- Hypothesis strategies ------------------------------------------------------------------

_json_bodies = st.sampled_from(
    [
        b"",
        b"{}",
        b'{"url":"wss://x/","shards":1,"session_start_limit":{"total":1,"remaining":"1",'
        b'"reset_after":1,"max_concurrency":1}}',
        b'{"id":"ROBOT1.0_x","timestamp":1700000000,"ext_info":{"ref_idx":"REFIDX_1"}}',
        b'{"file_uuid":"u","file_info":"i","ttl":"3600"}',
        b'{"message":"m","code":304023,"data":{"message_audit":{"audit_id":"a"}}}',
        b'{"err_code":0,"id":"1"}',
        b"[" * 3000,
        b"\xff\xfe",
        b'{"access_token":"T","expires_in":"7200"}',
        b'{"access_token":"T","expires_in":60}',
    ]
) | st.binary(max_size=40)
#: Every number of every answer the core reads, now and then past any sane range.
_number = st.integers(-1, 10**6) | st.just(NUMBER) | st.just(NUMBER)
_numbered_bodies = spliced(
    st.one_of(
        st.fixed_dictionaries(
            {
                "url": st.just("wss://x/"),
                "shards": _number,
                "session_start_limit": st.fixed_dictionaries(
                    dict.fromkeys(("total", "remaining", "reset_after", "max_concurrency"), _number)
                ),
            }
        ),
        st.fixed_dictionaries({"id": st.just("m"), "timestamp": _number}),
        st.fixed_dictionaries(
            {"file_uuid": st.just("u"), "file_info": st.just("i"), "ttl": _number}
        ),
        st.fixed_dictionaries({"message": st.just("m"), "code": _number, "err_code": _number}),
        st.fixed_dictionaries(
            {
                "access_token": st.just("T"),
                "expires_in": _number | number_texts,  # a number, or its digits as a string
            }
        ),
    )
)
_STATUSES: Final = (200, 200, 200, 204, 304, 400, 401, 404, 429, 500, 201, 202, 100, 101)
_status = st.one_of(*(st.just(s) for s in _STATUSES), st.integers(0, 999))
_GOOD_HEADERS: Final = (
    b"Connection: close",
    b"Connection: keep-alive",
    b"X-Tps-trace-ID: abc",
    b"Content-Type: application/json",
    b"X: \xe4\xb8\xad",
)
_BAD_HEADERS: Final = (
    b"Content-Length: 0",
    b"Content-Length: -1",
    b"Content-Length: 99999999999999999999999",
    b"Transfer-Encoding: gzip",
    b"Bad Header",
    b" folded",
)
_header = st.one_of(*(st.just(h) for h in _GOOD_HEADERS * 4 + _BAD_HEADERS))


def _chunked(body: bytes, sizes: list[int], huge: bool = False) -> bytes:
    if huge:  # a chunk size no int64 holds
        return b"%x\r\n%s\r\n0\r\n\r\n" % (2**200, body)
    out, k = bytearray(), 0
    for size in [*sizes, len(body)]:
        part = body[k : k + size]
        k += len(part)
        if part:
            out += b"%x\r\n%s\r\n" % (len(part), part)
    return bytes(out) + b"0\r\n\r\n"


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    """A response put together from parts, mostly well framed, sometimes not."""
    version = draw(st.sampled_from([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/2", b"http"]))
    head = b"%s %d %s\r\n" % (version, draw(_status), draw(st.sampled_from([b"OK", b"", b"X Y"])))
    head += b"".join(h + b"\r\n" for h in draw(st.lists(_header, max_size=3)))
    body = draw(_json_bodies | _numbered_bodies)
    framing = draw(st.sampled_from(["length", "length", "chunked", "close", "wrong-length"]))
    if framing == "length":
        head += b"Content-Length: %d\r\n" % len(body)
    elif framing == "wrong-length":
        head += b"Content-Length: %d\r\n" % draw(st.integers(0, 60))
    elif framing == "chunked":
        head += b"Transfer-Encoding: chunked\r\n"
        sizes = draw(st.lists(st.integers(0, 9), max_size=4))
        body = _chunked(body, sizes, huge=draw(st.integers(0, 9)) == 9)
    data = head + b"\r\n" + body
    if draw(st.integers(0, 4)) == 4:  # cut short, or something after it
        data = data[: draw(st.integers(0, len(data)))] + draw(st.binary(max_size=20))
    return data


@st.composite
def cases(draw: st.DrawFn) -> Case:
    stream = draw(responses())
    if draw(st.integers(0, 5)) == 5:
        stream = b"HTTP/1.1 100 Continue\r\n\r\n" + stream
    return Case(
        draw(st.sampled_from(METHODS)),
        stream,
        tuple(draw(st.lists(st.integers(0, 400), max_size=6))),
        eof=draw(st.booleans()),
        limit=draw(st.sampled_from(LIMITS[:1] * 4 + LIMITS[1:])),
    )


# -- the engine hooks --------------------------------------------------------------------------


def _check(case: Case) -> str:
    out = run_case(case)
    status = out.response.status if out.response else "-"
    return f"{status} {out.error.__name__ if out.error else 'ok'}"


def main(argv: list[str]) -> int:
    return engine.run(
        argv,
        corpus_prefix="qqproto-fuzz-http-",
        seed_inputs=seed_inputs,
        decode=decode_input,
        check=_check,
        structured=("structured responses", cases()),
        rows=lambda tally: tally.most_common(20),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
