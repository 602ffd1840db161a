"""Shared fixtures: real databases (SQLite and PostgreSQL), settings, the CLI, alert receivers.

Plain helpers (servers, feeds, paths, the corpus) are in ``tests/support/``.

PostgreSQL comes from ``TEST_POSTGRES_URL`` (default: the local server with trust
auth). Each test gets its own database, cloned from a template migrated once per run.
Without a reachable server the PostgreSQL cases are skipped, unless
``TEST_REQUIRE_POSTGRES=1`` (as in CI), where they fail instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import Settings
from monitor.db import make_engine, upgrade_schema
from monitor.pipeline.pool import CPUPool
from tests.support.databases import ENGINES, PG_SERVER_URL, REQUIRE_PG
from tests.support.outbox import SECRET
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, SMTPSink, WebhookReceiver


def _pg_admin() -> sa.Engine:
    return sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")


def _pg_database_url(name: str) -> str:
    return sa.engine.make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def _no_monitor_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own MONITOR_* variables must not leak into the tests."""
    for name in list(os.environ):
        if name.startswith("MONITOR_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """Name of a migrated template database, or None when there is no server."""
    admin = _pg_admin()
    try:
        with admin.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL required but unreachable at {PG_SERVER_URL}: {exc}")
        yield None
        return
    name = f"monitor_tmpl_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(_pg_database_url(name))
    upgrade_schema(engine)
    engine.dispose()
    yield name
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class PostgresDatabases:
    """Databases cloned from the migrated template, each made while the test before runs.

    Cloning takes about 0.1 s and dropping (``WITH (FORCE)``) as long again, for each of
    several hundred tests: one thread clones the next database while a test runs on the
    one it got, and drops the databases of finished tests, in that order.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        self._admin = _pg_admin()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._next = self._thread.submit(self._create)
        self._drops: list[Future[None]] = []

    def take(self) -> str:
        """The name of a new database, no test's but the caller's."""
        name = self._next.result()
        self._next = self._thread.submit(self._create)
        return name

    def drop(self, name: str) -> None:
        """Drop ``name`` in the background, its connections closed by force."""
        self._drops.append(self._thread.submit(self._execute, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        """Drop the database made for a test that never came; raise what a drop raised."""
        self.drop(self._next.result())
        self._thread.shutdown(wait=True)
        self._admin.dispose()
        for done in self._drops:
            done.result()

    def _create(self) -> str:
        name = f"monitor_test_{uuid.uuid4().hex[:10]}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return name

    def _execute(self, statement: str) -> None:
        with self._admin.connect() as connection:
            connection.execute(sa.text(statement))


@pytest.fixture(scope="session")
def pg_databases(pg_template: str | None) -> Iterator[PostgresDatabases | None]:
    """New PostgreSQL databases for the tests, or None when there is no server."""
    if pg_template is None:
        yield None
        return
    databases = PostgresDatabases(pg_template)
    yield databases
    databases.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Callable[[str], str]:
    """A factory: ``fresh_database_url("sqlite" | "postgresql")`` → URL of a new, migrated DB."""
    created: list[str] = []

    def make(kind: str) -> str:
        if kind == "sqlite":
            path = tmp_path / f"monitor-{uuid.uuid4().hex[:6]}.db"
            shutil.copy(sqlite_template, path)
            return f"sqlite:///{path}"
        databases = request.getfixturevalue("pg_databases")
        if databases is None:
            pytest.skip(f"no PostgreSQL server at {PG_SERVER_URL}")
        name = databases.take()
        created.append(name)
        return _pg_database_url(name)

    yield make
    if created:
        databases = request.getfixturevalue("pg_databases")
        for name in created:
            databases.drop(name)


@pytest.fixture(params=ENGINES)
def database_url(request: pytest.FixtureRequest, fresh_database_url: Callable[[str], str]) -> str:
    """A new, migrated database; each test using it runs on SQLite and on PostgreSQL."""
    return fresh_database_url(request.param)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings as a YAML file would give them, with test-friendly defaults."""

    def make(**overrides: Any) -> Settings:
        data: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path / 'monitor.db'}",
            "seeds_dir": str(SEEDS_DIR),
        }
        data.update(overrides)
        return Settings.model_validate(data)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    """Default settings on the parametrised database (SQLite and PostgreSQL)."""
    return make_settings(database_url=database_url)


@pytest.fixture
def run_cli() -> Callable[..., Any]:
    """Run the ``monitor`` command in-process; returns click's Result."""
    from click.testing import CliRunner

    from monitor.cli import main

    def run(*args: str, input: str | None = None) -> Any:
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def config_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a YAML config file and return its path."""

    def write(text: str, name: str = "monitor.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    """A feed and page server on 127.0.0.1; tests route what it serves."""
    with HTTPServer() as running:
        yield running


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    """An SMTP server on 127.0.0.1 that keeps every message."""
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    """A webhook receiver on 127.0.0.1 that verifies with ``tests.support.outbox.SECRET``."""
    with WebhookReceiver(secret=SECRET) as receiver:
        yield receiver


@pytest.fixture
def alerting(
    make_settings: Callable[..., Settings], database_url: str, smtp: SMTPSink, hook: WebhookReceiver
) -> Callable[..., Settings]:
    """Settings with an e-mail channel (``smtp``) and a webhook ``ops`` (``hook``), unless
    told otherwise, archive links under https://monitor.example.org, and ``rules``."""

    def make(
        email: dict[str, Any] | bool = True,
        webhooks: list[dict[str, Any]] | None = None,
        rules: list[dict[str, Any]] | None = None,
        **alerts: Any,
    ) -> Settings:
        return make_settings(
            database_url=database_url,
            alerts={
                "email": smtp.settings(**(email if isinstance(email, dict) else {})) if email else None,
                "webhooks": webhooks if webhooks is not None else [hook.settings(name="ops")],
                "public_url": "https://monitor.example.org",
                **alerts,
            },
            rules=rules,
        )

    return make


@pytest.fixture(scope="module")
def pool() -> Iterator[CPUPool]:
    """One process pool for a module, as one worker process keeps one."""
    pool = CPUPool(workers=2)
    pool.warm_up()
    yield pool
    pool.close()
