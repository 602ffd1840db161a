"""``/api/articles``: search the archive, read one article."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from monitor.api.deps import ServicesDep, SessionDep, require_token
from monitor.api.errors import PROBLEMS
from monitor.api.params import search_filters
from monitor.api.queries import article_detail
from monitor.api.schemas import ArticleDetail, ArticlePage, Problem
from monitor.query import MAX_NAME_LENGTH, MAX_QUERY_LENGTH, MAX_TIME_LENGTH
from monitor.search import (
    DEFAULT_LIMIT,
    MAX_CURSOR_LENGTH,
    MAX_ENTITY_FILTERS,
    MAX_LIMIT,
    max_id,
    search_articles,
)

# The widest id any supported database stores; PostgreSQL's narrower key is checked
# by ``article_detail``, answering 404 like any id no article has.
MAX_ARTICLE_ID = max_id("sqlite")

router = APIRouter(
    prefix="/api/articles",
    tags=["articles"],
    dependencies=[Depends(require_token)],
    responses=PROBLEMS,
)


@router.get("", response_model=ArticlePage)
def list_articles(
    services: ServicesDep,
    db: SessionDep,
    q: Annotated[
        str | None,
        Query(
            description='Words, "phrases", OR, -exclusion, (groups), entity:NAME, feed:NAME, lang:CODE',
            max_length=MAX_QUERY_LENGTH,
        ),
    ] = None,
    entity: Annotated[
        list[str] | None,
        Query(
            description=f"Articles mentioning this entity (repeatable, at most {MAX_ENTITY_FILTERS}: all of them)",
            max_length=MAX_ENTITY_FILTERS,
        ),
    ] = None,
    since: Annotated[
        str | None,
        Query(description="From this time: 2022-01-06, an ISO time, or 7d / 12h ago", max_length=MAX_TIME_LENGTH),
    ] = None,
    until: Annotated[
        str | None,
        Query(description="Up to this time (a date includes the day)", max_length=MAX_TIME_LENGTH),
    ] = None,
    feed: Annotated[
        str | None,
        Query(description="Only articles of the feed with this name", max_length=MAX_NAME_LENGTH),
    ] = None,
    include_duplicates: Annotated[bool, Query(description="Include recognised duplicates")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page", max_length=MAX_CURSOR_LENGTH),
    ] = None,
) -> ArticlePage:
    """Stored articles matching every filter, newest first, one page at a time."""
    filters = search_filters(
        now=services.clock(),
        q=q,
        entities=entity or (),
        since=since,
        until=until,
        feed=feed,
        include_duplicates=include_duplicates,
        limit=limit,
        cursor=cursor,
    )
    page = search_articles(db, filters, entities=services.settings.entities)
    return ArticlePage(items=page.items, next_cursor=page.next_cursor)


@router.get(
    "/{article_id}",
    response_model=ArticleDetail,
    responses={404: {"model": Problem, "description": "No article has this id"}},
)
def get_article(db: SessionDep, article_id: Annotated[int, Path(ge=1, le=MAX_ARTICLE_ID)]) -> ArticleDetail:
    """One article with its text and every entity mention (character offsets into the text)."""
    detail = article_detail(db, article_id=article_id)
    if detail is None:
        raise HTTPException(status_code=404, detail=f"no article with id {article_id}")
    return detail
