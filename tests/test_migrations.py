"""The migrations and the models agree, on both engines; init is idempotent."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from alembic import command
from monitor.config import unnamed_webhook_key
from monitor.db import alembic_config, make_engine, require_current_schema, schema_revision, upgrade_schema


def test_no_drift_between_models_and_migrations(engine: sa.Engine) -> None:
    # Alembic's own check: autogenerate against the migrated database finds nothing.
    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.check(config)


def test_migrated_database_is_at_head(engine: sa.Engine) -> None:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert schema_revision(engine) == head
    require_current_schema(engine)


def test_upgrade_is_idempotent(engine: sa.Engine) -> None:
    upgrade_schema(engine)
    upgrade_schema(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"feed", "seed", "article", "mention", "fingerprint", "alert"} <= tables


def test_downgrade_to_base_and_back(database_url: str) -> None:
    engine = make_engine(database_url)
    config = alembic_config()
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        connection.commit()
    assert "article" not in sa.inspect(engine).get_table_names()
    upgrade_schema(engine)
    assert "article" in sa.inspect(engine).get_table_names()
    engine.dispose()


ALERT = sa.table(
    "alert",
    *map(sa.column, ("article_id", "channel", "entities", "status", "attempts", "next_attempt_at", "created_at",
                     "queued_at")),
)  # fmt: skip
CHANNEL = sa.table("alert_channel", sa.column("key"), sa.column("created_at"))


def test_alerts_of_an_unnamed_webhook_keep_their_endpoint_under_its_new_key(database_url: str) -> None:
    """0005: the keys that held a webhook's URL (its path is often its token) become
    ``webhook:<host>-<hash>``; the alerts queued under them stay queued for it."""
    slack = "https://hooks.slack.com/services/T0AAAA/B0BBBB/AbCdEfGhIjKlMnOpQrStUvWx"
    local = "http://127.0.0.1:8080/hook?token=kept-out-of-keys"
    # The keys the versions before 0005 gave them, and two that stay.
    old_keys = [f"webhook:{slack}", "webhook:http://127.0.0.1:8080/hook", "webhook:ops", "email"]
    engine = make_engine(database_url)
    config = alembic_config()
    now = datetime.now(UTC)
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
        article = connection.execute(
            sa.text(
                "INSERT INTO article (url, text, fetched_at, source, content_hash, is_duplicate) "
                "VALUES ('https://news.example.org/a', 'text', :now, 'feed', 'h', false) RETURNING id"
            ),
            {"now": now},
        ).scalar_one()
        for key in old_keys:
            values = {"entities": "[]", "status": "pending", "attempts": 0}
            times = {"next_attempt_at": now, "created_at": now, "queued_at": now}
            connection.execute(sa.insert(ALERT).values(article_id=article, channel=key, **values, **times))
            connection.execute(sa.insert(CHANNEL).values(key=key, created_at=now))
        command.upgrade(config, "head")
        connection.commit()
    expected = {unnamed_webhook_key(slack), unnamed_webhook_key(local), "webhook:ops", "email"}
    with engine.connect() as connection:
        assert set(connection.execute(sa.text("SELECT channel FROM alert")).scalars()) == expected
        assert set(connection.execute(sa.text("SELECT key FROM alert_channel")).scalars()) == expected
    assert unnamed_webhook_key(slack).startswith("webhook:hooks.slack.com-")
    assert unnamed_webhook_key(local).startswith("webhook:127.0.0.1:8080-")
    engine.dispose()
