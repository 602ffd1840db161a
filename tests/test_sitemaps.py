"""Sitemaps as a source: urlsets, indexes, news sitemaps and gzipped ones, read safely,
polled from a real local server into a real archive (SQLite and PostgreSQL)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import Settings
from monitor.errors import FetchError
from monitor.pipeline.parse import parse_feed
from monitor.pipeline.pool import CPUPool
from monitor.pipeline.sitemaps import MAX_INFLATED, inflate
from tests.support.corpus import require_corpus
from tests.support.feeds import article_page, story
from tests.support.paths import ROOT
from tests.support.servers import HTTPServer, Response
from tests.test_refresh import articles, feed_row, poll

OWN = ROOT / "tests" / "fixtures" / "sitemaps"
URLSET = '<?xml version="1.0"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{}</urlset>'
INDEX = '<?xml version="1.0"?>\n<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{}</sitemapindex>'


@pytest.fixture
def configure(make_settings: Callable[..., Settings], database_url: str, server: HTTPServer) -> Callable[..., Settings]:
    """Settings polling ``feeds`` (name → path on the test server) on the test database."""

    def make(feeds: dict[str, str], **poll_options: Any) -> Settings:
        return make_settings(
            database_url=database_url,
            poll={"allow_private_networks": True, "timeout": "2s", "per_host": 8, **poll_options},
            feeds=[{"name": name, "url": server.url(path)} for name, path in feeds.items()],
        )

    return make


def url_item(loc: str, lastmod: str | None = None) -> str:
    return f"<url><loc>{loc}</loc>{f'<lastmod>{lastmod}</lastmod>' if lastmod else ''}</url>"


def sitemap_item(loc: str, lastmod: str) -> str:
    return f"<sitemap><loc>{loc}</loc><lastmod>{lastmod}</lastmod></sitemap>"


def serve_pages(server: HTTPServer, *paths: str) -> None:
    for path in paths:
        topic = path.rsplit("/", 1)[-1].replace("-", " ")
        server.route(path, Response(article_page(topic.title(), story(topic)), headers={"Content-Type": "text/html"}))


# ------------------------------------------------------------------------------ reading


def test_a_news_sitemap_gives_titles_dates_and_languages() -> None:
    document = parse_feed((OWN / "news-sitemap.xml").read_bytes(), url="https://herald.example/sitemap-news.xml")
    assert document.format == "sitemap"
    assert [(e.url, e.title, e.language, e.published_at and e.published_at.isoformat()) for e in document.entries] == [
        ("https://herald.example/news/almaty-airport-reopens", "Almaty airport reopens after a week", "en",
         "2022-01-13T02:30:00+00:00"),
        # The publication date wins over lastmod.
        ("https://herald.example/news/grain-exports", "Экспорт зерна возобновлён", "ru", "2022-01-12T00:00:00+00:00"),
    ]  # fmt: skip


def test_entities_are_never_expanded_nor_files_read() -> None:
    body = (OWN / "entity-expansion.xml").read_bytes()
    document = parse_feed(body, url="https://news.example.org/sitemap.xml")
    urls = [e.url or "" for e in document.entries]
    assert urls[-1] == "https://news.example.org/plain"
    assert all(len(url) < 100 and "aaaa" not in url for url in urls)
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else "\0"
    assert not any(hostname in url for url in urls)


def test_a_gzip_bomb_stops_at_the_protocols_limit() -> None:
    bomb = gzip.compress(URLSET.format("").encode()[:-10] + b" " * (MAX_INFLATED + 1000), compresslevel=9)
    assert len(bomb) < 200_000
    with pytest.raises(FetchError) as caught:
        inflate(bomb)
    assert caught.value.kind == "too_large"


def test_a_broken_gzip_sitemap_is_a_parse_error() -> None:
    body = gzip.compress(URLSET.format(url_item("https://a.example/x")).encode())[:-30]
    with pytest.raises(FetchError) as caught:
        parse_feed(body, url="https://a.example/sitemap.xml.gz")
    assert (caught.value.kind, caught.value.message) == ("parse_error", "the gzipped body is cut short")


# ------------------------------------------------------------------------------ polling


def test_an_index_is_followed_newest_first_into_gzipped_and_news_sitemaps(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    news = (OWN / "news-sitemap.xml").read_text(encoding="utf-8")
    server.route("/sitemap-news.xml", Response(news, headers={"Content-Type": "application/xml"}))
    serve_pages(server, "/news/almaty-airport-reopens", "/news/grain-exports")
    older = URLSET.format(url_item("/archive/old-harvest", "2021-06-01"))
    server.route(
        "/sitemap-2021.xml.gz", Response(gzip.compress(older.encode()), headers={"Content-Type": "application/gzip"})
    )
    serve_pages(server, "/archive/old-harvest")
    index = INDEX.format(
        sitemap_item(server.url("/sitemap-2021.xml.gz"), "2021-06-01") + sitemap_item("/sitemap-news.xml", "2022-01-14")
    )
    server.route("/sitemap.xml", Response(index, headers={"Content-Type": "application/xml"}))
    settings = configure({"Herald": "/sitemap.xml"})

    report = poll(settings, engine, pool)

    assert (report.failed, report.stored) == (0, 3)
    stored = {a.url.removeprefix(server.url("/")): a for a in articles(engine)}
    assert set(stored) == {"news/almaty-airport-reopens", "news/grain-exports", "archive/old-harvest"}
    assert stored["news/grain-exports"].language == "ru"
    assert all(a.extraction_note is None and "Lorem" not in a.text for a in stored.values())
    # The newest sitemap was asked for first.
    first = [r.path for r in server.requests if r.path.startswith("/sitemap-")][:2]
    assert first == ["/sitemap-news.xml", "/sitemap-2021.xml.gz"]

    # The next poll fetches the index in full again (its sitemaps change under it) and
    # stores only what is new.
    server.route(
        "/sitemap-2021.xml.gz",
        Response(
            gzip.compress(URLSET.format(url_item("/archive/old-harvest") + url_item("/archive/new-one")).encode())
        ),
    )
    serve_pages(server, "/archive/new-one")
    again = poll(settings, engine, pool)
    assert (again.failed, again.stored) == (0, 1)
    assert feed_row(engine, "Herald").articles_stored == 4


def test_one_sitemap_of_an_index_failing_does_not_fail_the_feed(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    server.route("/fine.xml", Response(URLSET.format(url_item("/a/fine-story")), headers={"Content-Type": "text/xml"}))
    serve_pages(server, "/a/fine-story")
    index = INDEX.format(sitemap_item("/gone.xml", "2022-02-01") + sitemap_item("/fine.xml", "2022-01-01"))
    server.route("/index.xml", Response(index, headers={"Content-Type": "text/xml"}))
    settings = configure({"Partly": "/index.xml"})

    report = poll(settings, engine, pool)

    assert (report.failed, report.stored) == (0, 1)


def test_a_real_sitemap_served_locally_is_a_source(
    configure: Callable[..., Settings], engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    path = require_corpus("feeds", "real", "trafilatura__sitemap.xml.gz")
    body = gzip.decompress(path.read_bytes()).replace(b"https://www.sitemaps.org", server.url("").rstrip("/").encode())
    server.route("/sitemap.xml.gz", Response(gzip.compress(body), headers={"Content-Type": "application/x-gzip"}))
    locations = re.findall(rb"<loc>(.*?)</loc>", body)
    serve_pages(server, *(loc.decode().removeprefix(server.url("").rstrip("/")) for loc in locations))
    settings = configure({"Sitemaps": "/sitemap.xml.gz"}, max_new_entries=5)

    report = poll(settings, engine, pool)

    assert (report.failed, report.entries_seen, report.new_entries, report.stored) == (0, 84, 84, 5)
    assert report.waiting == 79
