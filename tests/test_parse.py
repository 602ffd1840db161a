"""Feed parsing: the project's own fixtures for every behaviour, then the real-world corpus.

The feeds in ``tests/fixtures/feeds/`` are small files written for these tests, one or
more for each behaviour the monitor relies on: the formats, undeclared encodings, ill-formed
but readable feeds, documents that are not feeds, plain text, links, dates, entry keys, and
the quick link scan. They always run. The corpus tests (every corpus file, real feeds in
detail, conformance files served over HTTP) need the real-world corpus and skip without it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import PollSettings
from monitor.errors import FetchError
from monitor.pipeline.fetch import Fetcher
from monitor.pipeline.parse import Entry, ParsedFeed, entry_links, parse_feed
from tests.support.corpus import FEEDS, corpus_files, needs_corpus
from tests.support.paths import FIXTURES
from tests.support.servers import HTTPServer, Response

OWN = FIXTURES / "feeds"
FEED_URL = "https://news.example.org/feeds/world.xml"
REAL = FEEDS / "real"
CORPUS = corpus_files("feeds/real", "feeds/wellformed", "feeds/illformed", "feeds/encoding")


def own(name: str, content_type: str | None = None) -> ParsedFeed:
    return parse_feed((OWN / name).read_bytes(), url=FEED_URL, content_type=content_type)


def refusal(name: str, content_type: str | None = None) -> FetchError:
    with pytest.raises(FetchError) as caught:
        own(name, content_type)
    return caught.value


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# ------------------------------------------------------------------------ own: formats


@pytest.mark.parametrize(
    ("name", "content_type", "version", "title", "link", "count"),
    [
        ("rss20.xml", "application/rss+xml", "rss20", "Steppe Herald & Wire", "https://news.example.org/world/", 3),
        ("rss10.rdf", "application/rdf+xml", "rss10", "Steppe Herald (RDF)", "https://news.example.org/", 2),
        ("rss090.rdf", None, "rss090", "Steppe Herald (0.90)", "https://news.example.org/", 1),
        ("atom.xml", "application/atom+xml", "atom10", "Steppe Herald Analysis", "https://news.example.org/analysis/",
         3),
        ("jsonfeed-1.0.json", "application/feed+json", "json1", "Steppe Herald (JSON 1.0)", "https://news.example.org/",
         2),
        ("jsonfeed-1.1.json", None, "json1", "Steppe Herald (JSON 1.1)", "https://news.example.org/", 2),
    ],
)  # fmt: skip
def test_every_format_is_read(
    name: str, content_type: str | None, version: str, title: str, link: str, count: int
) -> None:
    feed = own(name, content_type)
    assert (feed.format, feed.title, feed.link, len(feed.entries)) == (version, title, link, count)
    assert all(entry.key and entry.title for entry in feed.entries)


def test_rss20_entry_in_full() -> None:
    first, second, third = own("rss20.xml").entries
    assert first == Entry(
        key="herald-2022-0113-001",
        url="https://news.example.org/stories/almaty-airport-reopens.html",
        title="Almaty airport reopens after a week",
        summary="Flights resume from Almaty & Nur-Sultan.\n\nSecond paragraph.",
        content="The international airport resumed regular flights on Monday.\n\nIstanbul\n\nDubai",
        published_at=utc(2022, 1, 13, 2, 30),
        author="Aigerim Sadykova",
    )
    assert (second.key, second.url) == ("https://news.example.org/stories/grain-exports.html",) * 2
    assert (third.key, third.url) == ("herald-2022-0111-007", None)  # a javascript: link is no link


def test_rss10_entries() -> None:
    first, second = own("rss10.rdf").entries
    assert first == Entry(
        key="https://news.example.org/stories/csto-troops-leave.html",
        url="https://news.example.org/stories/csto-troops-leave.html",
        title="CSTO troops begin to leave",
        summary="The first transport planes left at dawn.",
        content=None,
        published_at=utc(2022, 1, 13, 4, 15),
        author="Daniyar Ospanov",
    )
    assert second.published_at == utc(2022, 1, 11)  # a date alone: midnight UTC


def test_atom_entries() -> None:
    analysis, timeline, note = own("atom.xml").entries
    assert analysis == Entry(
        key="tag:news.example.org,2022:analysis/gas-price",
        url="https://news.example.org/analysis/gas-price.html",  # the alternate link, not the replies
        title="Why the gas price rose & what followed",
        summary="Liquefied gas doubled in price on 1 January.",
        content="The price cap ended on New Year's Day.\n\nDrivers in Zhanaozen protested the next morning.",
        published_at=utc(2022, 1, 14, 3, 0),  # published, not updated
        author="Aigerim Sadykova",
    )
    assert (timeline.url, timeline.published_at) == (
        "https://news.example.org/feeds/timeline.html",
        utc(2022, 1, 13, 18),
    )
    assert (note.key, note.url, note.summary) == ("tag:news.example.org,2022:analysis/note-3", None, "Editor's note.")


def test_json_feed_1_0() -> None:
    feed = own("jsonfeed-1.0.json", "application/feed+json")
    sworn_in, placeholder = feed.entries
    assert sworn_in == Entry(
        key="1046",  # a number in 1.0 feeds in the wild
        url="https://news.example.org/stories/ministers-sworn-in.html",
        title="New ministers sworn in",
        summary=None,
        content="The cabinet met for the first time.\n\nIts first decree lowered gas prices.",
        published_at=utc(2022, 1, 11, 9, 0),
        author="Daniyar Ospanov",  # 1.0's single author
    )
    assert (placeholder.key, placeholder.url, placeholder.published_at) == ("herald-1047", None, None)
    assert feed.warning is None


def test_json_feed_1_1() -> None:
    feed = own("jsonfeed-1.1.json", "application/feed+json")
    border, markets = feed.entries
    assert border == Entry(
        key="herald-1050",
        url="https://news.example.org/stories/border-reopens.html",  # relative to feed_url
        title="Border crossing reopens",
        summary="Lorries queue at Khorgos.",
        content="Lorries queued for kilometres at Khorgos on Friday.\n\nCustoms officers worked through the night.",
        published_at=utc(2022, 1, 14, 7, 45),  # date_modified when there is no date_published
        author="Aigerim Sadykova, Daniyar Ospanov",  # 1.1's authors
    )
    assert (markets.url, markets.content) == (
        "https://wire.example.com/2022/01/14/markets",
        "The tenge held its ground.",
    )
    assert feed.warning == "ill-formed feed: 1 items are not objects"  # the stray string is skipped


# ---------------------------------------------------------------------- own: encodings

CYRILLIC_TITLES = [
    "Аэропорт Алматы возобновил работу",
    "Войска ОДКБ начали покидать страну",
    "Цены на газ снизили по всей области",
]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("koi8-r-undeclared.xml", None),
        ("koi8-r-undeclared.xml", "application/rss+xml"),
        ("koi8-r-undeclared.xml", "text/xml"),
        ("koi8-r-undeclared.xml", "text/xml; charset=koi8-r"),
        ("windows-1251-undeclared.xml", None),
        ("windows-1251-undeclared.xml", "application/xml; charset=windows-1251"),
        ("utf-16le-without-bom.xml", None),
        ("utf-16be-without-bom.xml", "application/rss+xml"),
    ],
)
def test_cyrillic_feeds_in_any_encoding(name: str, content_type: str | None) -> None:
    feed = own(name, content_type)
    assert feed.title == "Степной вестник: новости"
    assert [e.title for e in feed.entries] == CYRILLIC_TITLES
    assert feed.entries[1].summary and "самолёты вылетели на рассвете" in feed.entries[1].summary
    assert feed.warning is None


@pytest.mark.parametrize(
    "name", ["koi8-r-undeclared.xml", "windows-1251-undeclared.xml", "windows-1252-undeclared.xml"]
)
def test_undeclared_fixtures_declare_nothing(name: str) -> None:
    """What makes the charset detection necessary: neither UTF-8 nor declared."""
    body = (OWN / name).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert b"encoding=" not in body and not body.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"))


@pytest.mark.parametrize(
    ("name", "summary"),
    [
        # Short Western texts fit several code pages; Windows-1252 is kept (its curly quotes).
        ("windows-1252-undeclared.xml", "inflação, salários e educação — “um encontro tenso”, disseram"),
        ("iso-8859-1-declared.xml", 'inflação, salários e educação - "um encontro tenso", disseram'),
    ],
)
def test_western_feeds_without_utf8(name: str, summary: str) -> None:
    (entry,) = own(name).entries
    assert entry.title == "Eleições: candidatos debatem a economia em São Paulo"
    assert entry.summary and summary in entry.summary


# ------------------------------------------------------------- own: ill-formed, refused


@pytest.mark.parametrize(
    ("name", "url", "title"),
    [
        ("illformed-leading-blank-line.xml", "https://news.example.org/stories/readable.html", "Still readable"),
        ("illformed-bare-ampersand.xml", "https://news.example.org/qa/prices-wages.html",
         "Prices & wages: your questions"),
    ],
)  # fmt: skip
def test_ill_formed_but_readable_feeds_are_read_with_a_warning(name: str, url: str, title: str) -> None:
    feed = own(name)
    assert [(e.url, e.title) for e in feed.entries] == [(url, title)]
    assert feed.warning and feed.warning.startswith("ill-formed feed: ")


def test_a_truncated_feed_is_a_parse_error() -> None:
    error = refusal("truncated.xml", "application/rss+xml")
    assert error.kind == "parse_error"
    assert error.args[0].startswith("ill-formed feed: ")


@pytest.mark.parametrize(
    ("name", "content_type", "what"),
    [
        ("page.html", "text/html", "not a feed (an HTML page)"),
        ("page.html", None, "not a feed (an HTML page)"),
        ("pixel.png", "image/png", "not a feed (image/png)"),
        ("subscriptions.opml", "text/x-opml", "not a feed (text/x-opml)"),
        ("subscriptions.opml", None, "not a feed (document <opml>)"),
        ("empty.xml", "application/rss+xml", "empty body"),
        ("not-a-feed.json", "application/json", "not a feed (JSON without a JSON Feed version)"),
        ("not-a-feed.json", None, "not a feed (JSON without a JSON Feed version)"),
    ],
)
def test_documents_that_are_not_feeds_are_refused(name: str, content_type: str | None, what: str) -> None:
    error = refusal(name, content_type)
    assert (error.kind, error.args[0]) == ("not_a_feed", what)


# ------------------------------------------------------ own: text, links, dates, keys


def test_html_in_titles_and_text_becomes_plain_text() -> None:
    rss = own("rss20.xml")
    assert rss.title == "Steppe Herald & Wire"
    assert rss.entries[0].title == "Almaty airport reopens after a week"  # no <b>
    assert rss.entries[0].summary == "Flights resume from Almaty & Nur-Sultan.\n\nSecond paragraph."  # no script
    assert own("atom.xml").title == "Steppe Herald Analysis"  # type="html"
    for name in ("rss20.xml", "atom.xml", "jsonfeed-1.0.json"):
        for entry in own(name).entries:
            for text in (entry.title, entry.summary, entry.content):
                assert text is None or not re.search(r"<\w|&\w+;|\xa0", text), (name, text)


CONTROL_RSS = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Desk{title}</title>'
    "<item><title>Story{title}</title><link>https://news.example.org/story</link>"
    "<description>{description}</description></item></channel></rss>"
)


@pytest.mark.parametrize(
    ("title", "description"),
    [
        ("", "&lt;p&gt;One&amp;#1;two&lt;/p&gt;"),  # a reference to U+0001 in escaped HTML
        ("", "&lt;p&gt;One&amp;#x1B;two&lt;/p&gt;"),  # to ESC, in hexadecimal
        ("", "&lt;p&gt;One\x0btwo&lt;/p&gt;"),  # a raw vertical tab: ill-formed, still read
        ("", "<![CDATA[<div>One\x01two<br>three</div>]]>"),
        ("&amp;#2;", "&lt;b&gt;One&lt;/b&gt;two"),  # in titles as well
    ],
)
def test_control_characters_in_html_are_dropped_not_fatal(title: str, description: str) -> None:
    body = CONTROL_RSS.format(title=title, description=description).encode()
    parsed = parse_feed(body, url=FEED_URL)
    (entry,) = parsed.entries
    assert (parsed.title, entry.title, entry.url) == ("Desk", "Story", "https://news.example.org/story")
    assert entry.summary in ("Onetwo", "One two", "Onetwo\nthree")


def test_control_characters_in_a_json_feed_are_dropped() -> None:
    item = {
        "id": "1",
        "url": "https://news.example.org/story",
        "title": "Story\u001b[2J",
        "content_html": "<p>One\u0001two</p>",
    }
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "Desk", "items": [item]}).encode()
    (entry,) = parse_feed(body, url=FEED_URL).entries
    assert (entry.title, entry.content) == ("Story", "Onetwo")  # an escape sequence goes whole


@pytest.mark.parametrize(
    ("name", "index", "url"),
    [
        ("rss20.xml", 0, "https://news.example.org/stories/almaty-airport-reopens.html"),  # ../stories/…
        ("atom.xml", 1, "https://news.example.org/feeds/timeline.html"),  # timeline.html
        ("jsonfeed-1.0.json", 0, "https://news.example.org/stories/ministers-sworn-in.html"),  # /stories/…
        ("jsonfeed-1.1.json", 0, "https://news.example.org/stories/border-reopens.html"),  # against feed_url
        ("rss20.xml", 2, None),  # javascript:
        ("atom.xml", 2, None),  # no link at all
    ],
)
def test_relative_links_are_made_absolute(name: str, index: int, url: str | None) -> None:
    assert own(name).entries[index].url == url


def test_channel_links_are_made_absolute() -> None:
    assert own("rss20.xml").link == "https://news.example.org/world/"
    assert own("jsonfeed-1.0.json").link == "https://news.example.org/"


@pytest.mark.parametrize(
    ("name", "index", "published_at"),
    [
        ("rss20.xml", 0, utc(2022, 1, 13, 2, 30)),  # RFC 822, +0600
        ("rss20.xml", 1, utc(2022, 1, 12, 17, 5)),  # RFC 822, GMT
        ("rss20.xml", 2, utc(2022, 1, 11, 14, 0)),  # RFC 822, EST
        ("rss10.rdf", 0, utc(2022, 1, 13, 4, 15)),  # ISO 8601, +06:00
        ("rss10.rdf", 1, utc(2022, 1, 11)),  # ISO 8601, a date alone
        ("atom.xml", 0, utc(2022, 1, 14, 3, 0)),
        ("jsonfeed-1.0.json", 0, utc(2022, 1, 11, 9, 0)),  # RFC 3339
        ("rss20-without-links.xml", 2, utc(2022, 1, 15)),
        # Placeholders, not publication dates: the epoch, 1900, year 1.
        ("rss20-without-links.xml", 0, None),
        ("rss20-without-links.xml", 1, None),
        ("jsonfeed-1.0.json", 1, None),
        ("rss090.rdf", 0, None),  # no date at all
    ],
)
def test_dates_are_aware_utc_and_placeholders_are_dropped(name: str, index: int, published_at: datetime | None) -> None:
    assert own(name).entries[index].published_at == published_at


def test_entries_without_links_are_keyed_by_guid_else_by_a_hash_of_their_text() -> None:
    permalink, opaque, bare = own("rss20-without-links.xml").entries
    assert (permalink.key, permalink.url) == ("https://news.example.org/bulletins/1042",) * 2  # the guid is the link
    assert (opaque.key, opaque.url) == ("bulletin-1043", None)
    # Keys are stored: the same entry must get the same key in every release.
    text = "Neither link nor guid\nWater will be off on Abay Avenue on Saturday morning."
    assert (bare.key, bare.url) == ("sha256:" + hashlib.sha256(text.encode()).hexdigest(), None)
    assert [e.key for e in own("rss20-without-links.xml").entries] == [permalink.key, opaque.key, bare.key]


# --------------------------------------------------------------------- own: quick scan

OWN_FILES = sorted(path.name for path in OWN.iterdir())
# Where the quick scan answers: well-formed feeds whose every entry has one absolute link.
# Every other fixture gets None, feeds and documents that are not feeds alike.
SCANNED = {
    "rss10.rdf": ["https://news.example.org/stories/csto-troops-leave.html",
                  "https://news.example.org/stories/internet-restored.html"],
    "rss090.rdf": ["https://news.example.org/stories/curfew-lifted.html"],
    "iso-8859-1-declared.xml": ["https://news.example.org/pt/debate.html"],
    "utf-16le-without-bom.xml": ["https://news.example.org/ru/aeroport.html", "https://news.example.org/ru/odkb.html",
                                 "https://news.example.org/ru/gaz.html"],
}  # fmt: skip


@pytest.mark.parametrize("name", OWN_FILES)
def test_entry_links_answer_only_when_unambiguous_and_agree_with_the_full_parse(name: str) -> None:
    """Relative, missing or scripted links, JSON Feed, ill-formed XML and bodies in an
    undeclared encoding all get None (parse in full); every answer is the full parse's."""
    body = (OWN / name).read_bytes()
    links = entry_links(body, url=FEED_URL)
    assert links == SCANNED.get(name)
    if links is not None:
        assert links == [entry.url for entry in parse_feed(body, url=FEED_URL).entries]


