"""Archive search on SQLite (FTS5) and PostgreSQL (tsvector + GIN), and `monitor search`."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from alembic import command
from monitor.cli import main
from monitor.db import alembic_config, make_engine, session, upgrade_schema
from monitor.errors import QueryError
from monitor.models import Article, Feed, Mention, Seed
from monitor.search import SearchFilters, SearchPage, search_articles
from tests.support.databases import ENGINES, PG_SERVER_URL
from tests.test_search_query import MALFORMED, ODD_BUT_VALID

SEED_NAME = "001_73071e9b10a78990.txt"
FILLER = (
    "Officials said the situation remained calm while negotiations continued in the capital "
    "and regional administrations reported on the state of public services. "
)


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2022, 1, day, hour, tzinfo=UTC)


@dataclass
class Archive:
    """The articles of a test archive by short name, and the database they live in."""

    engine: sa.Engine
    ids: dict[str, int] = field(default_factory=dict)

    def names(self, page: SearchPage) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[item.id] for item in page.items]

    def search(self, **filters: object) -> SearchPage:
        with session(self.engine) as db:
            return search_articles(db, SearchFilters(**filters))  # type: ignore[arg-type]

    def found(self, query: str | None = None, **filters: object) -> list[str]:
        return self.names(self.search(query=query, **filters))


# name: (title, text, published_at, fetched_at, feed, entities, duplicate of)
# The languages are as feeds give them: any case, - or _.
LANGUAGES = {"almaty_en": "en_US", "nazarbayev": "EN", "almaty_ru": "ru"}
ARTICLES: dict[str, tuple] = {
    "almaty_en": (
        "Protests erupt in Almaty",
        (
            "Thousands of protesters gathered in Almaty on Wednesday as fuel prices doubled. "
            "The government asked the Collective Security Treaty Organization for help."
        ),
        t(5, 8),
        t(5, 9),
        "Example World",
        ["Almaty", "CSTO"],
        None,
    ),
    "almaty_ru": (
        "Протесты в Алматы",
        "Тысячи протестующих вышли на улицы Алматы. ОДКБ направила миротворцев.",
        t(6, 12),
        t(6, 12),
        "Steppe Daily",
        ["CSTO", "Almaty"],
        None,
    ),
    "nazarbayev": (
        "Nazarbayev leaves the security council",
        (
            "Former president Nursultan Nazarbayev left the security council; Tokayev took "
            "the chair. The treaty with Moscow was not discussed."
        ),
        t(7, 9),
        t(7, 10),
        "Example World",
        ["Nazarbayev"],
        None,
    ),
    "copy_of_seed": (
        "Protests in Almaty (republished)",
        "Thousands of protesters gathered in Almaty as fuel prices doubled.",
        t(8),
        t(8),
        "Steppe Daily",
        ["Almaty"],
        "seed",
    ),
    "copy_of_article": (
        "Protests erupt in Almaty",
        "Thousands of protesters gathered in Almaty on Wednesday as fuel prices doubled.",
        None,
        t(9),
        None,
        ["Almaty"],
        "almaty_en",
    ),
    "gas": (
        None,
        "Liquefied gas prices rose sharply across Kazakhstan in early January. "
        + FILLER * 6
        + "Analysts expect the Zürich café owners to follow the market closely. "
        + FILLER * 6,
        None,
        t(4, 6),
        None,
        [],
        None,
    ),
}


def add_feed(db: object, name: str) -> int:
    feed = Feed(name=name, url=f"https://{name.lower().replace(' ', '-')}.example/rss")
    db.add(feed)  # type: ignore[attr-defined]
    db.flush()  # type: ignore[attr-defined]
    return feed.id  # type: ignore[return-value]


def build_archive(engine: sa.Engine) -> Archive:
    archive = Archive(engine)
    with session(engine) as db:
        feeds = {name: add_feed(db, name) for name in ("Example World", "Steppe Daily")}
        seed = Seed(name=SEED_NAME, title="Seed", text="Seed text", content_hash="s" * 64)
        db.add(seed)
        db.flush()
        for name, (title, text, published, fetched, feed, entities, dup) in ARTICLES.items():
            article = Article(
                url=f"https://news.example/{name}",
                title=title,
                text=text,
                published_at=published,
                fetched_at=fetched,
                feed_id=feeds.get(feed) if feed else None,
                source="feed" if feed else "import",
                content_hash=name.ljust(64, "0"),
                language=LANGUAGES.get(name),
                is_duplicate=dup is not None,
                duplicate_of_seed_id=seed.id if dup == "seed" else None,
                duplicate_of_article_id=archive.ids[dup] if dup and dup != "seed" else None,
            )
            db.add(article)
            db.flush()
            archive.ids[name] = article.id  # type: ignore[assignment]
            for entity in entities + entities[:1]:  # repeated mentions are listed once
                db.add(
                    Mention(article_id=article.id, entity=entity, text=entity, start=0, end=len(entity), snippet=entity)
                )
        db.commit()
    return archive


@pytest.fixture(scope="module", params=ENGINES)
def archive(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Archive]:
    """One archive per engine for the tests that only read (a database per test is slow)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("search") / "archive.db"
        shutil.copy(sqlite_template, path)
        engine = make_engine(f"sqlite:///{path}")
        yield build_archive(engine)
        engine.dispose()
        return
    template = request.getfixturevalue("pg_template")
    if template is None:
        pytest.skip("no PostgreSQL server")
    name = f"monitor_search_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    engine = make_engine(sa.make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False))
    yield build_archive(engine)
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def fresh_archive(engine: sa.Engine) -> Archive:
    """An archive of its own, for tests that change it."""
    return build_archive(engine)


