"""Backoff: capped exponential waits with bounded jitter, from an injected RNG."""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qqproto.backoff import Backoff
from qqproto.errors import ConfigError


class FixedRandom(random.Random):
    """An RNG whose ``random()`` returns the given values in turn, then repeats the last."""

    def __init__(self, *values: float) -> None:
        super().__init__(0)
        self.values = list(values)
        self.calls = 0

    def random(self) -> float:
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return value


def delays(backoff: Backoff, n: int) -> list[float]:
    return [backoff.next_delay() for _ in range(n)]


def raw_wait(base: float, factor: float, cap: float, n: int) -> float:
    """base * factor ** (n - 1), capped, computed without overflow."""
    if math.log(base) + (n - 1) * math.log(factor) >= math.log(cap):
        return cap
    return min(base * factor ** (n - 1), cap)


# -- determinism ----------------------------------------------------------------------


def test_same_seed_same_delays() -> None:
    a = Backoff(random.Random(42), max_attempts=100)
    b = Backoff(random.Random(42), max_attempts=100)
    assert delays(a, 40) == delays(b, 40)


def test_different_seeds_different_delays() -> None:
    a = delays(Backoff(random.Random(1)), 5)
    b = delays(Backoff(random.Random(2)), 5)
    assert a != b


def test_documented_example() -> None:
    b = Backoff(random.Random(1), base=1.0, cap=8.0)
    assert [round(b.next_delay(), 2) for _ in range(5)] == [0.82, 2.35, 4.53, 7.02, 7.98]


def test_one_random_draw_per_delay() -> None:
    rng = FixedRandom(0.5)
    backoff = Backoff(rng)
    delays(backoff, 7)
    assert rng.calls == 7


def test_the_rng_is_the_only_source_of_randomness() -> None:
    # The module-level RNG is not consulted: reseeding it changes nothing.
    random.seed(1)
    a = delays(Backoff(random.Random(7)), 10)
    random.seed(2)
    b = delays(Backoff(random.Random(7)), 10)
    assert a == b


# -- the formula ------------------------------------------------------------------------


def test_no_jitter_is_pure_exponential_then_cap() -> None:
    # random() == 0.5 means a spread of exactly 1.
    backoff = Backoff(FixedRandom(0.5), base=1.0, factor=2.0, cap=60.0, max_attempts=100)
    assert delays(backoff, 9) == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_jitter_zero_ignores_the_rng() -> None:
    backoff = Backoff(random.Random(3), base=0.5, factor=3.0, cap=100.0, jitter=0.0)
    assert delays(backoff, 6) == [0.5, 1.5, 4.5, 13.5, 40.5, 100.0]


def test_lowest_draw_shrinks_by_jitter() -> None:
    backoff = Backoff(FixedRandom(0.0), base=1.0, factor=2.0, cap=60.0, jitter=0.25)
    assert delays(backoff, 5) == [0.75, 1.5, 3.0, 6.0, 12.0]


def test_highest_draw_stretches_by_jitter_but_not_past_cap() -> None:
    top = math.nextafter(1.0, 0.0)
    backoff = Backoff(FixedRandom(top), base=1.0, factor=2.0, cap=60.0, jitter=0.25)
    got = delays(backoff, 8)
    assert got[:6] == pytest.approx([1.25, 2.5, 5.0, 10.0, 20.0, 40.0])
    assert all(d <= 1.25 * 2**i for i, d in enumerate(got[:6]))
    assert got[6:] == [60.0, 60.0]  # 64 * 1.25 = 80 and 128 * 1.25 = 160, capped


def test_a_later_wait_never_undercuts_an_earlier_one() -> None:
    # factor 1: the raw wait stays 1; a high draw then a low one would give
    # 1.2 then 0.8, and the rule keeps 1.2.
    backoff = Backoff(FixedRandom(0.9, 0.1, 0.95), base=1.0, factor=1.0, cap=10.0, jitter=0.25)
    first, second, third = delays(backoff, 3)
    assert first == pytest.approx(1.2)
    assert second == first
    assert third == pytest.approx(1.225)


