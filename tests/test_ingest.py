"""The archive's storage boundary: whatever an entry carries is stored, or rejected without raising.

Real databases, both engines: control characters, oversized titles and URLs, texts past
the search index's limits, and what the database still refuses.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import select

from alembic import command
from monitor.config import Settings
from monitor.db import alembic_config, make_engine, session, upgrade_schema
from monitor.models import Article, Mention
from monitor.pipeline.ingest import Archive, Candidate, StoreResult, cut_at_word, stored_url
from monitor.search import INDEXED_CHARS, SearchFilters, search_articles
from monitor.text import storable_text

UNSTORABLE = "\x00\x01\x08\x0e\x1b\x7f\x80\x9f\ud800\udfff\ufdd0\ufffe\uffff\U0010ffff"
BODY = (
    "Residents of Almaty queued for bread on Monday as the city slowly came back to life "
    "after a week of curfew, closed banks and an internet shutdown."
)


@pytest.fixture
def archive(settings: Settings) -> Archive:
    return Archive(settings)


def store(engine: sa.Engine, archive: Archive, candidate: Candidate) -> StoreResult:
    with session(engine) as db:
        return archive.store(db, candidate)


def rows(engine: sa.Engine) -> list[Article]:
    with session(engine) as db:
        return list(db.exec(select(Article).order_by(Article.id)).all())


def found(engine: sa.Engine, query: str) -> list[str]:
    with session(engine) as db:
        page = search_articles(db, SearchFilters(query=query, include_duplicates=True))
    return [item.url for item in page.items]


def is_unstorable(char: str) -> bool:
    return char not in "\t\n\r" and (
        unicodedata.category(char) in ("Cc", "Cs") or (0xFDD0 <= ord(char) <= 0xFDEF) or ord(char) & 0xFFFE == 0xFFFE
    )


# ------------------------------------------------------------------------ pure helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("tab\tnew\nline\r", "tab\tnew\nline\r"),
        ("a\x00b\x1bc\x7fd\x9fe", "abcde"),
        ("page\x0cbreak, next\x85line, record\x1eend", "page\nbreak, next\nline, record\nend"),
        ("lone \ud800 surrogate, non\ufffecharacter\U0001ffff", "lone  surrogate, noncharacter"),
        ("Кириллица, 中文, emoji 🙂, accents é", "Кириллица, 中文, emoji 🙂, accents é"),
    ],
)
def test_storable_text(value: str, expected: str) -> None:
    assert storable_text(value) == expected


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("short title", 20, "short title"),
        ("exactly twenty chars", 20, "exactly twenty chars"),
        ("the quick brown fox jumps", 20, "the quick brown fox…"),
        ("the quick brown foxes jump", 20, "the quick brown…"),
        ("a" * 50, 20, "a" * 19 + "…"),
    ],
)
def test_cut_at_word(value: str, limit: int, expected: str) -> None:
    cut = cut_at_word(value, limit)
    assert cut == expected
    assert len(cut) <= limit


def test_stored_url_is_bounded_unique_and_stable() -> None:
    head = "https://example.org/" + "a" * 2500
    first, second = stored_url(head + "/one"), stored_url(head + "/two")
    assert first != second
    assert first == stored_url(head + "/one")
    assert len(first) <= 2000 and first.startswith(head[:1900])
    short = "https://example.org/story?id=1"
    assert stored_url(short) == short
    # Under 2000 characters but over 2000 UTF-8 bytes: bounded too (the unique index's entry size).
    wide = "https://example.org/" + "й" * 1500
    assert len(stored_url(wide).encode()) <= 2000
    assert stored_url(wide) == stored_url(wide) != stored_url(wide + "x")


# ------------------------------------------------------------------------- the archive


def test_unstorable_characters_are_removed_from_every_field(engine: sa.Engine, archive: Archive) -> None:
    dirty = f"Almaty{UNSTORABLE} news"
    result = store(
        engine,
        archive,
        Candidate(
            url=f"https://example.org/{UNSTORABLE}story",
            text=f"{dirty}. {BODY}",
            title=dirty,
            author=f"A.{UNSTORABLE} Writer",
            language=f"e{UNSTORABLE}n",
            extraction_note=f"page http_404{UNSTORABLE}; feed content used",
        ),
    )
    assert result.created and result.rejected is None
    (article,) = rows(engine)
    assert article.url == "https://example.org/story"
    assert article.title == "Almaty news"
    assert article.author == "A. Writer"
    assert article.language == "en"
    assert article.extraction_note == "page http_404; feed content used"
    assert article.text.startswith("Almaty news. Residents of Almaty")
    with session(engine) as db:
        mentions = db.exec(select(Mention).where(Mention.article_id == article.id)).all()
    assert {m.entity for m in mentions} == {"Almaty"}
    for mention in mentions:
        # Offsets point into the text as stored.
        assert article.text[mention.start : mention.end] == mention.text
    stored = [article.url, article.title, article.author, article.text, article.extraction_note]
    stored += [m.snippet for m in mentions]
    assert not [c for value in stored for c in value or "" if is_unstorable(c)]


def test_bounded_columns_are_cut_before_the_insert(engine: sa.Engine, archive: Archive) -> None:
    title = "Floods " + "rising " * 450_000  # 3 MB
    result = store(
        engine,
        archive,
        Candidate(
            url="https://example.org/big",
            text=BODY,
            title=title,
            author="Reporter " * 2000,
            language="en-" + "x" * 100,
            extraction_note="page too_large " * 100,
        ),
    )
    assert result.created
    (article,) = rows(engine)
    assert article.title is not None and article.author is not None and article.extraction_note is not None
    assert len(article.title) <= 1000 and article.title.endswith("rising…")
    assert title.startswith(article.title[:-1])
    assert len(article.author) <= 500 and article.author.endswith("Reporter…")
    assert len(article.extraction_note) <= 500 and article.extraction_note.endswith("…")
    assert article.language == ("en-" + "x" * 100)[:20]


def test_long_urls_are_stored_once_each_and_recognised_again(engine: sa.Engine, archive: Archive) -> None:
    head = "https://example.org/archive?" + "&".join(f"p{i}=v{i}" for i in range(400))  # ~3.5 kB
    one, two = head + "&story=1", head + "&story=2"
    assert len(one) > 3000
    first = store(engine, archive, Candidate(url=one, text=BODY + " One."))
    second = store(engine, archive, Candidate(url=two, text="A different story about the harbour and its cranes."))
    assert first.created and second.created and first.article_id != second.article_id
    again = store(engine, archive, Candidate(url=one, text=BODY + " One, edited."))
    assert (again.created, again.article_id) == (False, first.article_id)
    with session(engine) as db:
        assert archive.known_urls(db, [one, two, head + "&story=3", "https://example.org/x"]) == {one, two}
    assert len(rows(engine)) == 2
    assert all(len(article.url) <= 2000 and article.url.startswith(head[:1900]) for article in rows(engine))


def test_a_long_text_is_stored_whole_and_its_head_is_searchable(engine: sa.Engine, archive: Archive) -> None:
    filler = " ".join(f"w{i}x" for i in range(300_000))  # over 2 MB of distinct words
    text = f"Zyxwarbler sighted. {filler} Quorlumbat sighted."
    result = store(engine, archive, Candidate(url="https://example.org/long", text=text, title="Birds"))
    assert result.created and result.rejected is None
    (article,) = rows(engine)
    assert article.text == text
    assert found(engine, "zyxwarbler") == ["https://example.org/long"]
    assert found(engine, "birds") == ["https://example.org/long"]
    assert text.index("Quorlumbat") > INDEXED_CHARS
    assert found(engine, "quorlumbat") == []  # past the indexed head


def test_nothing_left_once_cleaned_is_rejected(engine: sa.Engine, archive: Archive) -> None:
    result = store(engine, archive, Candidate(url="https://example.org/void", text="\x00\x01 \x02\n"))
    assert (result.created, result.article_id) == (False, None)
    assert result.rejected == "no text left once cleaned"
    assert rows(engine) == []


@pytest.fixture
def refusing_engine(database_url: str) -> Iterator[sa.Engine]:
    """The test database, set to refuse what ``refused_candidate`` carries, as a data error.

    PostgreSQL: the author column narrowed to 20 characters (22001, value too long).
    SQLite, which enforces no column length: any string over 20 kB (SQLITE_TOOBIG).
    """
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE article ALTER COLUMN author TYPE varchar(20)"))
    else:

        @sa.event.listens_for(engine, "connect")
        def _limit(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 20_000)

    yield engine
    engine.dispose()


def refused_candidate(engine: sa.Engine) -> Candidate:
    if engine.dialect.name == "sqlite":
        return Candidate(url="https://example.org/a", text=BODY + " word" * 5000)
    return Candidate(url="https://example.org/a", text=BODY, author="An author with a long name")


def test_what_the_database_refuses_comes_back_rejected(refusing_engine: sa.Engine, settings: Settings) -> None:
    archive = Archive(settings)
    result = store(refusing_engine, archive, refused_candidate(refusing_engine))
    assert (result.created, result.article_id) == (False, None)
    assert result.rejected is not None and result.rejected.startswith("refused by the database: ")
    assert "\n" not in result.rejected
    # Nothing half-written, and the next entry is stored as usual.
    ok = store(refusing_engine, archive, Candidate(url="https://example.org/b", text=BODY, author="A. Writer"))
    assert ok.created
    assert [a.url for a in rows(refusing_engine)] == ["https://example.org/b"]
    with session(refusing_engine) as db:
        assert db.exec(select(sa.func.count()).select_from(Mention)).one() == 1


def test_an_engine_limit_comes_back_rejected(engine: sa.Engine, archive: Archive) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the 1 MB tsvector limit is PostgreSQL's")
    with engine.begin() as connection:
        # The document of migration 0002, over the whole text.
        connection.execute(sa.text("ALTER TABLE article DROP COLUMN search_document"))
        connection.execute(
            sa.text(
                "ALTER TABLE article ADD COLUMN search_document tsvector GENERATED ALWAYS AS "
                "(to_tsvector('monitor_search'::regconfig, coalesce(title, '') || ' ' || text)) STORED"
            )
        )
    text = " ".join(f"w{i}x" for i in range(300_000))
    result = store(engine, archive, Candidate(url="https://example.org/long", text=text))
    assert result.article_id is None
    assert result.rejected is not None and "too long for tsvector" in result.rejected
    assert store(engine, archive, Candidate(url="https://example.org/short", text=BODY)).created


def test_the_database_own_trouble_is_raised(database_url: str, settings: Settings) -> None:
    engine = make_engine(database_url)
    read_only = (
        "PRAGMA query_only = ON" if engine.dialect.name == "sqlite" else "SET default_transaction_read_only = on"
    )

    @sa.event.listens_for(engine, "connect")
    def _read_only(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute(read_only)
        cursor.close()
        if engine.dialect.name == "postgresql":
            dbapi_connection.commit()

    try:
        with pytest.raises(sa.exc.DBAPIError):
            store(engine, Archive(settings), Candidate(url="https://example.org/a", text=BODY))
    finally:
        engine.dispose()


def test_an_out_of_range_date_is_dropped(engine: sa.Engine, archive: Archive) -> None:
    from datetime import timedelta, timezone

    late = datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    result = store(engine, archive, Candidate(url="https://example.org/late", text=BODY, published_at=late))
    assert result.created
    assert rows(engine)[0].published_at is None
    on_time = datetime(2022, 1, 6, 10, 0, tzinfo=UTC)
    store(engine, archive, Candidate(url="https://example.org/now", text=BODY + " Now.", published_at=on_time))
    assert rows(engine)[1].published_at == on_time


# ------------------------------------------------------------------------- the migration


def test_long_texts_stored_before_the_bounded_index_are_indexed_by_their_head(database_url: str) -> None:
    engine = make_engine(database_url)
    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
        connection.commit()
    text = "Zyxwarbler sighted. " + "plain words here " * 8000 + "Quorlumbat sighted."
    assert len(text) > INDEXED_CHARS
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO article (url, title, text, fetched_at, source, content_hash, is_duplicate) "
                "VALUES ('https://old.example/1', 'Old news', :text, :now, 'import', 'h', false)"
            ),
            {"text": text, "now": datetime(2021, 12, 1)},
        )
    assert found(engine, "quorlumbat") == ["https://old.example/1"]  # the whole text, before
    upgrade_schema(engine)
    assert found(engine, "zyxwarbler") == ["https://old.example/1"]
    assert found(engine, "quorlumbat") == []
    with session(engine) as db:
        snippets = search_articles(db, SearchFilters(query="zyxwarbler")).items
    assert "Zyxwarbler" in snippets[0].snippet
    engine.dispose()