# ----------------------------------------------------------------------------- queries


def test_without_query_lists_originals_newest_first(archive: Archive) -> None:
    assert archive.found() == ["nazarbayev", "almaty_ru", "almaty_en", "gas"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Almaty", ["almaty_en"]),
        ("gathered almaty", ["almaty_en"]),
        ("ALMATY Wednesday", ["almaty_en"]),
        ("protest", ["almaty_en"]),  # stemmed: protests, protesters
        ("security treaty", ["nazarbayev", "almaty_en"]),
        ('"security treaty"', ["almaty_en"]),
        ('"treaty security"', []),
        ('"Collective Security Treaty Organization"', ["almaty_en"]),
        ("Nazarbayev OR gas", ["nazarbayev", "gas"]),
        ("prices Nazarbayev OR gas", ["gas"]),  # prices AND (Nazarbayev OR gas)
        ('"fuel prices" OR "gas prices"', ["almaty_en", "gas"]),
        ("security -Nazarbayev", ["almaty_en"]),
        ('security -"security council"', ["almaty_en"]),
        ("prices -Almaty -Kazakhstan", []),
        ("Алматы", ["almaty_ru"]),
        ("алматы", ["almaty_ru"]),
        ("АЛМАТЫ", ["almaty_ru"]),
        ("ОДКБ миротворцев", ["almaty_ru"]),
        ('"улицы Алматы"', ["almaty_ru"]),
        ("Almaty OR Алматы", ["almaty_ru", "almaty_en"]),
        ("Протесты -ОДКБ", []),
        ("cafe zurich", ["gas"]),  # diacritics folded on both sides
        ("Café Zürich", ["gas"]),
        ("the", ["nazarbayev", "almaty_en", "gas"]),  # no stop words dropped
        ('"took the chair"', ["nazarbayev"]),
        ("nothingmatchesthis", []),
    ],
)
def test_full_text_query(archive: Archive, query: str, expected: list[str]) -> None:
    assert archive.found(query) == expected


def test_title_is_searched_too(archive: Archive) -> None:
    assert archive.found("erupt") == ["almaty_en"]
    assert archive.found('"leaves the security council"') == ["nazarbayev"]


