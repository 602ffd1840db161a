"""An article's title without the site's name that pages add to it.

Pages title themselves ``Troops land in Almaty | Steppe Daily`` or ``… - Steppe Daily``
or ``… — Steppe Daily``; the archive wants ``Troops land in Almaty``. The suffix goes
only when it is the site's name as the site itself gives it (``og:site_name`` of the
page, or the feed's title or name), never on a guess: ``Kazakhstan - Russia`` and
``Q&A | Part 2`` keep their tails. Names are compared case-insensitively, with runs of
spaces as one; a feed titled ``Steppe Daily — World`` also names the site ``Steppe
Daily``. Nothing is removed when nothing would be left.
"""

from __future__ import annotations

import re

# A separator between title and site name: a bar, dash or similar, spaced on both sides.
_SEPARATOR = re.compile(r"\s+(?:\||-|–|—|·|•|::|»|/)\s+")
# Where a feed's title goes on past the site's name (``Steppe Daily — World``, ``Steppe Daily: Top``).
_FEED_TITLE_TAIL = re.compile(r"\s*(?:\||-|–|—|·|•|::|»|/|:)\s")


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def site_names(*names: str | None) -> set[str]:
    """The comparable forms of the site's names, including the head of a feed title."""
    keys: set[str] = set()
    for name in names:
        if not name or not name.strip():
            continue
        keys.add(_key(name))
        head = _FEED_TITLE_TAIL.split(name.strip(), maxsplit=1)[0]
        if head.strip():
            keys.add(_key(head))
    return keys


def without_site_name(title: str | None, *names: str | None) -> str | None:
    """``title`` without a trailing `` | <site name>`` (any separator) naming one of ``names``."""
    if not title:
        return title
    known = site_names(*names)
    if not known:
        return title
    # The last separator first: ``A - B | Site`` loses ``| Site`` only.
    for separator in reversed(list(_SEPARATOR.finditer(title))):
        head, tail = title[: separator.start()], title[separator.end() :]
        if _key(tail) in known and any(c.isalnum() for c in head):
            return head.rstrip()
    return title


def without_title(snippet: str, title: str | None) -> str:
    """The snippet without the title it starts with (an extracted text often does)."""
    if not title or not snippet:
        return snippet
    words = title.split()
    if not words:
        return snippet
    pattern = r"\W*" + r"\s+".join(re.escape(w) for w in words) + r"[\s.:;,!?|–—-]*"
    match = re.match(pattern, snippet, re.IGNORECASE)
    return snippet[match.end() :] if match else snippet


__all__ = ["site_names", "without_site_name", "without_title"]
