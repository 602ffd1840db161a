"""Dates of feed entries, as aware UTC datetimes or None.

feedparser parses the dates of RSS and Atom entries itself, into UTC ``struct_time``s
(``published_parsed``); ``struct_to_utc`` turns those into datetimes. A JSON Feed's dates
are strings, read by ``text_to_utc``: RFC 3339, which the JSON Feed spec asks for, by
``datetime.fromisoformat``; anything else by feedparser's own date parsers, so that a
date written in a JSON Feed means what the same text means in an RSS feed (RFC 822 and
its variants, asctime, partial W3C dates, the localised forms feedparser knows).

Invariants: every datetime returned is aware and in UTC; a date before ``EARLIEST`` is a
placeholder (the epoch, ``0001-01-01``), not a publication date, and comes back as None;
text no parser understands comes back as None, never as an exception.

feedparser publishes no function that parses a lone date string (``registerDateHandler``
adds parsers, it does not expose them), so ``_feedparser_date`` calls its internal
``feedparser.datetimes._parse_date``: the project's one use of feedparser's non-public
surface, confined to that function. ``tests/test_dates.py`` fails if the function goes
away or parses the real-world dates it lists differently.
"""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime
from typing import Any

import feedparser

# Dates before this are placeholders ("0001-01-01", epoch) rather than publication dates.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)


def struct_to_utc(value: Any) -> datetime | None:
    """A feedparser date (a UTC ``struct_time``, or a 9-tuple) as a datetime."""
    if not value:
        return None
    try:
        moment = datetime.fromtimestamp(calendar.timegm(value), tz=UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return None
    return moment if moment >= EARLIEST else None


def text_to_utc(value: str | None) -> datetime | None:
    """An RFC 3339 date (JSON Feed), or anything feedparser's date parsers know."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return struct_to_utc(_feedparser_date(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # RFC 3339 requires an offset; assume UTC
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 is past the last datetime in UTC
        return None
    return moment if moment >= EARLIEST else None


def _feedparser_date(value: str) -> time.struct_time | None:
    """``value`` read by every date parser feedparser has, as feedparser reads feed dates."""
    parsed: time.struct_time | None = feedparser.datetimes._parse_date(value)
    return parsed


__all__ = ["EARLIEST", "struct_to_utc", "text_to_utc"]
