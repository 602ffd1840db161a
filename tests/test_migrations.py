"""The migrations and the models agree, on both engines; init is idempotent."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from alembic import command
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
