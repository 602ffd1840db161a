"""Atom documents (RFC 4287) of archived articles, built with ElementTree.

Two feeds share one rendering: the recent mentions (``mentions_feed``) and the articles
an alert rule fires on (``rule_feed``). Each entry links the original story
(``rel="alternate"``) and the article's page in the archive (``rel="related"``), gives
the times in UTC, the entities (and the rule) as categories and a plain-text summary.

ElementTree escapes text and attributes; what it does not do is drop characters XML
1.0 forbids (control characters from a sloppy feed), so ``_xml_text`` does that first.
Entry ids are tag URIs (RFC 4151) made of the article id and the day it was stored, so
an entry keeps its id whichever way the server is reached, and in every feed it is in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote
from xml.etree import ElementTree as ET

from monitor.api.queries import MentionedArticle
from monitor.models import ArticleSummary
from monitor.times import iso_utc

ATOM_NS = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
TAG_AUTHORITY = "news-monitor"
ENTITY_SCHEME = f"tag:{TAG_AUTHORITY},2024:entities"
RULE_SCHEME = f"tag:{TAG_AUTHORITY},2024:rules"
MAX_SNIPPETS = 5

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Entry:
    """One article as an Atom entry."""

    article_id: int
    url: str
    title: str | None
    fetched_at: datetime
    published_at: datetime | None
    summary: str
    feed: str | None = None
    author: str | None = None
    entities: Sequence[str] = ()
    rules: Sequence[str] = ()


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _child(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


def entry_id(article_id: int, fetched_at: datetime) -> str:
    day = fetched_at.astimezone(UTC).strftime("%Y-%m-%d")
    return f"tag:{TAG_AUTHORITY},{day}:article/{article_id}"


def article_page_url(base_url: str, article_id: int) -> str:
    """The article's page in the archive, under the page's base URL."""
    return f"{base_url.rstrip('/')}/articles/{article_id}"


def _mentions_summary(item: MentionedArticle) -> str:
    lines: list[str] = []
    for mention in item.mentions:
        line = f"{mention.entity}: {mention.snippet}"
        if line not in lines:
            lines.append(line)
    extra = len(lines) - MAX_SNIPPETS
    lines = lines[:MAX_SNIPPETS] + ([f"(and {extra} more)"] if extra > 0 else [])
    return "\n".join(lines)


def mention_entry(item: MentionedArticle) -> Entry:
    article = item.article
    assert article.id is not None  # a stored row
    return Entry(
        article_id=article.id,
        url=article.url,
        title=article.title,
        fetched_at=article.fetched_at,
        published_at=article.published_at,
        summary=_mentions_summary(item),
        feed=item.feed,
        author=article.author,
        entities=sorted({m.entity for m in item.mentions}),
    )


def rule_entry(item: ArticleSummary, rule: str) -> Entry:
    """A search result of ``rule``'s query: its entities, then its snippet, as the summary."""
    lines = [f"Entities: {', '.join(item.entities)}"] if item.entities else []
    if item.snippet:
        lines.append(item.snippet)
    return Entry(
        article_id=item.id,
        url=item.url,
        title=item.title,
        fetched_at=item.fetched_at,
        published_at=item.published_at,
        summary="\n".join(lines),
        feed=item.feed,
        entities=item.entities,
        rules=(rule,),
    )


def _entry(feed: ET.Element, item: Entry, base_url: str) -> None:
    entry = _child(feed, "entry")
    _child(entry, "id", entry_id(item.article_id, item.fetched_at))
    _child(entry, "title", item.title or item.url, type="text")
    _child(entry, "link", rel="alternate", href=item.url)
    _child(
        entry,
        "link",
        rel="related",
        type="text/html",
        title="In the archive",
        href=article_page_url(base_url, item.article_id),
    )
    _child(entry, "updated", iso_utc(item.fetched_at))
    if item.published_at is not None:
        _child(entry, "published", iso_utc(item.published_at))
    if item.author:
        _child(_child(entry, "author"), "name", item.author)
    for rule in item.rules:
        _child(entry, "category", term=rule, scheme=RULE_SCHEME, label=f"rule {rule}")
    for entity in sorted(set(item.entities)):
        _child(entry, "category", term=entity, scheme=ENTITY_SCHEME)
    if item.feed:
        _child(_child(entry, "source"), "title", item.feed)
    _child(entry, "summary", item.summary, type="text")


def _document(
    entries: Sequence[Entry],
    *,
    feed_id: str,
    title: str,
    self_url: str,
    alternate_url: str,
    base_url: str,
    now: datetime,
) -> bytes:
    # The default namespace as a plain attribute: no process-wide prefix registry.
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    _child(feed, "id", feed_id)
    _child(feed, "title", title, type="text")
    newest = max((e.fetched_at for e in entries), default=now)
    _child(feed, "updated", iso_utc(newest))
    _child(_child(feed, "author"), "name", "news-monitor")
    _child(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    _child(feed, "link", rel="alternate", href=alternate_url, type="text/html")
    _child(feed, "generator", "news-monitor")
    for entry in entries:
        _entry(feed, entry, base_url)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)  # bytes for any encoding but "unicode"
    return document


def mentions_feed(
    items: Sequence[MentionedArticle],
    *,
    entities: Sequence[str],
    self_url: str,
    alternate_url: str,
    now: datetime,
) -> bytes:
    """The Atom document of recent mentions (``items`` newest first), UTF-8 encoded.

    ``alternate_url`` is the web page's base URL; article pages are under it.
    """
    selector = quote(",".join(sorted(entities)) or "all", safe=",")
    names = ", ".join(sorted(entities)) or "tracked entities"
    return _document(
        [mention_entry(item) for item in items],
        feed_id=f"tag:{TAG_AUTHORITY},2024:mentions/{selector}",
        title=f"News monitor: mentions of {names}",
        self_url=self_url,
        alternate_url=alternate_url,
        base_url=alternate_url,
        now=now,
    )


def rule_feed(
    items: Sequence[ArticleSummary],
    *,
    rule: str,
    self_url: str,
    alternate_url: str,
    base_url: str,
    now: datetime,
) -> bytes:
    """The Atom document of what ``rule`` fires on (``items``: its search results, newest first).

    ``alternate_url`` is the search page for the rule's query; article pages are under
    ``base_url``.
    """
    return _document(
        [rule_entry(item, rule) for item in items],
        feed_id=f"{RULE_SCHEME}/{quote(rule, safe='')}",
        title=f"News monitor: rule {rule}",
        self_url=self_url,
        alternate_url=alternate_url,
        base_url=base_url,
        now=now,
    )


__all__ = ["MEDIA_TYPE", "Entry", "article_page_url", "entry_id", "mentions_feed", "rule_feed"]
