"""Mentions over time: per entity and UTC day, how many articles mention it.

An article counts once per entity and day however often it names the entity; a
duplicate never counts (the story was counted where it first appeared). The day is the
article's publication day, or the day it was stored when it gives no date: the same
time search sorts by. Days run midnight to midnight UTC, and every day of the range is
in the answer, zero when nothing was found, so a chart needs nothing else.

One grouped query over the mentions of the wanted entities within the range; the range
is bounded (``MAX_DAYS``) so that the answer is, too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col

from monitor.errors import QueryError
from monitor.models import Article, Mention, UTCDateTime

MAX_DAYS = 731  # two years a day at a time
DEFAULT_DAYS = 30


class Interval(StrEnum):
    DAY = "day"


class DayCount(BaseModel):
    date: date
    count: int


class EntitySeries(BaseModel):
    entity: str
    total: int
    counts: list[DayCount]


class MentionStats(BaseModel):
    """Articles mentioning each entity per UTC day, every day from ``since`` to ``until``."""

    interval: Interval
    since: date
    until: date
    series: list[EntitySeries]


def day_range(
    since: datetime | None, until: datetime | None, *, now: datetime, days: int = DEFAULT_DAYS
) -> tuple[date, date]:
    """The UTC days a request covers: ``until`` (default today) back ``days`` days (or ``since``)."""
    last = (until or now).astimezone(UTC).date()
    first = since.astimezone(UTC).date() if since is not None else last - timedelta(days=days - 1)
    if first > last:
        raise QueryError("since: is later than until")
    if (last - first).days + 1 > MAX_DAYS:
        raise QueryError(f"since: the range is {(last - first).days + 1} days; at most {MAX_DAYS} at a time")
    return first, last


def _day(moment: Any, dialect: str) -> sa.ColumnElement[Any]:
    if dialect == "sqlite":  # stored as naive UTC text: its first ten characters
        return sa.func.substr(moment, 1, 10)
    return sa.func.to_char(sa.func.timezone("UTC", moment), "YYYY-MM-DD")


def mention_stats(session: Session, *, entities: Sequence[str], first: date, last: date) -> MentionStats:
    """The daily counts of each of ``entities`` (stored spellings) from ``first`` to ``last``."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    found: dict[tuple[str, str], int] = {}
    if entities:
        dialect = session.get_bind().dialect.name
        sort_time = sa.func.coalesce(Article.published_at, Article.fetched_at, type_=UTCDateTime)
        day = _day(sort_time, dialect).label("day")
        start = datetime.combine(first, time.min, tzinfo=UTC)
        end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        statement = (
            sa.select(col(Mention.entity), day, sa.func.count(sa.distinct(col(Mention.article_id))))
            .join(Article, col(Article.id) == col(Mention.article_id))
            .where(
                col(Mention.entity).in_(list(entities)),
                sa.not_(col(Article.is_duplicate)),
                sort_time >= start,
                sort_time < end,
            )
            .group_by(col(Mention.entity), day)
        )
        for entity, on, count in session.execute(statement):
            found[(entity, on)] = count
    series = []
    for entity in entities:
        counts = [DayCount(date=d, count=found.get((entity, d.isoformat()), 0)) for d in days]
        series.append(EntitySeries(entity=entity, total=sum(c.count for c in counts), counts=counts))
    return MentionStats(interval=Interval.DAY, since=first, until=last, series=series)


__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "DayCount",
    "EntitySeries",
    "Interval",
    "MentionStats",
    "day_range",
    "mention_stats",
]
