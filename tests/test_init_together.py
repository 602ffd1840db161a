"""`monitor init` run by several monitors at once on one new PostgreSQL database, as
containers started together do: one migrates and loads the seeds, the others wait and
find it done."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.db import script_head
from tests.support.databases import PG_SERVER_URL
from tests.support.paths import SEEDS_DIR

MONITOR = str(Path(sys.executable).parent / "monitor")


@pytest.fixture
def empty_postgres(pg_template: str | None) -> Iterator[str]:
    """The URL of a new database without any schema."""
    if pg_template is None:
        pytest.skip(f"no PostgreSQL server at {PG_SERVER_URL}")
    name = f"monitor_empty_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield sa.engine.make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.postgres
def test_four_inits_at_once_migrate_once_and_load_the_seeds_once(empty_postgres: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "MONITOR_DATABASE_URL": empty_postgres, "MONITOR_SEEDS_DIR": str(SEEDS_DIR)}
    processes = [
        subprocess.Popen([MONITOR, "init"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stdout.read().decode(), p.stderr.read().decode()) for p in processes]  # type: ignore[union-attr]
    assert [code for code, _out, _err in results] == [0] * 4, results
    assert not any(err for _code, _out, err in results), results
    said = sorted(out.splitlines()[1].split(";")[0] for _code, out, _err in results)
    head = script_head()
    assert said == [*[f"schema is current ({head})"] * 3, f"schema upgraded from nothing to {head}"]
    loaded = sorted(int(out.split("; ")[1].split()[0]) for _code, out, _err in results)
    assert loaded == [0, 0, 0, len(list(SEEDS_DIR.glob("*.txt")))]
