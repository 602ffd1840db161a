"""Adaptive polling against a fixed interval: 200 feeds on realistic, different schedules.

    .venv/bin/python tests/bench/bench_adaptive.py             # 2 simulated days (a few minutes)
    .venv/bin/python tests/bench/bench_adaptive.py --days 1    # quicker

A local HTTP server on 127.0.0.1 serves 200 RSS feeds whose entries appear on a
simulated clock: wire services (every few minutes, day and night), busy news sites
(every half hour by day), regional sites (about hourly by day), daily blogs, press
offices publishing in bursts, and dormant feeds. Every feed answers ``If-None-Match``
with 304 when nothing is new, as well-kept servers do.

The monitor's own scheduling code runs on that clock, step by step (one simulated
minute): ``claim_feeds`` takes the feeds that are due, ``Refresher.refresh`` polls them
over HTTP through the real fetcher, process pool, dedup and archive, and
``record_outcomes`` plans each feed's next poll (``scheduling.pace`` for adaptive
feeds). Both runs see the same publications:

- fixed: every feed has ``interval: 15m`` (the default ``poll.interval``);
- adaptive: no feed has one; the interval adapts between ``poll.min_interval`` (10m)
  and ``poll.max_interval`` (6h), the defaults.

Printed side by side: feed requests, new articles stored, requests per new article,
and the mean, p95 and worst delay from publication to storage (simulated minutes).
Entries are stored from the feed's own content (``extract: false``): page extraction
costs the same in both runs and is not what is compared. Publication stops
``poll.max_interval`` before the end so that every article is stored in both runs.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
import tempfile
import threading
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from monitor.config import Settings  # noqa: E402
from monitor.db import make_engine, upgrade_schema  # noqa: E402
from monitor.models import Article, Feed, table_of  # noqa: E402
from monitor.pipeline.fetch import Fetcher  # noqa: E402
from monitor.pipeline.pool import CPUPool  # noqa: E402
from monitor.pipeline.refresh import Refresher  # noqa: E402
from monitor.scheduling.leases import claim_feeds, record_outcomes  # noqa: E402
from monitor.scheduling.sync import sync_feeds  # noqa: E402
from tests.support.feeds import Item, rss20  # noqa: E402

START = datetime(2024, 6, 3, tzinfo=UTC)  # a Monday, midnight UTC
STEP = timedelta(minutes=1)
HISTORY = timedelta(days=3)  # entries the feeds list before the run starts
LISTED = 20  # entries a feed lists
MIX = [  # (kind, feeds)
    ("wire", 8),
    ("news", 20),
    ("regional", 32),
    ("blog", 60),
    ("press", 20),
    ("dormant", 60),
]


# ------------------------------------------------------------------------- schedules


def _daytime(moment: datetime) -> bool:
    return 6 <= moment.hour < 22


def schedule(kind: str, rng: random.Random, start: datetime, end: datetime) -> list[datetime]:
    """Publication times of one feed of ``kind`` between ``start`` and ``end``."""
    times: list[datetime] = []
    t = start
    if kind == "wire":  # Poisson, a story every 4 minutes on average, day and night
        while (t := t + timedelta(minutes=rng.expovariate(1 / 4))) < end:
            times.append(t)
    elif kind == "news":  # every 30 minutes by day, every 3 hours by night
        while t < end:
            t += timedelta(minutes=rng.expovariate(1 / (30 if _daytime(t) else 180)))
            times.append(t)
    elif kind == "regional":  # about hourly from 7:00 to 20:00, a few minutes past the hour
        offset = rng.randint(0, 20)
        day = start.replace(hour=0, minute=0)
        while day < end:
            for hour in range(7, 20):
                if rng.random() < 0.85:
                    times.append(day + timedelta(hours=hour, minutes=offset + rng.randint(-3, 3)))
            day += timedelta(days=1)
    elif kind == "blog":  # most days one post, at some hour of the working day
        day = start.replace(hour=0, minute=0)
        while day < end:
            if rng.random() < 0.7:
                times.append(day + timedelta(hours=rng.uniform(8, 18)))
            day += timedelta(days=1)
    elif kind == "press":  # a burst of 3 to 8 releases within minutes, about every other day
        while (t := t + timedelta(hours=rng.expovariate(1 / 40))) < end:
            times.extend(t + timedelta(minutes=rng.uniform(0, 10)) for _ in range(rng.randint(3, 8)))
    elif kind == "dormant":  # a post every few weeks
        while (t := t + timedelta(days=rng.expovariate(1 / 20))) < end:
            times.append(t)
    return sorted(x for x in times if start <= x < end)


@dataclass
class SimFeed:
    number: int
    kind: str
    published: list[datetime]


@dataclass
class Clock:
    now: datetime = START


# ---------------------------------------------------------------------------- server


@dataclass
class FeedServer:
    """RSS feeds whose entries appear as the simulated clock passes their dates."""

    feeds: list[SimFeed]
    clock: Clock
    requests: int = 0
    by_feed: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _cache: dict[tuple[int, int], bytes] = field(default_factory=dict)

    def body(self, feed: SimFeed, count: int) -> bytes:
        key = (feed.number, count)
        if key not in self._cache:
            items = [
                Item(
                    f"{feed.kind} {feed.number} story {k}",
                    f"https://{feed.kind}{feed.number}.example/story/{k}",
                    summary=f"Story {k} of the {feed.kind} desk number {feed.number}: {_words(feed.number, k)}.",
                    published=feed.published[k],
                )
                for k in range(max(0, count - LISTED), count)
            ][::-1]
            self._cache[key] = rss20(items, link=f"https://{feed.kind}{feed.number}.example/").encode()
        return self._cache[key]

    def serve(self, port: int = 0) -> ThreadingHTTPServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, each answer would
            # wait for the client's delayed acknowledgement of the first.
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                feed = owner.feeds[int(self.path.rsplit("/", 1)[-1].removesuffix(".xml"))]
                with owner.lock:
                    owner.requests += 1
                    owner.by_feed[feed.number] = owner.by_feed.get(feed.number, 0) + 1
                count = bisect_right(feed.published, owner.clock.now)
                etag = f'"{feed.number}-{count}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = owner.body(feed, count)
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


_VOCABULARY = [
    "steppe",
    "river",
    "council",
    "budget",
    "wheat",
    "harbour",
    "railway",
    "border",
    "summit",
    "treaty",
    "market",
    "court",
]


def _words(n: int, k: int) -> str:
    rng = random.Random(n * 100_003 + k)
    return " ".join(rng.choice(_VOCABULARY) for _ in range(12))


# -------------------------------------------------------------------------- the runs


@dataclass
class Result:
    requests: int = 0
    stored: int = 0
    delays: list[float] = field(default_factory=list)  # minutes, articles published during the run
    seconds: float = 0.0
    kind_requests: dict[str, int] = field(default_factory=dict)
    kind_delays: dict[str, list[float]] = field(default_factory=dict)

    def row(self) -> dict[str, str]:
        delays = sorted(self.delays)
        p95 = delays[min(len(delays) - 1, math.ceil(0.95 * len(delays)) - 1)] if delays else float("nan")
        return {
            "feed requests": f"{self.requests:,}",
            "new articles stored": f"{len(delays):,}",
            "requests per new article": f"{self.requests / max(len(delays), 1):.2f}",
            "mean delay (min)": f"{sum(delays) / max(len(delays), 1):.1f}",
            "p95 delay (min)": f"{p95:.1f}",
            "worst delay (min)": f"{delays[-1] if delays else float('nan'):.1f}",
            "wall time (s)": f"{self.seconds:.0f}",
        }


def settings_for(mode: str, url: str, database: Path, feeds: list[SimFeed]) -> Settings:
    fixed = {"interval": "15m"} if mode == "fixed" else {}
    return Settings.model_validate(
        {
            "database_url": f"sqlite:///{database}",
            "seeds_dir": str(ROOT / "seeds"),
            "entities": [{"name": "Nothing tracked here", "aliases": ["zqxj"]}],
            "poll": {
                "allow_private_networks": True,
                "interval": "15m",
                "min_interval": "10m",
                "max_interval": "6h",
                "concurrency": 50,
                "per_host": 50,
                "max_new_entries": 100,
            },
            "feeds": [
                {"name": f"{f.kind}-{f.number}", "url": f"{url}/feed/{f.number}.xml", "extract": False, **fixed}
                for f in feeds
            ],
        }
    )


async def simulate(mode: str, feeds: list[SimFeed], end: datetime, pool: CPUPool, workdir: Path) -> Result:
    clock = Clock(START)
    server = FeedServer(feeds, clock)
    http = server.serve()
    url = f"http://127.0.0.1:{http.server_address[1]}"
    settings = settings_for(mode, url, workdir / f"{mode}.db", feeds)
    engine = make_engine(settings.database_url)
    upgrade_schema(engine)
    sync_feeds(engine, settings.feeds, now=START)
    articles = table_of(Article)
    newer = sa.select(articles.c.id, articles.c.published_at, articles.c.feed_id).where(
        articles.c.id > sa.bindparam("last")
    )
    feed_table = table_of(Feed)
    with engine.connect() as connection:
        names = dict(connection.execute(sa.select(feed_table.c.id, feed_table.c.name)).all())
    kind_of = {feed_id: name.split("-")[0] for feed_id, name in names.items()}
    result, last_id, rng = Result(), 0, random.Random(1)
    started = time.perf_counter()
    async with Fetcher(settings.poll) as fetcher:
        refresher = Refresher(settings=settings, engine=engine, fetcher=fetcher, pool=pool)
        try:
            while clock.now < end:
                due = claim_feeds(engine, owner="bench", poll=settings.poll, limit=1000, now=clock.now)
                if due:
                    outcomes = await asyncio.gather(*(refresher.refresh(feed) for feed in due))
                    failed = [o for o in outcomes if o.failed]
                    if failed:
                        raise RuntimeError(f"{failed[0].feed_name}: {failed[0].error_message}")
                    record_outcomes(
                        engine,
                        list(zip(outcomes, due, strict=True)),
                        owner="bench",
                        poll=settings.poll,
                        rng=rng,
                        now=clock.now,
                    )
                    with engine.connect() as connection:
                        rows = connection.execute(newer.order_by(articles.c.id), {"last": last_id}).all()
                    for row_id, published, feed_id in rows:
                        last_id = row_id
                        if published >= START:
                            delay = (clock.now - published).total_seconds() / 60
                            result.delays.append(delay)
                            result.kind_delays.setdefault(kind_of[feed_id], []).append(delay)
                clock.now += STEP
        finally:
            refresher.close()
    result.requests, result.seconds = server.requests, time.perf_counter() - started
    for feed in feeds:
        result.kind_requests[feed.kind] = result.kind_requests.get(feed.kind, 0) + server.by_feed.get(feed.number, 0)
    http.shutdown()
    engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=float, default=2.0, help="simulated days (default 2)")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    end = START + timedelta(days=args.days)
    quiet_tail = timedelta(hours=6)  # poll.max_interval: every article is stored before the end
    rng = random.Random(args.seed)
    feeds: list[SimFeed] = []
    for kind, count in MIX:
        for _ in range(count):
            feeds.append(SimFeed(len(feeds), kind, schedule(kind, rng, START - HISTORY, end - quiet_tail)))
    published = sum(1 for f in feeds for t in f.published if t >= START)
    print(f"{len(feeds)} feeds ({', '.join(f'{n} {k}' for k, n in MIX)}); {args.days:g} simulated days; "
          f"{published:,} articles published during the run")  # fmt: skip
    by_kind = {kind: sum(1 for f in feeds if f.kind == kind for t in f.published if t >= START) for kind, _n in MIX}
    print("  of which " + ", ".join(f"{kind} {n:,}" for kind, n in by_kind.items()))
    pool = CPUPool(workers=2)
    pool.warm_up()
    results: dict[str, Result] = {}
    try:
        # The databases in memory where the system has it: commits cost no disk flush.
        shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
        with tempfile.TemporaryDirectory(dir=shm) as workdir:
            for mode in ("fixed", "adaptive"):
                results[mode] = asyncio.run(simulate(mode, feeds, end, pool, Path(workdir)))
                print(f"  {mode}: done in {results[mode].seconds:.0f}s", flush=True)
    finally:
        pool.close()
    rows = {mode: result.row() for mode, result in results.items()}
    width = max(len(k) for k in rows["fixed"])
    print(f"\n{'':<{width}}  {'fixed 15m':>12}  {'adaptive 10m-6h':>15}")
    for key in rows["fixed"]:
        print(f"{key:<{width}}  {rows['fixed'][key]:>12}  {rows['adaptive'][key]:>15}")
    print("\nby kind of feed: requests, and p95 delay (min) of its articles")
    print(f"{'':<10}  {'fixed':>16}  {'adaptive':>16}")
    for kind, _count in MIX:
        cells = []
        for result in results.values():
            delays = sorted(result.kind_delays.get(kind, []))
            p95 = f"{delays[min(len(delays) - 1, math.ceil(0.95 * len(delays)) - 1)]:.0f}" if delays else "-"
            cells.append(f"{result.kind_requests.get(kind, 0):>7,} {p95:>8}")
        print(f"{kind:<10}  {cells[0]:>16}  {cells[1]:>16}")
    fixed, adaptive = results["fixed"], results["adaptive"]
    ratio = fixed.requests / max(adaptive.requests, 1)
    print(f"\nadaptive: {ratio:.1f}x fewer requests; p95 delay {rows['adaptive']['p95 delay (min)']} min "
          f"against {rows['fixed']['p95 delay (min)']} min fixed")  # fmt: skip


if __name__ == "__main__":
    main()
