"""A feed's pace and extraction health, from polls of a real local site into a real
archive (SQLite and PostgreSQL): a site that "redesigns" mid-test is flagged, once, in
``monitor feeds``, ``/api/feeds`` and ``/metrics``, and cleared when it recovers; each
feed's interval follows its publishing rate within the poll bounds."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from monitor.api.app import create_app
from monitor.api.metrics import registry_for
from monitor.config import Settings
from monitor.pipeline.pool import CPUPool
from monitor.times import utcnow
from tests.support.feeds import Item, article_page, rss20, story
from tests.support.servers import HTTPServer, Response
from tests.test_refresh import feed_row, poll

# After the redesign: the story comes from a script, the page itself has no text.
SHELL = (
    "<!DOCTYPE html><html><head><title>Herald</title></head>"
    '<body><div id="app"></div><script src="/app.js"></script></body></html>'
)


class Site:
    """A news site whose feed grows by ``publish`` and whose pages follow its design."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.items: list[Item] = []
        self.redesigned = False
        server.route(
            "/feed.xml", lambda _request: Response(self.feed(), headers={"Content-Type": "application/rss+xml"})
        )

    def feed(self) -> str:
        return rss20(self.items[-30:][::-1], link=self.server.url("/"))

    def publish(self, count: int) -> None:
        for _ in range(count):
            number = len(self.items)
            path = f"/story/{number}"
            page = SHELL if self.redesigned else article_page(f"Story {number}", story(f"topic {number}"))
            self.server.route(path, Response(page, headers={"Content-Type": "text/html"}))
            published = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(minutes=number)
            self.items.append(
                Item(f"Story {number}", self.server.url(path), summary=f"Summary {number}.", published=published)
            )


@pytest.fixture
def herald(make_settings: Callable[..., Settings], database_url: str, server: HTTPServer) -> Settings:
    return make_settings(
        database_url=database_url,
        poll={"allow_private_networks": True, "timeout": "3s", "per_host": 8},
        feeds=[{"name": "Herald", "url": server.url("/feed.xml")}],
    )


def health_json(settings: Settings, engine: sa.Engine) -> dict[str, Any]:
    with TestClient(create_app(settings, engine)) as client:
        (feed,) = client.get("/api/feeds").json()
        metrics = client.get("/metrics").text
    feed["metrics"] = metrics
    return feed


def test_a_redesign_that_breaks_extraction_is_flagged_once_and_cleared_on_recovery(
    herald: Settings,
    engine: sa.Engine,
    server: HTTPServer,
    pool: CPUPool,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    run_cli: Callable[..., Any],
) -> None:
    site = Site(server)
    site.publish(6)
    poll(herald, engine, pool)
    healthy = health_json(herald, engine)
    assert (healthy["extraction"], healthy["extraction_failure_rate"]) == ("ok", 0.0)

    site.redesigned = True
    site.publish(8)  # 8 of the last 14 fall back to the feed's summary
    with caplog.at_level(logging.WARNING, logger="monitor"):
        poll(herald, engine, pool)
        site.publish(2)
        poll(herald, engine, pool)
    warnings = [r.getMessage() for r in caplog.records if "extraction broken" in r.getMessage()]
    expected = (
        "feed 'Herald': extraction broken: 8 of its last 14 articles had no text from their page "
        "(a site redesign?); the feed's own content stands in"
    )
    assert warnings == [expected]
    broken = health_json(herald, engine)
    assert broken["extraction"] == "extraction_broken" and broken["extraction_failure_rate"] == pytest.approx(10 / 16)
    assert broken["extraction_broken_since"] is not None
    assert 'monitor_feed_extraction_failure_ratio{feed="Herald"} 0.625' in broken["metrics"]
    assert "monitor_feeds_extraction_broken 1.0" in broken["metrics"]

    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(herald.model_dump(mode="json")), encoding="utf-8")
    listing = run_cli("feeds", "--config", str(config)).output
    assert "62%!" in listing and "extraction broken (since" in listing

    site.redesigned = False
    site.publish(10)  # 10 of the last 20 failed: still above the recovery line
    poll(herald, engine, pool)
    assert health_json(herald, engine)["extraction"] == "extraction_broken"
    site.publish(6)  # 4 of the last 20: below it
    poll(herald, engine, pool)
    recovered = health_json(herald, engine)
    assert (recovered["extraction"], recovered["extraction_failure_rate"]) == ("ok", 0.2)
    assert "monitor_feeds_extraction_broken 0.0" in recovered["metrics"]


