"""Archive search: filters in, keyset-paginated results out, newest first.

Results are newest first by ``COALESCE(published_at, fetched_at)``, then id, and pages
are cut by a keyset cursor over that same pair, so paging is stable while articles
arrive. The query is parsed by ``monitor.query`` and becomes SQL in
``monitor.conditions`` (the same condition, restricted to one article, decides which
alert rules an article fires: ``monitor.percolate``). Here the plan is chosen (walk
the newest articles for a frequent text, collect a rare one's matches), the page read
with its snippets, and the approximate total estimated.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import Session, col, select

from monitor.conditions import (
    PG_CONFIG,
    PG_DOCUMENT,
    entity_names,
    mentions,
    named_feed_id,
    pg_tsquery,
    query_condition,
    resolve_query,
)
from monitor.config import DEFAULT_ENTITIES, EntityConfig
from monitor.errors import QueryError
from monitor.models import Article, ArticleSummary, Feed, Mention, Seed, UTCDateTime, stored_id
from monitor.query import EntityNames, Phrase, Query, is_text, parse_query
from monitor.times import as_utc

MAX_LIMIT = 500
DEFAULT_LIMIT = 20
SNIPPET_CHARS = 200
# A cursor we made is about 60 characters; anything much longer was not made here.
MAX_CURSOR_LENGTH = 200

# Characters of an article's text the search index holds, on both engines (migration 0003).
INDEXED_CHARS = 100_000
_PG_HEADLINE_OPTIONS = (
    'StartSel="", StopSel="", MaxWords=30, MinWords=12, ShortWord=2, MaxFragments=1, FragmentDelimiter=" … "'
)
_FTS5_TEXT_COLUMN = 1  # article_fts(title, text)
_FTS5_SNIPPET_TOKENS = 30


# ---------------------------------------------------------------------- filters, pages


@dataclass(frozen=True)
class SearchFilters:
    """What to look for; every field narrows the result."""

    query: str | None = None
    entities: tuple[str, ...] = ()  # articles mentioning all of them
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # inclusive
    feed: str | None = None  # a feed's name
    include_duplicates: bool = False
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


@dataclass(frozen=True)
class SearchPage:
    items: list[ArticleSummary]
    next_cursor: str | None  # None on the last page
    # About how many articles match in all (``approximate_total``); None: no cheap estimate.
    approximate_total: int | None = None


def encode_cursor(sort_time: datetime, article_id: int) -> str:
    payload = json.dumps([as_utc(sort_time).isoformat(), article_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def max_id(dialect: str) -> int:
    """The largest id the database's INTEGER key can hold: larger ones cannot even be bound."""
    return 2**31 - 1 if dialect == "postgresql" else 2**63 - 1


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (time, id) a page ended at; ``QueryError`` for anything else.

    The id is checked against the widest key (SQLite's); ``search_articles`` checks it
    against the database's own.
    """
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH:
        raise QueryError(f"cursor: invalid cursor (longer than {MAX_CURSOR_LENGTH} characters)")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, article_id = json.loads(raw)
        if not isinstance(article_id, int) or isinstance(article_id, bool):
            raise ValueError(article_id)
        decoded = as_utc(datetime.fromisoformat(moment))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise QueryError("cursor: invalid cursor (pass next_cursor of a previous page)") from None
    except OverflowError:
        raise QueryError("cursor: invalid cursor (its time is out of range)") from None
    if not 0 <= article_id <= max_id("sqlite"):
        raise QueryError("cursor: invalid cursor (its id is out of range)")
    return decoded, article_id


def duplicate_label(article: Article, seed_name: str | None) -> str | None:
    """``duplicate_of`` as shown to users: the seed's file name or ``article:<id>``."""
    if article.duplicate_of_seed_id is not None:
        return seed_name or f"seed:{article.duplicate_of_seed_id}"
    if article.duplicate_of_article_id is not None:
        return f"article:{article.duplicate_of_article_id}"
    return None


def article_summary(
    article: Article,
    *,
    feed: str | None,
    entities: Iterable[str],
    duplicate_of: str | None,
    snippet: str,
) -> ArticleSummary:
    """The public shape of an article in a result list."""
    return ArticleSummary(
        id=stored_id(article.id),
        url=article.url,
        title=article.title,
        feed=feed,
        published_at=article.published_at,
        fetched_at=article.fetched_at,
        entities=sorted(set(entities)),
        duplicate_of=duplicate_of,
        snippet=snippet,
    )


def search_articles(
    session: Session,
    filters: SearchFilters,
    *,
    entities: Sequence[EntityConfig] = DEFAULT_ENTITIES,
    count: bool = True,
) -> SearchPage:
    """One page of matching articles, newest first. Raises ``QueryError``.

    ``entities`` are the tracked ones (``Settings.entities``): ``entity:`` terms and
    ``filters.entities`` name them by name or alias. Without ``count`` the page has no
    ``approximate_total`` (and costs a little less).
    """
    limit = _check_limit(filters.limit)
    query = parse_query(filters.query) if filters.query and filters.query.strip() else None
    sort_time = sa.func.coalesce(Article.published_at, Article.fetched_at, type_=UTCDateTime)
    dialect = session.get_bind().dialect.name
    names = EntityNames(entities)
    try:
        text = _text_part(query) if query is not None else None
        walk = text is not None and _walk(session, text, dialect, limit)
        # Collecting: the same order by an expression no index has, so that the planner
        # reads the full-text matches and sorts them instead of walking the archive.
        order_time = _unindexed(sort_time) if text is not None and not walk else sort_time
        if walk and dialect == "sqlite" and not filters.cursor and query is not None and query.is_text():
            others = _conditions(session, filters, None, sort_time, dialect, names)
            floor = _newest_floor(session, query, others, sort_time, limit)
            conditions = [*others, _fts_from(query, floor)]
            order_time = _unindexed(sort_time)
        else:
            conditions = _conditions(session, filters, query, sort_time, dialect, names, per_row=walk)
        statement = (
            select(Article, Feed.name, Seed.name)
            .outerjoin(Feed, col(Feed.id) == col(Article.feed_id))
            .outerjoin(Seed, col(Seed.id) == col(Article.duplicate_of_seed_id))
            # SQLModel types the class attribute as its value; it is the mapped attribute.
            .options(defer(cast("QueryableAttribute[str]", Article.text)))
            .where(*conditions)
            .order_by(order_time.desc(), col(Article.id).desc())
            .limit(limit + 1)
        )
        with _without_parallel_workers(session, dialect == "postgresql" and text is not None and not walk):
            rows = session.exec(statement).all()
        total = approximate_total(session, filters, query, dialect, names, walk=walk, text=text) if count else None
        page, more = rows[:limit], len(rows) > limit
        ids = [stored_id(article.id) for article, _, _ in page]
        mentioned = _entities(session, ids)
        snippets = _snippets(session, ids, _highlighted(query), dialect)
        if query is not None and not query.is_text():
            # Listed for a field term or an OR branch without the highlighted words.
            missing = [i for i in ids if i not in snippets]
            snippets.update(_snippets(session, missing, None, dialect))
    except sa.exc.DBAPIError as exc:
        error = _query_error(exc)
        if error is None:
            raise
        raise error from None
    items = [
        article_summary(
            article,
            feed=feed_name,
            entities=mentioned.get(stored_id(article.id), ()),
            duplicate_of=duplicate_label(article, seed_name),
            snippet=snippets.get(stored_id(article.id), ""),
        )
        for article, feed_name, seed_name in page
    ]
    next_cursor = None
    if more and page:
        last = page[-1][0]
        next_cursor = encode_cursor(last.published_at or last.fetched_at, stored_id(last.id))
    return SearchPage(items=items, next_cursor=next_cursor, approximate_total=total)


@contextmanager
def _without_parallel_workers(session: Session, collecting: bool) -> Iterator[None]:
    """PostgreSQL collecting a text's matches: the statement runs without parallel workers.

    The planner over-estimates a rare word (one its statistics do not list gets half the
    share of the rarest they do: 5,000 of a million articles for a word of 364) and
    starts two workers for that many rows, whose start costs more (~5 ms on 2 cores)
    than the rows they share. Collecting is chosen for texts too rare to fill a page
    within ``WALK_ROWS`` articles: for a page of 20 of a million articles, fewer than
    some 5,000 matches, which one process reads sooner than three start. On an error
    the transaction is rolled back, and the setting with it.
    """
    setting = "SET LOCAL max_parallel_workers_per_gather"
    if collecting:
        session.connection().exec_driver_sql(f"{setting} = 0")
    yield
    if collecting:
        session.connection().exec_driver_sql(f"{setting} TO DEFAULT")


def _check_limit(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise QueryError(f"limit: must be a whole number from 1 to {MAX_LIMIT}, not {limit!r}")
    return limit


# A newest-first page of a frequent term is found by walking the newest articles and
# testing each, when a page is expected within this many of them; rarer terms are
# collected through the full-text index and sorted.
WALK_ROWS = 4000


def _walk(session: Session, text: Query, dialect: str, limit: int) -> bool:
    """Whether ``text`` (``_text_part``) is frequent enough to walk the newest articles.

    A page of ``limit`` takes about ``limit / share`` articles to walk, where ``share``
    is the share of articles the text matches. SQLite looks for a page's worth among
    FTS5's matches in the newest ``WALK_ROWS`` ids, which the rowid bound keeps cheap
    for any text (a count of the archive's matches up to a page's share of it read
    5,000 matches of a phrase at a million articles, position lists and all); the
    newest are also the ones a first page is made of. PostgreSQL asks its planner,
    whose statistics of the document column know the frequent words. Either way the
    answer changes the plan, never the result.
    """
    if dialect == "sqlite":
        archive = session.exec(select(sa.func.max(Article.id))).one() or 0
        fts = sa.table("article_fts", sa.column("rowid", sa.Integer))
        recent = (
            sa.select(fts.c.rowid)
            .where(sa.literal_column("article_fts").op("MATCH")(text.to_fts5()), fts.c.rowid > archive - WALK_ROWS)
            .limit(limit + 1)
            .subquery()
        )
        return bool(session.exec(select(sa.func.count()).select_from(recent)).one() > limit)
    explained = session.exec(
        sa.text(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM article WHERE {PG_DOCUMENT} @@ "
            f"to_tsquery('{PG_CONFIG}'::regconfig, :q)"
        ).bindparams(q=text.to_tsquery())  # type: ignore[call-overload]
    ).scalar_one()
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
    archive = session.exec(
        sa.text("SELECT greatest(reltuples, 1) FROM pg_class WHERE oid = 'article'::regclass")  # type: ignore[call-overload]
    ).scalar_one()
    return bool(float(plan["Plan Rows"]) >= float(archive) * (limit + 1) / WALK_ROWS)


# Full-text matches counted one by one at most; beyond, the count is extrapolated.
COUNT_CAP = 10_000
# Articles passing other filters counted at most (each is a row of the archive read).
FILTER_COUNT_CAP = 1_000
# PostgreSQL, a frequent text: the newest articles it is tested on to estimate its share,
# and the matches among them below which the sample says too little.
SAMPLE_ROWS = 500
SAMPLE_MIN_MATCHES = 20


def approximate_total(
    session: Session,
    filters: SearchFilters,
    query: Query | None,
    dialect: str,
    names: EntityNames,
    *,
    walk: bool,
    text: Query | None,
) -> int | None:
    """About how many articles match ``filters`` in all, without reading them all.

    - A rare text (its matches collected for the page anyway) is counted exactly, with
      every filter, up to ``FILTER_COUNT_CAP``.
    - A frequent text on PostgreSQL (no time range): its share of the newest articles,
      times the archive's size (``_newest_share``).
    - Otherwise PostgreSQL gives its planner's estimate of the whole search (statistics
      of every column and of the documents' words, refreshed by autovacuum's ANALYZE;
      for a word they do not list, half the least common listed one's share: 4,710 for
      a word of 364 articles at a million, hence the count first).
    - SQLite keeps no such statistics: a text alone is counted through FTS5 up to
      ``COUNT_CAP`` matches and extrapolated beyond from how far into the archive the
      cap was reached; other filters without a text are counted exactly up to
      ``FILTER_COUNT_CAP``; a frequent text with other filters has no cheap figure (None).
    """
    sort_time = sa.func.coalesce(Article.published_at, Article.fetched_at, type_=UTCDateTime)
    conditions = _conditions(session, replace(filters, cursor=None), query, sort_time, dialect, names)
    if text is not None and not walk:
        with _without_parallel_workers(session, dialect == "postgresql"):
            exact = _capped_count(session, conditions)
        if exact is not None:
            return exact
    if dialect == "postgresql":
        if text is not None and walk and not (filters.since or filters.until):
            sampled = _newest_share(session, conditions, sort_time)
            if sampled is not None:
                return sampled
        compiled = select(Article.id).where(*conditions).compile(dialect=session.get_bind().dialect)
        connection = session.connection()
        explained = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params).scalar_one()
        plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]
        return round(float(plan["Plan Rows"]))
    plain = not (filters.entities or filters.feed or filters.since or filters.until)
    if text is not None and plain and query is not None and query.is_text():
        matches = (
            sa.select(sa.literal_column("rowid").label("rowid"))
            .select_from(sa.table("article_fts"))
            .where(sa.literal_column("article_fts").op("MATCH")(text.to_fts5()))
            .limit(COUNT_CAP)
            .subquery()
        )
        found, reached = session.exec(select(sa.func.count(), sa.func.max(matches.c.rowid))).one()
        if found < COUNT_CAP:
            return int(found)
        archive = session.exec(select(sa.func.max(Article.id))).one() or reached
        return round(int(found) * int(archive) / max(1, int(reached)))
    if text is not None and walk:
        return None
    if query is None and plain:
        newest = select(col(Article.is_duplicate)).order_by(sort_time.desc()).limit(FILTER_COUNT_CAP).subquery()
        archive = session.exec(select(sa.func.max(Article.id))).one() or 0
        copies = (
            0.0
            if filters.include_duplicates
            else float(session.exec(select(sa.func.avg(newest.c.is_duplicate))).one() or 0)
        )
        return round(archive * (1 - copies))
    return _capped_count(session, conditions)


