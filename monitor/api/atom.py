"""The Atom document of recent mentions (RFC 4287), built with ElementTree.

ElementTree escapes text and attributes; what it does not do is drop characters XML
1.0 forbids (control characters from a sloppy feed), so ``_xml_text`` does that first.
Entry ids are tag URIs (RFC 4151) made of the article id and the day it was stored, so
an entry keeps its id whichever way the server is reached.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote
from xml.etree import ElementTree as ET

from monitor.api.queries import MentionedArticle
from monitor.times import iso_utc

ATOM_NS = "http://www.w3.org/2005/Atom"
MEDIA_TYPE = "application/atom+xml; charset=utf-8"
TAG_AUTHORITY = "news-monitor"
MAX_SNIPPETS = 5

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(value: str) -> str:
    return _NOT_XML.sub("", value)


def _child(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


def entry_id(item: MentionedArticle) -> str:
    day = item.article.fetched_at.astimezone(UTC).strftime("%Y-%m-%d")
    return f"tag:{TAG_AUTHORITY},{day}:article/{item.article.id}"


def _summary(item: MentionedArticle) -> str:
    lines: list[str] = []
    for mention in item.mentions:
        line = f"{mention.entity}: {mention.snippet}"
        if line not in lines:
            lines.append(line)
    extra = len(lines) - MAX_SNIPPETS
    lines = lines[:MAX_SNIPPETS] + ([f"(and {extra} more)"] if extra > 0 else [])
    return "\n".join(lines)


def _entry(feed: ET.Element, item: MentionedArticle) -> None:
    article = item.article
    entry = _child(feed, "entry")
    _child(entry, "id", entry_id(item))
    _child(entry, "title", article.title or article.url, type="text")
    _child(entry, "link", rel="alternate", href=article.url)
    _child(entry, "updated", iso_utc(article.fetched_at))
    if article.published_at is not None:
        _child(entry, "published", iso_utc(article.published_at))
    if article.author:
        _child(_child(entry, "author"), "name", article.author)
    for entity in sorted({m.entity for m in item.mentions}):
        _child(entry, "category", term=entity)
    if item.feed:
        _child(_child(entry, "source"), "title", item.feed)
    _child(entry, "summary", _summary(item), type="text")


def mentions_feed(
    items: Sequence[MentionedArticle],
    *,
    entities: Sequence[str],
    self_url: str,
    alternate_url: str,
    now: datetime,
) -> bytes:
    """The Atom document for ``items`` (newest first), UTF-8 encoded."""
    # The default namespace as a plain attribute: no process-wide prefix registry.
    feed = ET.Element("feed", {"xmlns": ATOM_NS})
    selector = quote(",".join(sorted(entities)) or "all", safe=",")
    _child(feed, "id", f"tag:{TAG_AUTHORITY},2024:mentions/{selector}")
    names = ", ".join(sorted(entities)) or "tracked entities"
    _child(feed, "title", f"News monitor: mentions of {names}", type="text")
    newest = max((i.article.fetched_at for i in items), default=now)
    _child(feed, "updated", iso_utc(newest))
    _child(_child(feed, "author"), "name", "news-monitor")
    _child(feed, "link", rel="self", href=self_url, type="application/atom+xml")
    _child(feed, "link", rel="alternate", href=alternate_url, type="text/html")
    _child(feed, "generator", "news-monitor")
    for item in items:
        _entry(feed, item)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)  # bytes for any encoding but "unicode"
    return document
