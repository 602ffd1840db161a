"""OPML subscription lists as feed readers export them, read and written back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.errors import InputError
from monitor.sources.opml import Outline, read_opml, write_opml
from tests.support.paths import ROOT

OPML = ROOT / "tests" / "fixtures" / "opml"
NOW = datetime(2024, 1, 6, 10, 0, tzinfo=UTC)


def test_a_miniflux_export() -> None:
    feeds = read_opml((OPML / "miniflux.opml").read_bytes())
    assert [(f.title, f.tags) for f in feeds] == [
        ("Ars Technica - All content", ["All"]),
        ("LWN.net", ["All"]),
        ("Eurasianet", ["Central Asia"]),
        ("The Diplomat & Friends", ["Central Asia"]),
        ("Радио Азаттык", ["Central Asia"]),
        ("BBC News - World", ["World"]),
    ]
    assert feeds[0].url == "https://feeds.arstechnica.com/arstechnica/index"
    assert feeds[0].site_url == "https://arstechnica.com"
    assert all(f.is_feed for f in feeds)


def test_a_freshrss_export_merges_a_feed_of_two_categories_and_knows_scraped_pages() -> None:
    feeds = {f.title: f for f in read_opml((OPML / "freshrss.opml").read_bytes())}
    assert feeds["Al Jazeera"].tags == ["News", "Tech"]
    assert feeds["Reuters World"].url == "https://www.reutersagency.com/feed/?best-topics=world&post_type=best"
    assert not feeds["Kazinform"].is_feed and feeds["Kazinform"].kind == "HTML+XPath"
    assert len(feeds) == 5


def test_nested_folders_and_category_attributes_are_tags() -> None:
    data = b"""<opml version="2.0"><head/><body>
      <outline text="News"><outline title="Asia"><outline text="Feed" xmlUrl="https://a.example/rss"
        category="/wire/asia,/Daily"/></outline></outline>
      <outline text="Loose" xmlUrl="https://b.example/rss"/></body></opml>"""
    feeds = read_opml(data)
    assert [(f.title, f.tags) for f in feeds] == [("Feed", ["News", "Asia", "wire", "asia", "Daily"]), ("Loose", [])]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not OPML (invalid XML"),
        (b"<html><body>hello</body></html>", "not OPML (the document is <html>, not <opml>)"),
        (b"<opml version='2.0'><head/></opml>", "not OPML (no <body>)"),
        (b"<opml><body><outline", "not OPML (invalid XML"),
        (
            (
                b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
                b'<opml version="2.0"><body><outline text="&lol2;" xmlUrl="https://a.example/"/></body></opml>'
            ),
            "refused: the document declares a DTD",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE opml SYSTEM "file:///etc/passwd"><opml version="2.0"><body/></opml>',
            "refused: the document declares a DTD",
        ),
    ],
)
def test_bad_opml_is_one_clear_line(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as caught:
        read_opml(data, source="subs.opml")
    assert str(caught.value).startswith(f"subs.opml: {message}")
    assert "\n" not in str(caught.value)


def test_what_is_written_reads_back_the_same() -> None:
    feeds = [
        Outline(
            url="https://a.example/rss?x=1&y=2", title="A & B <news>", site_url="https://a.example/", tags=["w", "z"]
        ),
        Outline(url="https://b.example/rss", title="Bee\x01", tags=[]),
    ]
    text = write_opml(feeds, title="News monitor feeds", now=NOW)
    assert "<dateCreated>Sat, 06 Jan 2024 10:00:00 GMT</dateCreated>" in text
    again = read_opml(text.encode("utf-8"))
    assert [(f.url, f.title, f.site_url, f.tags) for f in again] == [
        ("https://a.example/rss?x=1&y=2", "A & B <news>", "https://a.example/", ["w", "z"]),
        ("https://b.example/rss", "Bee", None, []),
    ]