def _newest_share(
    session: Session, conditions: Sequence[sa.ColumnElement[bool]], sort_time: sa.ColumnElement[datetime]
) -> int | None:
    """The archive's size times the share of its newest ``SAMPLE_ROWS`` articles that meet
    ``conditions`` (PostgreSQL, a frequent text); None when too few of them do.

    The planner judges a phrase, or words that seldom meet, by each word alone (617,465
    for a phrase in 103,712 of a million articles); the newest articles, read through
    ``ix_article_newest`` and tested by primary key, tell in a few milliseconds.
    """
    newest = select(Article.id).order_by(sort_time.desc(), col(Article.id).desc()).limit(SAMPLE_ROWS)
    seen = session.exec(select(sa.func.count()).select_from(newest.subquery())).one()
    found = session.exec(select(sa.func.count()).where(col(Article.id).in_(newest), *conditions)).one()
    if seen < SAMPLE_ROWS:
        return int(found)  # the whole archive was the sample
    if found < SAMPLE_MIN_MATCHES:
        return None
    archive = session.exec(select(sa.func.max(Article.id))).one() or seen
    return round(int(found) * int(archive) / int(seen))


def _capped_count(session: Session, conditions: Sequence[sa.ColumnElement[bool]]) -> int | None:
    """How many articles meet ``conditions``, if fewer than ``FILTER_COUNT_CAP``; else None."""
    limited = select(Article.id).where(*conditions).limit(FILTER_COUNT_CAP).subquery()
    found = session.exec(select(sa.func.count()).select_from(limited)).one()
    return int(found) if found < FILTER_COUNT_CAP else None