# ----------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"entities": ("Almaty",)}, ["almaty_ru", "almaty_en"]),
        ({"entities": ("almaty",)}, ["almaty_ru", "almaty_en"]),  # case-insensitive
        ({"entities": ("Almaty", "CSTO")}, ["almaty_ru", "almaty_en"]),
        ({"entities": ("Nazarbayev", "CSTO")}, []),  # all of them
        ({"entities": ("alma-ata", "ОДКБ")}, ["almaty_ru", "almaty_en"]),  # aliases
        ({"since": t(6)}, ["nazarbayev", "almaty_ru"]),
        ({"until": t(6, 12)}, ["almaty_ru", "almaty_en", "gas"]),  # inclusive
        ({"since": t(5), "until": t(6, 11)}, ["almaty_en"]),
        ({"feed": "Example World"}, ["nazarbayev", "almaty_en"]),
        ({"feed": "steppe daily"}, ["almaty_ru"]),
        (
            {"include_duplicates": True},
            ["copy_of_article", "copy_of_seed", "nazarbayev", "almaty_ru", "almaty_en", "gas"],
        ),
        ({"include_duplicates": True, "feed": "Steppe Daily"}, ["copy_of_seed", "almaty_ru"]),
        ({"limit": 2}, ["nazarbayev", "almaty_ru"]),
        ({"limit": 1, "query": "Almaty OR Алматы"}, ["almaty_ru"]),
        ({"query": "Almaty", "include_duplicates": True}, ["copy_of_article", "copy_of_seed", "almaty_en"]),
        ({"query": "Almaty", "entities": ("CSTO",), "since": t(5), "feed": "Example World"}, ["almaty_en"]),
    ],
    ids=repr,
)
def test_filters(archive: Archive, filters: dict[str, object], expected: list[str]) -> None:
    assert archive.found(**filters) == expected


def test_unknown_feed_is_a_query_error(archive: Archive) -> None:
    with pytest.raises(QueryError, match="no feed named 'Nowhere'"):
        archive.search(feed="Nowhere")


def test_unknown_entity_is_a_query_error_with_a_suggestion(archive: Archive) -> None:
    with pytest.raises(QueryError, match=r"^entity: 'Almatty' is not a tracked entity \(did you mean Almaty\?\)$"):
        archive.search(entities=("Almatty",))
    with pytest.raises(QueryError, match=r"'Astana' is not a tracked entity \(tracked: CSTO, Nazarbayev, Almaty\)"):
        archive.search(entities=("Astana",))


# ------------------------------------------------------------------------- field terms


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("entity:Almaty", ["almaty_ru", "almaty_en"]),
        ('entity:"alma-ata"', ["almaty_ru", "almaty_en"]),
        ("ENTITY:алматы", ["almaty_ru", "almaty_en"]),
        ("entity:Almaty protest", ["almaty_en"]),
        ("entity:Almaty -entity:CSTO", []),
        ("entity:Nazarbayev OR gas", ["nazarbayev", "gas"]),
        ("security -entity:Nazarbayev", ["almaty_en"]),
        ('feed:"Example World"', ["nazarbayev", "almaty_en"]),
        ('feed:"steppe daily"', ["almaty_ru"]),
        ('prices -feed:"Example World"', ["gas"]),  # an imported article is in no feed
        ("lang:en", ["nazarbayev", "almaty_en"]),
        ("lang:en-us", ["almaty_en"]),
        ("lang:EN_US", ["almaty_en"]),
        ("lang:e", []),
        ("lang:ru OR lang:en", ["nazarbayev", "almaty_ru", "almaty_en"]),
        ("prices -lang:en", ["gas"]),  # an article of no known language is in none
        ("(protest OR leaves) -(ОДКБ OR tokayev)", ["almaty_en"]),
        ("(entity:CSTO OR gas) prices", ["almaty_en", "gas"]),
        ("(entity:CSTO OR gas) -(prices lang:en)", ["almaty_ru", "gas"]),
        ("-(entity:CSTO OR entity:Nazarbayev) (the OR улицы)", ["gas"]),
        ("(security (treaty OR council)) OR (entity:CSTO lang:ru)", ["nazarbayev", "almaty_ru", "almaty_en"]),
        ('entity:CSTO "security treaty" OR миротворцев', ["almaty_ru", "almaty_en"]),
    ],
)
def test_field_terms_and_groups(archive: Archive, query: str, expected: list[str]) -> None:
    assert archive.found(query) == expected


def test_field_terms_keep_duplicates_out_unless_asked(archive: Archive) -> None:
    assert archive.found("entity:Almaty", include_duplicates=True) == [
        "copy_of_article",
        "copy_of_seed",
        "almaty_ru",
        "almaty_en",
    ]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("entity:Almatty", "query: entity: 'Almatty' is not a tracked entity (did you mean Almaty?)"),
        ("a -(b OR entity:Astana)", "query: entity: 'Astana' is not a tracked entity"),
        ('feed:"Nowhere"', "query: feed: no feed named 'Nowhere'"),
        ("title:Almaty", "unknown field 'title'"),
    ],
)
def test_unknown_names_in_a_query_are_query_errors(archive: Archive, query: str, reason: str) -> None:
    with pytest.raises(QueryError) as caught:
        archive.search(query=query)
    assert reason in str(caught.value)


