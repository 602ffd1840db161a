"""Polling benchmark: the worker against a local feed server, each figure beside its yardstick.

    .venv/bin/python tests/bench/bench_poll.py            # full run (several minutes)
    .venv/bin/python tests/bench/bench_poll.py --quick    # fewer pages and cycles

1. Steady-state cycle: 1,000 feeds x 20 entries, answering after 100 ms, all entries
   already archived. Wall time vs the floor = max(network floor 100 ms x
   ceil(1000 / concurrency), feedparser CPU on the same bodies / cores), and vs a
   sequential fetch-and-feedparser loop (extrapolated from a sample).
2. Conditional cycle: the same feeds answering 304; CPU time vs the steady cycle's.
3. New articles: pages of the shared corpus, repeated under distinct URLs with an
   edition line added, through fetch, extract, dedup, match, store; vs trafilatura's
   ``extract`` alone on the same pages in one process (a process of its own). Repeats of a corpus page are
   recognised as duplicates of its first copy: they still go the whole way. The
   yardstick runs just before and just after the cycle; the floor is their mean.
4. Memory: the worker's RSS after each cycle of new articles up to 10,000 stored, and
   its peak over the whole run (set-up and yardsticks left out).

Everything runs on 127.0.0.1; the feed server is an asyncio server in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import feedparser  # noqa: E402
import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
import trafilatura  # noqa: E402
from feedserver import ENTRIES, FEEDS, corpus_pages, known_feed, known_url, page  # noqa: E402

from monitor.config import Settings  # noqa: E402
from monitor.db import make_engine, session, upgrade_schema  # noqa: E402
from monitor.models import Article  # noqa: E402
from monitor.pipeline.ingest import Archive  # noqa: E402
from monitor.scheduling.report import CycleReport  # noqa: E402
from monitor.scheduling.sync import sync_feeds  # noqa: E402
from monitor.scheduling.worker import Worker  # noqa: E402
from monitor.seeds import load_seeds  # noqa: E402
from monitor.times import utcnow  # noqa: E402
from tests.support.corpus import PAGES as PAGES_DIR  # noqa: E402
from tests.support.waiting import free_port  # noqa: E402

LATENCY = 0.1


# ------------------------------------------------------------------------- plumbing


def start_server(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, str(HERE / "feedserver.py"), str(port), str(PAGES_DIR)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/control", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the feed server did not start")


def control(base: str, **params: Any) -> None:
    httpx.get(f"{base}/control", params=params, timeout=5).raise_for_status()


def proc_stat_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kb(pid: int | str, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """Start VmHWM afresh (Linux: writing 5 to clear_refs resets the high-water mark)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def pool_pids(worker: Worker) -> list[int]:
    return worker.pool.pids()


async def timed_cycle(worker: Worker) -> tuple[CycleReport, float, float, float]:
    """Report, wall seconds, CPU seconds of the worker process, CPU of its pool processes."""
    pids = pool_pids(worker)
    children = sum(proc_stat_cpu(p) for p in pids)
    cpu, wall = time.process_time(), time.perf_counter()
    report = await worker.poll_cycle()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    children = sum(proc_stat_cpu(p) for p in pids) - children
    return report, wall, cpu, children


def prefill_archive(engine: sa.Engine) -> None:
    """The known feeds' entries, as if an earlier poll had stored them."""
    now = utcnow()
    rows = [
        {
            "url": known_url(n, k),
            "text": "archived",
            "content_hash": "0" * 64,
            "fetched_at": now,
            "source": "feed",
            "is_duplicate": False,
        }
        for n in range(FEEDS)
        for k in range(ENTRIES)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(Article), rows)


# ---------------------------------------------------------------------- yardsticks


def feedparser_cpu(cycle: int) -> float:
    bodies = [known_feed(n, cycle) for n in range(FEEDS)]
    started = time.process_time()
    for body in bodies:
        feedparser.parse(body)
    return time.process_time() - started


def sequential_loop(base: str, sample: int) -> float:
    """Fetch-and-parse one feed after the other; seconds for all 1,000 feeds, extrapolated."""
    with httpx.Client() as client:
        started = time.perf_counter()
        for n in range(sample):
            feedparser.parse(client.get(f"{base}/feed/{n}").content)
        return (time.perf_counter() - started) * FEEDS / sample