def _fts_from(query: Query, floor: int) -> sa.ColumnElement[bool]:
    """``query``'s FTS5 match among the articles of id ``floor`` and above."""
    fts = sa.table("article_fts", sa.column("rowid", sa.Integer))
    matching = sa.select(fts.c.rowid).where(
        sa.literal_column("article_fts").op("MATCH")(query.to_fts5()), fts.c.rowid >= floor
    )
    return col(Article.id).in_(matching)


def _newest_floor(
    session: Session,
    query: Query,
    others: list[sa.ColumnElement[bool]],
    sort_time: sa.ColumnElement[datetime],
    limit: int,
) -> int:
    """An id below which no article of the first page can be (SQLite, a frequent text).

    FTS5 reads its matches newest id first without sorting; the first ``limit + 1``
    passing the other filters are a page, though not yet in time order. Any article
    of the true first page is at least as new as the oldest of them, and every article
    that new has an id of at least the smallest the newest-first index holds down to
    that time: the page is among the matches from that id up, which ids (given in
    order of arrival) keep few. Testing each walked article instead costs FTS5 a
    lookup of every word at that row, a millisecond for a phrase of frequent words.
    """
    fts = sa.table("article_fts", sa.column("rowid", sa.Integer))
    newest = (
        sa.select(fts.c.rowid.label("rowid"))
        .where(sa.literal_column("article_fts").op("MATCH")(query.to_fts5()))
        .order_by(fts.c.rowid.desc())
        .subquery()
    )
    found = session.exec(
        select(sort_time)
        .select_from(newest)
        .join(Article, col(Article.id) == newest.c.rowid)
        .where(*others)
        .order_by(newest.c.rowid.desc())
        .limit(limit + 1)
    ).all()
    if len(found) <= limit:
        return 0  # they are all the matches there are
    oldest = min(found)
    # ``id + 0``: SQLite would otherwise read the table in id order from the oldest.
    floor = session.exec(select(sa.func.min(col(Article.id) + 0)).where(sort_time >= oldest)).one()
    return int(floor or 0)