def test_snippet_of_a_field_query(archive: Archive) -> None:
    items = {
        archive.names(SearchPage(items=[i], next_cursor=None))[0]: i
        for i in archive.search(query="entity:Almaty OR protest").items
    }
    # The word is shown in context where it occurs; otherwise the start of the text.
    assert "protest" in items["almaty_en"].snippet.lower()
    assert items["almaty_ru"].snippet == ARTICLES["almaty_ru"][1]


@pytest.mark.parametrize(
    "filters",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": -3},
        {"limit": "10"},
        {"since": t(7), "until": t(6)},
        {"cursor": "not-a-cursor"},
        {"feed": ""},
        {"feed": "bad\x00name"},
        {"entities": ("bad\x00name",)},
    ],
    ids=repr,
)
def test_bad_filters_are_query_errors(archive: Archive, filters: dict[str, object]) -> None:
    with pytest.raises(QueryError):
        archive.search(**filters)


# ----------------------------------------------------------------------- result shape


def test_json_shape(archive: Archive) -> None:
    items = archive.search(query="Almaty", include_duplicates=True).items
    dumped = {item.id: item.model_dump(mode="json") for item in items}
    keys = ["id", "url", "title", "feed", "published_at", "fetched_at", "entities", "duplicate_of", "snippet"]
    assert all(list(d) == keys for d in dumped.values())
    original = dumped[archive.ids["almaty_en"]]
    assert original == {
        "id": archive.ids["almaty_en"],
        "url": "https://news.example/almaty_en",
        "title": "Protests erupt in Almaty",
        "feed": "Example World",
        "published_at": "2022-01-05T08:00:00Z",
        "fetched_at": "2022-01-05T09:00:00Z",
        "entities": ["Almaty", "CSTO"],
        "duplicate_of": None,
        "snippet": original["snippet"],
    }
    assert dumped[archive.ids["copy_of_seed"]]["duplicate_of"] == SEED_NAME
    copy = dumped[archive.ids["copy_of_article"]]
    assert copy["duplicate_of"] == f"article:{archive.ids['almaty_en']}"
    assert copy["feed"] is None and copy["published_at"] is None
    assert copy["fetched_at"] == "2022-01-09T00:00:00Z"


def test_snippet_shows_the_match_in_context(archive: Archive) -> None:
    (item,) = archive.search(query="café").items
    text = ARTICLES["gas"][1]
    assert "café" in item.snippet.lower()
    assert len(item.snippet) < len(text) / 3
    assert "<" not in item.snippet and "\n" not in item.snippet
    (item,) = archive.search(query='"улицы Алматы"').items
    assert "улицы Алматы" in item.snippet


def test_snippet_without_query_is_the_start_of_the_text(archive: Archive) -> None:
    items = {item.id: item for item in archive.search(limit=10).items}
    gas = items[archive.ids["gas"]]
    assert gas.snippet.startswith("Liquefied gas prices rose sharply")
    assert gas.snippet.endswith("…") and len(gas.snippet) <= 201
    assert items[archive.ids["almaty_ru"]].snippet == ARTICLES["almaty_ru"][1]


# ------------------------------------------------------------------------- pagination


