"""What the web page does to stored text before showing it, as plain values.

Nothing here writes markup. Highlights come back as ``Segment`` runs (text, and what
marks it); the templates write each run's text escaped and wrap the marked ones in
``<mark>``, so a hostile title or text can never become markup, whatever it holds.

Query terms are found the way the search indexes find them, closely enough to show:
words are runs of letters, digits and marks; they compare case- and accent-blind, and
a word matches its plural or ``-ed``/``-ing`` form (the indexes stem with Porter).
Mention offsets are the ones stored with each mention (character offsets into the text).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.errors import QueryError
from monitor.query import Phrase, Query, parse_query

# Longest text the page highlights query terms in: snippets and titles, not whole books.
MAX_HIGHLIGHTED_CHARS = 20_000
_SUFFIXES = ("ing", "ies", "es", "ed", "s")


@dataclass(frozen=True)
class Segment:
    """A run of text; ``mark`` names what it is when highlighted (a term, an entity)."""

    text: str
    mark: str | None = None


def article_href(url: str) -> str | None:
    """A link only to web pages: never ``javascript:`` or ``data:`` from a hostile feed."""
    return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else None


# ------------------------------------------------------------------------ query terms


def query_phrases(q: str | None) -> list[tuple[str, ...]]:
    """The words and phrases ``q`` looks for (not the excluded ones); none when malformed."""
    if not q or not q.strip():
        return []
    try:
        query = parse_query(q)
    except QueryError:
        return []
    return list(dict.fromkeys(tuple(_key(w) for w in words) for words in _looked_for(query)))


def _looked_for(query: Query) -> Iterator[tuple[str, ...]]:
    """The words of each phrase the query looks for, in groups within groups; field terms aside."""
    for group in query.groups:
        for operand in group:
            if isinstance(operand, Phrase):
                yield operand.words
            elif isinstance(operand, Query):
                yield from _looked_for(operand)


def _is_word_char(char: str) -> bool:
    return unicodedata.category(char)[0] in "LNM"


def _key(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    for suffix in _SUFFIXES:
        if len(bare) - len(suffix) >= 3 and bare.endswith(suffix):
            return bare[: -len(suffix)]
    return bare


def _words(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for i, char in enumerate(text):
        if _is_word_char(char):
            if start is None:
                start = i
        elif start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(text)))
    return spans


def term_spans(text: str, phrases: Sequence[tuple[str, ...]]) -> list[tuple[int, int]]:
    """Where in ``text`` the ``phrases`` (from ``query_phrases``) occur, in order, not overlapping."""
    if not phrases or not text:
        return []
    spans = _words(text[:MAX_HIGHLIGHTED_CHARS])
    keys = [_key(text[a:b]) for a, b in spans]
    found: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        length = next(
            (len(p) for p in sorted(phrases, key=len, reverse=True) if tuple(keys[i : i + len(p)]) == p),
            0,
        )
        if length:
            found.append((spans[i][0], spans[i + length - 1][1]))
            i += length
        else:
            i += 1
    return found


def marked(text: str, spans: Iterable[tuple[int, int, str]]) -> list[Segment]:
    """``text`` cut into runs, the ``(start, end, mark)`` spans marked.

    Spans outside the text, empty or overlapping an earlier one are left out.
    """
    segments: list[Segment] = []
    at = 0
    for given_start, given_end, mark in sorted(spans):
        start, end = max(given_start, at), min(given_end, len(text))
        if start >= end:
            continue
        if start > at:
            segments.append(Segment(text[at:start]))
        segments.append(Segment(text[start:end], mark))
        at = end
    if at < len(text) or not segments:
        segments.append(Segment(text[at:]))
    return segments


def highlighted(text: str, phrases: Sequence[tuple[str, ...]]) -> list[Segment]:
    """``text`` with the query's terms marked ``"term"``."""
    return marked(text, ((a, b, "term") for a, b in term_spans(text, phrases)))


# -------------------------------------------------------------------- article text


@dataclass(frozen=True)
class MentionSpan:
    start: int
    end: int
    entity: str


def paragraphs(text: str, mentions: Iterable[MentionSpan]) -> list[list[Segment]]:
    """The text's paragraphs (its lines), each cut into runs with the mentions marked by entity.

    Offsets that do not fit the text (a text edited after matching) are left out.
    """
    spans = sorted((m.start, m.end, m.entity) for m in mentions if 0 <= m.start < m.end <= len(text))
    result: list[list[Segment]] = []
    for line in re.finditer(r"[^\n]+", text):
        a, b = line.span()
        inside = [(max(s, a) - a, min(e, b) - a, name) for s, e, name in spans if s < b and e > a]
        if line.group().strip():
            result.append(marked(line.group(), inside))
    return result


__all__ = [
    "MentionSpan",
    "Segment",
    "article_href",
    "highlighted",
    "marked",
    "paragraphs",
    "query_phrases",
    "term_spans",
]
