"""Which databases the tests run on: SQLite always, PostgreSQL from ``TEST_POSTGRES_URL``."""

from __future__ import annotations

import os

PG_SERVER_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("TEST_REQUIRE_POSTGRES") == "1"
ENGINES = ["sqlite", "postgresql"]
