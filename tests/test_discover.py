"""Finding the feed behind a site or article URL, against a local site."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from monitor.config import PollSettings
from monitor.errors import FetchError
from monitor.outcomes import FailureKind
from monitor.pipeline.fetch import Fetcher
from monitor.sources.discover import Discovered, discover, feed_links
from tests.support.feeds import FEED_TYPES, Item, atom, json_feed, rss20
from tests.support.servers import HTTPServer, Response

HTML = {"Content-Type": "text/html; charset=utf-8"}
ITEMS = [
    Item("Older", "https://site.example/1", published=datetime(2024, 1, 5, 9, 0, tzinfo=UTC)),
    Item("Newest", "https://site.example/2", published=datetime(2024, 1, 6, 10, 0, tzinfo=UTC)),
]


def page(head: str = "", body: str = "<p>Hello</p>") -> Response:
    return Response(
        f"<!doctype html><html><head><title>Site</title>{head}</head><body>{body}</body></html>", headers=HTML
    )


def found(server: HTTPServer, path: str, **poll: object) -> Discovered:
    async def run() -> Discovered:
        async with Fetcher(PollSettings(allow_private_networks=True, timeout=5, **poll)) as fetcher:  # type: ignore[arg-type]
            return await discover(fetcher, server.url(path))

    return asyncio.run(run())


def test_a_home_page_that_links_its_feed(server: HTTPServer) -> None:
    server.route(
        "/",
        page(
            '<link rel="alternate" type="application/rss+xml" title="Comments" href="/comments/feed/">'
            '<link rel="Alternate stylesheet" type="text/css" href="/x.css">'
            '<link rel="alternate" type="application/atom+xml" href="https://elsewhere.example/atom">'
            '<link rel="alternate" type="application/rss+xml" title="Site News" href="news/feed.xml">'
        ),
    )
    server.route(
        "/news/feed.xml", Response(rss20(ITEMS, title="Site News"), headers={"Content-Type": FEED_TYPES["rss20"]})
    )

    result = found(server, "/")

    assert (result.url, result.via, result.title, result.entries) == (
        server.url("/news/feed.xml"),
        "link",
        "Site News",
        2,
    )
    assert result.last_entry_at == datetime(2024, 1, 6, 10, 0, tzinfo=UTC)
    # Same site first, comments last; the others are listed, not fetched.
    assert result.others == [server.url("/comments/feed/"), "https://elsewhere.example/atom"]
    assert not server.hits("/comments/feed/")


@pytest.mark.parametrize("path", ["/feed", "/rss.xml", "/atom.xml", "/index.xml", "/feeds/posts/default"])
def test_an_article_page_without_links_finds_the_feed_at_a_usual_path(server: HTTPServer, path: str) -> None:
    server.route("/2024/01/06/story.html", page(body="<article>Story</article>"))
    server.route("/rss", Response("<html>not this</html>", headers=HTML))
    server.route(path, Response(atom(ITEMS, title="Usual"), headers={"Content-Type": FEED_TYPES["atom"]}))

    result = found(server, "/2024/01/06/story.html")

    assert (result.url, result.via, result.title) == (server.url(path), "path", "Usual")


@pytest.mark.parametrize("kind", ["rss20", "atom", "json"])
def test_a_feed_url_is_the_feed(server: HTTPServer, kind: str) -> None:
    body = {"rss20": rss20, "atom": atom, "json": json_feed}[kind](ITEMS, title="Direct")
    server.route("/old", Response(status=301, headers={"Location": "/feed.any"}))
    server.route("/feed.any", Response(body, headers={"Content-Type": FEED_TYPES[kind]}))

    result = found(server, "/old")

    assert (result.url, result.via, result.title, result.entries) == (server.url("/feed.any"), "given", "Direct", 2)
    assert len(server.requests) == 2  # the redirect and the feed: nothing else tried


def test_a_base_element_and_a_broken_first_link(server: HTTPServer) -> None:
    server.route(
        "/",
        page(
            '<base href="/blog/">'
            '<link rel="alternate" type="application/rss+xml" href="gone.xml">'
            '<link rel="alternate" type="application/feed+json" href="feed.json">'
        ),
    )
    server.route(
        "/blog/feed.json", Response(json_feed(ITEMS, title="JSON"), headers={"Content-Type": FEED_TYPES["json"]})
    )

    result = found(server, "/")

    assert (result.url, result.title, result.others) == (
        server.url("/blog/feed.json"),
        "JSON",
        [server.url("/blog/gone.xml")],
    )


def test_nothing_found_is_one_clear_error(server: HTTPServer) -> None:
    server.route("/", page('<link rel="alternate" type="application/rss+xml" href="/dead.xml">'))

    with pytest.raises(FetchError) as caught:
        found(server, "/")

    assert caught.value.kind is FailureKind.NOT_A_FEED
    assert str(caught.value) == (
        f"not_a_feed: no feed found at {server.url('/')}: not a feed (an HTML page), and none of the 1 it links, "
        "nor at the usual paths (/feed, /rss.xml, /atom.xml, …)"
    )
    assert "\n" not in str(caught.value)


def test_a_private_address_is_refused_unless_allowed(server: HTTPServer) -> None:
    server.route("/feed", Response(rss20(ITEMS), headers={"Content-Type": FEED_TYPES["rss20"]}))

    async def run() -> Discovered:
        async with Fetcher(PollSettings(allow_private_networks=False)) as fetcher:
            return await discover(fetcher, server.url("/feed"))

    with pytest.raises(FetchError) as caught:
        asyncio.run(run())
    assert caught.value.kind is FailureKind.BLOCKED and "loopback" in str(caught.value)
    assert not server.requests


def test_a_page_over_the_size_limit_is_a_fetch_failure(server: HTTPServer) -> None:
    server.route("/", page(body="x" * 200_000))
    with pytest.raises(FetchError) as caught:
        found(server, "/", max_bytes=100_000)
    assert caught.value.kind is FailureKind.TOO_LARGE


@pytest.mark.parametrize(
    "body", [b"", b"\x00\x01binary", b"<html><head><link rel=alternate href=x></head></html>", b"<<<"]
)
def test_feed_links_of_odd_pages_are_none(body: bytes) -> None:
    assert feed_links(body, page_url="https://site.example/") == []
