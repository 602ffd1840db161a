"""Sitemaps as a source: a urlset, a sitemap index, a Google News sitemap, gzipped or not.

A sitemap lists pages, not stories: each ``<url>`` becomes an ``Entry`` whose link is
its ``<loc>`` and whose date is the news publication date, else ``<lastmod>``; a news
sitemap (``news:`` namespace) adds the title and the language. From there an entry goes
the way a feed's entries go (known-URL check, page fetch, extraction, dedup, storing,
``poll.max_new_entries``).

A sitemap index lists sitemaps: ``ParsedFeed.sitemaps`` carries their URLs, newest
first by ``<lastmod>``, at most ``MAX_CHILDREN``; the refresher fetches them (one level
down, children of a child index are not followed) and merges their entries.

Safety: lxml parses with entity resolution, DTD loading and network access off, so a
"billion laughs" or an external entity reads nothing; a gzipped body is inflated up to
``MAX_INFLATED`` bytes (the protocol's own limit, 50 MB), so a gzip bomb stops there.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime

import lxml.etree

from monitor.errors import FetchError
from monitor.outcomes import FailureKind
from monitor.pipeline.dates import text_to_utc

# The protocol caps a sitemap at 50 MB uncompressed and 50,000 URLs.
MAX_INFLATED = 50_000_000
MAX_URLS = 50_000
# Child sitemaps of an index fetched in one poll, the newest first.
MAX_CHILDREN = 10

ROOTS = ("urlset", "sitemapindex")
_GZIP_MAGIC = b"\x1f\x8b"
_NEWS = "http://www.google.com/schemas/sitemap-news/0.9"
_PARSER = lxml.etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=True, remove_comments=True
)


def inflate(body: bytes) -> bytes:
    """A gzipped body inflated (at most ``MAX_INFLATED`` bytes); any other body as it is."""
    if not body.startswith(_GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        inflated = inflater.decompress(body, MAX_INFLATED)
    except zlib.error as exc:
        raise FetchError(FailureKind.PARSE_ERROR, f"cannot inflate the gzipped body: {exc}") from None
    if inflater.unconsumed_tail:
        raise FetchError(FailureKind.TOO_LARGE, f"gzipped sitemap larger than {MAX_INFLATED} bytes inflated")
    if not inflater.eof:
        raise FetchError(FailureKind.PARSE_ERROR, "the gzipped body is cut short")
    return inflated


def head(body: bytes, size: int = 8192) -> bytes:
    """The first ``size`` bytes of ``body``, inflated first when it is gzipped."""
    if not body.startswith(_GZIP_MAGIC):
        return body[:size]
    try:
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(body, size)
    except zlib.error:
        return b""


def read_sitemap(body: bytes) -> tuple[str, list[tuple[str, dict[str, str | None]]]]:
    """``(root, items)``: the root's local name and, per ``<url>`` or ``<sitemap>``, its
    ``loc`` and the texts of its other fields (``lastmod``, ``news:title``, …)."""
    try:
        # With ``recover`` a document without elements comes back as None.
        root: lxml.etree._Element | None = lxml.etree.fromstring(inflate(body), _PARSER)
    except lxml.etree.XMLSyntaxError as exc:
        raise FetchError(FailureKind.PARSE_ERROR, f"ill-formed sitemap: {exc}"[:300]) from None
    if root is None:
        raise FetchError(FailureKind.PARSE_ERROR, "ill-formed sitemap: no root element")
    name = lxml.etree.QName(root).localname
    if name not in ROOTS:
        raise FetchError(FailureKind.NOT_A_FEED, f"not a sitemap (document <{name}>)")
    items: list[tuple[str, dict[str, str | None]]] = []
    for element in root:
        if not isinstance(element.tag, str) or lxml.etree.QName(element).localname not in ("url", "sitemap"):
            continue
        fields = _fields(element)
        loc = fields.pop("loc", None)
        if loc:
            items.append((loc, fields))
        if len(items) >= MAX_URLS:
            break
    return name, items


def _fields(element: lxml.etree._Element) -> dict[str, str | None]:
    """Texts of an item's fields by local name; those of ``news:news`` prefixed ``news:``."""
    fields: dict[str, str | None] = {}
    for child in element:
        if not isinstance(child.tag, str):  # a processing instruction
            continue  # type: ignore[unreachable]
        qname = lxml.etree.QName(child)
        if qname.namespace == _NEWS and qname.localname == "news":
            for part in child.iter():
                if isinstance(part.tag, str) and part is not child:
                    fields.setdefault(f"news:{lxml.etree.QName(part).localname}", _text(part))
        else:
            fields.setdefault(qname.localname, _text(child))
    return fields


def _text(element: lxml.etree._Element) -> str | None:
    text = "".join(str(part) for part in element.itertext()).strip()
    return text or None


def item_date(fields: dict[str, str | None]) -> datetime | None:
    """An item's date: the news publication date, else its last modification."""
    return text_to_utc(fields.get("news:publication_date")) or text_to_utc(fields.get("lastmod"))


def newest_first(items: list[tuple[str, dict[str, str | None]]]) -> list[str]:
    """The items' URLs by date, newest first; undated ones after, in their order."""
    oldest = datetime.min.replace(tzinfo=UTC)
    ranked = sorted(enumerate(items), key=lambda pair: (-(item_date(pair[1][1]) or oldest).timestamp(), pair[0]))
    return [loc for _position, (loc, _fields) in ranked]


__all__ = ["MAX_CHILDREN", "MAX_INFLATED", "ROOTS", "head", "inflate", "item_date", "newest_first", "read_sitemap"]
