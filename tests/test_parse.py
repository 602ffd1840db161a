"""Feed parsing: snippets of every kind, then the real-world corpus.

The snippets always run. The corpus tests (every corpus file, real feeds in detail,
conformance files served over HTTP) need the real-world corpus and skip without it.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import PollSettings
from monitor.errors import FetchError
from monitor.pipeline.fetch import Fetcher
from monitor.pipeline.parse import ParsedFeed, entry_links, parse_feed
from tests.support.corpus import FEEDS, corpus_files, needs_corpus
from tests.support.servers import HTTPServer, Response

FEED_URL = "https://news.example.org/feeds/world.xml"
REAL = FEEDS / "real"
CORPUS = corpus_files("feeds/real", "feeds/wellformed", "feeds/illformed", "feeds/encoding")


# -------------------------------------------------------------------------- snippets


@pytest.mark.parametrize(
    ("body", "links"),
    [
        (b"<rss><channel><item><link> https://a.example/1 </link></item></channel></rss>", ["https://a.example/1"]),
        (
            (
                b"<rss><channel><item><guid>https://a.example/g</guid><link>https://a.example/1</link></item>"
                b"</channel></rss>"
            ),
            ["https://a.example/1"],
        ),
        (b"<rss><channel></channel></rss>", []),
        # Unsure: parse in full.
        (b"<rss><channel><item><guid>https://a.example/g</guid></item></channel></rss>", None),
        (b"<rss><channel><item><link>/relative</link></item></channel></rss>", None),
        (
            (
                b"<rss><channel><item><link>https://a.example/1</link><link>https://a.example/2</link></item>"
                b"</channel></rss>"
            ),
            None,
        ),
        (
            (
                b'<rss xmlns:atom="http://www.w3.org/2005/Atom"><channel><item><link>https://a.example/1</link>'
                b'<atom:link href="https://a.example/2"/></item></channel></rss>'
            ),
            None,
        ),
        (b"<rss><channel><item><link>https://a.example/1</link></item>", None),  # not well-formed
        (
            (
                b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>https://a.example/id</id>'
                b'<link rel="self" href="https://a.example/self"/><link href="https://a.example/1"/></entry></feed>'
            ),
            ["https://a.example/1"],
        ),
        (
            (
                b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><link href="https://a.example/1"/>'
                b'<link rel="alternate" type="text/html" href="https://a.example/2"/></entry></feed>'
            ),
            None,
        ),
        (b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>https://a.example/id</id></entry></feed>', None),
        (
            (
                b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/">'
                b"<channel/><item><link>https://a.example/1</link></item></rdf:RDF>"
            ),
            ["https://a.example/1"],
        ),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', None),
        (
            (
                b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><rss><channel><item><link>&e;</link>'
                b"</item></channel></rss>"
            ),
            None,
        ),
        (b"<html><body>not a feed</body></html>", None),
    ],
)
def test_entry_links(body: bytes, links: list[str] | None) -> None:
    assert entry_links(body, url=FEED_URL) == links


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", None),
        (b"   \n", "application/rss+xml"),
        (b"<!DOCTYPE html><html><head><title>Hello</title></head><body><p>Hi</p></body></html>",
         "text/html"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10", "image/png"),
        (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00", None),
        (b'{"name": "not a feed"}', "application/json"),
        (b"plain words, nothing more", "text/plain"),
        (b"/etc/hostname", None),  # bytes are never taken for a file name
    ],
)  # fmt: skip
def test_non_feeds_are_refused(body: bytes, content_type: str | None) -> None:
    with pytest.raises(FetchError) as caught:
        parse_feed(body, url=FEED_URL, content_type=content_type)
    assert caught.value.kind == "not_a_feed"


def test_truncated_feed_without_entries_is_a_parse_error() -> None:
    with pytest.raises(FetchError) as caught:
        parse_feed(b"<?xml version='1.0'?><rss version='2.0'><chan", url=FEED_URL)
    assert caught.value.kind == "parse_error"


def test_broken_json_feed_is_a_parse_error() -> None:
    with pytest.raises(FetchError) as caught:
        parse_feed(b'{"version": "https://jsonfeed.org/version/1.1", "items": [', url=FEED_URL)
    assert caught.value.kind == "parse_error"


# --------------------------------------------------------------------------- details

RSS_TEMPLATE = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>Desk &amp; Wire</title><link>/home</link>
{items}
</channel></rss>"""


