"""Numbers no peer should send, as JSON text, for every fuzz target.

A peer's number can be past int64 (2**63), past what a float holds (309
digits and more, ``1e999``), or past what Python's ``int`` reads at all (4301
digits and more: ``json.loads`` and msgspec both refuse it). Each of these
once crashed an object that did arithmetic on it, formatted it, or encoded
it again. ``json.dumps`` can write none of the last kind, nor ``1e999``, so
payloads hold :data:`NUMBER` where such a number goes, and :func:`splice`
writes the JSON text with a drawn number in each place.
"""

from __future__ import annotations

import json
from typing import Any, Final

from hypothesis import strategies as st

__all__ = ["NUMBER", "NUMBER_JSON", "number_texts", "splice", "spliced"]

#: Where a payload wants a number drawn from :data:`number_texts`.
NUMBER: Final = "\x00number\x00"
#: :data:`NUMBER` in JSON text (its control characters are always escaped).
NUMBER_JSON: Final = json.dumps(NUMBER)

#: JSON number texts at and past every limit a number of a peer meets.
number_texts: st.SearchStrategy[str] = st.one_of(
    st.integers(2**63 - 2, 2**63 + 2).map(str),  # int64's edge
    st.integers(2**63, 2**200).map(str),
    st.integers(-(2**200), -(2**63) - 1).map(str),
    st.integers(300, 320).map(lambda n: "1" + "0" * n),  # a float's edge (1.8e308)
    st.integers(4290, 4310).map(lambda n: "9" * n),  # int()'s edge (4300 digits)
    st.integers(4301, 20_000).map(lambda n: "-" * (n % 2) + "7" * n),
    st.sampled_from(["1e999", "-1e999", "1e-999", "1.7976931348623157e308", "45000.0", "-0"]),
)


def splice(text: str, numbers: list[str]) -> str:
    """``text`` (JSON) with each :data:`NUMBER` in turn replaced by a number of ``numbers``."""
    parts = text.split(NUMBER_JSON)
    return parts[0] + "".join(n + part for n, part in zip(numbers, parts[1:], strict=True))


@st.composite
def spliced(draw: st.DrawFn, payloads: st.SearchStrategy[Any], *, as_bytes: bool = True) -> Any:
    """JSON of a drawn payload, every :data:`NUMBER` in it a drawn number text."""
    text = json.dumps(draw(payloads), separators=(",", ":"), ensure_ascii=False)
    numbers = [draw(number_texts) for _ in range(text.count(NUMBER_JSON))]
    out = splice(text, numbers)
    return out.encode("utf-8", "surrogatepass") if as_bytes else out
