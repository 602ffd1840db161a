"""Feeds from fetched bytes: RSS 0.9x/1.0/2.0 and Atom (feedparser), JSON Feed (here).

feedparser only ever sees the bytes the fetcher got, wrapped in a file object: given a
string it would fetch URLs, and given ``bytes`` it would try them as a *file name*. The
response's content type goes along so that it resolves encodings the way HTTP says.
HTML in titles, summaries and content becomes plain text, without control characters
(lxml refuses them: one in an entry would fail the feed); dates become aware UTC
datetimes (``dates``); links are made absolute against the feed's URL. An ill-formed
feed whose entries are still readable is accepted with a ``warning``; anything that is
not a feed raises ``FetchError(FailureKind.NOT_A_FEED)``. Sitemaps, gzipped or not, come
out in the same shape (``sitemaps``): one entry per page, an index's sitemaps apart.

One module, past the house's usual size: the full parse, JSON Feed and the quick link
scan (``entry_links``) share the rules for links and text, and must agree exactly (a
test checks the scan against the full parse on every corpus feed).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import charset_normalizer
import feedparser
import lxml.etree
import lxml.html

from monitor.errors import FetchError
from monitor.outcomes import FailureKind
from monitor.pipeline import sitemaps
from monitor.pipeline.dates import struct_to_utc, text_to_utc
from monitor.pipeline.sitemaps import MAX_CHILDREN, item_date, newest_first, read_sitemap
from monitor.text import plain_text, xml_safe

_JSON_FEED_PREFIX = "https://jsonfeed.org/version/"
# Root elements of RSS (0.9x, 1.0 as rdf:RDF, 2.0), Atom and CDF documents.
_FEED_ROOTS = re.compile(r"^(?:rss|feed|rdf|channel)$")
_PROLOG_RE = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!doctype[^>\[]*(?:\[.*?\])?\s*>)", re.S | re.I)
_ELEMENT_RE = re.compile(rb"\s*<(?:[\w.-]+:)?([\w.-]+)")
_XML_ENCODING_RE = re.compile(rb"\s*<\?xml[^>]*\sencoding\s*=", re.IGNORECASE)
_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "dd", "dt", "dl", "tr", "table", "section",
    "article", "blockquote", "pre", "figure", "figcaption", "header", "footer", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
_DROP_TAGS = ("script", "style", "noscript", "template")
_SPACES_RE = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_BLANK_LINES_RE = re.compile(r"\n\s*\n+")


@dataclass(frozen=True)
class Entry:
    key: str  # stable id: guid/id, else link, else hash of title+summary
    url: str | None  # absolute link (resolved against the feed URL)
    title: str | None
    summary: str | None  # plain text
    content: str | None  # plain text of the fullest content
    published_at: datetime | None  # aware UTC
    author: str | None
    language: str | None = None  # a news sitemap's publication language


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    link: str | None
    format: str  # "rss20", "atom10", "rss10", "rss090", "json1", "sitemap", "sitemapindex", …
    entries: list[Entry]
    warning: str | None  # set when the feed was ill-formed but still readable
    # A sitemap index's sitemaps, newest first (``sitemaps.MAX_CHILDREN`` at most).
    sitemaps: tuple[str, ...] = ()


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse a fetched feed; raises ``FetchError`` of kind ``NOT_A_FEED`` or ``PARSE_ERROR``."""
    if not body or not body.strip():
        raise FetchError(FailureKind.NOT_A_FEED, "empty body")
    if _looks_like_json(body, content_type):
        return _parse_json_feed(body, url=url)
    if _root_name(sitemaps.head(body)) in sitemaps.ROOTS:
        return _parse_sitemap(body, url=url)
    if _looks_binary(body):
        raise FetchError(FailureKind.NOT_A_FEED, f"not a feed ({_media_type(content_type) or 'binary data'})")
    return _parse_xml_feed(body, url=url, content_type=content_type)


# --------------------------------------------------------------------------- XML feeds


