"""match_state: the entity set the stored mentions were matched with

One row, written by re-matching (``monitor.pipeline.rematch``): the fingerprint of the
entity set every stored article's mentions follow, a re-match under way (the set it
matches with and the last article it has done) and the lease of the process doing it.
An existing database starts without the row: its mentions were matched with whatever
entities were configured when each article came in, so the first daemon to start
re-matches the archive once.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import monitor.models
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "match_state",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("matched", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("matched_at", monitor.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("target", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("cursor", sa.Integer(), nullable=True),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("lease_expires_at", monitor.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", monitor.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("match_state")
