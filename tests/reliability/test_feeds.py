"""Hostile feeds beside healthy ones: one feed never stalls the others.

A feed of 150 entries whose links lead to a tarpit (a server that takes connections and
never answers) is polled beside a healthy feed of two entries, by ``monitor poll`` and
by the daemon: the healthy feed's articles must be stored within seconds, while the
hostile feed still hangs, the hostile feed must be recorded with its failure kind, and
the daemon must stop on SIGTERM within 15 s. A feed of 300 new entries must be taken
100 a poll, oldest first, all of them after three polls and none twice. A page that
keeps the extractor busy for many seconds must be cut off at its time limit, its entry
stored from the feed's own content, and the pool must go on with a new process.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import Settings
from monitor.db import make_engine
from monitor.models import Article, Feed
from monitor.scheduling.report import CycleReport
from monitor.scheduling.sync import sync_feeds
from monitor.scheduling.worker import Worker
from tests.reliability.conftest import Ledger
from tests.support.feeds import FEED_TYPES, Item, article_page, costly_page, rss20, story
from tests.support.paths import ROOT
from tests.support.servers import HTTPServer, Request, Response
from tests.support.tarpit import Tarpit
from tests.support.waiting import wait_for

MONITOR = str(Path(sys.executable).parent / "monitor")
RSS = {"Content-Type": FEED_TYPES["rss20"]}
HTML = {"Content-Type": "text/html"}


@pytest.fixture
def tarpit() -> Iterator[Tarpit]:
    with Tarpit() as pit:
        yield pit


def write_config(config_file: Callable[..., Path], database_url: str, feeds: dict[str, str], **poll: Any) -> Path:
    settings = {
        "database_url": database_url,
        "seeds_dir": str(ROOT / "seeds"),
        "poll": {"allow_private_networks": True, "interval": "10m", **poll},
        "feeds": [{"name": name, "url": url} for name, url in feeds.items()],
    }
    return config_file(json.dumps(settings))


def serve_hostile_and_healthy(server: HTTPServer, tarpit: Tarpit) -> None:
    hostile = [Item(f"Hostile {n}", tarpit.url(f"/story/{n}"), summary=story(f"hostile {n}", 2)) for n in range(150)]
    server.route("/hostile", Response(rss20(hostile), headers=RSS))
    # The healthy feed answers a moment later, when every hostile page is queued already.
    healthy = [Item(f"Healthy {n}", server.url(f"/healthy/{n}")) for n in range(2)]
    server.route("/healthy", Response(rss20(healthy), headers=RSS, delay=1.0))
    for n in range(2):
        server.route(f"/healthy/{n}", Response(article_page(f"Healthy {n}", story(f"healthy {n}")), headers=HTML))


def stored_urls(engine: sa.Engine, prefix: str = "") -> list[str]:
    with engine.connect() as connection:
        query = sa.select(Article.url).where(Article.url.startswith(prefix)).order_by(Article.url)
        return list(connection.execute(query).scalars())


def feed_row(engine: sa.Engine, name: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(sa.select(Feed).where(Feed.name == name)).one()


@pytest.fixture
def sqlite(fresh_database_url: Callable[[str], str]) -> Iterator[tuple[str, sa.Engine]]:
    url = fresh_database_url("sqlite")
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


# ------------------------------------------------------------------- a tarpit feed


def test_monitor_poll_stores_a_healthy_feed_while_a_tarpit_feed_hangs(
    sqlite: tuple[str, sa.Engine],
    config_file: Callable[..., Path],
    server: HTTPServer,
    tarpit: Tarpit,
    ledger: Ledger,
) -> None:
    url, engine = sqlite
    serve_hostile_and_healthy(server, tarpit)
    feeds = {"Hostile": server.url("/hostile"), "Healthy": server.url("/healthy")}
    config = write_config(config_file, url, feeds, feed_deadline="10s", extract_workers=1)
    started = time.monotonic()
    run = subprocess.Popen([MONITOR, "--config", str(config), "poll", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(stored_urls(engine, server.url("/healthy/"))) == 2, 30, "the healthy feed's articles")
        healthy_after = time.monotonic() - started
        # Stored while the hostile feed still hangs, not after it gave up.
        assert feed_row(engine, "Hostile").last_polled_at is None
        out, _err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0
    report = json.loads(out)
    assert (report["feeds"]["ok"], report["feeds"]["failed"]) == (1, 1)
    assert [(e["feed"], e["kind"]) for e in report["errors"]] == [("Hostile", "deadline")]
    hostile = feed_row(engine, "Hostile")
    assert (hostile.status, hostile.error_kind, hostile.body_hash) == ("error", "deadline", None)
    assert stored_urls(engine, tarpit.url("/")) == []  # nothing half-stored
    assert 0 < tarpit.connections <= 4  # the feed's share of the page slots, no more
    print(f"healthy feed stored {healthy_after:.1f}s after `monitor poll` started")
    ledger.record("refresh", tried=2, survived=2)


def test_the_daemon_stores_a_healthy_feed_beside_a_tarpit_feed_and_stops_on_sigterm(
    sqlite: tuple[str, sa.Engine],
    config_file: Callable[..., Path],
    server: HTTPServer,
    tarpit: Tarpit,
    ledger: Ledger,
) -> None:
    url, engine = sqlite
    serve_hostile_and_healthy(server, tarpit)
    feeds = {"Hostile": server.url("/hostile"), "Healthy": server.url("/healthy")}
    config = write_config(config_file, url, feeds, interval="2s", tick="0.3s", feed_deadline="5s", extract_workers=1)
    started = time.monotonic()
    daemon = subprocess.Popen([MONITOR, "--config", str(config), "run"], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(stored_urls(engine, server.url("/healthy/"))) == 2, 30, "the healthy feed's articles")
        healthy_after = time.monotonic() - started
        assert feed_row(engine, "Hostile").last_polled_at is None
        wait_for(lambda: feed_row(engine, "Hostile").error_kind == "deadline", 30, "the hostile feed's failure")
        wait_for(lambda: len(server.hits("/hostile")) >= 2, 30, "the hostile feed's next poll")  # hanging again
        stopping = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        _out, log = daemon.communicate(timeout=30)
        stopped_after = time.monotonic() - stopping
    finally:
        daemon.kill()
    assert daemon.returncode == 0, log
    assert stopped_after < 15, stopped_after
    assert "feed 'Hostile': deadline: not done after 5s" in log
    assert "feed 'Healthy': ok, 2 entries, 2 new, 2 stored" in log
    assert "Traceback" not in log, log
    assert stored_urls(engine, tarpit.url("/")) == []
    assert feed_row(engine, "Hostile").lease_owner is None
    print(f"healthy feed stored {healthy_after:.1f}s after `monitor run` started", end="; ")
    print(f"stopped {stopped_after:.1f}s after SIGTERM")
    ledger.record("refresh", tried=3, survived=3)  # both feeds, and the stop


# ------------------------------------------------------------------ a flood of entries


def test_300_new_entries_are_stored_100_a_poll_oldest_first_none_twice(
    database_url: str, config_file: Callable[..., Path], server: HTTPServer, run_cli: Callable[..., Any], ledger: Ledger
) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    items = [Item(f"Story {n}", server.url(f"/s/{n}"), published=start + timedelta(minutes=n)) for n in range(300)]
    random.Random(5).shuffle(items)  # feed order is not age order
    body = rss20(items)

    def conditional(request: Request) -> Response:
        if request.header("if-none-match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(body, headers={**RSS, "ETag": '"v1"'})

    server.route("/feed", conditional)
    for n in range(300):
        server.route(f"/s/{n}", Response(article_page(f"Story {n}", story(f"flood {n}", 4)), headers=HTML))
    config = write_config(config_file, database_url, {"Flood": server.url("/feed")}, per_host=8, extract_workers=1)
    engine = make_engine(database_url)
    try:
        polls = []
        for _poll in range(4):
            done = subprocess.run(
                [MONITOR, "--config", str(config), "poll", "--json"], capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, done.stderr
            report = json.loads(done.stdout)
            stored = sorted(int(u.rsplit("/", 1)[1]) for u in stored_urls(engine))
            polls.append((report["articles"]["stored"], report["entries_waiting"], stored))
            if _poll == 0:
                health = run_cli("--config", str(config), "feeds", "--json")
                assert json.loads(health.output)[0]["entries_waiting"] == 200
                assert "└ 200 new entries waiting for the next poll" in run_cli("--config", str(config), "feeds").output
        flood = feed_row(engine, "Flood")
    finally:
        engine.dispose()
    assert [(s, w) for s, w, _ in polls] == [(100, 200), (100, 100), (100, 0), (0, 0)]
    assert [ids for _s, _w, ids in polls[:3]] == [list(range(100)), list(range(200)), list(range(300))]
    assert [len(server.hits(f"/s/{n}")) for n in range(300)] == [1] * 300  # none fetched, none stored twice
    # Conditional GET only once nothing waits: the fourth poll is answered 304.
    assert [r.header("if-none-match") for r in server.hits("/feed")] == [None, None, None, '"v1"']
    assert (flood.articles_stored, flood.entries_waiting, flood.etag) == (300, 0, '"v1"')
    ledger.record("refresh", tried=300, survived=300)


# ------------------------------------------------------------------- costly extraction


def test_a_page_that_keeps_the_extractor_busy_is_cut_off_and_the_pool_goes_on(
    make_settings: Callable[..., Settings], database_url: str, server: HTTPServer, ledger: Ledger
) -> None:
    summary = story("costly summary", 3)
    items = [Item("Costly", server.url("/costly"), summary=summary), Item("Plain", server.url("/plain/0"))]
    server.route("/feed", Response(rss20(items), headers=RSS))
    server.route("/costly", Response(costly_page(), headers=HTML))
    for n in range(3):
        server.route(f"/plain/{n}", Response(article_page(f"Plain {n}", story(f"plain {n}")), headers=HTML))
    settings = make_settings(
        database_url=database_url,
        poll={"allow_private_networks": True, "extract_workers": 1, "extract_timeout": "1s", "interval": "10m"},
        feeds=[{"name": "Wire", "url": server.url("/feed")}],
    )
    engine = make_engine(database_url)
    sync_feeds(engine, settings.feeds)

    async def two_polls() -> tuple[CycleReport, CycleReport, list[int], list[int]]:
        async with Worker(settings, engine, rng=random.Random(1)) as worker:
            await asyncio.to_thread(worker.pool.warm_up)
            pids = worker.pool.pids()
            first = await worker.poll_cycle()
            more = [*items, *(Item(f"Plain {n}", server.url(f"/plain/{n}")) for n in (1, 2))]
            server.route("/feed", Response(rss20(more), headers=RSS))
            second = await worker.poll_cycle()
            return first, second, pids, worker.pool.pids()

    try:
        first, second, before, after = asyncio.run(two_polls())
        with engine.connect() as connection:
            notes = dict(connection.execute(sa.select(Article.url, Article.extraction_note)).all())
            texts = dict(connection.execute(sa.select(Article.url, Article.text)).all())
    finally:
        engine.dispose()
    assert (first.stored, first.fallbacks, first.failed) == (2, 1, 0)
    assert first.elapsed < 8, first.elapsed  # the page alone keeps trafilatura busy for some 10 s
    assert notes[server.url("/costly")] == "page extract_timeout; feed content used"
    assert texts[server.url("/costly")] == summary
    # The process that overran was replaced; the new one extracts the next poll's pages.
    assert (second.stored, second.fallbacks) == (2, 0)
    assert len(before) == len(after) == 1 and before != after
    assert [notes[server.url(f"/plain/{n}")] for n in range(3)] == [None, None, None]
    ledger.record("extract", tried=4, survived=4)