def _parse_xml_feed(body: bytes, *, url: str, content_type: str | None) -> ParsedFeed:
    headers = {"content-location": url}
    content_type = _effective_content_type(body, content_type)
    if content_type:
        headers["content-type"] = content_type
    try:
        parsed = feedparser.parse(
            io.BytesIO(body),
            response_headers=headers,
            resolve_relative_uris=False,  # only links matter; text is extracted anyway
            sanitize_html=False,  # markup is dropped, not displayed
        )
    except Exception as exc:  # feedparser's failures are not a documented tree
        message = f"feed parser failed: {type(exc).__name__}: {exc}"
        raise FetchError(FailureKind.PARSE_ERROR, message[:300]) from None
    feed = parsed.get("feed", {})
    version = parsed.get("version") or ""
    entries = [_entry_from_feedparser(e, url) for e in parsed.get("entries", [])]
    title = _text_of(feed.get("title_detail")) or _html_to_text(feed.get("title"))
    link = _absolute(feed.get("link"), url)
    ill_formed = _is_ill_formed(parsed)
    # A feed root with a title but no version or entries is an empty feed of a
    # variant feedparser does not name (CDF, for one), not some other document.
    looks_like_feed = bool(_FEED_ROOTS.match(_root_name(body))) and bool(title or link)
    if not version and not entries and not looks_like_feed:
        raise _not_a_feed(body, content_type, parsed)
    if not entries and not (title or link) and ill_formed:
        raise FetchError(FailureKind.PARSE_ERROR, f"ill-formed feed: {_bozo_message(parsed)}")
    warning = f"ill-formed feed: {_bozo_message(parsed)}" if ill_formed else None
    return ParsedFeed(
        title=title,
        link=link,
        format=version or "unknown",
        entries=entries,
        warning=warning,
    )


def _not_a_feed(body: bytes, content_type: str | None, parsed: Any) -> FetchError:
    root = _root_name(body)
    if _FEED_ROOTS.match(root) and _is_ill_formed(parsed):
        return FetchError(FailureKind.PARSE_ERROR, f"ill-formed feed: {_bozo_message(parsed)}")
    if root == "html" or re.match(rb"\s*<!doctype\s+html", body[:1024], re.IGNORECASE):
        what = "an HTML page"
    else:
        what = _media_type(content_type) or (f"document <{root}>" if root else "unknown content")
    return FetchError(FailureKind.NOT_A_FEED, f"not a feed ({what})")


def _root_name(body: bytes) -> str:
    """Local name of the first element, past the prolog; '' when there is none."""
    head = body[:8192].lstrip(b"\xef\xbb\xbf")
    position = 0
    while True:
        match = _PROLOG_RE.match(head, position)
        if not match:
            break
        position = match.end()
    match = _ELEMENT_RE.match(head, position)
    return match.group(1).decode("ascii", "replace").lower() if match else ""


def _is_ill_formed(parsed: Any) -> bool:
    """Whether feedparser found a real problem; a non-XML media type is not one."""
    exc = parsed.get("bozo_exception")
    return bool(parsed.get("bozo")) and not isinstance(exc, feedparser.NonXMLContentType)


def _effective_content_type(body: bytes, content_type: str | None) -> str | None:
    """The content type to hand feedparser, with a detected charset when nothing
    declares the encoding.

    feedparser honours, in order, the HTTP charset, a byte order mark and the XML
    declaration, then tries UTF-8 and Windows-1252. Feeds in Big5, EUC-JP, KOI8-R…
    that declare nothing would come out as Windows-1252 mojibake; a detector does better.
    """
    if content_type and "charset=" in content_type.lower():
        return content_type
    media = _media_type(content_type)
    if media and media.startswith("text/") and media.endswith("xml"):
        # RFC 3023 made an undeclared text/xml US-ASCII; RFC 7303, which replaced it
        # and which servers follow, defers to the XML declaration as application/xml does.
        content_type = "application/xml"
    head = body[:1024]
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head[:4]:
        return content_type
    if _XML_ENCODING_RE.match(head):
        return content_type
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return content_type
    matches = charset_normalizer.from_bytes(body[:200_000])
    best = matches.best()
    if best is None or not best.encoding:
        return content_type
    # Short Western texts fit several Latin code pages equally well; when Windows-1252
    # (feedparser's own fallback, and what undeclared Western feeds use) is among the
    # best fits, keep it rather than an arbitrary sibling such as Baltic cp1257.
    tied = {m.encoding for m in matches if m.chaos <= best.chaos}
    if tied & {"cp1252", "latin_1", "iso8859_15"}:
        return content_type
    return f"{_media_type(content_type) or 'application/xml'}; charset={best.encoding}"


