"""Mentions over time: ``GET /api/stats/mentions`` (JSON) and ``GET /mentions`` (a chart per entity).

Both count the same way (``monitor.api.mention_stats``). Without ``entity`` they cover
every tracked entity of the configuration; a name is matched as in search (the stored
spelling, case-insensitively), and an entity never mentioned is a series of zeros.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from monitor.api.chart import bar_chart
from monitor.api.deps import Services, ServicesDep, SessionDep, page_allowed, require_token
from monitor.api.errors import PROBLEMS, UNAVAILABLE, unavailable_detail
from monitor.api.mention_stats import Interval, MentionStats, day_range, mention_stats
from monitor.api.queries import stored_entity_names
from monitor.api.rendering import render
from monitor.conditions import MAX_ENTITY_FILTERS
from monitor.errors import QueryError
from monitor.timespec import MAX_TIME_LENGTH, parse_time

api_router = APIRouter(prefix="/api/stats", tags=["stats"], dependencies=[Depends(require_token)], responses=PROBLEMS)
page_router = APIRouter(include_in_schema=False)

PAGE_DAYS = 90


def _stats(
    services: Services,
    db: Session,
    *,
    entities: list[str],
    since: str | None,
    until: str | None,
    days: int,
) -> MentionStats:
    now = services.clock()
    first, last = day_range(
        parse_time(since, now=now) if since and since.strip() else None,
        parse_time(until, now=now, end=True) if until and until.strip() else None,
        now=now,
        days=days,
    )
    names = [e for e in entities if e.strip()] or [e.name for e in services.settings.entities]
    return mention_stats(db, entities=stored_entity_names(db, names), first=first, last=last)


@api_router.get("/mentions", response_model=MentionStats)
def mentions(
    services: ServicesDep,
    db: SessionDep,
    entity: Annotated[
        list[str] | None,
        Query(
            description=f"An entity to count (repeatable, at most {MAX_ENTITY_FILTERS}); "
            "every tracked entity when absent",
            max_length=MAX_ENTITY_FILTERS,
        ),
    ] = None,
    since: Annotated[
        str | None,
        Query(
            description="First day: 2022-01-06, an ISO time, or 30d ago; 30 days before until by default",
            max_length=MAX_TIME_LENGTH,
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(description="Last day (included); today by default", max_length=MAX_TIME_LENGTH),
    ] = None,
    interval: Annotated[Interval, Query(description="The counting period: UTC days")] = Interval.DAY,
) -> MentionStats:
    """Non-duplicate articles mentioning each entity per UTC day, by publication time, zero-filled.

    At most 731 days (two years) per request.
    """
    return _stats(services, db, entities=entity or [], since=since, until=until, days=30)


@page_router.get("/mentions", response_class=HTMLResponse)
def mentions_page(request: Request, services: ServicesDep, db: SessionDep) -> Response:
    if not page_allowed(request, services.settings):
        return render(request, services, "login.html", {"error": None}, 401)
    params = request.query_params
    form = {"since": params.get("since", ""), "until": params.get("until", "")}
    charts, error, status = [], None, 200
    try:
        stats = _stats(services, db, entities=params.getlist("entity")[:MAX_ENTITY_FILTERS], days=PAGE_DAYS, **form)
        charts = [bar_chart(series) for series in stats.series]
        span = (stats.since, stats.until)
    except QueryError as exc:
        error, status, span = str(exc), 400, None
    except UNAVAILABLE as exc:
        error, status, span = unavailable_detail(request, exc), 503, None
    context = {"charts": charts, "form": form, "span": span, "error": error}
    return render(request, services, "mentions.html", context, status)
