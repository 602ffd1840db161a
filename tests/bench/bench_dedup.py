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
text, verified against its text). Each size is its own database (a smaller archive is
a prefix of a larger one), and the measuring rounds alternate between them, so the
ratio is taken side by side. The goal: the lookup cost grows by at most 1.5x from the
smallest to the largest size. A run takes about three minutes on SQLite, seven with
``--postgres``.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support.corpus import PAGES
from tests.support.paths import SEEDS_DIR

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WORDS_PER_TEXT = 300
VOCABULARY = 40_000
PROBES = 200  # archived texts stored with their real text, to find duplicates of
CHUNK = 5_000

# The most frequent English words, most frequent first: the head of the Zipf curve.
FUNCTION_WORDS = [
    "the", "of", "and", "to", "a", "in", "that", "is", "was", "he", "for", "it", "with", "as", "his", "on", "be",
    "at", "by", "i", "this", "had", "not", "are", "but", "from", "or", "have", "an", "they", "which", "one",
    "you", "were", "her", "all", "she", "there", "would", "their", "we", "him", "been", "has", "when", "who",
    "will", "more", "no", "if", "out", "so", "said", "what", "up", "its", "about", "into", "than", "them", "can",
    "only", "other", "new", "some", "could", "time", "these", "two", "may", "then", "do", "first", "any", "my",
    "now", "such", "like", "our", "over", "man", "me", "even", "most", "made", "after", "also", "did", "many",
    "before", "must", "through", "back", "years", "where", "much", "your", "way", "well", "down", "should",
    "because", "each", "just", "those", "people", "how", "too", "little", "state", "good", "very", "make",
    "world", "still", "own", "see", "men", "work", "long", "get", "here", "between", "both", "life", "being",
    "under", "never", "day", "same", "another", "know", "while", "last", "might", "us", "great", "old", "year",
    "off", "come", "since", "against", "go", "came", "right", "used", "take", "three",
]  # fmt: skip


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

    def __init__(self, label: str, url: str, size: int) -> None:
        self.label = label
        self.size = size
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


def grow(archives: list[Archive], pool: list[str], probes: list[str]) -> None:
    """Fill every archive with its first ``size`` texts; the first ``PROBES`` keep their text.

    The texts are the same sequence for every archive, so a smaller archive is a prefix
    of a larger one and the same probes are in all of them.
    """
    now = datetime.now(UTC)
    for archive in archives:
        archive.begin_load()
    largest = max(a.size for a in archives)
    generated = texts(0, largest, pool)
    for chunk_start in range(0, largest, CHUNK):
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
            if chunk_start < archive.size:
                archive.load(articles, rows)
    for archive in archives:
        archive.end_load()


# ---------------------------------------------------------------------------- measuring


def timed_lookups(engine: sa.Engine, index: DedupIndex, queries: list[str]) -> tuple[list[float], int]:
    """Milliseconds of each lookup, and how many found a duplicate."""
    timings: list[float] = []
    found = 0
    with session(engine) as db:
        for text in queries:
            started = time.perf_counter()
            verdict = index.check(db, text)
            timings.append((time.perf_counter() - started) * 1000)
            found += verdict.is_duplicate
    return timings, found


def _p90(timings: list[float]) -> float:
    return sorted(timings)[int(len(timings) * 0.9)]


def run(archives: list[Archive], lookups: int, rounds: int) -> None:
    pool = word_pool(random.Random(1))
    rng = random.Random(2)
    new_queries = list(texts(10**9, lookups, pool))
    probes: list[str] = []
    started = time.perf_counter()
    grow(archives, pool, probes)
    loads = ", ".join(f"{a.label} {a.size} texts {a.seconds:.0f} s" for a in archives)
    print(f"archives generated and loaded in {time.perf_counter() - started:.0f} s ({loads})", flush=True)
    dup_queries = [edited_excerpt(t, rng) for t in probes[:lookups]]
    indexes = {id(a): DedupIndex(DedupSettings()) for a in archives}
    for archive in archives:  # warm the caches of the database and of the index
        timed_lookups(archive.engine, indexes[id(archive)], new_queries[:5] + dup_queries[:5])
    # Rounds alternate between the archives, so machine noise hits every size alike.
    new: dict[int, list[float]] = {id(a): [] for a in archives}
    dup: dict[int, list[float]] = {id(a): [] for a in archives}
    found: dict[int, int] = {}
    for _ in range(rounds):
        for archive in archives:
            new[id(archive)] += timed_lookups(archive.engine, indexes[id(archive)], new_queries)[0]
            timings, found[id(archive)] = timed_lookups(archive.engine, indexes[id(archive)], dup_queries)
            dup[id(archive)] += timings
    for archive in archives:
        key = id(archive)
        print(
            f"  {archive.label:<10} {archive.size:>7} texts, {archive.fingerprint_rows():>9} fingerprints: "
            f"new text {statistics.median(new[key]):.2f} ms (p90 {_p90(new[key]):.2f}), "
            f"duplicate {statistics.median(dup[key]):.2f} ms (p90 {_p90(dup[key]):.2f}; "
            f"{found[key]}/{len(dup_queries)} found)",
            flush=True,
        )
    for label in dict.fromkeys(a.label for a in archives):
        same = sorted((a for a in archives if a.label == label), key=lambda a: a.size)
        small, large = id(same[0]), id(same[-1])
        print(
            f"{label}: lookup cost from {same[0].size} to {same[-1].size} texts: "
            f"new text x{statistics.median(new[large]) / statistics.median(new[small]):.2f}, "
            f"duplicate x{statistics.median(dup[large]) / statistics.median(dup[small]):.2f} "
            "(goal: at most x1.5)"
        )


def pages_versus_extraction(tmp: Path) -> None:
    """Lookup cost on real pages next to their extraction (the analysis budget)."""
    pages = sorted(PAGES.glob("*.html"))
    if not pages:
        print(f"pages: no page corpus at {PAGES}, skipped")
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


def postgres_database(admin: sa.Engine, server_url: str) -> tuple[str, str]:
    name = f"monitor_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return url, name


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,200000", help="archive sizes, comma-separated")
    parser.add_argument("--lookups", type=int, default=100, help="lookups of each kind per size")
    parser.add_argument("--rounds", type=int, default=5, help="measuring rounds, alternating sizes")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=DEFAULT_PG,
        default=None,
        metavar="SERVER_URL",
        help=f"also run on PostgreSQL (temporary databases on SERVER_URL, default {DEFAULT_PG})",
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    lookups = min(args.lookups, PROBES)
    with tempfile.TemporaryDirectory() as tmp:
        pages_versus_extraction(Path(tmp))
        archives = [Archive("sqlite", f"sqlite:///{Path(tmp) / f'bench-{n}.db'}", n) for n in sizes]
        admin, names = None, []
        if args.postgres:
            admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
            for size in sizes:
                url, name = postgres_database(admin, args.postgres)
                names.append(name)
                archives.append(Archive("postgresql", url, size))
        try:
            run(archives, lookups, args.rounds)
        finally:
            for archive in archives:
                archive.engine.dispose()
            if admin is not None:
                with admin.connect() as connection:
                    for name in names:
                        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


if __name__ == "__main__":
    main(sys.argv[1:])
