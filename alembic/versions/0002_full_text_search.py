"""full-text search over articles

SQLite: an external-content FTS5 table ``article_fts`` over article(title, text), kept
in sync by triggers. PostgreSQL: a stored generated column ``search_document``, the
tsvector of title and text built with the ``monitor_search`` text search
configuration, under the GIN index ``ix_article_search``. Stored rather than an
expression index, because a phrase query checks word positions on every row the index
returns, and recomputing the tsvector for each costs seconds on a large archive.

Both engines: ``ix_article_newest`` on the search order (newest first), so a page of
results is read from the index instead of sorting the archive.

Both engines should find the same articles for the same query, so the PostgreSQL
configuration mirrors the SQLite tokenizer ('porter unicode61 remove_diacritics 2'):
words are case-folded, Latin diacritics removed (unaccent, when the server has it),
English stemming applied (it leaves Cyrillic and other scripts as they are, like
porter does), and no stop words are dropped (FTS5 drops none). The 'simple'
configuration would lose stemming; 'english' would drop words such as "the" from
phrases; a per-language configuration cannot serve a multilingual archive.

Articles stored before this migration are indexed by it (FTS5 'rebuild'; the index
build on PostgreSQL).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# monitor.search builds its queries on the same document expression, so that the
# planner can use the index; keep the two in step.
PG_CONFIG = "monitor_search"
PG_DOCUMENT = f"to_tsvector('{PG_CONFIG}'::regconfig, coalesce(title, '') || ' ' || text)"
NEWEST_FIRST = "CREATE INDEX ix_article_newest ON article (coalesce(published_at, fetched_at) DESC, id DESC)"
PG_WORD_TOKENS = "asciiword, asciihword, hword_asciipart, word, hword, hword_part"

SQLITE_UPGRADE = [
    """
    CREATE VIRTUAL TABLE article_fts USING fts5(
        title, text,
        content='article', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2'
    )
    """,
    """
    CREATE TRIGGER article_fts_after_insert AFTER INSERT ON article BEGIN
        INSERT INTO article_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END
    """,
    """
    CREATE TRIGGER article_fts_after_delete AFTER DELETE ON article BEGIN
        INSERT INTO article_fts(article_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
    END
    """,
    """
    CREATE TRIGGER article_fts_after_update AFTER UPDATE OF title, text ON article BEGIN
        INSERT INTO article_fts(article_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
        INSERT INTO article_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END
    """,
    "INSERT INTO article_fts(article_fts) VALUES ('rebuild')",
    NEWEST_FIRST,
]

SQLITE_DOWNGRADE = [
    "DROP INDEX IF EXISTS ix_article_newest",
    "DROP TRIGGER IF EXISTS article_fts_after_update",
    "DROP TRIGGER IF EXISTS article_fts_after_delete",
    "DROP TRIGGER IF EXISTS article_fts_after_insert",
    "DROP TABLE IF EXISTS article_fts",
]


def _pg_has_unaccent() -> bool:
    """Whether the unaccent extension is installed or can be (it is a trusted one)."""
    bind = op.get_bind()
    installed = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'unaccent'")).first()
    if installed:
        return True
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent'")).first()
    may_create = bind.execute(sa.text("SELECT has_database_privilege(current_database(), 'CREATE')")).scalar()
    return bool(available and may_create)


def _upgrade_postgresql() -> None:
    dictionaries = "monitor_english_stem"
    if _pg_has_unaccent():
        op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        dictionaries = "unaccent, monitor_english_stem"
    # A snowball dictionary without a stop word list: every word stays searchable.
    op.execute("CREATE TEXT SEARCH DICTIONARY monitor_english_stem (TEMPLATE = snowball, Language = english)")
    op.execute(f"CREATE TEXT SEARCH CONFIGURATION {PG_CONFIG} (COPY = simple)")
    op.execute(f"ALTER TEXT SEARCH CONFIGURATION {PG_CONFIG} ALTER MAPPING FOR {PG_WORD_TOKENS} WITH {dictionaries}")
    op.execute(f"ALTER TABLE article ADD COLUMN search_document tsvector GENERATED ALWAYS AS ({PG_DOCUMENT}) STORED")
    op.execute("CREATE INDEX ix_article_search ON article USING gin (search_document)")
    op.execute(NEWEST_FIRST)


def _downgrade_postgresql() -> None:
    op.execute("DROP INDEX IF EXISTS ix_article_newest")
    op.execute("DROP INDEX IF EXISTS ix_article_search")
    op.execute("ALTER TABLE article DROP COLUMN IF EXISTS search_document")
    op.execute(f"DROP TEXT SEARCH CONFIGURATION IF EXISTS {PG_CONFIG}")
    op.execute("DROP TEXT SEARCH DICTIONARY IF EXISTS monitor_english_stem")
    # The unaccent extension stays: other objects of the database may use it.


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)
    elif dialect == "postgresql":
        _upgrade_postgresql()
    else:  # pragma: no cover - only the two supported engines
        raise NotImplementedError(f"full-text search is not implemented for {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
    elif dialect == "postgresql":
        _downgrade_postgresql()