def test_the_quick_scan_expectations_name_existing_fixtures() -> None:
    assert set(SCANNED) <= set(OWN_FILES)


# ---------------------------------------------------------------- own: over HTTP

HTTP_OWN = {
    # path: (fixture, Content-Type sent, an entry title expected)
    "/koi8": ("koi8-r-undeclared.xml", "text/xml", CYRILLIC_TITLES[0]),
    "/koi8-declared": ("koi8-r-undeclared.xml", "application/rss+xml; charset=KOI8-R", CYRILLIC_TITLES[0]),
    "/cp1251": ("windows-1251-undeclared.xml", "application/rss+xml", CYRILLIC_TITLES[1]),
    "/utf16": ("utf-16le-without-bom.xml", "application/xml", CYRILLIC_TITLES[2]),
    "/cp1252": ("windows-1252-undeclared.xml", "text/xml", "Eleições: candidatos debatem a economia em São Paulo"),
    "/json": ("jsonfeed-1.1.json", "application/feed+json", "Border crossing reopens"),
}


def test_own_encodings_survive_http() -> None:
    with HTTPServer() as server:
        for path, (name, content_type, _title) in HTTP_OWN.items():
            server.route(path, Response(body=(OWN / name).read_bytes(), headers={"Content-Type": content_type}))

        async def fetch_all() -> dict[str, ParsedFeed]:
            parsed = {}
            async with Fetcher(PollSettings(allow_private_networks=True, timeout=5)) as fetcher:
                for path in HTTP_OWN:
                    result = await fetcher.fetch(server.url(path))
                    assert result.body is not None
                    parsed[path] = parse_feed(result.body, url=result.url, content_type=result.content_type)
            return parsed

        parsed = asyncio.run(fetch_all())
    for path, (_name, _content_type, title) in HTTP_OWN.items():
        assert title in [e.title for e in parsed[path].entries], path


# ---------------------------------------------------------------------- own: inline


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


# ------------------------------------------------------------------ own: inline details

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
    ("name", "kind", "count"),
    [("trafilatura__sitemap.xml", "sitemap", 84), ("trafilatura__sitemap2.xml", "sitemapindex", 0),
     ("trafilatura__sitemap-hreflang.xml", "sitemap", 4), ("trafilatura__sitemap.xml.gz", "sitemap", 84)],
)  # fmt: skip
def test_real_sitemaps_are_read_as_sources(name: str, kind: str, count: int) -> None:
    document = real(name, "application/xml")
    assert (document.format, len(document.entries)) == (kind, count)
    assert all(e.url and e.url.startswith("http") for e in document.entries)
    if kind == "sitemapindex":
        # Newest first by lastmod (2005 before 2004).
        assert document.sitemaps == ("http://www.example.com/sitemap2.xml.gz", "http://www.example.com/sitemap1.xml.gz")


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
