"""full-text search over a bounded head of each article

The search index takes the title and the first ``INDEXED_CHARS`` characters of the text;
the text itself is stored whole. PostgreSQL refuses a tsvector over 1 MB, and the
tsvector of a long text full of short distinct words (a data dump, a word list, a page
of Korean) passes that at a few hundred thousand characters, so an unbounded document
made such an article impossible to store. 100,000 characters hold a very long article
(some 15,000 English words) and stay far below the limit for text in any script.
SQLite has no such limit; it indexes the same head so that both engines find the same
articles for the same query.

SQLite: the external-content FTS5 table ``article_fts`` now reads the view
``article_fts_content`` (id, title, head of the text) instead of ``article``, so that its
'rebuild' and ``snippet()`` see what the triggers index. PostgreSQL: the stored
generated column ``search_document`` is recomputed over the head (PostgreSQL 15 cannot
change a generated column's expression, so the column and its GIN index are made anew).

Both engines index every article again, as migration 0002 did.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# monitor.search.INDEXED_CHARS says the same; a migration keeps its own value.
INDEXED_CHARS = 100_000
PG_CONFIG = "monitor_search"
_PG_DOCUMENT = "to_tsvector('{config}'::regconfig, coalesce(title, '') || ' ' || {text})"
PG_DOCUMENT = _PG_DOCUMENT.format(config=PG_CONFIG, text=f"left(text, {INDEXED_CHARS})")
PG_DOCUMENT_0002 = _PG_DOCUMENT.format(config=PG_CONFIG, text="text")

_FTS5_TOKENIZER = "porter unicode61 remove_diacritics 2"


def _sqlite_fts(content: str, head: str) -> list[str]:
    """The FTS5 table over ``content`` and its triggers, indexing ``head`` of new.text/old.text."""
    new_text, old_text = head.format(column="new.text"), head.format(column="old.text")
    return [
        f"""
        CREATE VIRTUAL TABLE article_fts USING fts5(
            title, text,
            content='{content}', content_rowid='id',
            tokenize='{_FTS5_TOKENIZER}'
        )
        """,
        f"""
        CREATE TRIGGER article_fts_after_insert AFTER INSERT ON article BEGIN
            INSERT INTO article_fts(rowid, title, text) VALUES (new.id, new.title, {new_text});
        END
        """,
        f"""
        CREATE TRIGGER article_fts_after_delete AFTER DELETE ON article BEGIN
            INSERT INTO article_fts(article_fts, rowid, title, text)
            VALUES ('delete', old.id, old.title, {old_text});
        END
        """,
        f"""
        CREATE TRIGGER article_fts_after_update AFTER UPDATE OF title, text ON article BEGIN
            INSERT INTO article_fts(article_fts, rowid, title, text)
            VALUES ('delete', old.id, old.title, {old_text});
            INSERT INTO article_fts(rowid, title, text) VALUES (new.id, new.title, {new_text});
        END
        """,
        "INSERT INTO article_fts(article_fts) VALUES ('rebuild')",
    ]


SQLITE_DROP_FTS = [
    "DROP TRIGGER IF EXISTS article_fts_after_update",
    "DROP TRIGGER IF EXISTS article_fts_after_delete",
    "DROP TRIGGER IF EXISTS article_fts_after_insert",
    "DROP TABLE IF EXISTS article_fts",
]

SQLITE_UPGRADE = [
    *SQLITE_DROP_FTS,
    f"""
    CREATE VIEW article_fts_content AS
    SELECT id, title, substr(text, 1, {INDEXED_CHARS}) AS text FROM article
    """,
    *_sqlite_fts("article_fts_content", f"substr({{column}}, 1, {INDEXED_CHARS})"),
]

SQLITE_DOWNGRADE = [
    *SQLITE_DROP_FTS,
    "DROP VIEW IF EXISTS article_fts_content",
    *_sqlite_fts("article", "{column}"),
]


def _pg_document(expression: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_article_search")
    op.execute("ALTER TABLE article DROP COLUMN IF EXISTS search_document")
    op.execute(f"ALTER TABLE article ADD COLUMN search_document tsvector GENERATED ALWAYS AS ({expression}) STORED")
    op.execute("CREATE INDEX ix_article_search ON article USING gin (search_document)")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)
    elif dialect == "postgresql":
        _pg_document(PG_DOCUMENT)
    else:  # pragma: no cover - only the two supported engines
        raise NotImplementedError(f"full-text search is not implemented for {dialect}")


def downgrade() -> None:
    # Back to the whole text: on PostgreSQL this fails while the archive holds a text
    # whose tsvector passes 1 MB, which is the reason for this migration.
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
    elif dialect == "postgresql":
        _pg_document(PG_DOCUMENT_0002)
