"""Benchmark: re-matching a stored archive after an entity was added, on SQLite and PostgreSQL.

An archive of ``--articles`` stories (about 150 words each, one in ten mentioning
Astana) is stored with the default entities, mentions and all; then Astana is added and
the archive re-matched as the daemon does it: batches of ``BATCH`` articles in a thread,
``REMATCH_PAUSE`` seconds apart, while the event loop (where the daemon schedules its
polls) ticks every 10 ms. Printed per engine, side by side: articles re-matched per
second (the batches alone, and with the pauses), the longest batch, and the event
loop's lateness — idle, and during the re-match — which is what polling would feel.

    python tests/bench/bench_rematch.py [--articles 5000]

PostgreSQL comes from ``TEST_POSTGRES_URL`` (default: the local server, trust auth);
without one only SQLite is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.config import DEFAULT_ENTITIES, EntityConfig  # noqa: E402
from monitor.db import make_engine, session, upgrade_schema  # noqa: E402
from monitor.models import Article  # noqa: E402
from monitor.pipeline.ingest import mention_rows  # noqa: E402
from monitor.pipeline.match import EntityMatcher  # noqa: E402
from monitor.pipeline.rematch import BATCH, Progress, Rematcher  # noqa: E402
from monitor.scheduling.daemon import REMATCH_PAUSE  # noqa: E402
from tests.support.databases import PG_SERVER_URL  # noqa: E402
from tests.support.feeds import story  # noqa: E402

ASTANA = EntityConfig(name="Astana", aliases=["Astana", "Nur-Sultan", "Астана"])
TICK = 0.01


def fill(engine: sa.Engine, count: int) -> None:
    matcher = EntityMatcher(DEFAULT_ENTITIES)
    with session(engine) as db:
        for start in range(0, count, 500):
            articles = []
            for n in range(start, min(start + 500, count)):
                topic = "Astana" if n % 10 == 0 else ("Almaty" if n % 3 == 0 else f"topic{n}")
                text = story(f"{topic} {n}", 10)
                articles.append(
                    Article(url=f"https://bench.example/{n}", title=f"Story {n}", text=text, content_hash=f"{n:064x}")
                )
            db.add_all(articles)
            db.flush()
            for article in articles:
                assert article.id is not None
                db.add_all(mention_rows(article.id, matcher.find(article.text)))
            db.commit()


async def lateness(seconds: float | None, until: asyncio.Future[None] | None = None) -> list[float]:
    """How late each 10 ms tick of the event loop comes, for ``seconds`` or until ``until``."""
    late = []
    end = time.perf_counter() + (seconds or 1e9)
    while time.perf_counter() < end and not (until is not None and until.done()):
        asked = time.perf_counter()
        await asyncio.sleep(TICK)
        late.append(time.perf_counter() - asked - TICK)
    return late


async def rematch(engine: sa.Engine) -> tuple[int, float, float, float, list[float]]:
    rematcher = Rematcher(engine, [*DEFAULT_ENTITIES, ASTANA], owner="bench")
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    ticks = asyncio.ensure_future(lateness(None, done))
    articles, working, longest = 0, 0.0, 0.0
    started = time.perf_counter()
    while True:
        batch_start = time.perf_counter()
        step = await asyncio.to_thread(rematcher.step)
        took = time.perf_counter() - batch_start
        working += took
        longest = max(longest, took)
        articles += step.report.articles
        if step.progress is not Progress.MORE:
            break
        await asyncio.sleep(REMATCH_PAUSE)
    total = time.perf_counter() - started
    done.set_result(None)
    return articles, working, total, longest, await ticks


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values or [0.0])[0]


def late(values: list[float]) -> str:
    return f"{p(values, 50) * 1000:.1f} / {p(values, 99) * 1000:.1f} / {max(values) * 1000:.1f} ms"


def measure(name: str, url: str, count: int) -> dict[str, str]:
    engine = make_engine(url)
    upgrade_schema(engine)
    started = time.perf_counter()
    fill(engine, count)
    filled = time.perf_counter() - started
    idle = asyncio.run(lateness(3.0))
    articles, working, total, longest, during = asyncio.run(rematch(engine))
    engine.dispose()
    return {
        "engine": name,
        "articles": f"{articles:,}",
        "stored in": f"{filled:.1f} s",
        "re-matched in": f"{working:.1f} s (batches) / {total:.1f} s (with pauses)",
        "articles/s": f"{articles / working:,.0f} / {articles / total:,.0f}",
        "longest batch": f"{longest * 1000:.0f} ms ({BATCH} articles)",
        "loop late p50/p99/max, idle": late(idle),
        "… during the re-match": late(during),
    }


def postgres_url() -> tuple[str, sa.Engine, str] | None:
    admin = sa.create_engine(PG_SERVER_URL, isolation_level="AUTOCOMMIT")
    name = f"bench_rematch_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        return None
    url = sa.engine.make_url(PG_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    return url, admin, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=5000)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        rows.append(measure("SQLite", f"sqlite:///{directory}/bench.db", args.articles))
    pg = postgres_url()
    if pg is not None:
        url, admin, name = pg
        try:
            rows.append(measure("PostgreSQL", url, args.articles))
        finally:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    width = max(len(key) for key in rows[0])
    columns = [max(len(row[key]) for key in row) for row in rows]
    for key in rows[0]:
        print(
            f"{key:<{width}}  " + "  ".join(f"{row[key]:<{column}}" for row, column in zip(rows, columns, strict=True))
        )


if __name__ == "__main__":
    main()
