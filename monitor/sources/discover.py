"""Find the feed behind a URL: the URL itself, a feed its page links, or a usual path.

``discover(fetcher, url)`` fetches ``url`` once through the poller's own ``Fetcher`` (so
the same limits and the same refusal of private addresses apply) and then:

1. the answer is a feed (anything ``parse_feed`` reads): that is it;
2. it is an HTML page: the feeds its head announces (``<link rel="alternate">`` of RSS,
   Atom, RDF or JSON Feed type), resolved against the page (or its ``<base href>``),
   those of the same site first, comment feeds last; the first that parses wins and the
   others are listed;
3. otherwise the usual paths at the root of the site (``/feed``, ``/rss.xml``…), in
   order, until one parses.

At most ``MAX_CANDIDATES`` links and the usual paths are fetched, each once. When
nothing is found, the ``FetchError`` says what the URL was and what was tried; a
failure of the first fetch (refused address, timeout, 404) is raised as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urljoin, urlsplit

import lxml.etree
import lxml.html

from monitor.errors import FetchError
from monitor.outcomes import FailureKind
from monitor.pipeline.fetch import Fetcher, FetchResult
from monitor.pipeline.parse import ParsedFeed, parse_feed

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
        "application/json",
        "text/xml",
        "application/xml",
    }
)
# Where sites keep their feed when their pages do not say: WordPress, Ghost, Hugo,
# Jekyll, Blogger, Tumblr, Substack, Medium and static generators.
USUAL_PATHS = (
    "/feed",
    "/rss.xml",
    "/atom.xml",
    "/index.xml",
    "/feed.xml",
    "/rss",
    "/feeds/posts/default",
    "/feed/",
    "/index.rss",
    "/atom",
)
MAX_CANDIDATES = 10
# What a discovery asks for: feeds first, then the page that may link them.
DISCOVERY_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/xml;q=0.9, text/xml;q=0.9, text/html;q=0.8, */*;q=0.5"
)


@dataclass(frozen=True)
class Discovered:
    """A feed found for a URL, parsed once."""

    url: str  # the feed's URL, after redirects
    feed: ParsedFeed
    via: str  # "given" (the URL is the feed), "link" (the page names it), "path" (a usual path)
    others: list[str] = field(default_factory=list)  # other feeds the page named

    @property
    def title(self) -> str | None:
        return self.feed.title

    @property
    def entries(self) -> int:
        return len(self.feed.entries)

    @property
    def last_entry_at(self) -> datetime | None:
        return max((e.published_at for e in self.feed.entries if e.published_at), default=None)


async def discover(fetcher: Fetcher, url: str) -> Discovered:
    """The feed at or behind ``url``; raises ``FetchError`` when there is none."""
    first = await fetcher.fetch(url, accept=DISCOVERY_ACCEPT)
    parsed, problem = _parse(first)
    if parsed is not None:
        return Discovered(url=first.url, feed=parsed, via="given")
    links = feed_links(first.body or b"", page_url=first.url)
    for link in links[:MAX_CANDIDATES]:
        found = await _try(fetcher, link)
        if found is not None:
            others = [other for other in links if other not in (link, found.url)]
            return Discovered(url=found.url, feed=found.feed, via="link", others=others)
    tried = set(links[:MAX_CANDIDATES])
    for path in USUAL_PATHS:
        candidate = urljoin(first.url, path)
        if candidate in tried or candidate == first.url:
            continue
        tried.add(candidate)
        found = await _try(fetcher, candidate)
        if found is not None:
            return Discovered(url=found.url, feed=found.feed, via="path", others=[])
    named = f", and none of the {len(links)} it links" if links else ", links none"
    raise FetchError(
        FailureKind.NOT_A_FEED,
        f"no feed found at {url}: {problem}{named}, nor at the usual paths (/feed, /rss.xml, /atom.xml, …)",
    )


async def _try(fetcher: Fetcher, url: str) -> Discovered | None:
    """The feed at ``url`` when it is one; None when it cannot be had or is none."""
    try:
        result = await fetcher.fetch(url, accept=DISCOVERY_ACCEPT)
    except FetchError:
        return None
    parsed, _problem = _parse(result)
    return Discovered(url=result.url, feed=parsed, via="given") if parsed is not None else None


def _parse(result: FetchResult) -> tuple[ParsedFeed | None, str]:
    try:
        return parse_feed(result.body or b"", url=result.url, content_type=result.content_type), ""
    except FetchError as exc:
        return None, exc.message


def feed_links(body: bytes, *, page_url: str) -> list[str]:
    """The feeds an HTML page announces, absolute; same site first, comment feeds last."""
    if not body.strip():
        return []
    try:
        document = lxml.html.document_fromstring(body)
    except (lxml.etree.ParserError, ValueError):
        return []
    base = page_url
    for element in document.iter("base"):
        href = (element.get("href") or "").strip()
        if href:
            base = urljoin(page_url, href)
            break
    found: list[tuple[str, str]] = []
    for element in document.iter("link"):
        rel = (element.get("rel") or "").lower().split()
        kind = (element.get("type") or "").split(";")[0].strip().lower()
        href = (element.get("href") or "").strip()
        if "alternate" not in rel or kind not in FEED_TYPES or not href:
            continue
        absolute = urljoin(base, href)
        if urlsplit(absolute).scheme in ("http", "https") and absolute not in (u for u, _t in found):
            found.append((absolute, (element.get("title") or "").lower()))
    host = urlsplit(page_url).hostname
    found.sort(key=lambda link: (urlsplit(link[0]).hostname != host, _is_comments(*link)))
    return [link for link, _title in found]


def _is_comments(url: str, title: str) -> bool:
    return "comment" in url.lower() or "comment" in title


__all__ = ["USUAL_PATHS", "Discovered", "discover", "feed_links"]