def _text_part(query: Query) -> Query | None:
    """The words and phrases ``query`` needs in every article, as one text query."""
    if query.is_text():
        return query
    groups = tuple(g for g in query.groups if all(is_text(o) for o in g))
    return Query(groups) if groups else None


def _unindexed(sort_time: sa.ColumnElement[datetime]) -> sa.ColumnElement[datetime]:
    """The same times as ``sort_time`` by an expression no index holds."""
    return sa.func.coalesce(Article.published_at, Article.fetched_at, Article.fetched_at, type_=UTCDateTime)


def _conditions(
    session: Session,
    filters: SearchFilters,
    query: Query | None,
    sort_time: sa.ColumnElement[datetime],
    dialect: str,
    names: EntityNames,
    *,
    per_row: bool = False,
) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if query is not None:
        resolved = resolve_query(query, names)

        def feed_id(name: str) -> int:
            return named_feed_id(session, name, label="query: feed")

        conditions.append(query_condition(resolved, dialect=dialect, feed_id=feed_id, per_row=per_row))
    if not filters.include_duplicates:
        conditions.append(sa.not_(col(Article.is_duplicate)))
    since = as_utc(filters.since) if filters.since else None
    until = as_utc(filters.until) if filters.until else None
    if since and until and since > until:
        raise QueryError("time: --since is later than --until")
    if since:
        conditions.append(sort_time >= since)
    if until:
        conditions.append(sort_time <= until)
    if filters.feed is not None:
        conditions.append(col(Article.feed_id) == named_feed_id(session, filters.feed))
    conditions.extend(mentions(entity) for entity in entity_names(names, filters.entities))
    if filters.cursor:
        moment, last_id = decode_cursor(filters.cursor)
        if last_id > max_id(dialect):
            raise QueryError("cursor: invalid cursor (its id is out of range)")
        conditions.append(sa.or_(sort_time < moment, sa.and_(sort_time == moment, col(Article.id) < last_id)))
    return conditions


