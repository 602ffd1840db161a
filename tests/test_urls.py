"""Canonical story URLs: one spelling for the same story, whichever feed linked it."""

from __future__ import annotations

import pytest

from monitor.pipeline.urls import canonical_url, is_tracking_parameter


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/Story", "http://example.com/Story"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
        ("https://example.com/a?id=5&utm_source=rss&utm_medium=feed", "https://example.com/a?id=5"),
        ("https://example.com/a?fbclid=x&gclid=y&mc_cid=z&yclid=w", "https://example.com/a"),
        ("https://example.com/a?at_medium=RSS&at_campaign=KARANGA", "https://example.com/a"),
        ("https://example.com/a?CMP=share_btn_tw&page=2", "https://example.com/a?page=2"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("https://example.com./a", "https://example.com/a"),
        ("https://BÜCHER.example/a", "https://xn--bcher-kva.example/a"),
        ("https://example.com/caf\u00e9 menu", "https://example.com/caf%C3%A9%20menu"),
        ("https://example.com/caf%c3%a9", "https://example.com/caf%C3%A9"),
        ("https://example.com/a+b;c=1/@x", "https://example.com/a+b;c=1/@x"),
        ("https://[2001:DB8::1]:443/a", "https://[2001:db8::1]/a"),
        ("  https://example.com/a\n\t/b  ", "https://example.com/a/b"),
        ("https://example.com/a?q=x%20y&tag=a&tag=b", "https://example.com/a?q=x%20y&tag=a&tag=b"),
        ("https://example.com/a?", "https://example.com/a"),
        ("http://ex%61mple.COM/a", "http://example.com/a"),  # an escaped host, as browsers read it
        ("https://news.example\u3002org/a", "https://news.example.org/a"),  # an ideographic full stop
        ("http://my_site.example.org/", "http://my_site.example.org/"),
    ],
)  # fmt: skip
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/a", "mailto:desk@example.com", "javascript:alert(1)", "/relative",
     "", "   ", "https://", "http://example.com:99999/", "http://[::1/"],
)  # fmt: skip
def test_not_http_urls_give_none(url: str) -> None:
    assert canonical_url(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://a b/",  # a space inside the host
        "http://a..\u00e9/",  # an empty label
        "http://\u3002/",  # nothing but a label separator
        "http://\u200d.org/news",  # a label IDNA maps to nothing
        "http://a\u2488.org/",  # "⒈" is "1." once mapped: an empty label
        "http://a%2Fb.example/",  # an escaped slash
        "http://exa!mple.com/",
        f"http://{'a' * 64}.example/",  # a label longer than 63
    ],
)
def test_hosts_that_are_no_host_names_give_none(url: str) -> None:
    assert canonical_url(url) is None


def test_relative_url_with_base() -> None:
    assert (
        canonical_url("../b?utm_campaign=x#top", base="https://Example.com/news/a/index.html")
        == "https://example.com/news/b"
    )
    assert canonical_url("//cdn.example.com/x", base="https://example.com/") == ("https://cdn.example.com/x")


def test_the_same_story_from_two_feeds_is_equal() -> None:
    from_rss = "https://www.example.com/world/story-123?utm_source=rss&utm_medium=rss#main"
    from_atom = "HTTPS://WWW.EXAMPLE.COM:443/world/story-123?fbclid=abc"
    assert canonical_url(from_rss) == canonical_url(from_atom)


def test_different_stories_stay_different() -> None:
    assert canonical_url("https://example.com/story?id=1") != canonical_url("https://example.com/story?id=2")
    assert canonical_url("https://example.com/a/") != canonical_url("https://example.com/a")


def test_repeated_parameters_keep_their_order() -> None:
    assert canonical_url("https://e.com/?z=1&a=2&z=0") == "https://e.com/?a=2&z=1&z=0"


@pytest.mark.parametrize(
    ("name", "tracking"),
    [("utm_source", True), ("UTM_Campaign", True), ("fbclid", True), ("gclid", True),
     ("mc_eid", True), ("pk_kwd", True), ("id", False), ("page", False), ("gallery", False),
     ("source", False), ("ref", False), ("q", False)],
)  # fmt: skip
def test_tracking_parameters(name: str, tracking: bool) -> None:
    assert is_tracking_parameter(name) is tracking