def rss(*items: str) -> bytes:
    return RSS_TEMPLATE.format(items="\n".join(items)).encode("utf-8")


def test_relative_links_are_resolved_against_the_feed_url() -> None:
    feed = parse_feed(
        rss("<item><title>A</title><link>../stories/a.html</link></item>",
            "<item><title>B</title><link>javascript:alert(1)</link></item>"),
        url=FEED_URL,
    )  # fmt: skip
    assert feed.link == "https://news.example.org/home"
    assert feed.entries[0].url == "https://news.example.org/stories/a.html"
    assert feed.entries[1].url is None


def test_html_becomes_plain_text() -> None:
    item = (
        "<item><title>Headline &lt;b&gt;bold&lt;/b&gt;</title><link>https://x.example/a</link>"
        "<description><![CDATA[<p>First &amp; <a href='/x'>linked</a></p><script>evil()</script>"
        "<p>Second&nbsp;para</p>]]></description>"
        "<content:encoded><![CDATA[<div><p>Full one.</p><ul><li>Item</li></ul></div>]]>"
        "</content:encoded>"
        "</item>"
    )
    entry = parse_feed(rss(item), url=FEED_URL).entries[0]
    assert entry.title == "Headline bold"
    assert entry.summary == "First & linked\n\nSecond para"
    assert entry.content == "Full one.\n\nItem"


def test_dates_are_aware_utc() -> None:
    feed = parse_feed(
        rss("<item><guid>a</guid><pubDate>Thu, 06 Jan 2022 12:00:00 +0300</pubDate></item>",
            "<item><guid>b</guid><pubDate>not a date</pubDate></item>"),
        url=FEED_URL,
    )  # fmt: skip
    assert feed.entries[0].published_at == datetime(2022, 1, 6, 9, 0, tzinfo=UTC)
    assert feed.entries[1].published_at is None


def test_entry_keys_are_stable_and_fall_back_sensibly() -> None:
    body = rss(
        "<item><guid isPermaLink='false'>id-1</guid><link>https://x.example/1</link></item>",
        "<item><link>https://x.example/2</link><title>Two</title></item>",
        "<item><title>Three</title><description>Only text</description></item>",
    )
    first = [e.key for e in parse_feed(body, url=FEED_URL).entries]
    again = [e.key for e in parse_feed(body, url=FEED_URL).entries]
    assert first == again
    assert first[:2] == ["id-1", "https://x.example/2"]
    assert first[2].startswith("sha256:")


def test_json_feed_1_0_and_1_1_details() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1",
        "title": "JSON desk",
        "home_page_url": "https://j.example/",
        "items": [
            {"id": 7, "url": "/posts/7", "content_html": "<p>Seven <b>bold</b></p>",
             "date_published": "2022-01-06T10:00:00+02:00", "author": {"name": "Ann"}},
            {"id": "eight", "content_text": "Eight", "date_modified": "2022-01-07T10:00:00Z",
             "authors": [{"name": "Bo"}, {"name": "Cy"}], "external_url": "https://ext.example/8"},
            "not an object",
        ],
    }  # fmt: skip
    feed = parse_feed(json.dumps(document).encode(), url="https://j.example/feed.json")
    seven, eight = feed.entries
    assert (seven.key, seven.url, seven.content, seven.author) == (
        "7",
        "https://j.example/posts/7",
        "Seven bold",
        "Ann",
    )
    assert seven.published_at == datetime(2022, 1, 6, 8, 0, tzinfo=UTC)
    assert (eight.url, eight.content, eight.author) == ("https://ext.example/8", "Eight", "Bo, Cy")
    assert eight.published_at == datetime(2022, 1, 7, 10, 0, tzinfo=UTC)
    assert feed.warning  # the stray string item


# ----------------------------------------------------------------- corpus: every file


def real(name: str, content_type: str | None = None) -> ParsedFeed:
    return parse_feed((REAL / name).read_bytes(), url=FEED_URL, content_type=content_type)


@needs_corpus("feeds")
def test_corpus_is_complete() -> None:
    assert len(CORPUS) >= 400


