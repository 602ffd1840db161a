"""The rules an alert fired: alert.rules

An alert goes to a channel for the rules an article fired there (``monitor.rules``);
their names are stored with it, for its message and for ``monitor alerts``. Alerts
queued before this revision hold NULL: they were sent for every mentioned entity.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alert", sa.Column("rules", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.drop_column("rules")
