"""TokenManager: fetching, refreshing and giving up, on a fake clock."""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

import pytest

from qqproto.actions import HttpRequest
from qqproto.errors import ConfigError, LocalProtocolError
from qqproto.http import HttpResponse
from qqproto.qq.auth import (
    DEFAULT_TOKEN_URL,
    FALLBACK_TOKEN_LIFE,
    MAX_TOKEN_LIFE,
    SANDBOX_TOKEN_URL,
    AuthConfig,
    TokenError,
    TokenManager,
)

SECRET = "naOC0ocQE3shWLAfffVLB1rhYPG7"


def manager(**kwargs: Any) -> TokenManager:
    return TokenManager(AuthConfig("102000000", SECRET, **kwargs), random.Random(1))


def ok(token: str = "T1", expires_in: object = "7200") -> HttpResponse:
    return HttpResponse(
        200, (), json.dumps({"access_token": token, "expires_in": expires_in}).encode()
    )


def body(status: int, payload: object) -> HttpResponse:
    return HttpResponse(status, (), json.dumps(payload).encode())


def test_the_request_carries_the_credentials_as_json() -> None:
    tm = manager()
    request = tm.want(1, now=0.0)
    assert isinstance(request, HttpRequest)
    assert (request.method, request.url) == ("POST", "https://bots.qq.com/app/getAppAccessToken")
    assert json.loads(request.body) == {"appId": "102000000", "clientSecret": SECRET}
    assert ("Content-Type", "application/json") in request.headers


@pytest.mark.parametrize("expires_in", ["7200", 7200, " 7200 "])
def test_expires_in_as_string_or_number(expires_in: object) -> None:
    tm = manager()
    tm.want(1, 100.0)
    token = tm.response(1, ok(expires_in=expires_in), 100.0)
    assert token.value == "T1"
    assert token.expires_at == 7300.0
    assert token.refresh_at == 7240.0  # a minute early
    assert tm.current(7299.9) == token
    assert tm.current(7300.0) is None


@pytest.mark.parametrize(
    "expires_in",  # as the JSON text of the answer has it
    [
        "1" + "0" * 400,  # no float holds it
        str(2**63),
        "9" * 5000,  # no int reads it
        '"' + "9" * 500 + '"',
        '"' + "9" * 5000 + '"',
        str(MAX_TOKEN_LIFE + 1),
        f'"{MAX_TOKEN_LIFE + 1}"',
    ],
    ids=lambda text: f"{text[:8]}...({len(text)} chars)",
)
def test_a_token_life_out_of_range_is_the_fallback_and_reported(expires_in: str) -> None:
    tm = manager()
    tm.want(1, 100.0)
    body = '{"access_token": "T1", "expires_in": ' + expires_in + "}"
    token = tm.response(1, HttpResponse(200, (), body.encode()), 100.0)
    assert (token.value, token.expires_at) == ("T1", 100.0 + FALLBACK_TOKEN_LIFE)
    assert token.problem is not None
    assert f"expected expires_in from 1 to {MAX_TOKEN_LIFE} seconds" in str(token.problem)
    assert tm.next_deadline() == token.refresh_at < token.expires_at


@pytest.mark.parametrize("expires_in", [86400, "86400", "0007200", "10000", 1])
def test_a_life_up_to_a_day_is_taken_as_it_came(expires_in: object) -> None:
    tm = manager()
    tm.want(1, 0.0)
    token = tm.response(1, ok(expires_in=expires_in), 0.0)
    assert token.expires_at == int(str(expires_in)) and token.problem is None
    assert MAX_TOKEN_LIFE == 86400


def test_a_day_and_a_second_is_out_of_range() -> None:
    tm = manager()
    tm.want(1, 0.0)
    assert tm.response(1, ok(expires_in=86401), 0.0).problem is not None


@pytest.mark.parametrize("expires_in", ["²", "7200.0", "-5", "", 0, -1, 7200.5, True, None])
def test_an_expires_in_that_is_no_number_of_seconds_is_a_bad_answer(expires_in: object) -> None:
    tm = manager()
    tm.want(1, 0.0)
    with pytest.raises(TokenError, match="bad expires_in") as info:
        tm.response(1, ok(expires_in=expires_in), 0.0)
    assert not info.value.final and tm.next_deadline() is not None  # retried later


@pytest.mark.parametrize(("life", "refresh_after"), [(60, 40.0), (3, 2.0), (1, 2 / 3)])
def test_short_lifetimes_keep_a_positive_refresh_delay(life: int, refresh_after: float) -> None:
    tm = manager()
    tm.want(1, 0.0)
    token = tm.response(1, ok(expires_in=life), 0.0)
    assert token.refresh_at == pytest.approx(refresh_after)
    assert 0 < token.refresh_at < token.expires_at
    assert tm.next_deadline() == token.refresh_at


