"""Scheduling: feed sync, back-off arithmetic, leases, several workers on one database, CLI."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from monitor.config import FeedConfig, PollSettings
from monitor.db import session
from monitor.headers import MAX_SERVER_WAIT
from monitor.models import Article, Feed
from monitor.outcomes import PollStatus
from monitor.pipeline.refresh import RefreshOutcome
from monitor.scheduling.backoff import plan_next
from monitor.scheduling.leases import claim_feeds, reclaim_abandoned, record_outcome, record_outcomes
from monitor.scheduling.sync import sync_feeds
from monitor.times import utcnow
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.paths import ROOT
from tests.support.servers import HTTPServer, Response

MONITOR = [str(Path(sys.executable).parent / "monitor")]
NOW = datetime(2024, 1, 6, 10, 0, tzinfo=UTC)


def feeds_by_name(engine: sa.Engine) -> dict[str, Feed]:
    with session(engine) as db:
        return {f.name: f for f in db.exec(select(Feed)).all()}


def configured(*pairs: tuple[str, str], interval: float | None = None) -> list[FeedConfig]:
    return [FeedConfig(name=n, url=u, interval=interval) for n, u in pairs]


# ------------------------------------------------------------------------------ sync


def test_sync_adds_updates_renames_and_deactivates(engine: sa.Engine) -> None:
    a, b, c = "https://a.example/rss", "https://b.example/rss", "https://c.example/rss"
    assert sync_feeds(engine, configured(("A", a), ("B", b)), now=NOW).added == 2
    assert all(f.next_poll_at == NOW and f.active for f in feeds_by_name(engine).values())
    with engine.begin() as connection:
        connection.execute(sa.update(Feed).values(etag='"x"', body_hash="h", next_poll_at=NOW + timedelta(hours=1)))

    # A renamed (same URL), B moved to another URL (same name), C new.
    report = sync_feeds(engine, configured(("A2", a), ("B", c), interval=60), now=NOW)

    feeds = feeds_by_name(engine)
    assert (report.added, report.updated, report.deactivated) == (0, 2, 0)
    assert set(feeds) == {"A2", "B"}
    assert feeds["A2"].etag == '"x"' and feeds["A2"].interval == 60
    assert (feeds["B"].url, feeds["B"].etag, feeds["B"].body_hash) == (c, None, None)
    assert feeds["B"].next_poll_at == NOW

    report = sync_feeds(engine, configured(("B", c)), now=NOW)
    assert report.deactivated == 1 and not feeds_by_name(engine)["A2"].active
    sync_feeds(engine, configured(("A2", a), ("B", c)), now=NOW)
    assert feeds_by_name(engine)["A2"].active


def test_sync_survives_two_feeds_swapping_urls(engine: sa.Engine) -> None:
    a, b = "https://a.example/rss", "https://b.example/rss"
    sync_feeds(engine, configured(("A", a), ("B", b)))
    sync_feeds(engine, configured(("A", b), ("B", a)))
    feeds = feeds_by_name(engine)
    assert (feeds["A"].url, feeds["B"].url) == (b, a)


# --------------------------------------------------------------------------- back-off


POLL = PollSettings(interval=600, max_backoff=3600)


def outcome(status: str = "ok", **kwargs: object) -> RefreshOutcome:
    return RefreshOutcome(feed_id=1, feed_name="Wire", status=PollStatus(status), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("errors", "low", "high"),
    [(1, 480, 600), (2, 960, 1200), (3, 1920, 2400), (4, 2880, 3600), (9, 2880, 3600)],
)
def test_failures_back_off_exponentially_up_to_the_cap(errors: int, low: float, high: float) -> None:
    for seed in range(20):
        next_at, not_before = plan_next(
            outcome("error", error_kind="http_5xx"),
            interval=600,
            error_count=errors,
            poll=POLL,
            now=NOW,
            rng=random.Random(seed),
        )
        assert low <= (next_at - NOW).total_seconds() <= high
        assert not_before is None


def test_success_polls_again_after_about_one_interval_but_never_before_max_age() -> None:
    waits = {
        (
            plan_next(outcome(), interval=600, error_count=0, poll=POLL, now=NOW, rng=random.Random(s))[0] - NOW
        ).total_seconds()
        for s in range(50)
    }
    assert min(waits) >= 540 and max(waits) <= 660 and len(waits) > 10  # jittered
    next_at, not_before = plan_next(
        outcome(max_age=7200), interval=600, error_count=0, poll=POLL, now=NOW, rng=random.Random(1)
    )
    assert not_before == NOW + timedelta(seconds=7200) and next_at == not_before


def test_retry_after_wins_over_a_shorter_backoff_even_beyond_the_cap() -> None:
    next_at, not_before = plan_next(
        outcome("error", error_kind="http_429", retry_after=5 * 3600),
        interval=600,
        error_count=1,
        poll=POLL,
        now=NOW,
        rng=random.Random(1),
    )
    assert next_at == not_before == NOW + timedelta(hours=5)


@pytest.mark.parametrize("hint", ["retry_after", "max_age"])
def test_a_server_cannot_silence_a_feed_for_longer_than_a_day(hint: str) -> None:
    ten_years = 10 * 365 * 86400.0
    next_at, not_before = plan_next(
        outcome("ok", **{hint: ten_years}), interval=600, error_count=0, poll=POLL, now=NOW, rng=random.Random(1)
    )
    assert next_at == not_before == NOW + timedelta(seconds=MAX_SERVER_WAIT)


# ---------------------------------------------------------------------------- leases


def _add_feeds(engine: sa.Engine, count: int) -> None:
    sync_feeds(engine, [FeedConfig(name=f"F{n}", url=f"https://f{n}.example/rss") for n in range(count)], now=NOW)


def test_a_leased_feed_is_not_claimed_again_until_the_lease_expires(engine: sa.Engine) -> None:
    _add_feeds(engine, 3)
    poll = PollSettings(lease=300)
    first = claim_feeds(engine, owner="h:1:a", poll=poll, limit=10, now=NOW)
    assert len(first) == 3
    assert claim_feeds(engine, owner="h:2:b", poll=poll, limit=10, now=NOW + timedelta(seconds=299)) == []
    taken_over = claim_feeds(engine, owner="h:2:b", poll=poll, limit=10, now=NOW + timedelta(seconds=301))
    assert [f.id for f in taken_over] == [f.id for f in first]

    # The first owner finishing late must not free the new owner's lease.
    record_outcome(engine, outcome(), first[0], owner="h:1:a", poll=poll, rng=random.Random(1))
    feed = feeds_by_name(engine)[first[0].name]
    assert feed.lease_owner == "h:2:b" and feed.status == "ok"


def test_outcomes_recorded_together_each_land_on_their_own_feed(engine: sa.Engine) -> None:
    _add_feeds(engine, 3)
    poll = PollSettings(lease=300)
    a, b, c = claim_feeds(engine, owner="h:1:a", poll=poll, limit=10, now=NOW)
    results = [
        (outcome(etag='"a"', body_hash="ha", entries_seen=4, stored=2), a),
        (outcome("error", error_kind="http_5xx", error_message="HTTP 503"), b),
        (outcome("not_modified", etag='"c"'), c),
    ]
    planned = record_outcomes(engine, results, owner="h:1:a", poll=poll, rng=random.Random(1), now=NOW)

    assert len(planned) == 3 and all(when > NOW for when in planned)
    rows = feeds_by_name(engine)
    assert (rows[a.name].status, rows[a.name].etag, rows[a.name].articles_stored) == ("ok", '"a"', 2)
    assert (rows[b.name].status, rows[b.name].error_kind, rows[b.name].error_count) == ("error", "http_5xx", 1)
    assert (rows[c.name].status, rows[c.name].etag) == ("ok", '"c"')
    assert all(row.lease_owner is None for row in rows.values())


def test_concurrent_claims_never_share_a_feed(engine: sa.Engine) -> None:
    _add_feeds(engine, 40)
    claimed: list[list[int]] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        feeds = claim_feeds(engine, owner=f"h:{n}:x", poll=PollSettings(), limit=5)
        claimed.append([f.id for f in feeds])

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [i for batch in claimed for i in batch]
    assert len(ids) == len(set(ids)) == 40


def test_leases_of_a_dead_local_process_are_freed_at_once(engine: sa.Engine) -> None:
    _add_feeds(engine, 2)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    expires = utcnow() + timedelta(minutes=5)
    with engine.begin() as connection:
        connection.execute(
            sa.update(Feed)
            .where(Feed.name == "F0")
            .values(lease_owner=f"{host}:{dead.pid}:x", lease_expires_at=expires)
        )
        connection.execute(
            sa.update(Feed)
            .where(Feed.name == "F1")
            .values(lease_owner=f"{host}:{os.getppid()}:y", lease_expires_at=expires)
        )

    assert reclaim_abandoned(engine) == 1

    feeds = feeds_by_name(engine)
    assert feeds["F0"].lease_owner is None and feeds["F1"].lease_owner is not None


# ------------------------------------------------------------------ several processes


def _site(server: HTTPServer, feeds: int, pages: int, *, delay: float = 0.0) -> None:
    for f in range(feeds):
        items = [Item(f"Story {f}-{p}", server.url(f"/p/{f}/{p}")) for p in range(pages)]
        server.route(f"/f/{f}", Response(rss20(items), headers={"Content-Type": FEED_TYPES["rss20"]}, delay=delay))
        for p in range(pages):
            body = article_page(f"Story {f}-{p}", story(f"story {f} {p}", 6))
            server.route(f"/p/{f}/{p}", Response(body, headers={"Content-Type": "text/html"}))


def _config(database_url: str, server: HTTPServer, feeds: int, **poll: object) -> str:
    settings = {
        "database_url": database_url,
        "seeds_dir": str(ROOT / "seeds"),
        "poll": {"allow_private_networks": True, "timeout": "5s", "per_host": 20, **poll},
        "feeds": [{"name": f"Feed {f}", "url": server.url(f"/f/{f}")} for f in range(feeds)],
    }
    return json.dumps(settings)  # JSON is YAML


def run_monitor(*args: str, config: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MONITOR, "--config", str(config), *args], capture_output=True, text=True, timeout=120, **kwargs
    )  # type: ignore[call-overload]


def test_two_poll_processes_on_postgresql_share_the_feeds_without_double_fetches(
    fresh_database_url: Callable[[str], str], config_file: Callable[..., Path]
) -> None:
    database_url = fresh_database_url("postgresql")
    with HTTPServer() as server:
        _site(server, feeds=16, pages=2, delay=0.3)
        config = config_file(_config(database_url, server, 16, concurrency=2, extract_workers=1))
        processes = [
            subprocess.Popen(
                [*MONITOR, "--config", str(config), "poll", "--json"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        reports = [json.loads(p.communicate(timeout=120)[0]) for p in processes]

        assert all(p.returncode == 0 for p in processes)
        assert [len(server.hits(f"/f/{f}")) for f in range(16)] == [1] * 16
        assert [len(server.hits(f"/p/{f}/{p}")) for f in range(16) for p in range(2)] == [1] * 32
    assert sum(r["feeds"]["polled"] for r in reports) == 16
    assert all(r["feeds"]["polled"] > 0 for r in reports)  # both did a share
    assert sum(r["articles"]["stored"] for r in reports) == 32
    engine = sa.create_engine(database_url)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(Article)).scalar() == 32
        assert (
            connection.execute(
                sa.select(sa.func.count()).select_from(Feed).where(Feed.lease_owner.is_not(None))
            ).scalar()
            == 0
        )
    engine.dispose()


# ------------------------------------------------------------------------------- CLI


def test_poll_and_feeds_commands(fresh_database_url: Callable[[str], str], config_file: Callable[..., Path]) -> None:
    database_url = fresh_database_url("sqlite")
    with HTTPServer() as server:
        _site(server, feeds=2, pages=2)
        server.route("/f/2", Response(b"down", status=503))
        config = config_file(_config(database_url, server, 3))

        polled = run_monitor("poll", "--json", config=config)
        human = run_monitor("poll", config=config)
        listed = run_monitor("feeds", "--json", config=config)
        status = run_monitor("status", config=config)

    assert polled.returncode == 0, polled.stderr
    report = json.loads(polled.stdout)
    assert report["feeds"] == {"polled": 3, "ok": 2, "not_modified": 0, "unchanged": 0, "failed": 1}
    assert (report["entries_seen"], report["articles"]["stored"], report["articles"]["duplicates"]) == (4, 4, 0)
    assert report["errors"] == [{"feed": "Feed 2", "kind": "http_5xx", "message": "HTTP 503 Service Unavailable"}]
    assert report["alerts"]["queued"] == 0
    assert "feed 'Feed 0': ok, 2 entries, 2 new, 2 stored" in polled.stderr  # one line per feed

    assert human.returncode == 0 and "polled 3 feed(s)" in human.stdout and "2 unchanged, 1 failed" in human.stdout
    assert "Feed 2: http_5xx: HTTP 503" in human.stdout

    feeds = {f["name"]: f for f in json.loads(listed.stdout)}
    assert feeds["Feed 0"]["status"] == "ok" and feeds["Feed 0"]["articles_stored"] == 2
    assert feeds["Feed 2"]["status"] == "error" and feeds["Feed 2"]["error_count"] == 2
    assert feeds["Feed 2"]["error_kind"] == "http_5xx" and feeds["Feed 2"]["last_success_at"] is None
    assert feeds["Feed 2"]["next_poll_at"] > feeds["Feed 2"]["last_polled_at"]
    assert status.returncode == 0 and "Feed 2" in status.stdout and "http_5xx: HTTP 503" in status.stdout
