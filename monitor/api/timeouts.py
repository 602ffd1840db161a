"""A time limit on every database statement a request runs (``serve.statement_timeout``).

A request's statements must end within the limit whether or not its client still
waits: a route runs in a worker thread that nothing stops when the client leaves, so
the database has to stop the statement itself.

PostgreSQL does it natively: ``statement_timeout`` set for the request's transaction
only (``set_config(…, true)`` is ``SET LOCAL``), so the pool's connections, and the
daemon's if it shares the engine, keep their own settings. SQLite has no such setting:
a progress handler, called every few thousand virtual-machine steps, interrupts the
statement once its deadline has passed. The deadline restarts with each statement,
so both engines limit a statement, not the request.

Both end in an ``OperationalError`` (``QueryCanceled`` on PostgreSQL, "interrupted"
on SQLite) that ``is_statement_timeout`` tells apart from a lost database.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session

# SQLite's virtual-machine steps between two deadline checks: frequent enough to stop
# within a millisecond or two, rare enough that the Python call costs nothing measurable.
SQLITE_STEPS_PER_CHECK = 10_000
_PG_QUERY_CANCELED = "57014"


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def restart(self, *_args: Any) -> None:
        self.at = time.monotonic() + self.seconds

    def passed(self) -> int:
        # sqlite3 interrupts the statement when the handler returns non-zero.
        return int(time.monotonic() > self.at)


@contextmanager
def statement_timeout(db: Session, seconds: float) -> Iterator[None]:
    """Limit each statement ``db`` runs within the block to ``seconds``.

    On SQLite the handler comes off the connection when the session's transaction
    ends or the block does, whichever is first: before the pool can hand the
    connection to anyone else.
    """
    deadline = _Deadline(seconds)
    handled: list[sqlite3.Connection] = []

    def begun(_session: Session, _transaction: Any, connection: sa.Connection) -> None:
        dialect = connection.dialect.name
        if dialect == "postgresql":
            milliseconds = max(1, round(seconds * 1000))
            connection.execute(
                sa.text("SELECT set_config('statement_timeout', :value, true)"), {"value": f"{milliseconds}ms"}
            )
        elif dialect == "sqlite":
            # The engines are made by ``make_engine``: pysqlite's connection is sqlite3's.
            raw = cast("sqlite3.Connection", connection.connection.dbapi_connection)
            raw.set_progress_handler(deadline.passed, SQLITE_STEPS_PER_CHECK)
            handled.append(raw)

    def release(*_args: Any) -> None:
        while handled:
            handled.pop().set_progress_handler(None, 0)

    listeners = [
        ("after_begin", begun),
        ("do_orm_execute", deadline.restart),
        ("after_commit", release),
        ("after_rollback", release),
    ]
    for name, listener in listeners:
        sa.event.listen(db, name, listener)
    try:
        yield
    finally:
        release()
        for name, listener in listeners:
            sa.event.remove(db, name, listener)


def is_statement_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is a statement stopped by ``statement_timeout``."""
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) == _PG_QUERY_CANCELED:
        return True
    return isinstance(orig, sqlite3.OperationalError) and str(orig) == "interrupted"
