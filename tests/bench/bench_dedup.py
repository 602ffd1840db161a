"""Cost of one dedup lookup with 10k and with 200k texts indexed, side by side.

    python tests/bench/bench_dedup.py                 # SQLite
    python tests/bench/bench_dedup.py --postgres      # and the local PostgreSQL server
    python tests/bench/bench_dedup.py --sizes 10000,50000 --lookups 50

The archive is synthetic: ~300-word texts drawn from a Zipf-distributed vocabulary
whose most frequent words are real English function words, so common shingles behave
as in news text. Fingerprints are bulk-inserted (SQLAlchemy core executemany; on
PostgreSQL one ``unnest`` of two arrays per chunk), then trimmed to ``max_postings``
per hash as ``DedupIndex.add`` would have, and the fingerprint indexes rebuilt. The
lookups go through ``DedupIndex.check`` exactly as in the pipeline: new texts
(nothing to find, the usual case) and duplicates (an edited excerpt of an archived
text, verified against its text). The goal: the lookup cost grows by at most 1.5x
from the smallest to the largest size. A run takes about four minutes on SQLite,
seven with ``--postgres``.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from monitor.config import DedupSettings
from monitor.db import make_engine, session, upgrade_schema
from monitor.models import Article, Fingerprint
from monitor.pipeline.dedup import DedupIndex, fingerprints
from monitor.pipeline.extract import extract_html
from monitor.seeds import load_seeds
from monitor.text import content_hash

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conftest import SEEDS_DIR, SHARED_CORPUS  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WORDS_PER_TEXT = 300
VOCABULARY = 40_000
PROBES = 200  # archived texts stored with their real text, to find duplicates of
CHUNK = 5_000

# The most frequent English words, most frequent first: the head of the Zipf curve.
FUNCTION_WORDS = """the of and to a in that is was he for it with as his on be at by i this
had not are but from or have an they which one you were her all she there would their we
him been has when who will more no if out so said what up its about into than them can
only other new some could time these two may then do first any my now such like our over
man me even most made after also did many before must through back years where much your
way well down should because each just those people how too little state good very make
world still own see men work long get here between both life being under never day same
another know while last might us great old year off come since against go came right used
take three""".split()


def word_pool(rng: random.Random, size: int = 1_000_000) -> list[str]:
    """Words drawn from a Zipf-Mandelbrot law; uniform picks from it follow that law."""
    syllables = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"] + ["an", "er", "ol", "is"]
    words = list(FUNCTION_WORDS)
    seen = set(words)
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    weights = [1 / (rank + 2.7) for rank in range(len(words))]
    return rng.choices(words, weights=weights, k=size)


def texts(seed: int, count: int, pool: list[str]) -> Iterator[str]:
    rng = random.Random(seed)
    for _ in range(count):
        yield " ".join(rng.choices(pool, k=WORDS_PER_TEXT))


def edited_excerpt(text: str, rng: random.Random) -> str:
    """The first 60% of ``text`` with one word in fifteen replaced: a duplicate."""
    words = text.split()[: int(WORDS_PER_TEXT * 0.6)]
    return " ".join("substituted" if rng.random() < 1 / 15 else w for w in words)


# ---------------------------------------------------------------------------- building


_PG_FINGERPRINTS = sa.text(
    "INSERT INTO fingerprint (hash, article_id) "
    "SELECT * FROM unnest(CAST(:hashes AS bigint[]), CAST(:ids AS integer[]))"
)

_CAP_POSTINGS = sa.text(
    "DELETE FROM fingerprint WHERE id IN (SELECT id FROM (SELECT id, row_number() "
    "OVER (PARTITION BY hash ORDER BY id) AS n FROM fingerprint) AS ranked WHERE n > :cap)"
)


class Archive:
    """A benchmark database; its fingerprint indexes are rebuilt after each bulk load."""

    def __init__(self, label: str, url: str) -> None:
        self.label = label
        self.engine = make_engine(url)
        upgrade_schema(self.engine)
        self.indexes: list[dict] = []
        self.seconds = 0.0

    def begin_load(self) -> None:
        with self.engine.begin() as connection:
            self.indexes = sa.inspect(connection).get_indexes("fingerprint")
            for index in self.indexes:
                connection.execute(sa.text(f"DROP INDEX {index['name']}"))

    def load(self, articles: list[dict], rows: list[dict]) -> None:
        started = time.perf_counter()
        with self.engine.begin() as connection:
            connection.execute(sa.insert(Article.__table__), articles)
            if self.engine.dialect.name == "postgresql":
                # Two array parameters instead of a million bound values: ten times faster.
                connection.execute(
                    _PG_FINGERPRINTS,
                    {"hashes": [r["hash"] for r in rows], "ids": [r["article_id"] for r in rows]},
                )
            else:
                connection.execute(sa.insert(Fingerprint.__table__), rows)
        self.seconds += time.perf_counter() - started

    def end_load(self) -> None:
        started = time.perf_counter()
        table = Fingerprint.__table__
        with self.engine.begin() as connection:
            # What DedupIndex.add does row by row: no hash beyond max_postings texts.
            connection.execute(_CAP_POSTINGS, {"cap": DedupSettings().max_postings})
            for index in self.indexes:
                columns = (table.c[c] for c in index["column_names"])
                sa.Index(index["name"], *columns).create(connection)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if self.engine.dialect.name == "postgresql":
                connection.execute(sa.text("VACUUM ANALYZE fingerprint"))
            else:
                connection.execute(sa.text("ANALYZE"))
        self.seconds += time.perf_counter() - started

    def fingerprint_rows(self) -> int:
        with self.engine.connect() as connection:
            count = sa.select(sa.func.count()).select_from(Fingerprint)
            return connection.execute(count).scalar_one()


def grow(archives: list[Archive], start: int, to: int, pool: list[str], probes: list[str]) -> None:
    """Add texts ``start+1 .. to`` to every archive; the first ``PROBES`` keep their text."""
    now = datetime.now(UTC)
    for archive in archives:
        archive.begin_load()
    generated = texts(start, to - start, pool)
    for chunk_start in range(start, to, CHUNK):
        articles, rows = [], []
        for offset, text in enumerate(itertools.islice(generated, CHUNK)):
            article_id = chunk_start + offset + 1
            if article_id <= PROBES:
                probes.append(text)
            articles.append(
                {
                    "id": article_id,
                    "url": f"https://bench.example/{article_id}",
                    "text": text if article_id <= PROBES else "",
                    "content_hash": f"{article_id:064x}",
                    "fetched_at": now,
                    "source": "import",
                    "is_duplicate": False,
                }
            )
            rows.extend({"hash": h, "article_id": article_id} for h in fingerprints(text))
        for archive in archives:
            archive.load(articles, rows)
    for archive in archives:
        archive.end_load()


# ---------------------------------------------------------------------------- measuring


def measure(engine: sa.Engine, queries: list[str], repeats: int = 3) -> tuple[float, float, int]:
    """Median and 90th percentile of one lookup (ms), and duplicates found."""
    index = DedupIndex(DedupSettings())
    timings: list[float] = []
    found = 0
    with session(engine) as db:
        for text in queries[:5]:  # warm the caches of the database and of the index
            index.check(db, text)
        for repeat in range(repeats):
            for text in queries:
                started = time.perf_counter()
                verdict = index.check(db, text)
                timings.append((time.perf_counter() - started) * 1000)
                found += verdict.is_duplicate and repeat == 0
    timings.sort()
    return statistics.median(timings), timings[int(len(timings) * 0.9)], found


def run(archives: list[Archive], sizes: list[int], lookups: int) -> None:
    pool = word_pool(random.Random(1))
    rng = random.Random(2)
    new_queries = list(texts(10**9, lookups, pool))
    probes: list[str] = []
    results: dict[str, list[tuple[int, tuple, tuple]]] = {a.label: [] for a in archives}
    size = 0
    for target in sizes:
        started = time.perf_counter()
        grow(archives, size, target, pool, probes)
        size = target
        seconds = time.perf_counter() - started
        loads = ", ".join(f"{a.label} {a.seconds:.0f} s" for a in archives)
        print(f"{size} texts generated and loaded in {seconds:.0f} s ({loads})", flush=True)
        dup_queries = [edited_excerpt(t, rng) for t in probes[:lookups]]
        for archive in archives:
            new = measure(archive.engine, new_queries)
            dup = measure(archive.engine, dup_queries)
            results[archive.label].append((size, new, dup))
            print(
                f"  {archive.label:<10} {size:>7} texts, "
                f"{archive.fingerprint_rows():>9} fingerprints: "
                f"new text {new[0]:.2f} ms (p90 {new[1]:.2f}), "
                f"duplicate {dup[0]:.2f} ms (p90 {dup[1]:.2f}; {dup[2]}/{len(dup_queries)} found)",
                flush=True,
            )
    for label, rows in results.items():
        (small, new_small, dup_small), (large, new_large, dup_large) = rows[0], rows[-1]
        print(
            f"{label}: lookup cost from {small} to {large} texts: "
            f"new text x{new_large[0] / new_small[0]:.2f}, "
            f"duplicate x{dup_large[0] / dup_small[0]:.2f} "
            "(goal: at most x1.5)"
        )


def pages_versus_extraction(tmp: Path) -> None:
    """Lookup cost on real pages next to their extraction (the analysis budget)."""
    pages = sorted((SHARED_CORPUS / "pages").glob("*.html"))
    if not pages:
        print("pages: corpus not found, skipped")
        return
    engine = make_engine(f"sqlite:///{tmp / 'pages.db'}")
    upgrade_schema(engine)
    index = DedupIndex(DedupSettings())
    extract_ms, check_ms, texts_ = [], [], []
    for page in pages:
        raw = page.read_bytes()
        started = time.perf_counter()
        extracted = extract_html(raw)
        extract_ms.append((time.perf_counter() - started) * 1000)
        if extracted is not None:
            texts_.append(extracted.text)
    with session(engine) as db:
        load_seeds(db, SEEDS_DIR, index)
        for number, text in enumerate(texts_[::2]):  # half the pages archived beforehand
            article = Article(url=f"page:{number}", text=text, content_hash=content_hash(text))
            db.add(article)
            db.flush()
            index.add(db, text, article_id=article.id)
        db.commit()
        for text in texts_:
            started = time.perf_counter()
            index.check(db, text)
            check_ms.append((time.perf_counter() - started) * 1000)
    engine.dispose()
    extraction, lookup = statistics.mean(extract_ms), statistics.mean(check_ms)
    print(
        f"pages: {len(texts_)} real pages: extraction {extraction:.1f} ms/page, dedup lookup "
        f"{lookup:.2f} ms/page (median {statistics.median(check_ms):.2f}, "
        f"max {max(check_ms):.1f}) = {lookup / extraction:.1%} of extraction",
        flush=True,
    )


def postgres_database(server_url: str) -> tuple[str, sa.Engine, str]:
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    name = f"monitor_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return url, admin, name


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,200000", help="archive sizes, comma-separated")
    parser.add_argument("--lookups", type=int, default=100, help="lookups of each kind per size")
    parser.add_argument(
        "--postgres", nargs="?", const=DEFAULT_PG, default=None, metavar="SERVER_URL",
        help=f"also run on PostgreSQL (a temporary database on SERVER_URL, default {DEFAULT_PG})",
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    lookups = min(args.lookups, PROBES)
    with tempfile.TemporaryDirectory() as tmp:
        pages_versus_extraction(Path(tmp))
        archives = [Archive("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        admin, name = None, None
        if args.postgres:
            url, admin, name = postgres_database(args.postgres)
            archives.append(Archive("postgresql", url))
        try:
            run(archives, sizes, lookups)
        finally:
            for archive in archives:
                archive.engine.dispose()
            if admin is not None:
                with admin.connect() as connection:
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
