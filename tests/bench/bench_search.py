"""Benchmark: archive search latency on SQLite and PostgreSQL.

Fills a fresh database per engine with generated articles (sentences drawn from the
seed corpus, so words co-occur as in news text) and times one page of results for
typical queries, side by side on both engines.

    python tests/bench/bench_search.py [--articles 20000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.db import make_engine, session, upgrade_schema  # noqa: E402
from monitor.models import Article, Mention  # noqa: E402
from monitor.search import SearchFilters, search_articles  # noqa: E402

QUERIES = {
    "no query": SearchFilters(),
    "common word": SearchFilters(query="protests"),
    "rare word": SearchFilters(query="Zhanaozen"),
    "phrase": SearchFilters(query='"security forces"'),
    "OR and exclusion": SearchFilters(query="curfew OR emergency -Tokayev"),
    "entity": SearchFilters(entities=("Almaty",)),
    "500 results": SearchFilters(query="the", limit=500),
}


def _sentences() -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt")))
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) > 5]


def _fill(engine: sa.Engine, count: int) -> None:
    rng = random.Random(3)
    sentences = _sentences()
    start = datetime(2022, 1, 1, tzinfo=UTC)
    rows, mentions = [], []
    for i in range(1, count + 1):
        text = " ".join(rng.choices(sentences, k=20))
        rows.append(
            {
                "id": i,
                "url": f"https://news.example/{i}",
                "title": f"Report {i}: " + rng.choice(sentences)[:80],
                "text": text,
                "fetched_at": start + timedelta(minutes=i),
                "published_at": start + timedelta(minutes=i - rng.randint(0, 600)),
                "source": "feed",
                "content_hash": uuid.uuid4().hex,
                "is_duplicate": False,
            }
        )
        if "Almaty" in text:
            offset = text.index("Almaty")
            mentions.append(
                {
                    "article_id": i,
                    "entity": "Almaty",
                    "text": "Almaty",
                    "start": offset,
                    "end": offset + 6,
                    "snippet": text[max(0, offset - 40) : offset + 46],
                }
            )
    with engine.begin() as connection:
        for chunk in range(0, len(rows), 2000):
            connection.execute(sa.insert(Article.__table__), rows[chunk : chunk + 2000])
        for chunk in range(0, len(mentions), 5000):
            connection.execute(sa.insert(Mention.__table__), mentions[chunk : chunk + 5000])
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("ANALYZE"))


def _time(engine: sa.Engine, filters: SearchFilters, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        with session(engine) as db:
            start = time.perf_counter()
            search_articles(db, filters)
            best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()

    import tempfile

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        targets = {"SQLite": f"sqlite:///{tmp}/bench.db"}
        admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        name = f"monitor_bench_{uuid.uuid4().hex[:8]}"
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
            targets["PostgreSQL"] = sa.engine.make_url(args.postgres).set(database=name).render_as_string(False)
        except sa.exc.OperationalError:
            print("PostgreSQL unreachable: SQLite only")
        try:
            for label, url in targets.items():
                engine = make_engine(url)
                upgrade_schema(engine)
                print(f"{label}: storing {args.articles} articles…", flush=True)
                _fill(engine, args.articles)
                results[label] = {q: _time(engine, f) for q, f in QUERIES.items()}
                engine.dispose()
        finally:
            if "PostgreSQL" in targets:
                with admin.connect() as connection:
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    labels = list(results)
    print(f"\none page of results, best of 5, ms ({args.articles} articles)")
    print(f"{'query':20}" + "".join(f"{label:>12}" for label in labels))
    for query in QUERIES:
        print(f"{query:20}" + "".join(f"{results[label][query]:12.1f}" for label in labels))


if __name__ == "__main__":
    main()
