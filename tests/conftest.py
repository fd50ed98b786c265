"""Hypothesis profiles, and the loopback platform the driver suites share.

Profiles: ``dev`` by default, ``ci`` when CI=true, ``soak`` on request.
HYPOTHESIS_PROFILE names a profile outright and wins over CI. ``make soak``
runs the gateway state machine with ``HYPOTHESIS_PROFILE=soak``.

Fixtures: ``loop`` (an event loop in a thread of its own), and on it ``gw``
(the ``websockets`` gateway) and ``rest`` (the h11 REST server) of
tests/e2e_servers.py, each started for the test that asks and stopped after;
``redis_server`` (one real redis-server for the session, tests/redis_server.py)
and ``store_maker``, which makes the shared store of one app, once in memory
and once in that Redis, for the suites both implementations must pass.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from qqproto.adapters.coordination import Coordination

from .e2e_servers import FakeGateway, FakeRest, LoopThread
from .redis_server import RedisServer

settings.register_profile(
    "dev",
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    # One example is a whole gateway schedule: slow next to a unit test.
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", settings.get_profile("dev"), max_examples=2000, print_blob=True)
settings.register_profile("soak", settings.get_profile("ci"), max_examples=100_000)


def _profile() -> str:
    if chosen := os.environ.get("HYPOTHESIS_PROFILE"):
        return chosen
    return "ci" if os.environ.get("CI", "").strip().lower() in ("true", "1") else "dev"


settings.load_profile(_profile())

#: The per-test hang guard (pytest-timeout) for each profile. A state machine
#: runs ten times the examples in ci as in dev: on a slow or busy machine
#: that is minutes, not a hang, and a timeout inside Hypothesis's run reads
#: as a flaky failure rather than as the hang it guards against.
HANG_GUARD = {"dev": None, "ci": 900.0, "soak": 7200.0}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    guard = HANG_GUARD.get(_profile())
    if guard is not None:
        for item in items:
            item.add_marker(pytest.mark.timeout(guard))


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


@pytest.fixture
def gw(loop: LoopThread) -> Iterator[FakeGateway]:
    gateway = FakeGateway()
    loop.run(gateway.__aenter__())
    yield gateway
    loop.run(gateway.__aexit__())


@pytest.fixture
def rest(loop: LoopThread, gw: FakeGateway) -> Iterator[FakeRest]:
    server = FakeRest(gw.url)
    loop.run(server.__aenter__())
    yield server
    loop.run(server.__aexit__())


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


_apps = itertools.count(1)


@pytest.fixture(params=["memory", "redis"])
def store_maker(request: pytest.FixtureRequest) -> Callable[[], Coordination]:
    """A maker of one app's shared store; under Redis a fresh app id (its own
    keys) for each test, so tests sharing the server never see each other's."""
    if request.param == "memory":
        return Coordination.in_memory
    from qqproto.adapters.redis import connect

    server: RedisServer = request.getfixturevalue("redis_server")
    app = f"test-{next(_apps)}-{time.monotonic_ns()}"
    return lambda: connect(server.url, app)
