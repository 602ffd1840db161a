"""Turning request parameters into ``SearchFilters``, shared by the API and the page."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from monitor.search import DEFAULT_LIMIT, SearchFilters
from monitor.timespec import parse_time


def _given(value: str | None) -> str | None:
    """An empty form field means the filter is not used."""
    return value if value is not None and value.strip() else None


def search_filters(
    *,
    now: datetime,
    q: str | None = None,
    entities: Iterable[str] = (),
    since: str | None = None,
    until: str | None = None,
    feed: str | None = None,
    include_duplicates: bool = False,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> SearchFilters:
    """The filters for these parameters; ``QueryError`` for a malformed time."""
    since, until = _given(since), _given(until)
    return SearchFilters(
        query=_given(q),
        entities=tuple(e for e in entities if e.strip()),
        since=parse_time(since, now=now) if since else None,
        until=parse_time(until, now=now, end=True) if until else None,
        feed=_given(feed),
        include_duplicates=include_duplicates,
        limit=limit,
        cursor=_given(cursor),
    )
