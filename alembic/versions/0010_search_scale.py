"""the copies of an article found by its id

An index on ``article.duplicate_of_article_id``: the copies of an article (its
article page, ``monitor export``'s ``copies``) are then found through it instead of a
scan of the archive, which a page of 500 exported articles made once per page.

Search at a million articles needs no other index: ``monitor.search`` chooses between
walking ``ix_article_newest`` and collecting through the full-text index from term
statistics the engines keep already (FTS5's own index, PostgreSQL's statistics of
``search_document``).

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_article_duplicate_of_article_id", "article", ["duplicate_of_article_id"])


def downgrade() -> None:
    op.drop_index("ix_article_duplicate_of_article_id", table_name="article")