@needs_corpus("feeds")
@pytest.mark.parametrize("path", CORPUS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_corpus_file_parses_or_is_refused_cleanly(path: Path) -> None:
    try:
        feed = parse_feed(path.read_bytes(), url=f"https://example.org/{path.name}")
    except FetchError as error:
        assert error.kind in ("not_a_feed", "parse_error")
        return
    assert feed.entries or feed.title or feed.link or feed.format != "unknown"
    for entry in feed.entries:
        assert entry.key
        assert entry.published_at is None or entry.published_at.tzinfo == UTC
        assert entry.url is None or entry.url.startswith(("http://", "https://"))
        for text in (entry.title, entry.summary, entry.content):
            assert text is None or "<p>" not in text


@needs_corpus("feeds")
def test_entry_links_agree_with_the_full_parse_wherever_they_answer() -> None:
    """The quick scan must never name a link the full parse would not: every answer is
    checked against feedparser on the whole corpus, and it must answer for most real feeds."""
    answered = 0
    for path in CORPUS:
        body = path.read_bytes()
        url = f"https://example.org/{path.name}"
        links = entry_links(body, url=url)
        if links is None:
            continue
        answered += 1
        feed = parse_feed(body, url=url)
        assert links == [entry.url for entry in feed.entries], path
    real_feeds = [p for p in CORPUS if p.parent.name == "real"]
    answered_real = sum(entry_links(p.read_bytes(), url=FEED_URL) is not None for p in real_feeds)
    assert answered >= 90
    assert answered_real >= len(real_feeds) // 2, (answered_real, len(real_feeds))


# ----------------------------------------------------------------- corpus: real feeds


@needs_corpus("feeds")
def test_bbc_rss() -> None:
    feed = real("photojournalism__bbc.xml", "application/rss+xml")
    assert (feed.title, feed.format, feed.warning) == ("BBC News - News front page", "rss20", None)
    assert len(feed.entries) == 16
    first = feed.entries[0]
    assert first.title == "Firm in data scandal 'made election boasts'"
    assert first.url and first.url.startswith("https://www.bbc.co.uk/news/uk-politics-43532916")
    assert first.key == "https://www.bbc.co.uk/news/uk-politics-43532916"
    assert first.published_at == datetime(2018, 3, 25, 11, 52, 46, tzinfo=UTC)
    assert first.summary and first.summary.startswith("The company that became Cambridge Analytica")


@needs_corpus("feeds")
def test_npr_content_encoded_becomes_plain_text() -> None:
    feed = real("photojournalism__npr.xml")
    first = feed.entries[0]
    assert first.author == "Emily Olson"
    assert first.content and len(first.content) > len(first.summary or "")
    assert "<" not in first.content and "&amp;" not in first.content
    assert "\n" in first.content  # paragraphs stay apart


@needs_corpus("feeds")
def test_latin1_feed_without_declaration() -> None:
    feed = real("rss-parser__uolNoticias.rss")
    titles = [e.title for e in feed.entries]
    assert "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno" in titles
    assert any(e.summary and "intenção de voto" in e.summary for e in feed.entries)


@needs_corpus("feeds")
def test_declared_iso_8859_1_feed() -> None:
    feed = real("miniflux__encoding_ISO-8859-1.xml")
    assert feed.title == "Golem.de" and len(feed.entries) == 40
    assert feed.entries[0].summary and "wünschen" in feed.entries[0].summary


@needs_corpus("feeds")
def test_json_feed() -> None:
    feed = real("trafilatura__feed.json", "application/feed+json")
    assert (feed.title, feed.format) == ("Technology", "json1")
    assert feed.link and feed.link.startswith("https://www.npr.org/sections/technology/")
    assert len(feed.entries) == 25
    first = feed.entries[0]
    assert first.key == "1050315385"
    assert first.title == "Keller Rinaudo: How can delivery drones save lives?"
    assert first.url and first.url.startswith("https://www.npr.org/2021/10/29/1050315385/")
    assert first.published_at == datetime(2021, 10, 29, 14, 26, tzinfo=UTC)
    assert first.author == "Manoush Zomorodi"


@needs_corpus("feeds")
def test_rdf_rss_090_feed() -> None:
    feed = real("miniflux__rdf_UTF8.xml")
    assert (feed.title, feed.format) == ("heise online News", "rss090")
    assert len(feed.entries) == 60
    assert feed.entries[1].title == "Mega-Deal: IBM übernimmt Red Hat"
    assert feed.entries[1].url and "Red-Hat-4205582" in feed.entries[1].url


@needs_corpus("feeds")
def test_atom_feed() -> None:
    feed = real("rss-parser__heise.atom")
    assert (feed.title, feed.format) == ("heise developer neueste Meldungen", "atom10")
    first = feed.entries[0]
    assert first.key == "http://heise.de/-3088438"
    assert first.title == "Java-Anwendungsserver: Red Hat gibt WildFly 10 frei"
    assert first.published_at == datetime(2016, 2, 1, 16, 22, tzinfo=UTC)


@needs_corpus("feeds")
def test_feed_with_leading_blank_line_is_read_with_a_warning() -> None:
    feed = real("feedjira__TechCrunch.xml")
    assert len(feed.entries) == 20
    assert feed.warning and feed.warning.startswith("ill-formed feed")


@needs_corpus("feeds")
@pytest.mark.parametrize(
    "name",
    ["trafilatura__sitemap.xml", "trafilatura__sitemap2.xml", "trafilatura__sitemap-hreflang.xml",
     "trafilatura__sitemap.xml.gz"],
)  # fmt: skip
def test_sitemaps_are_not_feeds(name: str) -> None:
    with pytest.raises(FetchError) as caught:
        real(name, "application/xml")
    assert caught.value.kind == "not_a_feed"


@needs_corpus("feeds")
@pytest.mark.parametrize(
    ("name", "needle"),
    [("chardet__koi8r.xml", "з"), ("chardet__big5.xml", "中文"), ("chardet__eucjp.xml", None),
     ("chardet__windows1255.xml", None)],
)  # fmt: skip
def test_undeclared_non_latin_encodings_are_detected(name: str, needle: str | None) -> None:
    feed = parse_feed((FEEDS / "illformed" / name).read_bytes(), url=FEED_URL)
    texts = [feed.title, *(e.title for e in feed.entries), *(e.summary for e in feed.entries)]
    text = " ".join(t for t in texts if t)
    assert text
    # Mojibake of a CJK or Cyrillic text in Windows-1252 is full of Latin-1 letters.
    assert not re.search(r"[À-ÿ]{2}", text), text
    if needle:
        assert needle in text


# ------------------------------------------------------------------ corpus: over HTTP


def corpus_headers(path: Path) -> dict[str, str]:
    """The HTTP headers a conformance file asks to be served with (``Header:`` lines)."""
    head = path.read_bytes()[:2000].decode("latin-1")
    headers = {}
    for line in re.findall(r"^Header:\s*(.+?)\s*$", head, re.MULTILINE):
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return headers


HTTP_SAMPLES = {
    # file: (attribute path, expected text)
    "encoding/http_text_xml_charset_2.xml": ("summary", "This is a £“test.”"),
    "encoding/http_text_xml_charset_overrides_encoding_2.xml": ("summary", "This is a £“test.”"),
    "encoding/http_i18n.xml": ("title", "Iñtërnâtiônàlizætiøn"),
    "encoding/bozo_http_i18n.xml": ("title", "Iñtërnâtiônàlizætiøn"),
    "encoding/euc-kr.xml": ("title", "\ub144"),
    "encoding/euc-kr-item.xml": ("summary", "\ub144"),
    "encoding/demoronize-1.xml": ("summary", "don’t"),
    "real/rss-parser__uolNoticias.rss": ("title", ("Ibope: Bolsonaro perde de Haddad, Ciro e "
                                         "Alckmin em simulações de 2º turno")),
}  # fmt: skip


@needs_corpus("feeds")
def test_encodings_survive_http_with_the_files_headers() -> None:
    with HTTPServer() as server:
        for name in HTTP_SAMPLES:
            path = FEEDS / name
            headers = corpus_headers(path) or {"Content-Type": "text/xml"}
            server.route(f"/{name}", Response(body=path.read_bytes(), headers=headers))

        async def fetch_all() -> dict[str, ParsedFeed]:
            parsed = {}
            async with Fetcher(PollSettings(allow_private_networks=True, timeout=5)) as fetcher:
                for name in HTTP_SAMPLES:
                    result = await fetcher.fetch(server.url(f"/{name}"))
                    assert result.body is not None
                    parsed[name] = parse_feed(result.body, url=result.url, content_type=result.content_type)
            return parsed

        parsed = asyncio.run(fetch_all())
    assert corpus_headers(FEEDS / "encoding/http_text_xml_charset_2.xml") == {
        "Content-type": "text/xml; charset=windows-1252"
    }
    for name, (attribute, expected) in HTTP_SAMPLES.items():
        feed = parsed[name]
        if attribute == "title" and feed.title == expected:
            continue
        values = [getattr(e, attribute) for e in feed.entries]
        assert expected in values, (name, feed.title, values[:3])