# ------------------------------------------------------------------------ adaptive pace


def dated_items(server: HTTPServer, prefix: str, every: timedelta, count: int = 10) -> list[Item]:
    newest = utcnow().replace(microsecond=0)
    return [
        Item(f"{prefix} {n}", server.url(f"/{prefix}/{n}"), summary=f"{prefix} {n}.", published=newest - n * every)
        for n in range(count)
    ]


def test_each_feed_is_polled_at_its_own_pace_within_the_bounds(
    make_settings: Callable[..., Settings],
    database_url: str,
    engine: sa.Engine,
    server: HTTPServer,
    pool: CPUPool,
    tmp_path: Path,
    run_cli: Callable[..., Any],
) -> None:
    feeds = {"wire": timedelta(minutes=2), "blog": timedelta(days=1), "fixed": timedelta(minutes=2)}
    feeds["hourly"] = timedelta(hours=1)
    for name, every in feeds.items():
        body = rss20(dated_items(server, name, every), link=server.url("/"))
        headers = {"Content-Type": "application/rss+xml"}
        if name == "hourly":
            headers["Cache-Control"] = "max-age=7200"  # longer than its pace asks: the server wins
        server.route(f"/{name}.xml", Response(body, headers=headers))
    settings = make_settings(
        database_url=database_url,
        poll={"allow_private_networks": True, "min_interval": "5m", "max_interval": "6h"},
        feeds=[
            {
                "name": name,
                "url": server.url(f"/{name}.xml"),
                "extract": False,
                **({"interval": "20m"} if name == "fixed" else {}),
            }
            for name in feeds
        ],
    )
    before = utcnow()
    poll(settings, engine, pool)

    def planned(name: str) -> tuple[float | None, float]:
        row = feed_row(engine, name)
        assert row.next_poll_at is not None
        return row.current_interval, (row.next_poll_at - before).total_seconds()

    interval, wait = planned("wire")
    assert interval == 300 and 0.9 * 300 <= wait <= 1.1 * 300 + 60
    interval, wait = planned("hourly")
    assert interval == pytest.approx(900, rel=0.01) and 7200 <= wait <= 7200 + 60
    interval, wait = planned("blog")
    assert interval == 6 * 3600 and 0.9 * 6 * 3600 <= wait <= 1.1 * 6 * 3600 + 60
    interval, wait = planned("fixed")
    assert interval == 1200 and 0.9 * 1200 <= wait <= 1.1 * 1200 + 60
    assert feed_row(engine, "wire").last_entry_at is not None
    # Its publishing hours are kept with its pace: a blog posting at one time of day has one.
    hours = feed_row(engine, "blog").pace_hours
    assert len(hours) == 24 and sum(1 for count in hours if count) == 1

    config = tmp_path / "monitor.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")), encoding="utf-8")
    lines = {line.split()[0]: line for line in run_cli("feeds", "--config", str(config)).output.splitlines()[2:]}
    assert "~5m" in lines["wire"] and "~6h" in lines["blog"] and " 20m " in lines["fixed"]
    assert " ~" not in lines["fixed"]


def test_metrics_give_each_feeds_interval(
    herald: Settings, engine: sa.Engine, server: HTTPServer, pool: CPUPool
) -> None:
    site = Site(server)
    site.publish(3)
    poll(herald, engine, pool)
    registry, _http = registry_for(engine, entities=[])
    text = generate_latest(registry).decode()
    assert 'monitor_feed_poll_interval_seconds{feed="Herald"}' in text
