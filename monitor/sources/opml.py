"""OPML 2.0 subscription lists: read the feeds out of one, write the feeds into one.

Reading takes any OPML 1.0/2.0 file as feed readers export it (Miniflux, FreshRSS,
Feedly, Inoreader, NetNewsWire, Thunderbird): every ``<outline>`` with an ``xmlUrl`` is
a feed, named by its ``title`` or ``text``; the outlines it sits in are its categories,
which become its tags (a folder in a folder gives both), and so does an OPML 2.0
``category`` attribute (``/news/world,/tech``). A feed listed under several categories is
one feed with all their tags.

The parser is lxml's, with entity expansion, DTD loading and network access off, and a
document that declares a DTD at all is refused: no entity bomb or external entity can
reach it. Anything unreadable is one ``InputError`` line.

Writing gives an OPML 2.0 document: feeds without tags at the top level, each tagged
feed under a category outline per tag, so that reading it back gives the same feeds,
names, site links and tags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime

import lxml.etree

from monitor.errors import InputError
from monitor.text import xml_safe

_PARSER = lxml.etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)
MAX_BYTES = 20_000_000
FEED_KINDS = frozenset({"", "rss", "atom", "json", "jsonfeed", "rdf", "feed"})


@dataclass
class Outline:
    """A feed of a subscription list."""

    url: str
    title: str | None = None
    site_url: str | None = None
    tags: list[str] = field(default_factory=list)
    kind: str = ""  # the ``type`` attribute: rss, atom… or a reader's own (FreshRSS's HTML+XPath)

    @property
    def is_feed(self) -> bool:
        """Whether the outline is a feed; readers' own kinds (scraped pages) are not."""
        return self.kind.lower() in FEED_KINDS


def read_opml(data: bytes, *, source: str = "the file") -> list[Outline]:
    """The feeds of an OPML document, in document order, one per URL."""
    if len(data) > MAX_BYTES:
        raise InputError(f"{source}: larger than {MAX_BYTES // 1_000_000} MB: not a subscription list")
    try:
        tree = lxml.etree.fromstring(data, _PARSER).getroottree()
    except lxml.etree.XMLSyntaxError as exc:
        raise InputError(f"{source}: not OPML (invalid XML: {_one_line(str(exc))})") from None
    except ValueError as exc:
        raise InputError(f"{source}: not OPML ({_one_line(str(exc))})") from None
    if tree.docinfo.internalDTD is not None or tree.docinfo.doctype:
        raise InputError(f"{source}: refused: the document declares a DTD, which OPML never needs")
    root = tree.getroot()
    if not isinstance(root.tag, str) or lxml.etree.QName(root).localname != "opml":
        raise InputError(f"{source}: not OPML (the document is <{_tag(root)}>, not <opml>)")
    body = next((c for c in root if _tag(c) == "body"), None)
    if body is None:
        raise InputError(f"{source}: not OPML (no <body>)")
    found: dict[str, Outline] = {}
    _walk(body, [], found)
    return list(found.values())


def _walk(element: lxml.etree._Element, folders: list[str], found: dict[str, Outline]) -> None:
    for child in element:
        if _tag(child) != "outline":
            continue
        label = _attr(child, "title") or _attr(child, "text")
        url = _attr(child, "xmlUrl") or _attr(child, "xmlurl")
        if url:
            tags = folders + _categories(_attr(child, "category"))
            outline = found.get(url)
            if outline is None:
                found[url] = Outline(
                    url=url,
                    title=label,
                    site_url=_attr(child, "htmlUrl"),
                    tags=_unique(tags),
                    kind=_attr(child, "type") or "",
                )
            else:
                outline.tags = _unique(outline.tags + tags)
        _walk(child, [*folders, label] if not url and label else folders, found)


def _categories(value: str | None) -> list[str]:
    tags: list[str] = []
    for path in (value or "").split(","):
        tags += [part.strip() for part in path.split("/") if part.strip()]
    return tags


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(" ".join(t.split()) for t in tags if t.strip()))


def _attr(element: lxml.etree._Element, name: str) -> str | None:
    value = element.get(name)
    return " ".join(value.split()) if value and value.strip() else None


def _tag(element: lxml.etree._Element) -> str:
    return lxml.etree.QName(element).localname if isinstance(element.tag, str) else "?"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def write_opml(feeds: Sequence[Outline], *, title: str, now: datetime) -> str:
    """An OPML 2.0 document of ``feeds``: each tag a category outline holding its feeds."""
    root = lxml.etree.Element("opml", version="2.0")
    head = lxml.etree.SubElement(root, "head")
    lxml.etree.SubElement(head, "title").text = title
    lxml.etree.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = lxml.etree.SubElement(root, "body")
    folders: dict[str, lxml.etree._Element] = {}
    for feed in feeds:
        for tag in feed.tags:
            if tag not in folders:
                safe = xml_safe(tag, references=False)
                folders[tag] = lxml.etree.Element("outline", text=safe, title=safe)
    for tag in sorted(folders, key=str.casefold):
        body.append(folders[tag])
    for feed in feeds:
        for parent in [folders[t] for t in feed.tags] or [body]:
            name = feed.title or feed.url
            attributes = {"type": "rss", "text": name, "title": name, "xmlUrl": feed.url}
            if feed.site_url:
                attributes["htmlUrl"] = feed.site_url
            lxml.etree.SubElement(parent, "outline", {k: xml_safe(v, references=False) for k, v in attributes.items()})
    text: str = lxml.etree.tostring(root, encoding="unicode", pretty_print=True)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text


__all__ = ["Outline", "read_opml", "write_opml"]
