"""Run one fuzz target: under atheris (libFuzzer) when it can, else under Hypothesis.

A target gives the pieces specific to it (how raw bytes become a case, how a
case runs, its seeds, its structured strategy and how its tally reads);
:func:`run` picks the engine and drives it. Any exception is a crash: atheris
writes the input out and exits with libFuzzer's error code (77); Hypothesis
shrinks it and the exception propagates.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

C = TypeVar("C")


def reads(stream: bytes, cuts: tuple[int, ...]) -> list[bytes]:
    """``stream`` cut into reads of the sizes ``cuts`` gives (at least a byte
    each), the rest as the last one."""
    pieces, at = [], 0
    for cut in cuts:
        if at >= len(stream):
            break
        pieces.append(stream[at : at + max(cut, 1)])
        at += max(cut, 1)
    return [*pieces, stream[at:]] if at < len(stream) else pieces


def spliced(draw: st.DrawFn, parts: list[bytes]) -> tuple[bytes, tuple[int, ...]]:
    """Seeds joined into one stream, sometimes with a byte changed, and the
    read sizes to cut it into (:func:`reads`)."""
    stream = b"".join(parts)
    if draw(st.booleans()):
        at = draw(st.integers(0, len(stream) - 1))
        stream = stream[:at] + bytes([draw(st.integers(0, 255))]) + stream[at + 1 :]
    return stream, tuple(draw(st.lists(st.integers(1, 64), max_size=6)))


def run(
    argv: list[str],
    *,
    corpus_prefix: str,
    seed_inputs: Callable[[], list[bytes]],
    decode: Callable[[bytes], C],
    check: Callable[[C], str],
    structured: tuple[str, st.SearchStrategy[C]],
    rows: Callable[[Counter[str]], Iterable[tuple[str, int]]],
    heading: str = "",
) -> int:
    """Fuzz with atheris if importable and ``FUZZ_ENGINE`` is not ``hypothesis``,
    else with Hypothesis for ``FUZZ_EXAMPLES`` examples (default 20000) per target.

    ``check`` runs one case and returns its tally key; ``rows`` picks the
    tally's lines to print (under ``heading``, if any) after a Hypothesis run.
    """
    try:
        atheris = importlib.import_module("atheris")
    except ImportError:
        atheris = None
    if atheris is not None and os.environ.get("FUZZ_ENGINE") != "hypothesis":
        _run_atheris(atheris, argv, corpus_prefix, seed_inputs, lambda data: check(decode(data)))
    else:
        examples = int(os.environ.get("FUZZ_EXAMPLES", "20000"))
        tally = _run_hypothesis(examples, decode, check, structured)
        if heading:
            print(heading)
        for key, count in rows(tally):
            print(f"  {count:7d}  {key}")
    return 0


def _run_hypothesis(
    examples: int,
    decode: Callable[[bytes], C],
    check: Callable[[C], str],
    structured: tuple[str, st.SearchStrategy[C]],
) -> Counter[str]:
    print(f"the Hypothesis fuzz targets (no atheris), {examples} examples each")
    config = settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    tally: Counter[str] = Counter()
    structured_name, cases = structured

    @config
    @given(st.binary(max_size=600))
    def raw_target(data: bytes) -> None:
        tally[check(decode(data))] += 1

    @config
    @given(cases)
    def structured_target(case: C) -> None:
        tally[check(case)] += 1

    start = time.perf_counter()
    for name, target in (("raw bytes", raw_target), (structured_name, structured_target)):
        before, started = tally.total(), time.perf_counter()
        target()
        took = time.perf_counter() - started
        print(f"{name}: {tally.total() - before} inputs in {took:.1f} s", flush=True)
    print(f"total: {tally.total()} inputs in {time.perf_counter() - start:.1f} s, no crash")
    return tally


def _run_atheris(
    atheris: Any,
    argv: list[str],
    corpus_prefix: str,
    seed_inputs: Callable[[], list[bytes]],
    one_input: Callable[[bytes], object],
) -> None:
    args = list(argv)
    if all(a.startswith("-") for a in args[1:]):  # no corpus directory: seed one
        corpus = tempfile.mkdtemp(prefix=corpus_prefix)
        for k, seed in enumerate(seed_inputs()):
            Path(corpus, f"seed-{k:03d}").write_bytes(seed)
        args.append(corpus)
        print(f"seed corpus: {corpus}", file=sys.stderr)
    atheris.instrument_all()
    atheris.Setup(args, one_input)
    atheris.Fuzz()
