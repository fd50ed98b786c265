"""The errors: every one says what was expected and what came, whatever came."""

from __future__ import annotations

import pytest

from qqproto.errors import ConfigError, LocalProtocolError, RemoteProtocolError


def test_an_error_names_what_was_expected_and_what_came() -> None:
    error = RemoteProtocolError("bad seq", expected="an integer", received="x")
    assert str(error) == "bad seq: expected an integer, got 'x'"
    assert (error.expected, error.received) == ("an integer", "x")


def test_a_long_value_is_cut_and_says_how_long_it_was() -> None:
    error = LocalProtocolError("bad", expected="short", received="x" * 1000)
    assert str(error).endswith("... (1002 chars)") and len(str(error)) < 250


@pytest.mark.parametrize("error_type", [RemoteProtocolError, LocalProtocolError])
def test_a_value_with_no_repr_is_still_described(error_type: type[RemoteProtocolError]) -> None:
    # Past 4300 digits an int has no repr (sys.get_int_max_str_digits).
    received = {"heartbeat_interval": 10**5000}
    error = error_type("bad Hello", expected="an interval", received=received)
    assert str(error).startswith(
        "bad Hello: expected an interval, got <dict with no repr: Exceeds the limit (4300"
    )
    assert len(str(error)) < 250
    assert error.received is received  # kept whole for code that looks


def test_a_config_error_describes_its_value_the_same_way() -> None:
    assert "got <int with no repr: Exceeds the limit" in str(ConfigError("seq", "an int", 10**5000))


def test_a_structure_nested_too_deeply_is_described() -> None:
    nested: list[object] = []
    for _ in range(100_000):
        nested = [nested]
    assert "got <list with no repr: maximum recursion depth" in str(
        RemoteProtocolError("deep", expected="shallow", received=nested)
    )
