"""Engines, sessions and schema migrations. Nothing runs at import time."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlmodel import Session

from alembic import command
from monitor.errors import DatabaseError

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size)


def session(engine: Engine) -> Session:
    """A session whose objects stay readable after commit."""
    return Session(engine, expire_on_commit=False)


def alembic_config() -> AlembicConfig:
    """Alembic's configuration, found beside the package or in the working directory."""
    for root in (_PROJECT_ROOT, Path.cwd()):
        ini = root / "alembic.ini"
        if ini.exists() and (root / "alembic").is_dir():
            config = AlembicConfig(str(ini))
            config.set_main_option("script_location", str(root / "alembic"))
            return config
    raise DatabaseError("cannot find alembic.ini and alembic/ (run from the project directory)")


def _connect(engine: Engine) -> sa.Connection:
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(f"cannot connect to the database: {reason}") from None


def upgrade_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    config = alembic_config()
    with _connect(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def schema_revision(engine: Engine) -> str | None:
    with _connect(engine) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current_schema(engine: Engine) -> None:
    """Raise a clear error unless the schema is at the newest migration."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    current = schema_revision(engine)
    if current is None:
        raise DatabaseError("the database has no schema yet: run `monitor init`")
    if current != head:
        raise DatabaseError(f"the database schema is at {current}, not {head}: run `monitor init` to upgrade")


def ping(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError:
        return False
