"""Main text and metadata of a web page, with trafilatura.

Two depths, because metadata is a third of trafilatura's cost: ``metadata=False`` gives
the text, and the title, author and language read straight from the page's head (what
``analyze`` needs, and the poller when the feed entry carries a date);
``metadata=True`` adds author, date and language through trafilatura's metadata
extraction, with htmldate's extensive search off (it triples the cost of a page and a
feed entry already carries a date).
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import trafilatura
from lxml.html import HtmlElement
from trafilatura.settings import Document
from trafilatura.utils import load_html

from monitor.config.schema import selector_xpath
from monitor.errors import InputError
from monitor.text import plain_text, xml_safe, xml_safe_bytes

_DATE_PARAMS = {"extensive_search": False, "original_date": True}
# A local file is read as the poller reads a page: at most ``poll.max_bytes`` by default.
MAX_FILE_BYTES = 5_000_000
_SPACE_RE = re.compile(r"\s+")
# A line that is only a date ("Monday, June 24, 2024", "06.01.2022 10:15"): the dateline
# an aggregator prints above a story, never its title.
_DATE_NAMES = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec "
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thurs fri sat sun"
)
_DATE_WORD = r"(?:\d{1,4}(?:st|nd|rd|th)?|am|pm|utc|gmt|" + "|".join(_DATE_NAMES.split()) + ")"
_DATELINE_RE = re.compile(rf"^[\W_]*{_DATE_WORD}(?:[\s,./:–-]+{_DATE_WORD})*\b[\W_]*$", re.IGNORECASE)


@dataclass(frozen=True)
class Extracted:
    """A page or file reduced to what the pipeline needs."""

    text: str
    title: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    language: str | None = None
    # The site's own name (``og:site_name``), for titles that end with it.
    site_name: str | None = None


def _clean(value: str | None, limit: int = 1000) -> str | None:
    if not value:
        return None
    value = _SPACE_RE.sub(" ", plain_text(value)).strip()
    return value[:limit] or None


def _head_title(tree: HtmlElement) -> str | None:
    for xpath in (
        '//meta[@property="og:title"]/@content',
        '//meta[@name="twitter:title"]/@content',
        "//head/title/text()",
        "//h1//text()",
    ):
        found = tree.xpath(xpath)
        if found and (title := _clean(str(found[0]))):
            return title
    return None


def _head_site_name(tree: HtmlElement) -> str | None:
    found = tree.xpath('//meta[@property="og:site_name" or @name="application-name"]/@content')
    return _clean(str(found[0]), 200) if found else None


def _head_author(tree: HtmlElement) -> str | None:
    for xpath in (
        '//meta[@name="author"]/@content',
        '//meta[@property="article:author"]/@content',
        '//meta[@name="dc.creator" or @name="DC.creator"]/@content',
    ):
        found = tree.xpath(xpath)
        if found and (author := _clean(str(found[0]), 500)) and not author.startswith("http"):
            return author
    return None


def _head_language(tree: HtmlElement) -> str | None:
    lang = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
    return _clean(lang.split("-")[0].lower(), 20) if lang else None


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def extract_html(
    html: str | bytes, *, url: str | None = None, metadata: bool = False, selector: str | None = None
) -> Extracted | None:
    """The page's main text (None when it has none) and what metadata was asked for.

    With a CSS ``selector`` the text is that of the elements it selects (the feed's own
    choice where the extractor picks the wrong block), None when it selects none.
    """
    # A reference to a control character (``&#1;``) becomes one in the tree, and
    # trafilatura, on setting it as an element's text, gives up on the whole page.
    tree = load_html(xml_safe_bytes(html) if isinstance(html, bytes) else xml_safe(html))
    if tree is None:
        return None
    title = _head_title(tree)
    language = _head_language(tree)
    site_name = _head_site_name(tree)
    if selector is not None:
        text = selected_text(tree, selector)
        if not text:
            return None
        return Extracted(text=text, title=title, author=_head_author(tree), language=language)
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=metadata,
        date_extraction_params=_DATE_PARAMS,
        include_comments=False,
        include_tables=True,
    )
    # A dict only with the deprecated ``as_dict=True``.
    if not isinstance(document, Document):
        return None
    text = (document.text or "").strip()
    if not text:
        return None
    if not metadata:
        return Extracted(text=text, title=title, author=_head_author(tree), language=language, site_name=site_name)
    return Extracted(
        text=text,
        title=_clean(document.title) or title,
        author=_clean(document.author, 500),
        published_at=_parse_date(document.date),
        language=_clean(document.language, 20) or language,
        site_name=site_name or _clean(document.sitename, 200),
    )


_SKIPPED_TAGS = ("script", "style", "noscript", "template")
_BLOCKS = frozenset(
    ["p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "section", "article"]
)


def selected_text(tree: HtmlElement, selector: str) -> str:
    """Plain text of the elements ``selector`` selects, a paragraph per block element."""
    paragraphs: list[str] = []
    for element in tree.xpath(selector_xpath(selector)):
        if not isinstance(element, HtmlElement):
            continue
        for skipped in list(element.iter(*_SKIPPED_TAGS)):
            skipped.drop_tree()
        for block in element.iter():
            if isinstance(block.tag, str) and block.tag.lower() in _BLOCKS:
                block.tail = "\n" + (block.tail or "")
        lines = (_SPACE_RE.sub(" ", line).strip() for line in element.text_content().split("\n"))
        paragraphs.extend(line for line in lines if line)
    return plain_text("\n".join(paragraphs)).strip()


def read_text(text: str) -> Extracted:
    """A plain-text article: its first non-empty line that is not a bare date is the title."""
    text = text.replace("\r\n", "\n").strip()
    lines = [line for line in text.split("\n") if line.strip()]
    first = next((line for line in lines if not _DATELINE_RE.match(line.strip())), "")
    return Extracted(text=text, title=_clean(first or (lines[0] if lines else ""), 300))


def read_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> Extracted:
    """A local ``.txt``, ``.html`` or ``.htm`` file, as ``analyze`` and ``import`` take it."""
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".html", ".htm"):
        raise InputError(f"{path}: only .txt and .html files can be read")
    raw = _read_bytes(path, max_bytes)
    if suffix == ".txt":
        try:
            return read_text(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start})") from None
    extracted = extract_html(raw)
    if extracted is None:
        raise InputError(f"{path}: no article text found in the page")
    return extracted


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The content of a regular file of at most ``max_bytes``; anything else is an ``InputError``.

    A device (a link to /dev/zero never ends), a pipe or a directory is refused before
    a byte is read, and no more than ``max_bytes`` + 1 bytes are ever read.
    """
    try:
        # Non-blocking, so that opening a named pipe does not wait for a writer.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise InputError(f"{path}: is a directory")
        if not stat.S_ISREG(mode):
            raise InputError(f"{path}: not a regular file (a device, a pipe or a socket)")
        with os.fdopen(fd, "rb", closefd=False) as file:
            raw = file.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > max_bytes:
        raise InputError(f"{path}: larger than {max_bytes:,} bytes")
    return raw
