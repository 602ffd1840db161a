"""feed: adaptive polling state and extraction health

``pace_gaps`` (seconds, the latest times between two entries),
``last_entry_at`` (the newest entry's date) and ``current_interval`` (the interval the
last poll planned with) let each feed be polled at its own pace between
``poll.min_interval`` and ``poll.max_interval``. ``extraction_failure_rate`` (share of
the recent articles whose page gave no text) and ``extraction_broken_at`` (set while
that share says a site's redesign broke extraction) tell a broken extraction apart.
Existing feeds start with nothing known: they are polled at ``poll.interval`` until
their entries say otherwise.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa

import monitor.models
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        batch.add_column(sa.Column("pace_gaps", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("last_entry_at", monitor.models.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("current_interval", sa.Float(), nullable=True))
        batch.add_column(sa.Column("extraction_failure_rate", sa.Float(), nullable=True))
        batch.add_column(sa.Column("extraction_broken_at", monitor.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feed") as batch:
        for column in (
            "extraction_broken_at",
            "extraction_failure_rate",
            "current_interval",
            "last_entry_at",
            "pace_gaps",
        ):
            batch.drop_column(column)
