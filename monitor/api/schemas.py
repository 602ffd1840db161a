"""The HTTP API's response shapes (the search item, ``ArticleSummary``, lives in models)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from monitor.models import ArticleSummary


class Problem(BaseModel):
    """Every error answer: one line a person can act on."""

    detail: str


class Health(BaseModel):
    status: str


class ArticlePage(BaseModel):
    """One page of search results; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[ArticleSummary]
    next_cursor: str | None = None
    # About how many articles match in all, estimated without reading them (see
    # docs/api.md); null when no cheap estimate exists.
    approximate_total: int | None = None


class MentionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    entity: str
    text: str
    start: int
    end: int
    snippet: str


class ArticleDetail(ArticleSummary):
    """A stored article with its text and every entity mention found in it."""

    text: str
    author: str | None = None
    language: str | None = None
    similarity: float | None = None
    mentions: list[MentionOut]