def test_the_refresh_fires_at_its_deadline() -> None:
    tm = manager()
    tm.want(1, 0.0)
    tm.response(1, ok(expires_in=60), 0.0)
    assert tm.handle_timer(2, 39.0) is None
    request = tm.handle_timer(2, 40.0)
    assert request is not None and request.request_id == 2
    assert tm.current(45.0) is not None  # the old token still works meanwhile


def test_one_request_in_flight() -> None:
    tm = manager()
    assert tm.want(1, 0.0) is not None
    assert tm.want(2, 0.0) is None
    assert tm.invalidate(3, 0.0) is None
    assert tm.in_flight == 1


def test_a_response_for_another_request_is_refused() -> None:
    tm = manager()
    tm.want(1, 0.0)
    with pytest.raises(LocalProtocolError, match="request id 1"):
        tm.response(9, ok(), 0.0)


# Spec 1.2 and 9, written out here: a code mistyped in the table is caught.
@pytest.mark.parametrize("code", [100016, 10004, 100007, 11251, 11261, 11275])
def test_wrong_credentials_with_http_200_are_final(code: int) -> None:
    tm = manager()
    tm.want(1, 0.0)
    with pytest.raises(TokenError) as caught:
        tm.response(1, body(200, {"code": code, "message": "invalid appid or secret"}), 0.0)
    assert caught.value.final and caught.value.code == code
    assert f"(code {code})" in str(caught.value)
    assert tm.failed and tm.error is caught.value
    assert tm.want(2, 10.0) is None and tm.next_deadline() is None  # never again


@pytest.mark.parametrize("status", [401, 403])
def test_http_401_or_403_from_the_token_endpoint_is_final(status: int) -> None:
    tm = manager()
    tm.want(1, 0.0)
    with pytest.raises(
        TokenError, match=rf"access token refused: credentials refused \(HTTP {status}\)"
    ) as caught:
        tm.response(1, HttpResponse(status, (), b""), 0.0)
    assert caught.value.final and caught.value.code is None


@pytest.mark.parametrize("message", [None, "", {"zh": "appid 无效"}])
def test_a_credential_code_without_a_message_is_named_from_the_table(message: object) -> None:
    tm = manager()
    tm.want(1, 0.0)
    with pytest.raises(TokenError) as caught:
        tm.response(1, body(200, {"code": 11275, "message": message}), 0.0)
    assert str(caught.value) == "access token refused: appid is invalid (code 11275)"


def test_the_sandbox_takes_its_token_where_production_does() -> None:
    assert SANDBOX_TOKEN_URL == DEFAULT_TOKEN_URL == "https://bots.qq.com/app/getAppAccessToken"


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (body(200, {"code": 5000, "message": "busy"}), "token endpoint failed (code 5000: busy)"),
        (body(200, {"code": "100016", "message": "x"}), "token endpoint failed (HTTP 200)"),
        (body(300, {"access_token": "T", "expires_in": 60}), "token endpoint failed (HTTP 300)"),
        (
            body(200, {"access_token": "T", "expires_in": "soon"}),
            "token endpoint sent a bad expires_in: expected a positive number of seconds",
        ),
    ],
    ids=["a code", "a code as a string is no code", "HTTP 300", "a bad expires_in"],
)
def test_a_failed_fetch_says_what_came(answer: HttpResponse, message: str) -> None:
    tm = manager()
    tm.want(1, 0.0)
    with pytest.raises(TokenError) as caught:
        tm.response(1, answer, 0.0)
    assert str(caught.value).startswith(message)
    if "expected" in message:
        assert str(caught.value).endswith("got 'soon'")  # what came, beside what was expected
    assert not caught.value.final and tm.last_error is caught.value  # retried later
    assert caught.value.code in (None, 5000)


@pytest.mark.parametrize(
    "response",
    [
        HttpResponse(502, (), b"bad gateway"),
        HttpResponse(200, (), b"<html>"),
        body(200, {"code": 5000, "message": "busy"}),
        body(200, {"access_token": "", "expires_in": 7200}),
        body(200, {"access_token": "T", "expires_in": "soon"}),
        body(200, {"access_token": "T", "expires_in": 0}),
    ],
)
def test_server_trouble_is_retried_with_backoff(response: HttpResponse) -> None:
    tm = manager()
    tm.want(1, 0.0)
    with pytest.raises(TokenError) as caught:
        tm.response(1, response, 0.0)
    assert not caught.value.final
    deadline = tm.next_deadline()
    assert deadline is not None and 0.5 <= deadline <= 1.5
    assert tm.handle_timer(2, deadline) is not None
    assert tm.response(2, ok(), deadline).value == "T1"
    assert tm.last_error is None