def test_small_factor_follows_the_formula_for_long_outages() -> None:
    # The n-th wait is base * factor ** (n - 1) for every n, not just the first 65.
    backoff = Backoff(FixedRandom(0.5), base=1.0, factor=1.01, cap=60.0, max_attempts=1000)
    got = delays(backoff, 450)
    for n in (1, 65, 66, 100, 200, 400, 450):
        assert got[n - 1] == pytest.approx(min(1.01 ** (n - 1), 60.0))
    # 1.01 ** 411 > 60: the cap is reached, late but reached.
    assert got[410] < 60.0
    assert got[-1] == 60.0


@pytest.mark.parametrize("factor", [1e3, 1e6, 1e100, math.inf])
def test_large_factor_does_not_overflow(factor: float) -> None:
    backoff = Backoff(FixedRandom(0.5), base=1.0, factor=factor, cap=300.0, max_attempts=200)
    got = delays(backoff, 200)
    assert got[0] == 1.0
    assert got[-1] == 300.0
    assert all(0 < d <= 300.0 for d in got)


def test_very_long_outage_stays_at_cap() -> None:
    backoff = Backoff(random.Random(0), max_attempts=10**6)
    got = delays(backoff, 5000)
    assert got[-1] == 60.0
    assert max(got) == 60.0
    assert backoff.failures == 5000


def test_infinite_cap() -> None:
    backoff = Backoff(FixedRandom(0.5), base=1.0, factor=2.0, cap=math.inf, max_attempts=2000)
    got = delays(backoff, 2000)
    assert got[10] == 1024.0
    assert got == sorted(got)
    assert got[-1] == math.inf


# -- the properties with the defaults ---------------------------------------------------


@pytest.mark.parametrize("seed", range(50))
def test_defaults_non_decreasing_bounded_strictly_growing_before_cap(seed: int) -> None:
    backoff = Backoff(random.Random(seed), max_attempts=40)
    got = delays(backoff, 40)
    assert all(0 <= d <= backoff.cap for d in got)
    assert all(a <= b for a, b in itertools.pairwise(got))
    for n in range(2, 41):
        if 2 ** (n - 1) <= backoff.cap:
            # raw doubles and the jitter is ±25 %: 0.75 * 2x > 1.25 * x.
            assert got[n - 1] > got[n - 2], (seed, n)
    # From 2**6 = 64 > 60 on, the raw wait is the cap; the jittered one gets there.
    assert got[-1] == pytest.approx(60.0, rel=0.25)
    assert got[-1] >= 45.0


@pytest.mark.parametrize("seed", range(50))
def test_defaults_jitter_band_before_cap(seed: int) -> None:
    backoff = Backoff(random.Random(seed))
    for n in range(1, 7):  # 1, 2, ..., 32: all under the cap of 60
        raw = 2.0 ** (n - 1)
        d = backoff.next_delay()
        assert 0.75 * raw <= d <= 1.25 * raw, (seed, n, d)


def test_jitter_actually_spreads_clients() -> None:
    firsts = {Backoff(random.Random(seed)).next_delay() for seed in range(200)}
    assert len(firsts) == 200
    assert min(firsts) < 0.8
    assert max(firsts) > 1.2


# -- reset and exhaustion -------------------------------------------------------------


def test_reset_starts_over() -> None:
    backoff = Backoff(FixedRandom(0.5), base=2.0, cap=30.0)
    assert delays(backoff, 6) == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff.failures == 6
    backoff.reset()
    assert backoff.failures == 0
    # The remembered last wait is forgotten too: back to base, not to the cap.
    assert delays(backoff, 2) == [2.0, 4.0]


def test_exhausted_after_max_attempts() -> None:
    backoff = Backoff(random.Random(0), max_attempts=3)
    assert not backoff.exhausted
    backoff.next_delay()
    backoff.next_delay()
    assert not backoff.exhausted
    backoff.next_delay()
    assert backoff.exhausted
    assert backoff.failures == 3
    backoff.next_delay()  # counting goes on, it stays exhausted
    assert backoff.exhausted
    backoff.reset()
    assert not backoff.exhausted


def test_exhausted_with_one_attempt() -> None:
    backoff = Backoff(random.Random(0), max_attempts=1)
    assert not backoff.exhausted
    backoff.next_delay()
    assert backoff.exhausted


def test_defaults_and_repr() -> None:
    backoff = Backoff(random.Random(0))
    assert (backoff.base, backoff.factor, backoff.cap, backoff.jitter, backoff.max_attempts) == (
        1.0,
        2.0,
        60.0,
        0.25,
        30,
    )
    backoff.next_delay()
    assert repr(backoff) == ("Backoff(failures=1/30, base=1.0, factor=2.0, cap=60.0, jitter=0.25)")