def add_many(engine: sa.Engine, count: int) -> set[int]:
    """Articles with clashing times (ties broken by id) and some without a date."""
    ids = set()
    with session(engine) as db:
        for i in range(count):
            published = None if i % 5 == 0 else t(10) + timedelta(hours=i // 3)
            article = Article(
                url=f"https://bulk.example/{i}",
                title=f"Bulk {i}",
                text=f"Bulk report number {i} about Almaty.",
                published_at=published,
                fetched_at=t(11) + timedelta(hours=i % 4),
                content_hash=str(i).ljust(64, "0"),
            )
            db.add(article)
            db.flush()
            ids.add(article.id)
        db.commit()
    return ids


@pytest.mark.parametrize("query", [None, "bulk almaty"])
def test_cursor_pages_cover_every_row_exactly_once(engine: sa.Engine, query: str | None) -> None:
    archive = Archive(engine)
    ids = add_many(engine, 23)
    everything = archive.search(query=query, limit=500)
    assert everything.next_cursor is None
    assert {item.id for item in everything.items} == ids
    keys = [((i.published_at or i.fetched_at), i.id) for i in everything.items]
    assert keys == sorted(keys, reverse=True)

    seen: list[int] = []
    cursor = None
    for _ in range(10):
        page = archive.search(query=query, limit=4, cursor=cursor)
        seen += [item.id for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [item.id for item in everything.items]
    assert len(page.items) == 23 % 4


def test_a_page_that_ends_exactly_has_no_next_cursor(archive: Archive) -> None:
    first = archive.search(limit=2)
    second = archive.search(limit=2, cursor=first.next_cursor)
    assert archive.names(second) == ["almaty_en", "gas"]
    assert second.next_cursor is None


# ----------------------------------------------------------------- hostile input, index


def test_hostile_queries_never_raise_anything_but_query_error(archive: Archive) -> None:
    for text in list(MALFORMED) + ODD_BUT_VALID:
        try:
            archive.search(query=text, include_duplicates=True)
        except QueryError as exc:
            assert "\n" not in str(exc)
    # The archive is intact after all of it.
    assert len(archive.found(include_duplicates=True)) == len(ARTICLES)


def test_the_index_follows_updates_and_deletes(fresh_archive: Archive) -> None:
    archive = fresh_archive
    with session(archive.engine) as db:
        article = db.get(Article, archive.ids["gas"])
        article.text = "Wheat harvest figures were published."
        db.add(article)
        db.commit()
    assert archive.found("wheat") == ["gas"]
    assert archive.found("liquefied") == []
    with session(archive.engine) as db:
        db.delete(db.get(Article, archive.ids["gas"]))
        db.commit()
    assert archive.found("wheat") == []


def test_postgresql_search_uses_the_gin_index(archive: Archive) -> None:
    if archive.engine.dialect.name != "postgresql":
        pytest.skip("the GIN index is PostgreSQL's")
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, *_):  # type: ignore[no-untyped-def]
        # The search's own EXPLAIN (choosing its plan) aside.
        if "@@" in statement and "ts_headline" not in statement and not statement.startswith("EXPLAIN"):
            statements.append((statement, parameters))

    sa.event.listen(archive.engine, "before_cursor_execute", capture)
    try:
        assert archive.found("almaty") == ["almaty_en"]
    finally:
        sa.event.remove(archive.engine, "before_cursor_execute", capture)
    # The page's statement (the approximate total's count aside).
    ((statement, parameters),) = [(s, p) for s, p in statements if "count(" not in s]
    with archive.engine.connect() as connection:
        # A six-row table is read whole unless that is ruled out.
        connection.exec_driver_sql("SET enable_seqscan = off")
        connection.exec_driver_sql("SET enable_indexscan = off")
        plan = connection.exec_driver_sql("EXPLAIN " + statement, parameters).scalars().all()
    assert "ix_article_search" in "\n".join(plan)


def test_articles_stored_before_the_migration_are_indexed(
    fresh_database_url: Callable[[str], str], request: pytest.FixtureRequest
) -> None:
    for kind in ("sqlite", "postgresql"):
        try:
            url = fresh_database_url(kind)
        except pytest.skip.Exception:
            continue
        engine = make_engine(url)
        config = alembic_config()
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
            connection.commit()
        tables = sa.inspect(engine).get_table_names()
        assert "article_fts" not in tables
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO article (url, title, text, fetched_at, source, content_hash, "
                    "is_duplicate) VALUES ('https://old.example/1', 'Old news', "
                    "'An archived report from Almaty', :now, 'import', 'h', false)"
                ),
                {"now": datetime(2021, 12, 1)},
            )
        upgrade_schema(engine)
        assert Archive(engine, {"old": 1}).found("almaty report") == ["old"]
        engine.dispose()