def _bozo_message(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    message = str(exc) if exc is not None else "unknown problem"
    return re.sub(r"\s+", " ", message)[:200]


def _entry_from_feedparser(entry: Any, feed_url: str) -> Entry:
    url = _absolute(entry.get("link"), feed_url)
    if url is None and entry.get("guidislink"):
        url = _absolute(entry.get("id"), feed_url)
    title = _text_of(entry.get("title_detail")) or _html_to_text(entry.get("title"))
    summary = _text_of(entry.get("summary_detail")) or _html_to_text(entry.get("summary"))
    contents = [_text_of(c) for c in entry.get("content") or []]
    content = max((c for c in contents if c), key=len, default=None)
    author = entry.get("author_detail", {}).get("name") or entry.get("author")
    return Entry(
        key=_entry_key(entry.get("id"), url, title, summary or content),
        url=url,
        title=title,
        summary=summary,
        content=content,
        published_at=struct_to_utc(entry.get("published_parsed") or entry.get("updated_parsed")),
        author=_html_to_text(author, limit=500),
    )


def _text_of(detail: Any) -> str | None:
    """Plain text of a feedparser text construct, honouring its declared type."""
    if not detail or not detail.get("value"):
        return None
    value = detail["value"]
    kind = (detail.get("type") or "").lower()
    if kind == "text/plain":
        return _clean_text(value)
    if "html" in kind or "xml" in kind or not kind:
        return _html_to_text(value)
    return None  # base64 images and other media are not text


# --------------------------------------------------------------------------- sitemaps


def _parse_sitemap(body: bytes, *, url: str) -> ParsedFeed:
    root, items = read_sitemap(body)
    if root == "sitemapindex":
        children = [link for link in (_absolute(loc, url) for loc in newest_first(items)) if link]
        return ParsedFeed(None, None, root, [], None, sitemaps=tuple(children[:MAX_CHILDREN]))
    entries = []
    for loc, fields in items:
        link = _absolute(loc, url)
        if link is None:
            continue
        title = _clean_text(fields.get("news:title"), 1000)
        language = _clean_text(fields.get("news:language"), 20)
        entries.append(
            Entry(
                key=_entry_key(None, link, None, None),
                url=link,
                title=title,
                summary=None,
                content=None,
                published_at=item_date(fields),
                author=None,
                language=language.lower() if language else None,
            )
        )
    return ParsedFeed(None, None, "sitemap", entries, None)


# ------------------------------------------------------------------ links at a glance

_ATOM = "{http://www.w3.org/2005/Atom}"
_RSS_ITEM_PARENTS = {"rss": "channel", "RDF": None}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_SCAN_PARSER = lxml.etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
)


