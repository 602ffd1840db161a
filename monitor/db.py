"""Engines, sessions and schema migrations. Nothing runs at import time.

Alembic is imported only to migrate (``upgrade_schema``): the schema check every
command makes reads the revision in the database and the newest revision of the
migration scripts directly, which costs a query and a few file reads instead of
loading alembic's machinery.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.errors import DatabaseError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Alembic's bookkeeping table: one row, the revision the schema is at.
VERSION_TABLE = "alembic_version"
# ``revision: str = "0002"`` and ``down_revision: str | None = "0001"`` in a migration.
_REVISION_RE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*([^#\n]*)", re.MULTILINE)


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


def describe_database(url: str) -> str:
    """The database as a user is told of it: the URL, password hidden, an SQLite file absolute."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return parsed.render_as_string(hide_password=True)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        database = str(Path(database).absolute())
    query = url.partition("?")[2]
    return f"{parsed.drivername}://" + (f"/{database}" if database else "") + (f"?{query}" if query else "")


def session(engine: Engine) -> Session:
    """A session whose objects stay readable after commit."""
    return Session(engine, expire_on_commit=False)


def _migrations_root() -> Path:
    """The directory of ``alembic.ini`` and ``alembic/``: beside the package, else the working one."""
    for root in (_PROJECT_ROOT, Path.cwd()):
        if (root / "alembic.ini").exists() and (root / "alembic").is_dir():
            return root
    raise DatabaseError("cannot find alembic.ini and alembic/ (run from the project directory)")


def alembic_config() -> AlembicConfig:
    """Alembic's configuration, found beside the package or in the working directory."""
    from alembic.config import Config as AlembicConfig

    root = _migrations_root()
    config = AlembicConfig(str(root / "alembic.ini"))
    config.set_main_option("script_location", str(root / "alembic"))
    return config


def head_revisions(versions: Path) -> set[str] | None:
    """The newest revisions of the migration scripts in ``versions``, read as text.

    Each script names its ``revision`` and its ``down_revision`` (None, one, or a
    tuple for a merge); the heads are the revisions no script names as its parent.
    None when a script is not written that plainly: then only alembic can tell.
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        found = dict(_REVISION_RE.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            continue  # not a migration script
        try:
            revision = ast.literal_eval(found["revision"].strip())
            parent = ast.literal_eval(found.get("down_revision", "None").strip())
        except (ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        if isinstance(parent, str):
            parents.add(parent)
        elif isinstance(parent, tuple | list) and all(isinstance(p, str) for p in parent):
            parents.update(parent)
        elif parent is not None:
            return None
        revisions.add(revision)
    return revisions - parents


def script_head() -> str:
    """The newest revision of the migration scripts (the one ``upgrade_schema`` goes to)."""
    heads = head_revisions(_migrations_root() / "alembic" / "versions")
    if heads is not None and len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise DatabaseError("the migration scripts have no revision")
    return head


def _connect(engine: Engine) -> sa.Connection:
    try:
        return engine.connect()
    except sa.exc.OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(f"cannot connect to the database: {reason}") from None


# The key of the PostgreSQL advisory lock ``monitor init`` holds: any fixed number.
_INIT_LOCK = 0x6E6D_696E_6974


@contextmanager
def init_lock(engine: Engine) -> Iterator[None]:
    """While held, no other ``monitor init`` migrates this database or loads its seeds.

    Several monitors started at once on one PostgreSQL database (containers) each run
    ``monitor init``: unserialised, two create the same tables and one fails. The others
    wait here, then find the schema current and the seeds loaded. PostgreSQL's advisory
    lock, on a connection of its own; SQLite serialises its writers itself.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with _connect(engine) as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _INIT_LOCK})
        connection.commit()
        try:
            yield
        finally:
            # Explicitly: the connection goes back to the pool, where the lock would stay.
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _INIT_LOCK})
            connection.commit()


def upgrade_schema(engine: Engine) -> None:
    """Create or upgrade the schema to the newest migration."""
    from alembic import command

    config = alembic_config()
    with _connect(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        connection.commit()


def schema_revision(engine: Engine) -> str | None:
    """The revision the database's schema is at; None before the first migration."""
    with _connect(engine) as connection:
        if not sa.inspect(connection).has_table(VERSION_TABLE):
            return None
        rows = connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(rows) > 1:
        raise DatabaseError(f"the database is at several schema revisions at once: {', '.join(sorted(rows))}")
    return str(rows[0]) if rows else None


def require_current_schema(engine: Engine) -> None:
    """Raise a clear error unless the schema is at the newest migration."""
    head = script_head()
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


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is away (down, unreachable, restarting), not a bug."""
    # TimeoutError: no connection free in the pool in time.
    outage = sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.DisconnectionError | sa.exc.TimeoutError
    return isinstance(exc, outage)


def outage_reason(exc: BaseException) -> str:
    """The driver's own first line about an outage, without SQLAlchemy's statement dump."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return (lines[0] if lines else type(original).__name__)[:300]