# ------------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(archive: Archive, config_file: Callable[..., Path]):
    url = archive.engine.url.render_as_string(hide_password=False)
    path = config_file(f"database_url: {url}\nlog_level: WARNING\n")

    def run(*args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(main, ["--config", str(path), "search", *args])
        return result.exit_code, result.stdout, result.stderr

    return run


def test_cli_json(cli, archive: Archive) -> None:
    code, out, err = cli("Almaty OR Алматы", "--json", "--since", "2022-01-01")
    assert code == 0, err
    items = json.loads(out)
    assert [i["id"] for i in items] == [archive.ids["almaty_ru"], archive.ids["almaty_en"]]
    assert items[0]["title"] == "Протесты в Алматы"
    assert items[0]["feed"] == "Steppe Daily" and items[0]["entities"] == ["Almaty", "CSTO"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--entity", "Almaty", "--entity", "CSTO"], ["almaty_ru", "almaty_en"]),
        (["--feed", "Example World", "--until", "2022-01-05"], ["almaty_en"]),
        (["--include-duplicates", "--limit", "2"], ["copy_of_article", "copy_of_seed"]),
        (["--since", "2000d"], ["nazarbayev", "almaty_ru", "almaty_en", "gas"]),
        (["--since", "1h"], []),
    ],
)
def test_cli_filters(cli, archive: Archive, args: list[str], expected: list[str]) -> None:
    code, out, err = cli(*args, "--json")
    assert code == 0, err
    by_id = {v: k for k, v in archive.ids.items()}
    assert [by_id[i["id"]] for i in json.loads(out)] == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["security", "treaty"], ["nazarbayev", "almaty_en"]),
        (['"security treaty"'], ["almaty_en"]),
        (["security", "-Nazarbayev"], ["almaty_en"]),
        (["-Nazarbayev", "security"], ["almaty_en"]),
        (["--", "-Nazarbayev", "security"], ["almaty_en"]),
        (["Almaty", "OR", "Алматы"], ["almaty_ru", "almaty_en"]),
        (["entity:Alma-Ata", "-lang:ru"], ["almaty_en"]),
        (["--entity", "alma-ata", 'feed:"Example World"'], ["almaty_en"]),
    ],
)
def test_cli_query_words_need_no_quoting(cli, archive: Archive, args: list[str], expected: list[str]) -> None:
    code, out, err = cli("--json", *args)
    assert code == 0, err
    by_id = {v: k for k, v in archive.ids.items()}
    assert [by_id[i["id"]] for i in json.loads(out)] == expected


def test_cli_readable_list(cli) -> None:
    code, out, _ = cli("Nazarbayev")
    assert code == 0
    assert "Nazarbayev leaves the security council" in out
    assert "2022-01-07 09:00" in out and "Example World" in out
    assert "https://news.example/nazarbayev" in out
    assert out.rstrip().endswith("1 article")
    code, out, _ = cli("nothingmatchesthis")
    assert code == 0 and "no matching articles" in out


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (['"unbalanced'], "unbalanced quote"),
        (["Almaty OR"], "OR must stand between"),
        (["-Tokayev"], "only exclusions"),
        (["Almaty", "--limt", "5"], "no such option '--limt'"),
        (["--since", "last tuesday"], "--since:"),
        (["--until", "2022-02-30"], "--until:"),
        (["--limit", "many"], "--limit:"),
        (["--limit", "0"], "limit:"),
        (["--feed", "Nowhere"], "no feed named"),
        (["--entity", "Astana"], "'Astana' is not a tracked entity"),
        (["--entity", "almatty"], "did you mean Almaty?"),
        (["entity:Almatty"], "did you mean Almaty?"),
        (["feed:Example", "World"], "no feed named 'Example'"),  # unquoted, a value is one word
        (["(Almaty", "OR", "CSTO"], "a ( is not closed"),
        (["--since", "2022-02-01", "--until", "2022-01-01"], "later than"),
    ],
)
def test_cli_errors_are_one_line(cli, args: list[str], reason: str) -> None:
    code, out, err = cli(*args)
    assert code != 0
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("monitor: error: ")
    assert reason in lines[0]
    assert "Traceback" not in err


def test_cli_config_option_after_the_command(archive: Archive, config_file) -> None:
    url = archive.engine.url.render_as_string(hide_password=False)
    path = config_file(f"database_url: {url}\nlog_level: WARNING\n")
    result = CliRunner().invoke(main, ["search", "Nazarbayev", "--json", "--config", str(path)])
    assert result.exit_code == 0, result.stderr
    assert [item["id"] for item in json.loads(result.stdout)] == [archive.ids["nazarbayev"]]


def test_cli_help_has_an_example() -> None:
    result = CliRunner().invoke(main, ["search", "--help"])
    assert result.exit_code == 0
    assert "monitor search" in result.output and "--entity" in result.output
