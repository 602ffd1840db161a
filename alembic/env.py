"""Alembic environment: the same settings object and metadata as the application."""

from __future__ import annotations

import os
from logging.config import fileConfig

from sqlmodel import SQLModel

import monitor.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from alembic import context
from monitor.config import load_settings
from monitor.db import make_engine

config = context.config
if config.config_file_name and not config.attributes.get("connection"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata

# Objects that live in the schema but not in the models: the full-text index is raw
# SQL (an FTS5 virtual table and its shadow tables on SQLite, a generated tsvector
# column and its GIN index on PostgreSQL) and so is the expression index of the search
# order (ix_article_newest, and per feed ix_article_feed_newest), so autogenerate and
# the drift check must leave them alone.
_UNMODELLED_PREFIXES = ("article_fts",)
_UNMODELLED_INDEXES = {"ix_article_search", "ix_article_newest", "ix_article_feed_newest"}
_UNMODELLED_COLUMNS = {"search_document"}


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    if type_ == "table" and name and name.startswith(_UNMODELLED_PREFIXES):
        return False
    if type_ == "index" and name in _UNMODELLED_INDEXES:
        return False
    return not (type_ == "column" and name in _UNMODELLED_COLUMNS)


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    url = load_settings(None, os.environ).database_url
    context.configure(
        url=url,
        target_metadata=target_metadata,
        include_object=include_object,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(load_settings(None, os.environ).database_url)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