# -- bad parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"base": 0.0}, "backoff base"),
        ({"base": -1.0}, "backoff base"),
        ({"base": math.nan}, "backoff base"),
        ({"factor": 0.99}, "backoff factor"),
        ({"factor": 0.0}, "backoff factor"),
        ({"factor": math.nan}, "backoff factor"),
        ({"cap": 0.5}, "backoff cap"),
        ({"base": 10.0, "cap": 9.99}, "backoff cap"),
        ({"cap": math.nan}, "backoff cap"),
        ({"jitter": -0.01}, "backoff jitter"),
        ({"jitter": 1.0}, "backoff jitter"),
        ({"jitter": math.nan}, "backoff jitter"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -5}, "max_attempts"),
    ],
)
def test_bad_parameters(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ConfigError) as info:
        Backoff(random.Random(0), **kwargs)  # type: ignore[arg-type]
    assert info.value.name == name
    assert isinstance(info.value, ValueError)


def test_edge_parameters_are_accepted() -> None:
    backoff = Backoff(random.Random(0), base=5.0, factor=1.0, cap=5.0, jitter=0.0, max_attempts=1)
    assert backoff.next_delay() == 5.0


# -- properties over seeds and parameters ---------------------------------------------------

params = st.fixed_dictionaries(
    {
        "base": st.floats(1e-3, 100.0),
        "factor": st.floats(1.0, 1e6),
        "cap_over_base": st.floats(1.0, 1e4),
        "jitter": st.floats(0.0, 0.99),
        "seed": st.integers(0, 2**32),
        "n": st.integers(1, 150),
    }
)


@settings(max_examples=300, deadline=None)
@given(p=params)
def test_property_bounds_band_and_order(p: dict[str, float]) -> None:
    base, factor, jitter = p["base"], p["factor"], p["jitter"]
    cap = base * p["cap_over_base"]
    n = int(p["n"])
    backoff = Backoff(
        random.Random(int(p["seed"])),
        base=base,
        factor=factor,
        cap=cap,
        jitter=jitter,
        max_attempts=n,
    )
    got = delays(backoff, n)
    assert backoff.failures == n
    assert backoff.exhausted
    tol = 1e-9
    previous = 0.0
    for i, d in enumerate(got, start=1):
        assert 0.0 <= d <= cap
        assert d >= previous
        raw = raw_wait(base, factor, cap, i)
        assert d >= raw * (1 - jitter) * (1 - tol)
        assert d <= min(cap, raw * (1 + jitter)) * (1 + tol)
        previous = d


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**64), n=st.integers(1, 80))
def test_property_same_seed_same_delays_and_reset_replays(seed: int, n: int) -> None:
    a = Backoff(random.Random(seed), max_attempts=n)
    b = Backoff(random.Random(seed), max_attempts=n)
    first = delays(a, n)
    assert first == delays(b, n)
    # After reset, the same RNG state gives the same waits as a fresh backoff.
    a.reset()
    b.reset()
    assert delays(a, n) == delays(b, n)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**64))
def test_property_defaults_strictly_grow_until_raw_reaches_cap(seed: int) -> None:
    got = delays(Backoff(random.Random(seed)), 30)
    # raw = 1, 2, 4, 8, 16, 32 are under the cap of 60.
    assert all(a < b for a, b in itertools.pairwise(got[:7]))
    assert all(a <= b for a, b in itertools.pairwise(got))
    assert all(0 < d <= 60.0 for d in got)


def test_without_a_cap_on_attempts_it_never_gives_up_and_waits_stay_at_the_cap() -> None:
    b = Backoff(random.Random(3), base=1.0, cap=30.0, max_attempts=None)
    waits = delays(b, 200)
    assert not b.exhausted and b.failures == 200
    assert all(w <= 30.0 for w in waits) and waits[-1] == pytest.approx(30.0, rel=0.25)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3"])
def test_a_cap_on_attempts_is_none_or_a_positive_integer(bad: object) -> None:
    with pytest.raises(ConfigError, match="max_attempts"):
        Backoff(random.Random(0), max_attempts=bad)  # type: ignore[arg-type]
