"""A running `monitor run` picks up feeds added, paused, resumed and removed at run time."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.db import make_engine
from monitor.models import Article
from tests.support.daemons import MONITOR, Daemon, count, site
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, Response
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow


def monitor(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MONITOR, "--config", str(config), *args], capture_output=True, text=True, timeout=60)


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
        "poll": {"allow_private_networks": True, "extract_workers": 1, "tick": "0.3s", "shutdown_grace": "3s"},
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
            time.sleep(1.5)  # a poll in flight at the pause finishes
            paused_at = hits()
            time.sleep(3)
            assert hits() == paused_at, "a paused feed was polled"

            assert monitor(config, "feeds", "resume", "News").returncode == 0
            wait_for(lambda: hits() > paused_at, 30, "the resumed feed to be polled")

            assert monitor(config, "feeds", "remove", "News").returncode == 0
            time.sleep(1.5)
            removed_at = hits()
            time.sleep(3)
            assert hits() == removed_at, "a removed feed was polled"
            assert count(engine, Article, Article.url.in_(urls)) == 2  # its articles stay
            assert daemon.running()
            assert daemon.stop() == 0
    finally:
        engine.dispose()
    with sa.create_engine(database_url).connect() as connection:
        assert connection.execute(sa.text("SELECT active FROM feed")).scalar_one() in (False, 0)
