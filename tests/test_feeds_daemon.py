"""A running `monitor run` picks up feeds added, paused, resumed and removed at run time."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.db import make_engine
from monitor.models import Article, Feed
from monitor.times import as_utc, utcnow
from tests.support.daemons import MONITOR, Daemon, count, site
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, Response
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

TICK = 0.3  # poll.tick: how often the daemon claims the feeds that are due
# How long past its due time a feed still being scheduled is fetched at the latest: a few
# ticks, with room for a claim on a busy machine.
OVERDUE = 4 * TICK


def monitor(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MONITOR, "--config", str(config), *args], capture_output=True, text=True, timeout=60)


def assert_not_fetched_when_due(engine: sa.Engine, hits: Callable[[], int], what: str) -> None:
    """The feed (paused or removed) is not fetched again, though it falls due.

    A poll claimed before the change may still be running: its lease says so, and as it
    ends it records when the feed is next due. A feed the daemon still scheduled would be
    fetched within a few ticks of that time; none may come until then.
    """
    wait_for(lambda: scheduling(engine)[0] is None, 30, "the poll in flight to finish")
    fetched = hits()
    due = scheduling(engine)[1]
    until = max(as_utc(due), utcnow()) if due else utcnow()
    time.sleep((until - utcnow()).total_seconds() + OVERDUE)
    assert hits() == fetched, f"a {what} feed was polled"


def scheduling(engine: sa.Engine) -> tuple[str | None, datetime | None]:
    """The feed's lease owner and next due time."""
    with engine.connect() as connection:
        owner, due = connection.execute(sa.select(Feed.lease_owner, Feed.next_poll_at)).one()
    return owner, due


def test_a_site_added_while_the_daemon_runs_is_polled_paused_resumed_and_removed(
    config_file: Callable[..., Path], database_url: str, server: HTTPServer
) -> None:
    urls = site(server, "/feed.xml", 2)
    server.route(
        "/",
        Response(
            '<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml"></head></html>',
            headers={"Content-Type": "text/html"},
        ),
    )
    settings = {
        "database_url": database_url,
        "seeds_dir": str(SEEDS_DIR),
        "poll": {"allow_private_networks": True, "extract_workers": 1, "tick": f"{TICK:g}s", "shutdown_grace": "3s"},
    }
    config = config_file(json.dumps(settings))
    engine = make_engine(database_url)
    hits = lambda: len(server.hits("/feed.xml"))  # noqa: E731
    try:
        with Daemon(config) as daemon:
            wait_for(lambda: "polling" in daemon.log(), 60, "the daemon to start")

            added = monitor(config, "feeds", "add", server.url("/"), "--interval", "1s")
            assert added.returncode == 0, added.stderr
            assert "added feed 'News'" in added.stdout

            wait_for(lambda: count(engine, Article, Article.url.in_(urls)) == 2, 60, "both stories stored")

            assert monitor(config, "feeds", "pause", "News").returncode == 0
            assert_not_fetched_when_due(engine, hits, "paused")
            paused_at = hits()

            assert monitor(config, "feeds", "resume", "News").returncode == 0
            wait_for(lambda: hits() > paused_at, 30, "the resumed feed to be polled")

            assert monitor(config, "feeds", "remove", "News").returncode == 0
            assert_not_fetched_when_due(engine, hits, "removed")
            assert count(engine, Article, Article.url.in_(urls)) == 2  # its articles stay
            assert daemon.running()
            assert daemon.stop() == 0
    finally:
        engine.dispose()
    with sa.create_engine(database_url).connect() as connection:
        assert connection.execute(sa.text("SELECT active FROM feed")).scalar_one() in (False, 0)
