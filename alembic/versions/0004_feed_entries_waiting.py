"""feed.entries_waiting: new entries a poll left for the next one

A poll takes at most ``poll.max_new_entries`` new entries from a feed; the count of the
others is kept on the feed so that ``monitor feeds`` and ``/api/feeds`` can say that a
feed is catching up. Existing feeds start at 0 (nothing waits).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.add_column(sa.Column("entries_waiting", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("entries_waiting")
