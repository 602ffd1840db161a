"""feed.origin, feed.paused, feed.tags: feeds managed at run time

A feed now comes from the configuration file (``config``) or is added at run time
(``added``: ``monitor feeds add``, ``POST /api/feeds``, an OPML import); the file is
authoritative for its own feeds only. ``paused`` keeps a feed from being polled without
removing it; ``tags`` are the feed's labels (OPML categories), ``site_url`` the home page
of its site (OPML ``htmlUrl``). Existing feeds all came from the file: they start as
``config``, not paused, without tags.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=10), nullable=False, server_default="config"))
        batch.add_column(sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("site_url", sa.String(length=2000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("site_url")
        batch.drop_column("tags")
        batch.drop_column("paused")
        batch.drop_column("origin")
