"""qqproto.link: when an outbound link connects again, and what a failed attempt says."""

from __future__ import annotations

import random

from qqproto.link import SHORT_SESSION, SHORT_SESSIONS_TOLERATED, ReconnectPolicy, Retry


def policy(max_attempts: int = 3) -> ReconnectPolicy:
    return ReconnectPolicy(random.Random(0), base=1.0, cap=8.0, max_attempts=max_attempts)


def test_failed_attempts_back_off_until_the_budget_is_spent() -> None:
    p = policy(max_attempts=3)
    waits = []
    while not p.spent:
        waits.append(p.attempt_failed())
    assert len(waits) == 3 and waits == sorted(waits)
    assert 0.75 <= waits[0] <= 1.25 and 1.5 <= waits[1] <= 2.5


def test_a_retry_says_which_attempt_of_how_many_failed() -> None:
    p = policy(max_attempts=30)
    p.attempt_failed()
    wait = p.attempt_failed()
    assert p.retry(wait, "connection refused") == Retry(
        2, 30, wait, "connection refused", "gateway"
    )
    assert str(Retry(2, None, 2.06, "x", "token")) == "token attempt 2 failed (x); next in 2.1 s"


def test_a_good_connection_forgets_the_failed_attempts() -> None:
    p = policy(max_attempts=2)
    p.attempt_failed()
    p.connected(now=100.0)
    p.attempt_failed()
    assert not p.spent and p.retry(1.0, "x").attempt == 1


def test_good_connections_that_die_young_back_off_after_a_few() -> None:
    p, now = policy(), 0.0
    waits = []
    for _ in range(SHORT_SESSIONS_TOLERATED + 2):
        p.connected(now)
        now += SHORT_SESSION / 2  # lost young
        waits.append(p.good_one_ended(now))
    assert waits[:SHORT_SESSIONS_TOLERATED] == [0.0] * SHORT_SESSIONS_TOLERATED
    assert 0 < waits[-2] <= waits[-1]
    assert not p.spent  # they were good connections: no budget spent
    # One that lives long enough resets the count.
    p.connected(now)
    now += SHORT_SESSION
    assert p.good_one_ended(now) == 0.0
    p.connected(now)
    assert p.good_one_ended(now + 1.0) == 0.0


def test_a_connection_that_lived_exactly_the_short_session_time_was_not_short() -> None:
    p = ReconnectPolicy(random.Random(0), tolerated=0)  # every short one backs off
    p.connected(now=0.0)
    assert p.good_one_ended(now=SHORT_SESSION) == 0.0
    p.connected(now=100.0)
    assert p.good_one_ended(now=100.0 + SHORT_SESSION - 0.001) > 0.0


def test_ended_counts_a_failed_attempt_or_a_good_connection_and_keeps_the_pause() -> None:
    p = policy(max_attempts=2)
    first = p.ended(0.0, good=False)
    assert 0.75 <= first <= 1.25 and p.retry(first, "x").attempt == 1
    assert p.ended(0.0, good=False, pause=60.0) == 60.0  # what the peer asked, if longer
    assert p.spent
    p.connected(10.0)
    assert p.ended(10.0 + SHORT_SESSION, good=True) == 0.0  # it lived: go again at once
    assert p.ended(11.0 + SHORT_SESSION, good=True, pause=5.0) == 5.0
    assert not p.spent