def entry_links(body: bytes, *, url: str) -> list[str] | None:
    """The article link of every entry of a well-formed RSS or Atom feed; None when unsure.

    A tenth of a millisecond instead of feedparser's ten: enough to tell that a changed
    feed lists only stories already stored, the common case. Only an unambiguous answer
    is given: strictly well-formed XML (so feedparser sees the same entries), and for
    every entry exactly one link, absolute and http(s), in the place feedparser takes
    it from, made absolute as ``parse_feed`` makes it. Anything else (JSON Feed, a
    relative or missing link, several candidate links) gives None: parse it in full.
    """
    if _looks_binary(body) or body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] != b"<":
        return None
    try:
        root = lxml.etree.fromstring(body, _SCAN_PARSER)
    except (lxml.etree.XMLSyntaxError, ValueError):
        return None
    if not isinstance(root.tag, str):
        return None
    local = lxml.etree.QName(root).localname
    pick: Callable[[Any], str | None]
    if root.tag == _ATOM + "feed":
        entries, pick = root.findall(_ATOM + "entry"), _atom_link
    elif local in _RSS_ITEM_PARENTS:
        parent_name = _RSS_ITEM_PARENTS[local]
        parent = root.find(parent_name) if parent_name else root
        if parent is None:
            return None
        entries = [e for e in parent if isinstance(e.tag, str) and lxml.etree.QName(e).localname == "item"]
        pick = _rss_link
    else:
        return None
    links = []
    for entry in entries:
        link = pick(entry)
        if link is None or not link.isascii() or not link.startswith(("http://", "https://")):
            return None
        absolute = _absolute(link, url)
        if absolute is None:
            return None
        links.append(absolute)
    return links


def _local_children(element: Any, name: str) -> list[Any]:
    return [c for c in element if isinstance(c.tag, str) and lxml.etree.QName(c).localname == name]


def _rss_link(item: Any) -> str | None:
    links = _local_children(item, "link")
    if len(links) != 1 or links[0].get("href") is not None:
        return None
    # feedparser takes a <link> over a permalink <guid>, wherever each stands.
    return (links[0].text or "").strip() or None


def _atom_link(entry: Any) -> str | None:
    if len(_local_children(entry, "link")) != len(entry.findall(_ATOM + "link")):
        return None  # a link of another vocabulary: leave it to feedparser
    alternates = [
        link.get("href", "").strip()
        for link in entry.findall(_ATOM + "link")
        if link.get("rel", "alternate") == "alternate" and link.get("type", "text/html") in _HTML_TYPES
    ]
    return alternates[0] if len(alternates) == 1 and alternates[0] else None


# --------------------------------------------------------------------------- JSON Feed


def _looks_like_json(body: bytes, content_type: str | None) -> bool:
    media = _media_type(content_type)
    if media and media.endswith(("json", "+json")):
        return True
    return body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] == b"{"


def _parse_json_feed(body: bytes, *, url: str) -> ParsedFeed:
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        if body.lstrip()[:1] in (b"{", b"["):
            raise FetchError(FailureKind.PARSE_ERROR, f"invalid JSON: {exc}") from None
        raise FetchError(FailureKind.NOT_A_FEED, "not a feed (invalid JSON)") from None
    version = data.get("version") if isinstance(data, dict) else None
    if not (isinstance(version, str) and version.startswith(_JSON_FEED_PREFIX)):
        raise FetchError(FailureKind.NOT_A_FEED, "not a feed (JSON without a JSON Feed version)")
    items = data.get("items")
    if not isinstance(items, list):
        raise FetchError(FailureKind.PARSE_ERROR, "JSON Feed without an items list")
    base = _absolute(data.get("feed_url"), url) or url
    entries = [_json_entry(item, base) for item in items if isinstance(item, dict)]
    skipped = len(items) - len(entries)
    return ParsedFeed(
        title=_clean_text(_string(data.get("title"))),
        link=_absolute(_string(data.get("home_page_url")), base),
        format="json1",
        entries=entries,
        warning=f"ill-formed feed: {skipped} items are not objects" if skipped else None,
    )


