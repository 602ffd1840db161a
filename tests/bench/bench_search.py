"""Benchmark: archive search at a year's scale, SQLite and PostgreSQL side by side.

Builds a synthetic archive of ``--articles`` articles per engine (a busy monitor stores
about a million a year), then times one newest-first page of results for every query
shape through ``search_articles``, as the CLI and the API call it, beside a plain
``LIKE`` scan of the same shape; and a few shapes through ``GET /api/articles`` of a
real ``monitor serve`` process (``--http``).

    python tests/bench/bench_search.py --articles 1000000 [--repeat 10] [--http]
    python tests/bench/bench_search.py --articles 100000 --engines sqlite

A million articles took 18 min to build on SQLite and 24 min on PostgreSQL, the two
side by side on 2 cores (one process each, then the timing run with the cache):

    python tests/bench/bench_search.py --articles 1000000 --engines sqlite --build-only &
    python tests/bench/bench_search.py --articles 1000000 --engines postgresql --build-only

The archive: texts of 150-600 words, a few sentences of the seed corpus (real news
sentences, so phrases and entities occur as in news) among sentences drawn from a Zipf
vocabulary headed by the seeds' own words in their order of frequency and tailed by
made-up words (so a word can be common, middling or rare, as in a real archive); 50
feeds of unequal activity, some imported articles, 6 % duplicates, mentions of the
tracked entities wherever their names occur. The schema is made by the project's
migrations; a second process makes the rows while the first stores them in bulk
(SQLite: one transaction, the FTS5 index rebuilt at its end; PostgreSQL: COPY, the
indexes rebuilt after, then ANALYZE). The built databases are cached, SQLite under
``--cache`` (default ``.bench/``) and PostgreSQL as database ``monitor_bench_<N>``
(never the tests' ``test``), so reruns start at once; the schema is upgraded to the
newest migration on each run.

Each shape: one warm-up, then ``--repeat`` timed requests; p50 and p95 (nearest rank).
The LIKE scan walks the same newest-first order with ``LIKE '%word%'`` tests in place
of the full-text index (``ILIKE`` on PostgreSQL), ``--like-repeat`` times.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.db import make_engine, session, upgrade_schema  # noqa: E402
from monitor.models import Feed  # noqa: E402
from monitor.search import SearchFilters, search_articles  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Bump when the generated archive changes: cached databases of another version are rebuilt.
GENERATOR_VERSION = 1
START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
VOCABULARY = 100_000
POOL = 4_000_000
CHUNK = 20_000
# Chunks generated ahead of the database work at most.
AHEAD = 2
FEEDS = 50
# The rank of the made-up word used as "a rare word": some 500 articles in a million.
RARE_RANK = 50_000
ENTITIES = {
    "Almaty": ("almaty", "alma-ata"),
    "CSTO": ("csto", "collective security treaty organization"),
    "Nazarbayev": ("nazarbayev",),
    "Tokayev": ("tokayev",),
}
FEED_WORDS = (
    "Steppe Daily",
    "Caspian Wire",
    "Silk Road Herald",
    "Eurasia Ledger",
    "Tien Shan Times",
    "Aral Observer",
    "Altai Courier",
    "Central Asia Monitor",
    "Kazakh Gazette",
    "Orient Dispatch",
)
ARTICLE_COLUMNS = (
    "id",
    "url",
    "title",
    "text",
    "language",
    "published_at",
    "fetched_at",
    "feed_id",
    "source",
    "content_hash",
    "duplicate_of_article_id",
    "similarity",
    "is_duplicate",
)
MENTION_LIST = 'article_id, entity, text, start, "end", snippet'


# ------------------------------------------------------------------------ the archive


def _seed_sentences() -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt")))
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) > 5]


def _vocabulary(rng: random.Random, sentences: list[str]) -> list[str]:
    """The seeds' words, most frequent first, then made-up words."""
    counts: dict[str, int] = {}
    for sentence in sentences:
        for word in re.findall(r"[a-z]+", sentence.lower()):
            counts[word] = counts.get(word, 0) + 1
    words = sorted(counts, key=lambda w: -counts[w])
    seen = set(words)
    syllables = [c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"] + ["an", "er", "ol", "is"]
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


@dataclass
class Generator:
    """Deterministic article rows: the same ``count`` gives the same archive."""

    count: int
    sentences: list[str] = field(default_factory=_seed_sentences)

    def __post_init__(self) -> None:
        rng = random.Random(1)
        self.vocabulary = _vocabulary(rng, self.sentences)
        weights = [1 / (rank + 2.7) ** 1.07 for rank in range(len(self.vocabulary))]
        self.pool = rng.choices(self.vocabulary, weights=weights, k=POOL)
        feed_weights = [1 / (rank + 1) for rank in range(FEEDS)]
        self.feed_draws = rng.choices(range(1, FEEDS + 1), weights=feed_weights, k=100_003)

    @property
    def rare_word(self) -> str:
        return self.vocabulary[RARE_RANK]

    def feed_names(self) -> list[str]:
        return [f"{FEED_WORDS[i % len(FEED_WORDS)]}{'' if i < 10 else f' {i // 10 + 1}'}" for i in range(FEEDS)]

    def _text(self, rng: random.Random) -> str:
        target = rng.randint(150, 600)
        parts: list[str] = []
        words = 0
        while words < target:
            if rng.random() < 0.08:
                sentence = rng.choice(self.sentences)
                words += sentence.count(" ") + 1
            else:
                length = rng.randint(8, 18)
                start = rng.randrange(POOL - length)
                sentence = " ".join(self.pool[start : start + length]).capitalize() + "."
                words += length
            parts.append(sentence)
        return " ".join(parts)

    def chunk(self, first: int, last: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Article and mention rows of ids ``first`` to ``last`` (inclusive)."""
        rng = random.Random(first * 7919 + GENERATOR_VERSION)
        articles, mentions = [], []
        step = YEAR / self.count
        for i in range(first, last + 1):
            text = self._text(rng)
            fetched = START + step * i + timedelta(seconds=rng.randint(0, 59))
            published = None if rng.random() < 0.03 else fetched - timedelta(minutes=rng.randint(0, 360))
            imported = rng.random() < 0.02
            duplicate = i > 100 and rng.random() < 0.06
            at = (i * 31) % (POOL - 12)
            title = " ".join(self.pool[at : at + rng.randint(4, 11)]).capitalize()
            articles.append(
                (
                    i,
                    f"https://news{i % 97}.example/{i}",
                    title,
                    text,
                    "en",
                    published,
                    fetched,
                    None if imported else self.feed_draws[i % len(self.feed_draws)],
                    "import" if imported else "feed",
                    hashlib.sha256(text.encode()).hexdigest(),
                    rng.randint(1, i - 1) if duplicate else None,
                    0.9 if duplicate else None,
                    duplicate,
                )
            )
            lowered = text.lower()
            for entity, aliases in ENTITIES.items():
                for alias in aliases:
                    at = lowered.find(alias)
                    if at >= 0:
                        end = at + len(alias)
                        snippet = text[max(0, at - 60) : end + 60]
                        mentions.append((i, entity, text[at:end], at, end, snippet))
        return articles, mentions


# ------------------------------------------------------------------------ building


def _build_key(count: int) -> str:
    return f"v{GENERATOR_VERSION}:{count}"


def _feeds(engine: sa.Engine, generator: Generator) -> None:
    with session(engine) as db:
        for n, name in enumerate(generator.feed_names(), start=1):
            db.add(Feed(id=n, name=name, url=f"https://{name.lower().replace(' ', '-')}.example/rss"))
        db.commit()


def _chunks(count: int) -> Iterator[tuple[int, int]]:
    for first in range(1, count + 1, CHUNK):
        yield first, min(first + CHUNK - 1, count)


_worker_generator: Generator | None = None


def _start_generator(count: int) -> None:
    global _worker_generator
    _worker_generator = Generator(count)


def _generate(first: int, last: int) -> tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    assert _worker_generator is not None
    return (last, *_worker_generator.chunk(first, last))


def _generated(count: int) -> Iterator[tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """(last id, article rows, mention rows) of every chunk, generated in another process.

    Generating a chunk costs as much CPU as storing it, so a second process makes the
    rows while this one writes the previous chunk; at most ``AHEAD`` chunks wait, so the
    memory stays bounded whichever side is slower.
    """
    with ProcessPoolExecutor(1, initializer=_start_generator, initargs=(count,)) as pool:
        pending: deque[Future[tuple[int, list[tuple[Any, ...]], list[tuple[Any, ...]]]]] = deque()
        for first, last in _chunks(count):
            pending.append(pool.submit(_generate, first, last))
            if len(pending) > AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def build_sqlite(path: Path, generator: Generator) -> None:
    """The archive in one transaction; FTS5 indexes it at the end, not row by row.

    The FTS5 triggers are dropped for the insert and made again from their own SQL
    (as the migrations left them): one 'rebuild' over the whole archive takes less than
    half the time of a trigger per row, and indexes the same texts.
    """
    started = time.perf_counter()
    path.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    _feeds(engine, generator)
    engine.dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-1000000")
    article_sql = f"INSERT INTO article ({', '.join(ARTICLE_COLUMNS)}) VALUES ({', '.join('?' * len(ARTICLE_COLUMNS))})"
    mention_sql = f"INSERT INTO mention ({MENTION_LIST}) VALUES (?, ?, ?, ?, ?, ?)"
    connection.execute("BEGIN")
    triggers = connection.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'article_fts%'"
    ).fetchall()
    for name, _ in triggers:
        connection.execute(f'DROP TRIGGER "{name}"')
    for last, articles, mentions in _generated(generator.count):
        # SQLite keeps naive UTC (monitor.models.UTCDateTime).
        connection.executemany(article_sql, [_naive(row) for row in articles])
        connection.executemany(mention_sql, mentions)
        _progress("SQLite", last, generator.count, started)
    print(f"  SQLite: FTS5 rebuild, {time.perf_counter() - started:.0f} s", flush=True)
    connection.execute("INSERT INTO article_fts(article_fts) VALUES ('rebuild')")
    for _, sql in triggers:
        connection.execute(sql)
    connection.execute("COMMIT")
    connection.execute("CREATE TABLE bench_build (key TEXT)")
    connection.execute("INSERT INTO bench_build VALUES (?)", (_build_key(generator.count),))
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    print(f"SQLite: built in {time.perf_counter() - started:.0f} s, {path.stat().st_size / 2**30:.1f} GiB", flush=True)


def _naive(row: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(
        value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ") if isinstance(value, datetime) else value
        for value in row
    )


def _progress(label: str, done: int, total: int, started: float) -> None:
    if done % (CHUNK * 10) == 0 or done == total:
        print(f"  {label}: {done:,} of {total:,} articles, {time.perf_counter() - started:.0f} s", flush=True)


def sqlite_built(path: Path, count: int) -> bool:
    if not path.exists():
        return False
    with contextlib.closing(sqlite3.connect(path)) as connection:
        try:
            row = connection.execute("SELECT key FROM bench_build").fetchone()
        except sqlite3.OperationalError:
            return False
    return row is not None and row[0] == _build_key(count)


def postgres_database(admin_url: str, count: int, rebuild: bool) -> tuple[str, bool]:
    """The URL of the bench database of ``count`` articles and whether it must be filled."""
    name = f"monitor_bench_{count}"
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists and not rebuild:
                engine = sa.create_engine(url)
                try:
                    with engine.connect() as bench:
                        key = bench.execute(sa.text("SELECT key FROM bench_build")).scalar()
                    if key == _build_key(count):
                        return url, False
                except sa.exc.ProgrammingError:
                    pass
                finally:
                    engine.dispose()
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return url, True


def build_postgres(url: str, generator: Generator) -> None:
    started = time.perf_counter()
    engine = make_engine(url)
    upgrade_schema(engine)
    _feeds(engine, generator)
    with engine.begin() as connection:
        indexes = [
            (str(name), str(definition))
            for name, definition in connection.execute(
                sa.text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('article', 'mention') "
                    "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
                )
            )
        ]
        for index, _ in indexes:
            connection.execute(sa.text(f'DROP INDEX "{index}"'))
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        article_copy = f"COPY article ({', '.join(ARTICLE_COLUMNS)}) FROM STDIN"
        mention_copy = f"COPY mention ({MENTION_LIST}) FROM STDIN"
        for last, articles, mentions in _generated(generator.count):
            with cursor.copy(article_copy) as copy:  # type: ignore[attr-defined]
                for row in articles:
                    copy.write_row(row)
            with cursor.copy(mention_copy) as copy:  # type: ignore[attr-defined]
                for row in mentions:
                    copy.write_row(row)
            raw.commit()
            _progress("PostgreSQL", last, generator.count, started)
        cursor.execute("SET maintenance_work_mem = '1GB'")
        for index, definition in indexes:
            print(f"  PostgreSQL: {index}…", flush=True)
            cursor.execute(definition)
            raw.commit()
        cursor.execute("SELECT setval(pg_get_serial_sequence('article', 'id'), (SELECT max(id) FROM article))")
        cursor.execute("CREATE TABLE bench_build (key TEXT)")
        cursor.execute("INSERT INTO bench_build VALUES (%s)", (_build_key(generator.count),))
        raw.commit()
        raw.driver_connection.autocommit = True  # type: ignore[union-attr]
        raw.driver_connection.execute("VACUUM ANALYZE")  # type: ignore[union-attr]
    finally:
        raw.close()
        engine.dispose()
    print(f"PostgreSQL: built in {time.perf_counter() - started:.0f} s", flush=True)


# ------------------------------------------------------------------------ the shapes


@dataclass(frozen=True)
class Shape:
    """A query shape: the filters of the search, and the LIKE terms of the plain scan."""

    name: str
    filters: SearchFilters
    like_all: tuple[tuple[str, ...], ...] = ()  # every group: any of its strings
    like_none: tuple[str, ...] = ()
    like_feed: str | None = None  # a feed the query names (``feed:``)


def shapes(generator: Generator) -> list[Shape]:
    middle = START + YEAR / 2
    rare = generator.rare_word
    feed = generator.feed_names()[20]
    return [
        Shape("no query", SearchFilters()),
        Shape("common word", SearchFilters(query="the"), (("the",),)),
        Shape("mid-frequency word", SearchFilters(query="curfew"), (("curfew",),)),
        Shape("rare word", SearchFilters(query=rare), ((rare,),)),
        Shape("phrase", SearchFilters(query='"security forces"'), (("security forces",),)),
        Shape("entity", SearchFilters(entities=("Almaty",))),
        Shape("word + entity", SearchFilters(query="troops", entities=("Almaty",)), (("troops",),)),
        Shape("date range", SearchFilters(since=middle, until=middle + timedelta(days=7))),
        Shape(
            "OR and exclusion",
            SearchFilters(query="curfew OR peacekeeping -troops"),
            (("curfew", "peacekeeping"),),
            ("troops",),
        ),
        Shape("feed filter", SearchFilters(feed=feed)),
        Shape("feed: term", SearchFilters(query=f'feed:"{feed}"'), like_feed=feed),
    ]


def _like_statement(shape: Shape, dialect: str) -> tuple[str, dict[str, Any]]:
    like = "ILIKE" if dialect == "postgresql" else "LIKE"
    document = "(coalesce(title, '') || ' ' || text)"
    where = ["NOT is_duplicate"]
    params: dict[str, Any] = {}
    for g, group in enumerate(shape.like_all):
        ors = []
        for w, word in enumerate(group):
            params[f"w{g}_{w}"] = f"%{word}%"
            ors.append(f"{document} {like} :w{g}_{w}")
        where.append("(" + " OR ".join(ors) + ")")
    for n, word in enumerate(shape.like_none):
        params[f"n{n}"] = f"%{word}%"
        where.append(f"{document} NOT {like} :n{n}")
    filters = shape.filters
    sort = "coalesce(published_at, fetched_at)"
    if filters.since:
        where.append(f"{sort} >= :since")
        params["since"] = _bound(filters.since, dialect)
    if filters.until:
        where.append(f"{sort} <= :until")
        params["until"] = _bound(filters.until, dialect)
    if filters.feed or shape.like_feed:
        where.append("feed_id = (SELECT id FROM feed WHERE name = :feed)")
        params["feed"] = filters.feed or shape.like_feed
    for n, entity in enumerate(filters.entities):
        where.append(f"EXISTS (SELECT 1 FROM mention WHERE article_id = article.id AND entity = :e{n})")
        params[f"e{n}"] = entity
    sql = f"SELECT id FROM article WHERE {' AND '.join(where)} ORDER BY {sort} DESC, id DESC LIMIT 21"
    return sql, params


def _bound(moment: datetime, dialect: str) -> Any:
    return moment if dialect == "postgresql" else moment.replace(tzinfo=None).isoformat(sep=" ")


# ------------------------------------------------------------------------ timing


@dataclass
class Figures:
    p50: float
    p95: float
    found: str  # items on the page and a digest of their ids: the same ids, the same digest


def _measure(run: Callable[[], list[int]], repeat: int) -> Figures:
    ids = run()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    digest = hashlib.sha1(",".join(map(str, ids)).encode()).hexdigest()[:6]
    return Figures(times[len(times) // 2], times[math.ceil(0.95 * len(times)) - 1], f"{len(ids)}/{digest}")


def time_search(engine: sa.Engine, shape: Shape, repeat: int) -> Figures:
    def run() -> list[int]:
        with session(engine) as db:
            return [item.id for item in search_articles(db, shape.filters).items]

    return _measure(run, repeat)


def time_like(engine: sa.Engine, shape: Shape, repeat: int) -> Figures:
    sql, params = _like_statement(shape, engine.dialect.name)

    def run() -> list[int]:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql), params).scalars())[:20]

    return _measure(run, repeat)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


HTTP_SHAPES = ("no query", "common word", "mid-frequency word", "word + entity")


def time_http(url: str, cache: Path, chosen: list[Shape], repeat: int) -> dict[str, Figures]:
    """The shapes through ``GET /api/articles`` of a ``monitor serve`` process."""
    config = cache / f"serve-{os.getpid()}.yaml"
    config.write_text(f"database_url: '{url}'\nseeds_dir: {ROOT / 'seeds'}\n", encoding="utf-8")
    port = _free_port()
    monitor = str(Path(sys.executable).parent / "monitor")
    server = subprocess.Popen(
        [monitor, "--config", str(config), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict[str, Figures] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/healthz").status_code == 200:
                        break
                time.sleep(0.1)
            for shape in chosen:
                params: dict[str, Any] = {}
                if shape.filters.query:
                    params["q"] = shape.filters.query
                if shape.filters.entities:
                    params["entity"] = list(shape.filters.entities)

                def run(params: dict[str, Any] = params) -> list[int]:
                    response = client.get("/api/articles", params=params)
                    response.raise_for_status()
                    return [item["id"] for item in response.json()["items"]]

                results[shape.name] = _measure(run, repeat)
    finally:
        server.terminate()
        server.wait(timeout=30)
        config.unlink(missing_ok=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10, help="timed requests per shape (default 10)")
    parser.add_argument("--like-repeat", type=int, default=3, help="timed LIKE scans per shape (default 3)")
    parser.add_argument("--postgres", default=DEFAULT_PG, help="server URL (a database of it, never its own)")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench")
    parser.add_argument("--rebuild", action="store_true", help="build the archives again")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--no-like", action="store_true", help="leave out the LIKE scans")
    parser.add_argument("--http", action="store_true", help="also time a few shapes through monitor serve")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    generator = Generator(args.articles)
    engines = args.engines.split(",")
    targets: dict[str, str] = {}
    if "sqlite" in engines:
        path = args.cache / f"search-{args.articles}.db"
        if args.rebuild or not sqlite_built(path, args.articles):
            print(f"SQLite: building {args.articles:,} articles…", flush=True)
            build_sqlite(path, generator)
        targets["SQLite"] = f"sqlite:///{path}"
    if "postgresql" in engines:
        url, fill = postgres_database(args.postgres, args.articles, args.rebuild)
        if fill:
            print(f"PostgreSQL: building {args.articles:,} articles…", flush=True)
            build_postgres(url, generator)
        targets["PostgreSQL"] = url
    if args.build_only:
        return

    chosen = shapes(generator)
    results: dict[str, dict[str, Figures]] = {}
    for label, url in targets.items():
        engine = make_engine(url)
        upgrade_schema(engine)
        for shape in chosen:
            results.setdefault(f"{label} search", {})[shape.name] = time_search(engine, shape, args.repeat)
            if not args.no_like:
                results.setdefault(f"{label} LIKE", {})[shape.name] = time_like(engine, shape, args.like_repeat)
            print(f"  {label}: {shape.name} done", flush=True)
        engine.dispose()
        if args.http:
            http = [shape for shape in chosen if shape.name in HTTP_SHAPES]
            results[f"{label} HTTP"] = time_http(url, args.cache, http, args.repeat)

    print(
        f"\none newest-first page (20 articles), {args.articles:,} articles; p50 / p95 in ms "
        f"over {args.repeat} requests ({args.like_repeat} for LIKE); rare word = {generator.rare_word!r}"
    )
    columns = list(results)
    print(f"{'shape':20}" + "".join(f"{column:>26}" for column in columns))
    for shape in chosen:
        cells = []
        for column in columns:
            figures = results[column].get(shape.name)
            cells.append(f"{figures.p50:8.1f} {figures.p95:8.1f} {figures.found:>8}" if figures else " " * 26)
        print(f"{shape.name:20}" + "".join(f"{cell:>26}" for cell in cells))


if __name__ == "__main__":
    main()