def trafilatura_alone(count: int, first_page: int) -> float:
    """Seconds of ``trafilatura.extract`` on the same pages, one after the other.

    It runs in a process of its own (``--yardstick``), so the pages it holds at once do
    not count as the worker's memory.
    """
    command = [sys.executable, __file__, "--yardstick", str(count), str(first_page)]
    return float(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def yardstick(count: int, first_page: int) -> None:
    pages = corpus_pages(PAGES_DIR)
    bodies = [page(pages, i) for i in range(first_page, first_page + count)]
    started = time.perf_counter()
    for body in bodies:
        trafilatura.extract(body)
    print(time.perf_counter() - started)


# -------------------------------------------------------------------------- the runs


async def run(args: argparse.Namespace, base: str, settings: Settings, engine: sa.Engine) -> dict[str, Any]:
    results: dict[str, Any] = {"cores": os.cpu_count(), "concurrency": args.concurrency}
    reset_peak_rss()  # the peak is the worker's, not the set-up's (bulk prefill)
    async with Worker(settings, engine) as worker:
        await asyncio.to_thread(worker.pool.warm_up)

        # 1. Steady state. The first cycle warms connections; the second is measured.
        control(base, mode="steady", cycle=0, latency=LATENCY)
        await timed_cycle(worker)
        control(base, cycle=1)
        report, wall, cpu, children = await timed_cycle(worker)
        assert report.ok == FEEDS and report.new_entries == 0, report.as_dict()
        fp_cpu = feedparser_cpu(1)
        network_floor = LATENCY * math.ceil(FEEDS / args.concurrency)
        floor = max(network_floor, fp_cpu / (os.cpu_count() or 1))
        sequential = sequential_loop(base, sample=50)
        results["steady"] = {
            "wall_s": round(wall, 2),
            "floor_s": round(floor, 2),
            "vs_floor": round(wall / floor, 2),
            "network_floor_s": round(network_floor, 2),
            "feedparser_cpu_s": round(fp_cpu, 2),
            "sequential_loop_s": round(sequential, 1),
            "speedup_vs_sequential": round(sequential / wall, 1),
            "cpu_worker_s": round(cpu, 2),
            "cpu_pool_s": round(children, 2),
        }

        # 2. Conditional: every feed answers 304 to the ETag stored in cycle 1.
        control(base, mode="conditional")
        report, wall_c, cpu_c, children_c = await timed_cycle(worker)
        assert report.not_modified == FEEDS, report.as_dict()
        results["conditional"] = {
            "wall_s": round(wall_c, 2),
            "cpu_s": round(cpu_c + children_c, 2),
            "cpu_vs_steady": round((cpu_c + children_c) / (cpu + children), 3),
        }

        if args.no_new:
            return results

        # 3 and 4. New articles, cycle after cycle, with the worker's memory.
        pages, cycles = args.pages, args.cycles
        feeds = [{"name": f"New {n}", "url": f"{base}/new/{n}"} for n in range(pages // ENTRIES)]
        sync_feeds(engine, Settings.model_validate({"feeds": feeds}).feeds)
        memory, stored = [], 0
        # The yardstick runs just before the first cycle and again right after it; their
        # mean is the floor, so a machine that drifts in speed hits both sides alike.
        alone_before = trafilatura_alone(pages, 0)
        for cycle in range(cycles):
            control(base, first_page=cycle * pages)
            report, wall_n, cpu_n, children_n = await timed_cycle(worker)
            stored += report.stored
            memory.append(
                {
                    "cycle": cycle + 1,
                    "stored_total": stored,
                    "worker_rss_mb": round(proc_status_kb("self", "VmRSS") / 1024, 1),
                    "pool_rss_mb": round(
                        max((proc_status_kb(p, "VmRSS") for p in pool_pids(worker)), default=0) / 1024, 1
                    ),
                }
            )
            print(
                f"  new-article cycle {cycle + 1}: {report.stored} stored "
                f"({report.duplicates} duplicates) in {wall_n:.1f}s, CPU worker {cpu_n:.1f}s "
                f"+ pool {children_n:.1f}s",
                flush=True,
            )
            if cycle == 0:
                first, first_wall = report, wall_n
                alone_after = trafilatura_alone(pages, 0)
        peaks = {
            "worker_peak_rss_mb": round(proc_status_kb("self", "VmHWM") / 1024, 1),
            "pool_peak_rss_mb": round(
                max((proc_status_kb(p, "VmHWM") for p in pool_pids(worker)), default=0) / 1024, 1
            ),
        }
        alone = (alone_before + alone_after) / 2
        results["new_articles"] = {
            "pages": pages,
            "wall_s": round(first_wall, 1),
            "trafilatura_extract_alone_s": round(alone, 1),
            "trafilatura_before_after_s": [round(alone_before, 1), round(alone_after, 1)],
            "ratio": round(first_wall / alone, 2),
            "stored": first.stored,
            "duplicates": first.duplicates,
            "from_feed_content": first.fallbacks,
            "skipped": first.skipped,
        }
        results["memory"] = {"cycles": memory, **peaks}
    return results


def print_results(r: dict[str, Any]) -> None:
    s, c = r["steady"], r["conditional"]
    print(f"\ncores {r['cores']}, concurrency {r['concurrency']}")
    print(
        f"1. steady cycle, {FEEDS} feeds x {ENTRIES} known entries: {s['wall_s']} s "
        f"= {s['vs_floor']}x the floor of {s['floor_s']} s (network {s['network_floor_s']} s, "
        f"feedparser CPU {s['feedparser_cpu_s']} s / cores); sequential loop {s['sequential_loop_s']} s "
        f"({s['speedup_vs_sequential']}x slower); CPU worker {s['cpu_worker_s']} s + pool {s['cpu_pool_s']} s"
    )
    print(
        f"2. conditional cycle (all 304): {c['wall_s']} s wall, CPU {c['cpu_s']} s = {c['cpu_vs_steady']:.1%} of steady"
    )
    if "new_articles" not in r:
        print(json.dumps(r))
        return
    n, m = r["new_articles"], r["memory"]
    before, after = n["trafilatura_before_after_s"]
    print(
        f"3. new articles: {n['pages']} pages in {n['wall_s']} s vs trafilatura.extract alone "
        f"{n['trafilatura_extract_alone_s']} s (before {before} s, after {after} s) = {n['ratio']}x "
        f"({n['stored']} stored, {n['duplicates']} duplicates, "
        f"{n['from_feed_content']} from feed content, {n['skipped']} skipped)"
    )
    print(
        "4. memory after each cycle: "
        + ", ".join(
            f"{x['stored_total']} stored: worker {x['worker_rss_mb']} MB, pool process {x['pool_rss_mb']} MB"
            for x in m["cycles"]
        )
    )
    print(f"   peak RSS: worker {m['worker_peak_rss_mb']} MB, pool process {m['pool_peak_rss_mb']} MB")
    print(json.dumps(r))


def main() -> None:
    if sys.argv[1:2] == ["--yardstick"]:
        yardstick(int(sys.argv[2]), int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 pages a cycle, 2 cycles")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--pages", type=int, help="new article pages per cycle (default 2000)")
    parser.add_argument("--cycles", type=int, help="cycles of new articles (default: up to 10,000 stored)")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    parser.add_argument("--no-new", action="store_true", help="only the steady and conditional cycles")
    args = parser.parse_args()
    args.pages = args.pages or (300 if args.quick else 2000)
    args.cycles = args.cycles or (2 if args.quick else math.ceil(10_000 / args.pages))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(port)
    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
        settings = Settings.model_validate(
            {
                "database_url": database_url,
                "seeds_dir": str(ROOT / "seeds"),
                "poll": {
                    "allow_private_networks": True,
                    "concurrency": args.concurrency,
                    "per_host": min(args.concurrency, 100),
                    "timeout": "60s",
                },
                "feeds": [{"name": f"Feed {n}", "url": f"{base}/feed/{n}"} for n in range(FEEDS)],
            }
        )
        engine = make_engine(settings.database_url)
        upgrade_schema(engine)
        with session(engine) as db:
            load_seeds(db, settings.seeds_dir, Archive(settings).index)
            db.commit()
        sync_feeds(engine, settings.feeds)
        prefill_archive(engine)
        try:
            results = asyncio.run(run(args, base, settings, engine))
        finally:
            engine.dispose()
            server.kill()
    print_results(results)


if __name__ == "__main__":
    main()
