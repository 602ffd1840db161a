"""Which saved queries (alert rules) a stored article matches: search run backwards.

``Percolator(queries, entities).matching(session, article_id)`` names the queries that
``search_articles`` (with ``include_duplicates``) would list the article for. The
meaning is the same by construction: each query is checked by the very condition
search uses (``monitor.search.query_condition``), restricted to the one article, in
the caller's open transaction (the article and its mentions flushed, maybe not
committed); nothing here commits. A query naming a feed that does not exist fires
nothing, as search refuses it; an unknown entity is refused when the rules are made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.config import EntityConfig
from monitor.models import Article
from monitor.query import EntityNames, Query
from monitor.search import find_feed_id, query_condition, resolve_query


class Percolator:
    """The queries by name, their entities resolved once; ``QueryError`` for an unknown entity."""

    def __init__(self, queries: Mapping[str, Query], entities: Sequence[EntityConfig]) -> None:
        names = EntityNames(entities)
        self._queries = {name: resolve_query(query, names) for name, query in queries.items()}

    def matching(self, session: Session, article_id: int) -> list[str]:
        """The names of the queries the stored article matches, in the order given."""
        dialect = session.get_bind().dialect.name
        feeds: dict[str, int | None] = {}

        def feed_id(name: str) -> int:
            if name not in feeds:
                feeds[name] = find_feed_id(session, name)
            found = feeds[name]
            if found is None:
                raise _UnknownFeed(name)
            return found

        fired = []
        for name, query in self._queries.items():
            try:
                condition = query_condition(query, dialect=dialect, feed_id=feed_id, article_id=article_id)
            except _UnknownFeed:
                continue  # search refuses a query naming no feed: it lists nothing
            statement = select(sa.literal(1)).select_from(Article).where(col(Article.id) == article_id, condition)
            if session.exec(statement).first() is not None:
                fired.append(name)
        return fired


class _UnknownFeed(Exception):
    pass


__all__ = ["Percolator"]