def _highlighted(query: Query | None) -> Query | None:
    """What snippets show in context: the query itself when it is all text, else any of
    the words and phrases it looks for (None when it looks for none)."""
    if query is None or query.is_text():
        return query
    wanted = tuple(dict.fromkeys(_looked_for(query)))
    return Query((wanted,)) if wanted else None


def _looked_for(query: Query) -> Iterable[Phrase]:
    for group in query.groups:
        for operand in group:
            if isinstance(operand, Phrase):
                yield operand
            elif isinstance(operand, Query):
                yield from _looked_for(operand)


def _entities(session: Session, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    if ids:
        rows = session.exec(
            select(Mention.article_id, Mention.entity).where(col(Mention.article_id).in_(ids)).distinct()
        )
        for article_id, entity in rows:
            found.setdefault(article_id, []).append(entity)
    return found


def _snippets(session: Session, ids: list[int], query: Query | None, dialect: str) -> dict[int, str]:
    """Plain-text context of the match, or the start of the text without a query."""
    if not ids:
        return {}
    if query is None:
        rows = session.exec(
            select(Article.id, sa.func.substr(Article.text, 1, SNIPPET_CHARS * 2)).where(col(Article.id).in_(ids))
        )
        return {stored_id(article_id): lead(text or "") for article_id, text in rows}
    if dialect == "sqlite":
        statement: Any = sa.text(
            "SELECT rowid, snippet(article_fts, :column, '', '', '…', :tokens) FROM article_fts "
            "WHERE article_fts MATCH :fts_query AND rowid IN :ids"
        ).bindparams(
            sa.bindparam("ids", expanding=True),
            column=_FTS5_TEXT_COLUMN,
            tokens=_FTS5_SNIPPET_TOKENS,
            fts_query=query.to_fts5(),
            ids=ids,
        )
    else:
        statement = select(
            Article.id,
            sa.func.ts_headline(
                sa.literal_column(f"'{PG_CONFIG}'::regconfig"),
                # What was indexed, as FTS5's snippet() reads it: no match lies beyond.
                sa.func.left(Article.text, INDEXED_CHARS),
                pg_tsquery(query),
                _PG_HEADLINE_OPTIONS,
            ),
        ).where(col(Article.id).in_(ids))
    return {article_id: _squash(text or "") for article_id, text in session.exec(statement)}


def _squash(text: str) -> str:
    return " ".join(text.split())


def lead(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The start of ``text`` cut at a word: the snippet of an article when nothing else fits."""
    text = _squash(text[: limit * 4])
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip() + "…"


def _query_error(exc: sa.exc.DBAPIError) -> QueryError | None:
    """A full-text engine's complaint about a query, as a ``QueryError``.

    ``parse_query`` renders only words, so this is a safety net, not a path.
    """
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    if "fts5" in reason or "tsquery" in reason:
        return QueryError(f"query: not understood by the search index: {reason}")
    return None
