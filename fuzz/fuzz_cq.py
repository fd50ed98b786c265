"""The fuzz target for CQ codes: ``qqproto.onebot.cq``.

Run it by hand::

    python fuzz/fuzz_cq.py [libFuzzer options] [corpus dirs]

With atheris importable this is a coverage-guided libFuzzer run over raw
inputs (the bytes as UTF-8, invalid sequences replaced); without it (or with
``FUZZ_ENGINE=hypothesis``) Hypothesis runs strings spliced from CQ-shaped
pieces for ``FUZZ_EXAMPLES`` examples (default 20000).

:func:`run_case` holds the codec to its promises:

- :func:`~qqproto.onebot.cq.parse` never raises and never loses input:
  text with no code in it is the text, unescaped; what it reads, written
  back with :func:`~qqproto.onebot.cq.format`, reads back the same;
- no text segment is empty, and no two are adjacent;
- every code read has a type and keys :func:`~qqproto.onebot.cq.format` can
  carry, and string values.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Final

if __name__ == "__main__":  # run as a script: import the fuzz package from the repo root
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from hypothesis import strategies as st

from fuzz import engine
from qqproto.onebot import cq
from qqproto.onebot.segments import Segment

#: Pieces real messages and broken ones are made of.
PIECES: Final = (
    "[CQ:face,id=178]",
    "[CQ:at,qq=123456]",
    "[CQ:at,qq=all]",
    "[CQ:image,file=https://x/a.jpg?a=1&amp;b=2,url=u]",
    "[CQ:reply,id=-2147483648]",
    "[CQ:text,text=hi]",
    "[CQ:text,text=a&#44;b,x=1]",
    "[CQ:shake,]",
    "[CQ:json,data={&#91;&#93;&#44;}]",
    "[CQ:",
    "]",
    "[",
    ",",
    "=",
    "&amp;",
    "&#91;",
    "&#93;",
    "&#44;",
    "&",
    "text ",
    "键",
    "\n",
    "\ud800",
)


class ContractViolation(AssertionError):
    """The codec broke a promise of its docstrings."""


def seed_inputs() -> list[bytes]:
    return [piece.encode("utf-8", "surrogatepass") for piece in PIECES] + [
        "".join(PIECES).encode("utf-8", "surrogatepass")
    ]


def decode_input(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def run_case(message: str) -> str:
    """Read one string; the outcome's tally key."""
    segments = cq.parse(message)
    plain = [Segment.text(cq.unescape(message))] if message else []
    if "[CQ:" not in message and segments != plain:
        raise ContractViolation(f"text without codes read as {segments!r}")
    kinds = [segment.type for segment in segments]
    for at, segment in enumerate(segments):
        if segment.type == "text" and segment.data.keys() == {"text"}:
            if not segment.data["text"]:
                raise ContractViolation(f"an empty text segment in {segments!r}")
            nxt = segments[at + 1] if at + 1 < len(segments) else None
            if nxt is not None and nxt.type == "text" and nxt.data.keys() == {"text"}:
                raise ContractViolation(f"adjacent text segments in {segments!r}")
        elif not all(isinstance(value, str) for value in segment.data.values()):
            raise ContractViolation(f"a value that is no string in {segment!r}")
    written = cq.format(segments)  # raises if a type or key could not be carried
    if cq.parse(written) != segments:
        raise ContractViolation(f"{message!r} -> {segments!r} -> {written!r} reads otherwise")
    codes = sum(kind != "text" for kind in kinds)
    return f"{min(codes, 3)} codes" if codes else "text only"


def strings() -> st.SearchStrategy[str]:
    """Pieces spliced, with arbitrary text between them."""
    piece = st.one_of(st.sampled_from(PIECES), st.text(max_size=6))
    return st.lists(piece, max_size=12).map("".join)


def main(argv: list[str]) -> int:
    return engine.run(
        argv,
        corpus_prefix="qqproto-fuzz-cq-",
        seed_inputs=seed_inputs,
        decode=decode_input,
        check=run_case,
        structured=("spliced CQ strings", strings()),
        rows=lambda tally: Counter(tally).most_common(10),
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
