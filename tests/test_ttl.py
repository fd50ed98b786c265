"""TTLMap: a bounded map whose entries expire by the ``now`` it is given."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from qqproto.errors import ConfigError
from qqproto.ttl import TTLMap

# -- expiry ------------------------------------------------------------------------------


def test_live_until_ttl_then_gone() -> None:
    m = TTLMap[str, int](ttl=10.0)
    m.set("a", 1, now=100.0)
    assert m.get("a", now=100.0) == 1
    assert m.get("a", now=109.999) == 1
    assert m.contains("a", now=109.999)
    # Exactly ttl later the entry is over.
    assert m.get("a", now=110.0) is None
    assert not m.contains("a", now=110.0)
    assert len(m) == 0


def test_expiry_follows_now_not_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_clock() -> float:
        raise AssertionError("TTLMap read a clock")

    for name in ("time", "monotonic", "perf_counter", "time_ns", "monotonic_ns"):
        monkeypatch.setattr(time, name, no_clock)
    m = TTLMap[str, str](ttl=0.001)
    m.set("k", "v", now=5.0)
    # However much real time passes, only ``now`` counts.
    assert m.get("k", now=5.0009) == "v"
    assert m.get("k", now=5.001) is None
    m.set("k", "v", now=-1e9)
    assert m.contains("k", now=-1e9)
    assert list(m.keys(now=-1e9 + 0.0001)) == ["k"]


def test_len_counts_until_expire_then_expire_reports() -> None:
    m = TTLMap[int, int](ttl=5.0)
    for i in range(4):
        m.set(i, i, now=float(i))
    assert len(m) == 4
    # Nothing was asked, so nothing was dropped yet.
    assert len(m) == 4
    assert m.expire(now=6.5) == 2  # 0 (expires 5) and 1 (expires 6)
    assert len(m) == 2
    assert m.expire(now=6.5) == 0
    assert m.expire(now=100.0) == 2
    assert len(m) == 0
    assert m.expire(now=200.0) == 0


def test_every_read_expires() -> None:
    for read in ("get", "contains", "pop", "keys"):
        m = TTLMap[str, int](ttl=1.0)
        m.set("old", 1, now=0.0)
        m.set("new", 2, now=0.5)
        if read == "get":
            m.get("other", now=1.0)
        elif read == "contains":
            m.contains("other", now=1.0)
        elif read == "pop":
            m.pop("other", now=1.0)
        else:
            m.keys(now=1.0)
        assert len(m) == 1, read


def test_set_expires_before_it_counts_size() -> None:
    m = TTLMap[str, int](ttl=1.0, max_size=2)
    m.set("a", 1, now=0.0)
    m.set("b", 2, now=0.5)
    # At 1.0 "a" is over, so "c" takes its room and "b" stays.
    m.set("c", 3, now=1.0)
    assert list(m.keys(now=1.0)) == ["b", "c"]


def test_a_new_front_expires_on_time_whatever_removed_the_old_one() -> None:
    """Calls skip the walk until the front entry is due: each change of the front counts.

    Only out-of-order ``now`` values can put an earlier expiry behind the front.
    """
    for change in ("pop", "refresh", "evict"):
        m = TTLMap[str, int](ttl=10.0, max_size=2)
        m.set("late", 1, now=100.0)  # the front, due at 110
        m.set("early", 2, now=50.0)  # due at 60
        if change == "pop":
            m.pop("late", now=50.0)
        elif change == "refresh":
            m.set("late", 1, now=100.0)
        else:
            m.set("new", 3, now=100.0)  # full: "late" goes
        assert m.expire(now=61.0) == 1, change  # "early", the front now
        assert m.get("early", now=61.0) is None


def test_nothing_due_nothing_dropped_then_all_due_at_once() -> None:
    m = TTLMap[int, int](ttl=10.0)
    for i in range(5):
        m.set(i, i, now=float(i))
    assert m.expire(now=9.99) == 0
    assert len(m) == 5
    assert m.expire(now=12.0) == 3  # set at 0, 1 and 2
    assert m.expire(now=12.5) == 0
    assert m.expire(now=100.0) == 2
    m.set(9, 9, now=100.0)  # into the empty map: due at 110
    assert m.expire(now=109.0) == 0
    assert m.expire(now=110.0) == 1


# -- add -------------------------------------------------------------------------------------


def test_add_stores_only_when_no_live_entry() -> None:
    m = TTLMap[str, int](ttl=10.0)
    assert m.add("a", 1, now=0.0)
    assert not m.add("a", 2, now=9.0)  # live: left as it was, its time included
    assert m.get("a", now=9.9) == 1
    assert m.get("a", now=10.0) is None
    assert m.add("a", 3, now=10.0)  # over: stored again, for a full ttl
    assert m.get("a", now=19.9) == 3


def test_add_expires_then_evicts_like_set() -> None:
    m = TTLMap[str, int](ttl=1.0, max_size=2)
    assert m.add("a", 1, now=0.0)
    assert m.add("b", 2, now=0.5)
    assert m.add("c", 3, now=1.0)  # "a" is over: it makes the room
    assert list(m.keys(now=1.0)) == ["b", "c"]
    assert m.add("d", 4, now=1.2)  # full: the oldest, "b", goes
    assert list(m.keys(now=1.2)) == ["c", "d"]
    assert len(m) == 2


def test_add_replaces_an_expired_entry_still_held() -> None:
    m = TTLMap[str, int](ttl=10.0)
    m.set("late", 1, now=100.0)
    m.set("early", 2, now=50.0)  # due at 60, held behind "late"
    assert m.add("early", 3, now=61.0)
    assert m.get("early", now=61.0) == 3
    assert list(m.keys(now=61.0)) == ["late", "early"]


# -- max_size ------------------------------------------------------------------------------


def test_max_size_evicts_the_oldest() -> None:
    m = TTLMap[str, int](ttl=100.0, max_size=3)
    for i, key in enumerate("abcde"):
        m.set(key, i, now=float(i))
        assert len(m) <= 3
    assert list(m.keys(now=5.0)) == ["c", "d", "e"]
    assert m.get("a", now=5.0) is None
    assert m.get("b", now=5.0) is None
    assert m.get("e", now=5.0) == 4


def test_max_size_one() -> None:
    m = TTLMap[str, int](ttl=100.0, max_size=1)
    m.set("a", 1, now=0.0)
    m.set("b", 2, now=0.0)
    assert list(m.keys(now=0.0)) == ["b"]
    m.set("b", 3, now=1.0)
    assert m.get("b", now=1.0) == 3
    assert len(m) == 1


# -- refresh ------------------------------------------------------------------------------


def test_refresh_moves_key_to_the_back() -> None:
    m = TTLMap[str, int](ttl=100.0, max_size=2)
    m.set("a", 1, now=0.0)
    m.set("b", 2, now=1.0)
    m.set("a", 10, now=2.0)
    assert list(m.keys(now=2.0)) == ["b", "a"]
    # The next eviction takes "b", which is now the oldest.
    m.set("c", 3, now=3.0)
    assert list(m.keys(now=3.0)) == ["a", "c"]
    assert m.get("a", now=3.0) == 10


def test_refresh_when_full_evicts_nothing() -> None:
    m = TTLMap[str, int](ttl=100.0, max_size=2)
    m.set("a", 1, now=0.0)
    m.set("b", 2, now=1.0)
    m.set("b", 3, now=2.0)
    assert list(m.keys(now=2.0)) == ["a", "b"]
    assert len(m) == 2


def test_refresh_gives_a_full_ttl_again() -> None:
    m = TTLMap[str, int](ttl=10.0)
    m.set("a", 1, now=0.0)
    m.set("b", 2, now=1.0)
    m.set("a", 3, now=5.0)
    # "b" (expires 11) is now in front of "a" (expires 15).
    assert m.get("a", now=12.0) == 3
    assert m.get("b", now=12.0) is None
    assert m.get("a", now=15.0) is None


# -- get, contains, pop, keys ------------------------------------------------------------


def test_get_default() -> None:
    m = TTLMap[str, int](ttl=10.0)
    assert m.get("x", now=0.0) is None
    assert m.get("x", 0.0, "missing") == "missing"
    m.set("zero", 0, now=0.0)
    # A falsy stored value is still a hit.
    assert m.get("zero", 1.0, 99) == 0
    assert m.get("zero", 10.0, 99) == 99


def test_stored_none_is_a_hit_for_contains() -> None:
    m = TTLMap[str, None](ttl=10.0)
    m.set("n", None, now=0.0)
    assert m.contains("n", now=1.0)
    assert m.get("n", 1.0, "default") is None


def test_contains() -> None:
    m = TTLMap[int, str](ttl=3.0)
    assert not m.contains(1, now=0.0)
    m.set(1, "one", now=0.0)
    assert m.contains(1, now=2.0)
    assert not m.contains(2, now=2.0)
    assert not m.contains(1, now=3.0)


def test_pop() -> None:
    m = TTLMap[str, int](ttl=10.0)
    m.set("a", 1, now=0.0)
    m.set("b", 2, now=0.0)
    assert m.pop("a", now=1.0) == 1
    assert m.pop("a", now=1.0) is None
    assert not m.contains("a", now=1.0)
    assert m.pop("missing", now=1.0) is None
    # An expired entry pops as None.
    assert m.pop("b", now=10.0) is None
    assert len(m) == 0


def test_keys_live_oldest_first_and_a_snapshot() -> None:
    m = TTLMap[int, int](ttl=10.0)
    for i in range(5):
        m.set(i, i, now=float(i))
    keys = m.keys(now=11.5)  # 0 and 1 are over
    # Changing the map while iterating is fine: keys() is a snapshot.
    out = []
    for key in keys:
        out.append(key)
        m.pop(key, now=11.5)
    assert out == [2, 3, 4]
    assert list(m.keys(now=11.5)) == []


def test_repr() -> None:
    m = TTLMap[str, int](ttl=2.5, max_size=7)
    m.set("a", 1, now=0.0)
    assert repr(m) == "TTLMap(ttl=2.5, max_size=7, held=1)"


# -- bad configuration ---------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [0.0, -1.0, math.nan, -math.inf])
def test_bad_ttl(ttl: float) -> None:
    with pytest.raises(ConfigError) as info:
        TTLMap[str, int](ttl=ttl)
    assert info.value.name == "ttl"


@pytest.mark.parametrize("max_size", [0, -1])
def test_bad_max_size(max_size: int) -> None:
    with pytest.raises(ConfigError) as info:
        TTLMap[str, int](ttl=1.0, max_size=max_size)
    assert info.value.name == "max_size"


def test_infinite_ttl_never_expires() -> None:
    m = TTLMap[str, int](ttl=math.inf, max_size=2)
    m.set("a", 1, now=0.0)
    assert m.get("a", now=1e300) == 1


# -- scale --------------------------------------------------------------------------------


def test_a_million_keys_leave_only_live_entries() -> None:
    ttl = 1000
    m = TTLMap[int, int](ttl=float(ttl))
    n = 1_000_000
    for i in range(n):
        m.set(i, i, now=float(i))
        if i % 100_000 == 0:
            assert len(m) == min(i + 1, ttl)
    # At now = n - 1, live entries are those set after n - 1 - ttl.
    assert len(m) == ttl
    assert list(m.keys(now=float(n - 1))) == list(range(n - ttl, n))
    assert m.get(n - ttl - 1, now=float(n - 1)) is None
    assert m.get(n - ttl, now=float(n - 1)) == n - ttl
    assert m.expire(now=float(n - 1 + ttl)) == ttl
    assert len(m) == 0


# -- against a reference model --------------------------------------------------------------


class Model:
    """The obvious, slow version: a list scanned in full on every call."""

    def __init__(self, ttl: float, max_size: int) -> None:
        self.ttl = ttl
        self.max_size = max_size
        self.entries: list[tuple[int, float, int]] = []  # key, expires_at, value

    def live(self, now: float) -> None:
        self.entries = [e for e in self.entries if e[1] > now]

    def set(self, key: int, value: int, now: float) -> None:
        self.live(now)
        existed = any(e[0] == key for e in self.entries)
        self.entries = [e for e in self.entries if e[0] != key]
        if not existed and len(self.entries) >= self.max_size:
            self.entries.pop(0)
        self.entries.append((key, now + self.ttl, value))

    def get(self, key: int, now: float) -> int | None:
        self.live(now)
        return next((e[2] for e in self.entries if e[0] == key), None)

    def pop(self, key: int, now: float) -> int | None:
        value = self.get(key, now)
        self.entries = [e for e in self.entries if e[0] != key]
        return value

    def add(self, key: int, value: int, now: float) -> bool:
        if self.get(key, now) is not None:
            return False
        self.set(key, value, now)
        return True

    def keys(self, now: float) -> list[int]:
        self.live(now)
        return [e[0] for e in self.entries]


keys_st = st.integers(0, 7)
steps_st = st.sampled_from([0.0, 0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 7.5])


class TTLMapMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.map = TTLMap[int, int](ttl=1.0)
        self.model = Model(1.0, 1)

    @initialize(ttl=st.sampled_from([0.5, 1.0, 2.5, 10.0]), max_size=st.integers(1, 6))
    def setup(self, ttl: float, max_size: int) -> None:
        self.map = TTLMap[int, int](ttl=ttl, max_size=max_size)
        self.model = Model(ttl, max_size)

    @rule(step=steps_st)
    def advance(self, step: float) -> None:
        self.now += step

    @rule(key=keys_st, value=st.integers(), step=steps_st)
    def set(self, key: int, value: int, step: float) -> None:
        self.now += step
        self.map.set(key, value, now=self.now)
        self.model.set(key, value, now=self.now)

    @rule(key=keys_st, value=st.integers(), step=steps_st)
    def add(self, key: int, value: int, step: float) -> None:
        self.now += step
        assert self.map.add(key, value, now=self.now) is self.model.add(key, value, self.now)

    @rule(key=keys_st)
    def get(self, key: int) -> None:
        assert self.map.get(key, now=self.now) == self.model.get(key, self.now)

    @rule(key=keys_st)
    def contains(self, key: int) -> None:
        expected = self.model.get(key, self.now) is not None
        assert self.map.contains(key, now=self.now) is expected

    @rule(key=keys_st)
    def pop(self, key: int) -> None:
        assert self.map.pop(key, now=self.now) == self.model.pop(key, self.now)

    @rule()
    def expire(self) -> None:
        before = len(self.model.entries)
        self.model.live(self.now)
        assert self.map.expire(self.now) == before - len(self.model.entries)

    @invariant()
    def same_live_keys_in_order(self) -> None:
        assert list(self.map.keys(now=self.now)) == self.model.keys(self.now)
        assert len(self.map) == len(self.model.entries) <= self.model.max_size


TTLMapMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_ttl_map_matches_the_model = TTLMapMachine.TestCase


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(st.tuples(keys_st, st.integers(0, 3), steps_st), max_size=60),
    ttl=st.sampled_from([0.5, 1.0, 3.0]),
    max_size=st.integers(1, 5),
)
def test_property_never_stale_never_over_size(
    ops: list[tuple[int, int, float]], ttl: float, max_size: int
) -> None:
    m = TTLMap[int, float](ttl=ttl, max_size=max_size)
    now = 0.0
    for key, action, step in ops:
        now += step
        if action == 0:
            m.set(key, now, now=now)  # the value is when it was set
        elif action == 1:
            stored = m.get(key, now=now)
            assert stored is None or now - stored < ttl
        elif action == 2:
            popped = m.pop(key, now=now)
            assert popped is None or now - popped < ttl
            assert not m.contains(key, now=now)
        else:
            for k in m.keys(now=now):
                set_at = m.get(k, now=now)
                assert set_at is not None and now - set_at < ttl
        assert len(m) <= max_size


def test_an_entry_set_with_an_earlier_now_still_expires_on_time() -> None:
    """Out-of-order `now` values must never hand back an expired entry."""
    m: TTLMap[str, int] = TTLMap(ttl=10.0)
    m.set("late", 1, now=100.0)  # expires at 110
    m.set("early", 2, now=50.0)  # expires at 60, but sits behind "late"
    assert m.get("early", now=61.0) is None
    assert not m.contains("early", now=61.0)
    assert list(m.keys(now=61.0)) == ["late"]
    assert m.pop("early", now=61.0) is None
    assert m.get("late", now=61.0) == 1


@pytest.mark.parametrize("read", ["get", "contains", "pop", "keys", "add"])
def test_an_entry_held_behind_a_live_one_is_gone_at_the_instant_it_expires(read: str) -> None:
    """The walk stops at the live front; each read checks the instant itself."""
    m: TTLMap[str, int] = TTLMap(ttl=10.0)
    m.set("late", 1, now=100.0)
    m.set("early", 2, now=50.0)  # due at exactly 60.0
    now = 60.0
    if read == "get":
        assert m.get("early", now) is None and m.get("early", now, -1) == -1
    elif read == "contains":
        assert not m.contains("early", now)
    elif read == "pop":
        assert m.pop("early", now) is None
    elif read == "keys":
        assert list(m.keys(now)) == ["late"]
    else:
        assert m.add("early", 3, now)  # expired: replaced, not taken for a live entry
        assert m.get("early", now) == 3


# -- against the walk without a cached due time, now in any order -----------------------------


class Walking:
    """TTLMap as it was before it kept the front's due time: a walk on every call."""

    def __init__(self, ttl: float, max_size: int) -> None:
        self.ttl, self.max_size = ttl, max_size
        self.entries: OrderedDict[int, tuple[float, int]] = OrderedDict()

    def expire(self, now: float) -> int:
        dropped = 0
        while self.entries:
            key, (expires_at, _) = next(iter(self.entries.items()))
            if expires_at > now:
                break
            del self.entries[key]
            dropped += 1
        return dropped

    def set(self, key: int, value: int, now: float) -> None:
        self.expire(now)
        if key in self.entries:
            del self.entries[key]
        elif len(self.entries) >= self.max_size:
            self.entries.popitem(last=False)
        self.entries[key] = (now + self.ttl, value)

    def add(self, key: int, value: int, now: float) -> bool:
        if self.get(key, now) is not None:
            return False
        self.set(key, value, now)
        return True

    def get(self, key: int, now: float) -> int | None:
        self.expire(now)
        entry = self.entries.get(key)
        return None if entry is None or entry[0] <= now else entry[1]

    def pop(self, key: int, now: float) -> int | None:
        self.expire(now)
        entry = self.entries.pop(key, None)
        return None if entry is None or entry[0] <= now else entry[1]

    def keys(self, now: float) -> list[int]:
        self.expire(now)
        return [key for key, (expires_at, _) in self.entries.items() if expires_at > now]


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["set", "add", "get", "contains", "pop", "expire", "keys"]),
            keys_st,
            st.floats(0.0, 20.0).map(lambda x: round(x, 1)),
        ),
        max_size=60,
    ),
    ttl=st.sampled_from([0.5, 1.0, 3.0, math.inf]),
    max_size=st.integers(1, 5),
)
def test_the_cached_due_time_changes_nothing_even_when_now_goes_back(
    ops: list[tuple[str, int, float]], ttl: float, max_size: int
) -> None:
    """Every answer, and what the map holds, are those of a walk on every call."""
    m, ref = TTLMap[int, int](ttl=ttl, max_size=max_size), Walking(ttl, max_size)
    for i, (op, key, now) in enumerate(ops):
        if op == "set":
            m.set(key, i, now=now)
            ref.set(key, i, now)
        elif op == "add":
            assert m.add(key, i, now=now) is ref.add(key, i, now)
        elif op == "get":
            assert m.get(key, now=now) == ref.get(key, now)
        elif op == "contains":
            assert m.contains(key, now=now) is (ref.get(key, now) is not None)
        elif op == "pop":
            assert m.pop(key, now=now) == ref.pop(key, now)
        elif op == "expire":
            assert m.expire(now) == ref.expire(now)
        else:
            assert list(m.keys(now=now)) == ref.keys(now)
        assert len(m) == len(ref.entries) <= max_size