def test_network_errors_back_off_and_the_cap_ends_it() -> None:
    tm = manager(max_attempts=3)
    now = 0.0
    tm.want(1, now)
    waits = []
    for attempt in range(1, 4):
        error = tm.transport_failed(attempt, "connection refused", now)
        if attempt < 3:
            assert not error.final
            deadline = tm.next_deadline()
            assert deadline is not None
            waits.append(deadline - now)
            now = deadline
            assert tm.handle_timer(attempt + 1, now) is not None
    assert waits[1] > waits[0]
    assert error.final and "gave up after 3 attempts" in str(error)
    assert tm.failed


def test_a_good_fetch_resets_the_backoff_so_the_cap_counts_failures_in_a_row() -> None:
    """Thirty failures in a row give up; thirty in all, with a success between, do not."""
    tm = manager()  # max_attempts=30
    ids = iter(range(1, 1000))
    now = 0.0
    tm.want(next(ids), now)

    def fail_and_wait() -> TokenError:
        nonlocal now
        error = tm.transport_failed(tm.in_flight or 0, "connection refused", now)
        deadline = tm.next_deadline()
        if deadline is not None:
            now = deadline
            assert tm.handle_timer(next(ids), now) is not None
        return error

    for _ in range(29):
        assert not fail_and_wait().final
    token = tm.response(tm.in_flight or 0, ok(expires_in=7200), now)
    assert tm.handle_timer(next(ids), token.refresh_at) is not None  # the refresh is due
    now = token.refresh_at
    first_wait = None
    for n in range(29):
        error = fail_and_wait()
        assert not error.final, f"gave up after {n + 1} failures in a row"
        first_wait = first_wait or now - token.refresh_at
    assert first_wait is not None and first_wait < 2.0  # the backoff started again at 1 s
    assert fail_and_wait().final and tm.failed  # the thirtieth in a row


def test_the_manager_says_what_is_under_way() -> None:
    tm = manager()
    assert (tm.in_flight, tm.error, tm.last_error, tm.failed) == (None, None, None, False)
    tm.want(7, 0.0)
    assert tm.in_flight == 7
    with pytest.raises(LocalProtocolError):
        tm.transport_failed(8, "reset", 0.0)  # not the request under way
    error = tm.transport_failed(7, "reset", 0.0)
    assert tm.in_flight is None and tm.last_error is error and tm.error is None
    deadline = tm.next_deadline()
    assert deadline is not None
    tm.handle_timer(9, deadline)
    tm.response(9, ok(), deadline)
    assert tm.in_flight is None and tm.last_error is None


def test_retries_back_off_to_a_minute_and_no_further() -> None:
    tm = manager()
    now = 0.0
    tm.want(1, now)
    waits = []
    for attempt in range(1, 20):
        tm.transport_failed(attempt, "reset", now)
        deadline = tm.next_deadline()
        assert deadline is not None
        waits.append(deadline - now)
        now = deadline
        tm.handle_timer(attempt + 1, now)
    assert max(waits) == 60.0 and waits[-1] == 60.0


def test_the_values_are_frozen() -> None:
    config = AuthConfig("102000000", SECRET)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.secret = "other"  # type: ignore[misc]
    tm = manager()
    tm.want(1, 0.0)
    token = tm.response(1, ok(), 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        token.expires_at = 1e9  # type: ignore[misc]


def test_invalidate_drops_the_token_and_fetches_again() -> None:
    tm = manager()
    tm.want(1, 0.0)
    tm.response(1, ok(), 0.0)
    request = tm.invalidate(2, 5.0)
    assert request is not None and tm.current(5.0) is None
    assert tm.response(2, ok("T2"), 5.0).value == "T2"


def test_the_secret_never_shows() -> None:
    config = AuthConfig("102000000", SECRET)
    tm = TokenManager(config, random.Random(1))
    request = tm.want(1, 0.0)
    assert SECRET not in repr(config) + repr(tm) + repr(request)
    tm.response(1, ok("SECRET-TOKEN"), 0.0)
    assert "SECRET-TOKEN" not in repr(tm.current(0.0))
    with pytest.raises(ConfigError) as caught:
        AuthConfig("1", "")
    assert "<hidden>" in str(caught.value)
    tm2 = manager()
    tm2.want(1, 0.0)
    with pytest.raises(TokenError) as failure:
        tm2.response(1, body(200, {"code": 100016, "message": "invalid appid or secret"}), 0.0)
    assert SECRET not in str(failure.value)


def test_bad_config() -> None:
    with pytest.raises(ConfigError, match="app_id"):
        AuthConfig("", SECRET)
    with pytest.raises(ConfigError, match="token_url"):
        AuthConfig("1", SECRET, token_url="ftp://x")
    with pytest.raises(ConfigError, match="token_url"):  # the one URL parser reads it
        AuthConfig("1", SECRET, token_url="https://bad host/app/getAppAccessToken")
