"""feed: its publishing hours, for adaptive polling

``pace_hours`` (by hour of the day in UTC, how often the feed published in it, fading
with time) tells the hours a feed usually publishes in from its quiet ones, so that a
feed that publishes by day is asked at its day pace in the morning rather than as
rarely as the night's silence would say. Existing feeds start with none known (an
empty list): every hour counts as usual, as before, until their entries say otherwise.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.add_column(sa.Column("pace_hours", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.drop_column("pace_hours")
