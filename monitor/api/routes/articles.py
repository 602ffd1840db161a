"""``/api/articles``: search the archive, read one article; ``/api/export``: get it out."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import StreamingResponse
from sqlmodel import Session

from monitor.api.deps import ServicesDep, SessionDep, require_token
from monitor.api.errors import PROBLEMS
from monitor.api.params import search_filters
from monitor.api.queries import article_detail
from monitor.api.schemas import ArticleDetail, ArticlePage, Problem
from monitor.api.timeouts import statement_timeout
from monitor.conditions import MAX_ENTITY_FILTERS
from monitor.db import session as open_session
from monitor.export import ExportFormat, export_articles, lines
from monitor.query import MAX_NAME_LENGTH, MAX_QUERY_LENGTH
from monitor.search import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_LIMIT,
    SearchFilters,
    max_id,
    search_articles,
)
from monitor.timespec import MAX_TIME_LENGTH

# The widest id any supported database stores; PostgreSQL's narrower key is checked
# by ``article_detail``, answering 404 like any id no article has.
MAX_ARTICLE_ID = max_id("sqlite")

router = APIRouter(
    tags=["articles"],
    dependencies=[Depends(require_token)],
    responses=PROBLEMS,
)

Q = Annotated[
    str | None,
    Query(description='Full text: words, "phrases", OR, -exclusion', max_length=MAX_QUERY_LENGTH),
]
Entities = Annotated[
    list[str] | None,
    Query(
        description=f"Articles mentioning this entity (repeatable, at most {MAX_ENTITY_FILTERS}: all of them)",
        max_length=MAX_ENTITY_FILTERS,
    ),
]
Since = Annotated[
    str | None,
    Query(description="From this time: 2022-01-06, an ISO time, or 7d / 12h ago", max_length=MAX_TIME_LENGTH),
]
Until = Annotated[
    str | None,
    Query(description="Up to this time (a date includes the day)", max_length=MAX_TIME_LENGTH),
]
FeedName = Annotated[
    str | None,
    Query(description="Only articles of the feed with this name", max_length=MAX_NAME_LENGTH),
]
IncludeDuplicates = Annotated[bool, Query(description="Include recognised duplicates")]
Cursor = Annotated[
    str | None,
    Query(description="next_cursor of the previous page", max_length=MAX_CURSOR_LENGTH),
]


async def _filters(
    services: ServicesDep,
    q: Q = None,
    entity: Entities = None,
    since: Since = None,
    until: Until = None,
    feed: FeedName = None,
    include_duplicates: IncludeDuplicates = False,
    cursor: Cursor = None,
) -> SearchFilters:
    """The filters of /api/articles and /api/export, one set, so that an export holds what
    the listing shows. A coroutine: it never blocks (see ``monitor.api.deps``)."""
    return search_filters(
        now=services.clock(),
        q=q,
        entities=entity or (),
        since=since,
        until=until,
        feed=feed,
        include_duplicates=include_duplicates,
        cursor=cursor,
    )


Filters = Annotated[SearchFilters, Depends(_filters)]


@router.get("/api/articles", response_model=ArticlePage)
def list_articles(
    services: ServicesDep,
    db: SessionDep,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
) -> ArticlePage:
    """Stored articles matching every filter, newest first, one page at a time."""
    page = search_articles(db, replace(filters, limit=limit), entities=services.settings.entities)
    return ArticlePage(items=page.items, next_cursor=page.next_cursor, approximate_total=page.approximate_total)


EXPORT_TYPES = {ExportFormat.JSONL: "application/x-ndjson", ExportFormat.CSV: "text/csv; charset=utf-8"}


@router.get(
    "/api/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "Every matching article, newest first, whole: one JSON object per line (or CSV rows)",
            "content": {"application/x-ndjson": {}, "text/csv": {}},
        }
    },
)
def export(
    services: ServicesDep,
    filters: Filters,
    format: Annotated[ExportFormat, Query(description="jsonl (JSON Lines) or csv")] = ExportFormat.JSONL,
) -> StreamingResponse:
    """Every stored article matching the filters (those of /api/articles), streamed whole.

    Each carries its text, mentions (with character offsets), duplicate_of and copies
    (the ids of its copies). The answer is read from the archive a page at a time as it
    is sent, in constant memory, whatever its size.
    """

    @contextmanager
    def page_session() -> Iterator[Session]:
        with open_session(services.engine) as db, statement_timeout(db, services.settings.serve.statement_timeout):
            yield db

    rendered = lines(export_articles(page_session, filters, entities=services.settings.entities), format)
    first = next(rendered, "")  # bad filters are a 400 here, before the answer starts
    return StreamingResponse(itertools.chain([first], rendered), media_type=EXPORT_TYPES[format])


@router.get(
    "/api/articles/{article_id}",
    response_model=ArticleDetail,
    responses={404: {"model": Problem, "description": "No article has this id"}},
)
def get_article(db: SessionDep, article_id: Annotated[int, Path(ge=1, le=MAX_ARTICLE_ID)]) -> ArticleDetail:
    """One article with its text and every entity mention (character offsets into the text)."""
    detail = article_detail(db, article_id=article_id)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"no article with id {article_id}")
    return detail
