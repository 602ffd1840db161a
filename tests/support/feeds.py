"""Feeds and article pages as news sites serve them, for the tests and the benchmarks.

Builds the four feed formats the monitor reads (RSS 2.0, RSS 1.0, Atom, JSON Feed) from
the same ``Item`` values, and article pages with site boilerplate around the story.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape

FEED_TYPES = {
    "rss20": "application/rss+xml; charset=utf-8",
    "rss10": "application/rdf+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json",
}


@dataclass(frozen=True)
class Item:
    title: str
    link: str | None
    summary: str | None = None
    content: str | None = None
    published: datetime = datetime(2024, 1, 6, 10, 0, tzinfo=UTC)
    author: str | None = None
    guid: str | None = None


def rss20(items: list[Item], *, title: str = "News", link: str = "https://example.org/", build: str = "") -> str:
    rows = []
    for item in items:
        parts = [f"<title>{escape(item.title)}</title>"]
        if item.link:
            parts.append(f"<link>{escape(item.link)}</link>")
        parts.append(f'<guid isPermaLink="false">{escape(item.guid or item.link or item.title)}</guid>')
        parts.append(f"<pubDate>{format_datetime(item.published)}</pubDate>")
        if item.summary:
            parts.append(f"<description>{escape(item.summary)}</description>")
        if item.content:
            parts.append(f"<content:encoded><![CDATA[{item.content}]]></content:encoded>")
        if item.author:
            parts.append(f"<dc:creator>{escape(item.author)}</dc:creator>")
        rows.append("<item>" + "".join(parts) + "</item>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{escape(title)}</title><link>{escape(link)}</link><description>{escape(title)}</description>"
        f"<lastBuildDate>{escape(build)}</lastBuildDate>" + "".join(rows) + "</channel></rss>"
    )


def rss10(items: list[Item], *, title: str = "News", link: str = "https://example.org/") -> str:
    refs = "".join(f'<rdf:li rdf:resource="{escape(i.link or "")}"/>' for i in items)
    rows = "".join(
        f'<item rdf:about="{escape(i.link or "")}"><title>{escape(i.title)}</title>'
        f"<link>{escape(i.link or '')}</link>"
        f"<description>{escape(i.summary or '')}</description>"
        f"<dc:date>{i.published.isoformat()}</dc:date>"
        + (f"<dc:creator>{escape(i.author)}</dc:creator>" if i.author else "")
        + "</item>"
        for i in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
        'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f'<channel rdf:about="{escape(link)}"><title>{escape(title)}</title><link>{escape(link)}</link>'
        f"<description>{escape(title)}</description><items><rdf:Seq>{refs}</rdf:Seq></items></channel>"
        f"{rows}</rdf:RDF>"
    )


def atom(items: list[Item], *, title: str = "News", link: str = "https://example.org/") -> str:
    rows = []
    for item in items:
        parts = [
            f"<title>{escape(item.title)}</title>",
            f"<id>{escape(item.guid or item.link or item.title)}</id>",
            f"<updated>{item.published.isoformat()}</updated>",
        ]
        if item.link:
            parts.append(f'<link rel="alternate" href="{escape(item.link)}"/>')
        if item.summary:
            parts.append(f"<summary>{escape(item.summary)}</summary>")
        if item.content:
            parts.append(f'<content type="html">{escape(item.content)}</content>')
        if item.author:
            parts.append(f"<author><name>{escape(item.author)}</name></author>")
        rows.append("<entry>" + "".join(parts) + "</entry>")
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f'<title>{escape(title)}</title><id>{escape(link)}</id><link href="{escape(link)}"/>'
        f"<updated>2024-01-06T10:00:00Z</updated>" + "".join(rows) + "</feed>"
    )


def json_feed(items: list[Item], *, title: str = "News", link: str = "https://example.org/") -> str:
    entries = []
    for item in items:
        entry: dict[str, object] = {
            "id": item.guid or item.link or item.title,
            "title": item.title,
            "date_published": item.published.isoformat(),
        }
        if item.link:
            entry["url"] = item.link
        if item.summary:
            entry["summary"] = item.summary
        if item.content:
            entry["content_html"] = item.content
        if item.author:
            entry["authors"] = [{"name": item.author}]
        entries.append(entry)
    return json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "title": title, "home_page_url": link, "items": entries}
    )


RENDER = {"rss20": rss20, "rss10": rss10, "atom": atom, "json": json_feed}


def article_page(title: str, text: str, *, author: str | None = None, date: str | None = None) -> str:
    """A news page: navigation, the story in paragraphs, related links, a footer."""
    paragraphs = "".join(f"<p>{escape(p.strip())}</p>" for p in text.split("\n") if p.strip())
    meta = f'<meta name="author" content="{escape(author)}">' if author else ""
    meta += f'<meta property="article:published_time" content="{date}">' if date else ""
    byline = f'<p class="byline">By {escape(author)}</p>' if author else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>{meta}</head>'
        '<body><header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a>'
        "</nav></header><main><article>"
        f"<h1>{escape(title)}</h1>{byline}{paragraphs}</article>"
        '<aside><h2>Related</h2><ul><li><a href="/x">Markets close higher</a></li>'
        '<li><a href="/y">Weather warning issued</a></li></ul></aside></main>'
        "<footer><p>© Example News. All rights reserved.</p></footer></body></html>"
    )


_WORDS = [
    "minister", "council", "budget", "river", "bridge", "railway", "harbour", "school", "hospital", "market",
    "farmers", "energy", "water", "housing", "police", "court", "election", "museum", "festival", "airport",
    "factory", "workers", "teachers", "doctors", "students", "villages", "mountains", "border", "customs", "bank",
    "currency", "inflation", "exports", "wheat", "cotton", "oil", "gas", "pipeline", "highway", "tunnel",
    "stadium", "theatre", "library", "archive", "report", "survey", "census", "statement", "agreement", "treaty",
    "summit", "delegation", "committee", "reform", "announced", "approved", "rejected", "delayed", "opened",
    "closed", "visited", "signed", "inspected", "promised", "criticised", "welcomed", "questioned", "reviewed",
    "extended", "reduced", "increased", "measured", "expected", "yesterday", "today", "tomorrow", "quietly",
    "suddenly", "finally", "slowly", "publicly", "officially", "again", "northern", "southern", "eastern",
    "western", "regional", "national", "local", "foreign", "private", "public",
]  # fmt: skip


def story(topic: str, sentences: int = 14) -> str:
    """A distinct text mentioning ``topic``: different topics share no word sequences.

    Sentences are drawn at random (seeded by the topic) so that no two stories look
    like edited copies of each other to the dedup.
    """
    rng = random.Random(topic)
    lines = []
    for n in range(sentences):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(12, 20))]
        if n % 4 == 0:
            words.insert(rng.randint(1, len(words) - 1), topic)
        sentence = " ".join(words)
        lines.append(sentence[0].upper() + sentence[1:] + ".")
    return "\n".join(lines)


def costly_page(spans: int = 50_000) -> str:
    """A page of about a megabyte that trafilatura takes seconds over (some 10 s for 50,000 spans).

    One paragraph of many short inline elements: the extraction's cost grows faster
    than the page, as with the crafted pages a hostile site can serve.
    """
    words = "".join(f"<span>word{n} </span>" for n in range(spans))
    return (
        f"<!DOCTYPE html><html><head><title>Costly</title></head><body><article><p>{words}</p></article></body></html>"
    )
