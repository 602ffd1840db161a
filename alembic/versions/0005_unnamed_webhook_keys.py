"""Unnamed webhooks keyed by host and hash, not by URL: alerts and channel states move

A webhook without a name was keyed ``webhook:<scheme>://<host>[:port]<path>``, and a
hook's path is often its token (Slack, Discord, Teams): the token was stored in every
alert row and shown by ``monitor alerts`` and in logs. The key is now
``webhook:<host>[:port]-<hash>``, the hash being the first 8 hex digits of the SHA-256
of that same ``<scheme>://<host>[:port]<path>`` (``monitor.config.unnamed_webhook_key``).
Each old key is rewritten here, in ``alert.channel`` and ``alert_channel.key``, so the
alerts still queued under it keep going to their endpoint.

Keys made of a bare hash (unnamed webhooks whose URL made a key over 300 characters)
hold no URL to rewrite from, and stay as they were.

The downgrade leaves the keys as they are: the old ones held the URL, which the
database does not have.

Revision ID: 0005
Revises: 0004
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PREFIX = "webhook:"
_alert = sa.table("alert", sa.column("channel", sa.String))
_channel = sa.table("alert_channel", sa.column("key", sa.String))


def _new_key(old: str) -> str | None:
    """The key of today for a key that held the URL; None for any other key."""
    shown = old.removeprefix(_PREFIX)
    scheme, separator, rest = shown.partition("://")
    if not separator or scheme not in ("http", "https"):
        return None
    authority = rest.split("/", 1)[0]  # the host and port, as the old key wrote them
    digest = hashlib.sha256(shown.encode("utf-8")).hexdigest()[:8]
    return f"{_PREFIX}{authority}-{digest}"


def upgrade() -> None:
    connection = op.get_bind()
    pattern = _PREFIX + "http%://%"
    old_keys = {
        *connection.execute(sa.select(_alert.c.channel).distinct().where(_alert.c.channel.like(pattern))).scalars(),
        *connection.execute(sa.select(_channel.c.key).where(_channel.c.key.like(pattern))).scalars(),
    }
    for old in sorted(old_keys):
        new = _new_key(old)
        if new is None:
            continue
        connection.execute(sa.update(_alert).where(_alert.c.channel == old).values(channel=new))
        connection.execute(sa.update(_channel).where(_channel.c.key == old).values(key=new))


def downgrade() -> None:
    pass