def _json_entry(item: dict[str, Any], base: str) -> Entry:
    url = _absolute(_string(item.get("url")), base) or _absolute(_string(item.get("external_url")), base)
    title = _clean_text(_string(item.get("title")))
    summary = _clean_text(_string(item.get("summary")))
    html_content = _html_to_text(_string(item.get("content_html")))
    text_content = _clean_text(_string(item.get("content_text")))
    content = max((c for c in (html_content, text_content) if c), key=len, default=None)
    identifier = item.get("id")
    if isinstance(identifier, int | float) and not isinstance(identifier, bool):
        identifier = str(identifier)  # 1.0 feeds in the wild use numbers
    return Entry(
        key=_entry_key(_string(identifier), url, title, summary or content),
        url=url,
        title=title,
        summary=summary,
        content=content,
        published_at=text_to_utc(_string(item.get("date_published")))
        or text_to_utc(_string(item.get("date_modified"))),
        author=_json_author(item),
    )


def _json_author(item: dict[str, Any]) -> str | None:
    authors = item.get("authors")  # 1.1
    if not isinstance(authors, list):
        authors = [item.get("author")]  # 1.0
    names = [_clean_text(_string(a.get("name"))) for a in authors if isinstance(a, dict)]
    joined = ", ".join(n for n in names if n)
    return joined[:500] or None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --------------------------------------------------------------------------- helpers


def _entry_key(identifier: str | None, url: str | None, title: str | None, body: str | None) -> str:
    """A stable key: the feed's own id, else the link, else a hash of what is shown."""
    identifier = (identifier or "").strip()
    if identifier:
        return identifier if len(identifier) <= 500 else _digest(identifier)
    if url:
        return url if len(url) <= 500 else _digest(url)
    return _digest(f"{title or ''}\n{body or ''}")


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _absolute(link: Any, base: str) -> str | None:
    """``link`` made absolute against ``base``; None unless it is an http(s) URL."""
    if not isinstance(link, str) or not link.strip():
        return None
    try:
        absolute = urljoin(base, link.strip())
        parts = urlsplit(absolute)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        return None
    return scheme + absolute[len(scheme) :]


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    return content_type.split(";", 1)[0].strip().lower() or None


def _looks_binary(body: bytes) -> bool:
    """Images, archives and other binary data: NUL bytes outside UTF-16/32 text."""
    head = body[:1024]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or head[:4] in (b"\x00\x00\xfe\xff",):
        return False
    if re.match(rb"\s*(?:\x00<|<\x00|\x00\x00\x00<|<\x00\x00\x00)", head):
        return False  # UTF-16/32 XML without a byte order mark
    return b"\x00" in head or head[:2] == b"\x1f\x8b"


def _clean_text(text: str | None, limit: int | None = None) -> str | None:
    """Collapse runs of spaces inside lines and blank lines between paragraphs."""
    if not text:
        return None
    # Control characters and escape sequences are no text, and would reach terminals.
    text = plain_text(text)
    lines = (_SPACES_RE.sub(" ", line).strip() for line in text.split("\n"))
    cleaned = _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()
    if limit is not None:
        cleaned = cleaned[:limit]
    return cleaned or None


def _html_to_text(value: str | None, limit: int | None = None) -> str | None:
    """Plain text of an HTML fragment; block elements become line breaks."""
    if not value:
        return None
    if "<" not in value:
        return _clean_text(html.unescape(value), limit)
    # lxml refuses a control character, raw or as a reference (``&#1;``), in any text
    # given to it: one in an entry would fail the whole feed.
    value = xml_safe(value)
    try:
        root = lxml.html.fragment_fromstring(value, create_parent="div")
        for element in list(root.iter(*_DROP_TAGS)):
            element.drop_tree()
        for element in root.iter():
            if isinstance(element.tag, str) and element.tag.lower() in _BLOCK_TAGS:
                element.tail = "\n" + (element.tail or "")
                if element.tag.lower() != "br":
                    element.text = "\n" + (element.text or "")
    except (lxml.etree.ParserError, ValueError):
        return _clean_text(html.unescape(re.sub(r"<[^>]*>", " ", value)), limit)
    return _clean_text(root.text_content(), limit)


__all__ = ["Entry", "ParsedFeed", "entry_links", "parse_feed"]
