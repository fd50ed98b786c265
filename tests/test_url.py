"""qqproto.url: the one URL parser every connection goes through."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qqproto.url import SCHEMES, BadUrl, Origin, Url


@pytest.mark.parametrize(
    ("url", "origin", "target", "host_header"),
    [
        (
            "wss://api.sgroup.qq.com/websocket/",
            ("wss", "api.sgroup.qq.com", 443),
            "/websocket/",
            "api.sgroup.qq.com",
        ),
        ("ws://127.0.0.1:3001", ("ws", "127.0.0.1", 3001), "/", "127.0.0.1:3001"),
        ("http://H.Example:80/a?b=c", ("http", "h.example", 80), "/a?b=c", "h.example"),
        ("https://[::1]:8443/p", ("https", "::1", 8443), "/p", "[::1]:8443"),
        (
            "https://例子.测试/",
            ("https", "xn--fsqu00a.xn--0zwm56d", 443),
            "/",
            "xn--fsqu00a.xn--0zwm56d",
        ),
        ("ws://h/x#fragment", ("ws", "h", 80), "/x", "h"),
    ],
)
def test_a_url_splits_into_origin_and_target(
    url: str, origin: tuple[str, str, int], target: str, host_header: str
) -> None:
    parsed = Url.parse(url)
    assert parsed.origin == Origin(*origin)
    assert parsed.target == target
    assert parsed.origin.host_header == host_header
    assert parsed.tls is (origin[0] in ("wss", "https"))
    assert Origin.of(url) == parsed.origin


@pytest.mark.parametrize(
    ("url", "part"),
    [
        ("ftp://h/", "bad URL"),
        ("/relative", "bad URL"),
        ("https:///path", "bad URL"),
        ("https://user:pw@h/", "URL carries credentials"),
        ("https://h:99999/", "bad URL port"),
        ("https://h:0/", "bad URL port"),
        ("https://h:port/", "bad URL port"),
        ("ws://" + "a" * 64 + ".example/", "bad URL host"),
        ("https://h/a b", "bad URL path"),
        ("https://h/空", "bad URL path"),
        ("ws://[::1/", "bad URL"),
        ("ws://a b/", "bad URL host"),
        ("ws://a<b>/", "bad URL host"),
    ],
)
def test_a_bad_url_says_which_part_is_wrong(url: str, part: str) -> None:
    with pytest.raises(BadUrl) as caught:
        Url.parse(url)
    assert str(caught.value).startswith(part)


def test_credentials_stay_out_of_the_error() -> None:
    with pytest.raises(BadUrl) as caught:
        Url.parse("https://bot:s3cret@h/")
    assert "s3cret" not in str(caught.value)


def test_only_the_schemes_asked_for_are_taken() -> None:
    assert Url.parse("ws://h/", ("ws", "wss")).origin.scheme == "ws"
    with pytest.raises(BadUrl, match="expected http://host/path or https://host/path"):
        Url.parse("ws://h/", ("http", "https"))


@given(st.one_of(st.text(), st.builds("{}://{}".format, st.sampled_from(SCHEMES), st.text())))
def test_any_text_parses_or_is_refused_with_bad_url(text: str) -> None:
    try:
        parsed = Url.parse(text)
    except BadUrl:
        return
    assert Url.parse(str(parsed)) == parsed  # what it parsed to reads back the same


@given(
    st.sampled_from(["ws", "wss", "http", "https"]),
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True),
    st.integers(1, 65535),
    st.from_regex(r"(/[\x21-\x22\x24-\x3e\x40-\x7e]*)*", fullmatch=True),
)
def test_any_wellformed_url_reads_back(scheme: str, host: str, port: int, path: str) -> None:
    parsed = Url.parse(f"{scheme}://{host}:{port}{path}")
    assert parsed.origin == Origin(scheme, host, port)
    assert parsed.target == (path or "/")
