"""The daemon and crash safety, as real processes: `monitor run`, SIGTERM, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.models import Alert, Article, Feed
from tests.support.daemons import MONITOR, count, descendants
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.paths import ROOT
from tests.support.servers import HTTPServer, Response
from tests.support.waiting import wait_for


def write_config(config_file: Callable[..., Path], database_url: str, server: HTTPServer, **poll: object) -> Path:
    settings = {
        "database_url": database_url,
        "seeds_dir": str(ROOT / "seeds"),
        "poll": {"allow_private_networks": True, "per_host": 20, "extract_workers": 1, **poll},
        "feeds": [{"name": "Wire", "url": server.url("/feed"), "interval": poll.get("interval", "10m")}],
        "alerts": {"webhooks": [{"name": "desk", "url": server.url("/hook"), "secret": "s3cret"}]},
    }
    return config_file(json.dumps(settings))


def serve_site(server: HTTPServer, pages: int, *, slow: set[int] = frozenset(), delay: float = 30.0) -> None:
    items = [Item(f"Story {n}", server.url(f"/p/{n}")) for n in range(pages)]
    server.route("/feed", Response(rss20(items), headers={"Content-Type": FEED_TYPES["rss20"]}))
    for n in range(pages):
        body = article_page(f"Story {n}", story(f"Almaty story {n}", 8))
        server.route(f"/p/{n}", Response(body, headers={"Content-Type": "text/html"}, delay=delay if n in slow else 0))
    server.route("/hook", Response(b"ok"))


def feed_state(engine: sa.Engine) -> sa.Row:
    with engine.connect() as connection:
        return connection.execute(sa.select(Feed)).one()


@pytest.fixture
def sqlite_url(fresh_database_url: Callable[[str], str]) -> Iterator[tuple[str, sa.Engine]]:
    url = fresh_database_url("sqlite")
    engine = sa.create_engine(url)
    yield url, engine
    engine.dispose()


def test_the_daemon_polls_on_the_interval_and_stops_on_sigterm(
    sqlite_url: tuple[str, sa.Engine], config_file: Callable[..., Path], server: HTTPServer
) -> None:
    url, engine = sqlite_url
    serve_site(server, 2)
    config = write_config(config_file, url, server, interval="1s", tick="0.3s", shutdown_grace="3s")
    daemon = subprocess.Popen([MONITOR, "--config", str(config), "run"], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(server.hits("/feed")) >= 3, 90, "three polls of the feed")
        # Alerts go out as soon as the poll that queued them ends, not at the next round.
        wait_for(lambda: len(server.hits("/hook")) >= 2, 15, "the two alerts")
        daemon.send_signal(signal.SIGTERM)
        _out, log = daemon.communicate(timeout=15)
    finally:
        daemon.kill()
    assert daemon.returncode == 0, log
    assert "feed 'Wire': ok, 2 entries, 2 new, 2 stored" in log
    assert "feed 'Wire': unchanged" in log  # polled again on its interval
    assert "stopped" in log and "Traceback" not in log
    assert "apscheduler" not in log and "alembic" not in log  # one line per poll, no chatter
    assert count(engine, Article) == 2 and [len(server.hits(f"/p/{n}")) for n in range(2)] == [1, 1]
    assert feed_state(engine).lease_owner is None


def test_ctrl_c_stops_the_daemon_and_its_pool_without_tracebacks(
    sqlite_url: tuple[str, sa.Engine], config_file: Callable[..., Path], server: HTTPServer
) -> None:
    url, engine = sqlite_url
    serve_site(server, 2)
    config = write_config(config_file, url, server, interval="1s", tick="0.3s", shutdown_grace="3s")
    # As on a terminal: the daemon leads its own process group, and Ctrl-C signals the group.
    daemon = subprocess.Popen(
        [MONITOR, "--config", str(config), "run"], stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        wait_for(lambda: count(engine, Article) == 2, 90, "the first poll")
        helpers = descendants(daemon.pid)
        os.killpg(daemon.pid, signal.SIGINT)
        _out, log = daemon.communicate(timeout=15)
    finally:
        daemon.kill()
    assert daemon.returncode == 0, log
    assert "stopped" in log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in helpers), 15, "the pool to exit")


def test_sigterm_during_a_poll_exits_within_the_grace_period_with_nothing_half_stored(
    sqlite_url: tuple[str, sa.Engine], config_file: Callable[..., Path], server: HTTPServer
) -> None:
    url, engine = sqlite_url
    serve_site(server, 4, slow={2, 3}, delay=60)
    config = write_config(config_file, url, server, tick="0.3s", shutdown_grace="2s", timeout="90s")
    daemon = subprocess.Popen([MONITOR, "--config", str(config), "run"], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(server.hits("/p/3")) == 1 and count(engine, Article) == 2, 90, "the slow pages")
        stopped_at = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        _out, log = daemon.communicate(timeout=30)
        took = time.monotonic() - stopped_at
    finally:
        daemon.kill()
    assert daemon.returncode == 0, log
    assert took < 2 + 6, took  # the grace period, plus start-up of the shutdown
    assert "abandoned 1 feed poll(s)" in log
    assert count(engine, Article) == 2  # the two fast pages; the slow ones not at all
    feed = feed_state(engine)
    # The poll did not finish: no validators saved, still due, no lease held.
    assert (feed.lease_owner, feed.body_hash, feed.last_polled_at) == (None, None, None)


def test_kill_9_mid_poll_then_poll_again_stores_every_article_exactly_once(
    fresh_database_url: Callable[[str], str], config_file: Callable[..., Path], server: HTTPServer
) -> None:
    url = fresh_database_url("sqlite")
    engine = sa.create_engine(url)
    serve_site(server, 8, slow={5, 6, 7}, delay=60)
    config = write_config(config_file, url, server, timeout="90s")
    first = subprocess.Popen([MONITOR, "--config", str(config), "poll"], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: count(engine, Article) == 5 and len(server.hits("/p/7")) == 1, 90, "five stored articles")
        helpers = descendants(first.pid)  # the fork server and the extraction processes
        first.kill()  # SIGKILL: no clean-up at all
        first.wait(timeout=10)
    finally:
        first.kill()
    assert feed_state(engine).lease_owner is not None  # left behind by the dead process
    assert len(helpers) >= 2
    # The pool's processes notice their owner is gone and leave, rather than linger.
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in helpers), 15, "the pool to exit")

    serve_site(server, 8)  # the slow pages answer now
    second = subprocess.run(
        [MONITOR, "--config", str(config), "poll", "--json"], capture_output=True, text=True, timeout=120
    )

    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert (report["feeds"]["ok"], report["new_entries"], report["articles"]["stored"]) == (1, 3, 3)
    with engine.connect() as connection:
        urls = connection.execute(sa.select(Article.url)).scalars().all()
    assert sorted(urls) == sorted(server.url(f"/p/{n}") for n in range(8))
    assert [len(server.hits(f"/p/{n}")) for n in range(5)] == [1] * 5  # known, not fetched again
    assert count(engine, Alert) == 8  # one per article and channel, none twice
    assert feed_state(engine).lease_owner is None
    engine.dispose()


def test_sighup_reloads_alert_channels_and_entities_without_a_restart(
    sqlite_url: tuple[str, sa.Engine], config_file: Callable[..., Path], server: HTTPServer
) -> None:
    url, engine = sqlite_url
    serve_site(server, 1)
    server.route("/new-hook", Response(b"ok"))
    config = write_config(config_file, url, server, interval="1s", tick="0.3s", shutdown_grace="3s")
    daemon = subprocess.Popen([MONITOR, "--config", str(config), "run"], stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(server.hits("/hook")) == 1, 90, "the first alert, to the first URL")
        settings = json.loads(config.read_text())
        settings["alerts"]["webhooks"][0]["url"] = server.url("/new-hook")
        settings["entities"] = [{"name": "Astana", "aliases": ["Astana", "Nur-Sultan"]}]
        config.write_text(json.dumps(settings))
        daemon.send_signal(signal.SIGHUP)
        time.sleep(1.0)  # the reload takes milliseconds; the next story comes after it
        # A story that mentions only the new entity, published after the reload.
        items = [Item("Story 0", server.url("/p/0")), Item("Capital", server.url("/p/capital"))]
        server.route("/p/capital", Response(article_page("Capital", story("Astana story", 8))))
        server.route("/feed", Response(rss20(items), headers={"Content-Type": FEED_TYPES["rss20"]}))
        wait_for(lambda: len(server.hits("/new-hook")) == 1, 30, "the next alert, to the new URL")
        daemon.send_signal(signal.SIGTERM)
        _out, log = daemon.communicate(timeout=15)
    finally:
        daemon.kill()
    assert daemon.returncode == 0, log
    assert len(server.hits("/hook")) == 1  # nothing more to the old URL
    assert "configuration reloaded: alert channels changed: webhook:desk" in log
    assert "configuration reloaded: entities added: Astana" in log
    assert "Traceback" not in log, log
    with engine.connect() as connection:
        sent = connection.execute(
            sa.select(Article.title, Alert.entities, Alert.status).join(Alert, Alert.article_id == Article.id)
        ).all()
    assert sorted(sent) == [("Capital", ["Astana"], "sent"), ("Story 0", ["Almaty"], "sent")]
