"""Search's two plans find the same articles in the same order.

A frequent text walks the newest articles testing each; a rare one is collected
through the full-text index and sorted (``monitor.search._walk`` chooses from term
statistics). Here each query runs under both plans, forced, on both engines, page by
page, and both must list exactly the articles a plain reading of the texts expects.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitor import search
from monitor.db import session
from monitor.models import Article, Feed, Mention
from monitor.query import parse_query
from monitor.search import SearchFilters, search_articles

START = datetime(2022, 1, 1, tzinfo=UTC)
COUNT = 1500


def _archive(engine: sa.Engine) -> dict[int, tuple[datetime, str, bool, bool]]:
    """Articles whose words have known frequencies: 'common' in 90 %, 'middling' in 10 %,
    'scarce' in 0.5 %, 'bygone' in half the older half; publication times out of id
    order; some duplicates."""
    rng = random.Random(9)
    facts: dict[int, tuple[datetime, str, bool, bool]] = {}
    rows, mentions = [], []
    for i in range(1, COUNT + 1):
        words = ["report"]
        words += ["common"] if rng.random() < 0.9 else []
        words += ["middling"] if rng.random() < 0.1 else []
        words += ["scarce words"] if rng.random() < 0.005 else []
        text = " ".join(rng.sample(words, len(words)))
        text += " bygone" if i <= COUNT // 2 and i % 2 else ""
        published = None if i % 17 == 0 else START + timedelta(minutes=rng.randint(0, 5000))
        fetched = START + timedelta(minutes=i * 3)
        duplicate = i % 11 == 0
        almaty = i % 4 == 0
        facts[i] = (published or fetched, text, duplicate, almaty)
        rows.append(
            {
                "id": i,
                "url": f"https://plans.example/{i}",
                "title": None,
                "text": text,
                "content_hash": f"h{i}",
                "published_at": published,
                "fetched_at": fetched,
                "feed_id": 1,
                "is_duplicate": duplicate,
            }
        )
        if almaty:
            mentions.append({"article_id": i, "entity": "Almaty", "text": "x", "start": 0, "end": 1, "snippet": "x"})
    with session(engine) as db:
        db.add(Feed(id=1, name="Plans", url="https://plans.example/rss"))
        db.commit()
        db.execute(sa.insert(Article), rows)
        db.execute(sa.insert(Mention), mentions)
        db.commit()
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:  # as autovacuum would have
            connection.execute(sa.text("ANALYZE article, mention"))
    return facts


def _all_pages(engine: sa.Engine, filters: SearchFilters) -> list[int]:
    found: list[int] = []
    cursor = None
    while True:
        with session(engine) as db:
            page = search_articles(db, SearchFilters(**{**filters.__dict__, "cursor": cursor}))
        found += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            return found


QUERIES: list[tuple[str, dict[str, object], Callable[[str, bool], bool]]] = [
    ("common", {}, lambda text, almaty: "common" in text),
    ("middling", {}, lambda text, almaty: "middling" in text),
    ('"scarce words"', {}, lambda text, almaty: "scarce words" in text),
    (
        "middling OR scarce -common",
        {},
        lambda text, almaty: ("middling" in text or "scarce" in text) and "common" not in text,
    ),
    ("common", {"entities": ("Almaty",)}, lambda text, almaty: "common" in text and almaty),
    ("entity:Almaty middling", {}, lambda text, almaty: "middling" in text and almaty),
]


@pytest.mark.parametrize("walk_rows", [1, 10**9], ids=["collect", "walk"])
def test_both_plans_list_the_same_articles_newest_first(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, walk_rows: int
) -> None:
    facts = _archive(engine)
    # 1: walking never pays, so every text is collected; 10**9: it always does.
    monkeypatch.setattr(search, "WALK_ROWS", walk_rows)
    for text, extra, matches in QUERIES:
        for limit in (7, 500):
            filters = SearchFilters(query=text, limit=limit, **extra)  # type: ignore[arg-type]
            expected = sorted(
                (i for i, (_, words, duplicate, almaty) in facts.items() if not duplicate and matches(words, almaty)),
                key=lambda i: (facts[i][0], i),
                reverse=True,
            )
            assert expected, text
            assert _all_pages(engine, filters) == expected, (text, extra, limit)


def test_sqlite_chooses_from_the_matches_among_the_newest_articles(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite walks a text with a page's worth of matches among the newest ``WALK_ROWS``
    ids, so that choosing costs the same however large the archive and however costly
    each match (a count of a phrase's matches over the archive read 5,000 of them at a
    million articles). 'bygone', in half the older half of the archive, is collected."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL asks its planner")
    _archive(engine)
    monkeypatch.setattr(search, "WALK_ROWS", COUNT // 2)
    with session(engine) as db:
        walked = {
            text
            for text in ("common", "middling", "bygone", '"scarce words"')
            if search._walk(db, parse_query(text), "sqlite", 20)
        }
    assert walked == {"common", "middling"}


@pytest.mark.parametrize(
    ("text", "extra"),
    [
        (None, {}),
        ("common", {}),
        ("middling", {}),
        ('"scarce words"', {}),
        ("middling", {"entities": ("Almaty",)}),
        # Two frequent words, standing together in half the articles that have both: the
        # planner judges the phrase by its words (90 %), so PostgreSQL samples.
        ('"report common"', {}),
    ],
    ids=["everything", "common", "middling", "scarce", "middling-entity", "frequent-phrase"],
)
def test_the_approximate_total_is_near_the_count(engine: sa.Engine, text: str | None, extra: dict[str, object]) -> None:
    _archive(engine)
    filters = SearchFilters(query=text, **extra)  # type: ignore[arg-type]
    exact = len(_all_pages(engine, SearchFilters(query=text, limit=500, **extra)))  # type: ignore[arg-type]
    with session(engine) as db:
        total = search_articles(db, filters).approximate_total
        assert search_articles(db, filters, count=False).approximate_total is None
    if engine.dialect.name == "sqlite" and text and extra:
        # A frequent text with other filters: SQLite has no cheap figure for it.
        assert total is None
        return
    assert total is not None
    if text == '"scarce words"':
        # A rare text's matches are counted, never guessed: the planner's guess for a
        # word its statistics do not list can be ten times the count.
        assert total == exact
    # "About": within a quarter of the count (duplicates, filters and statistics), or a few articles.
    assert abs(total - exact) <= max(5, exact // 4), (total, exact)


@pytest.mark.parametrize(
    "filters", [SearchFilters(feed="Plans"), SearchFilters(query="feed:Plans")], ids=["filter", "term"]
)
def test_a_feeds_newest_page_is_read_from_its_index_on_sqlite(engine: sa.Engine, filters: SearchFilters) -> None:
    """A feed's page is the first rows of ix_article_feed_newest under that feed, not all
    of the feed's articles sorted (55 ms for a feed of 1 % of a million articles)."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL reads a table this small whole")
    _archive(engine)
    pages: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, *_):  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT article.id") and "ORDER BY" in statement:
            pages.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with session(engine) as db:
            assert len(search_articles(db, filters).items) == 20
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    ((statement, parameters),) = pages
    with engine.connect() as connection:
        plan = " / ".join(row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
    assert "ix_article_feed_newest" in plan and "TEMP B-TREE" not in plan, plan


def test_postgresql_collects_a_rare_text_without_parallel_workers(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers cost more to start than the few hundred matches of a rare word they
    would share (40 ms instead of 16 at a million articles); the setting is the
    session's own again after the page."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no parallel workers")
    _archive(engine)
    monkeypatch.setattr(search, "WALK_ROWS", 1)  # collect
    during: list[str] = []

    def capture(connection, _cursor, statement, *_):  # type: ignore[no-untyped-def]
        if statement.startswith("SELECT article.id") and "ORDER BY" in statement:
            during.append(connection.exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar())

    sa.event.listen(engine, "before_cursor_execute", capture)
    try:
        with session(engine) as db:
            assert search_articles(db, SearchFilters(query='"scarce words"')).items
            after = db.connection().exec_driver_sql("SHOW max_parallel_workers_per_gather").scalar()
    finally:
        sa.event.remove(engine, "before_cursor_execute", capture)
    assert during == ["0"]
    assert after != "0"
