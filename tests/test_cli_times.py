"""Times in the commands' human output: in UTC and marked so, or in ``display_timezone`` with its name.

Never a bare local time. ``--json`` keeps ISO 8601 UTC whatever the display zone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from monitor.config import load_settings
from monitor.db import make_engine, session
from monitor.models import Article
from tests.support.archive import add_article
from tests.support.servers import WebhookReceiver

# A human time as the page writes it too: "2022-01-06 10:00 UTC", "2022-01-06 16:00 UTC+06".
SHOWN = r"\d{4}-\d\d-\d\d \d\d:\d\d UTC(?:[+-]\d\d)?"
ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d"
ZONES = {"UTC": "UTC", "Asia/Almaty": r"UTC\+0[56]"}  # Almaty: +06 until March 2024, +05 since


# An article published at 10:00 UTC, as each zone shows it.
PUBLISHED = datetime(2022, 1, 6, 10, tzinfo=UTC)
shown_in_each_zone = pytest.mark.parametrize(
    ("zone", "shown"), [("UTC", "2022-01-06 10:00 UTC"), ("Asia/Almaty", "2022-01-06 16:00 UTC+06")]
)


def _publish(engine: sa.Engine, moment: datetime) -> None:
    with session(engine) as db:
        for article in db.query(Article).all():
            article.published_at = moment
        db.commit()


@pytest.fixture
def archived(config_file: Callable[..., Path], database_url: str) -> Callable[..., Path]:
    """``archived(zone, published=None, **settings)``: write a config that shows times in
    ``zone``, store one article (published at ``published``), and return the config's path."""

    def make(zone: str, published: datetime | None = None, **extra: Any) -> Path:
        config = config_file(yaml.safe_dump({"database_url": database_url, "display_timezone": zone, **extra}))
        settings = load_settings(config, {})
        engine = make_engine(settings.database_url)
        try:
            add_article(engine, settings, url="https://n.example/1")
            if published is not None:
                _publish(engine, published)
        finally:
            engine.dispose()
        return config

    return make


@pytest.mark.parametrize("zone", list(ZONES))
def test_alerts_show_times_in_the_display_zone_marked(
    run_cli: Callable[..., Any], archived: Callable[..., Path], zone: str
) -> None:
    with WebhookReceiver(secret="s1") as ops, WebhookReceiver(secret="s2", status=410) as gone:
        config = archived(zone, alerts={"webhooks": [ops.settings(name="ops"), gone.settings(name="gone")]})
        assert run_cli("--config", str(config), "alerts", "deliver").exit_code == 0

    listing = run_cli("--config", str(config), "alerts").stdout
    label = ZONES[zone]
    assert re.search(rf"webhook:gone: .*; DISABLED since \d{{4}}-\d\d-\d\d \d\d:\d\d {label}: HTTP 410", listing)
    assert re.search(rf"webhook:ops: .*; last sent \d{{4}}-\d\d-\d\d \d\d:\d\d {label}$", listing, re.M)
    assert re.search(rf" sent \d{{4}}-\d\d-\d\d \d\d:\d\d {label}, 1 attempt", listing)
    assert not re.search(ISO, listing), listing
    listed = json.loads(run_cli("--config", str(config), "alerts", "--json").stdout)
    assert all(c["last_sent_at"] is None or c["last_sent_at"].endswith("Z") for c in listed["channels"])


@shown_in_each_zone
def test_rules_test_shows_times_in_the_display_zone_marked(
    run_cli: Callable[..., Any], archived: Callable[..., Path], zone: str, shown: str
) -> None:
    config = archived(zone, published=PUBLISHED)
    tried = run_cli("--config", str(config), "rules", "test", "entity:CSTO", "--since", "2022-01-01")
    assert tried.exit_code == 0, tried.output
    assert re.search(rf"^#\d+  {re.escape(shown)}  ·  ", tried.stdout, re.M), tried.stdout
    assert all(re.fullmatch(SHOWN, m) for m in re.findall(rf"{SHOWN}", tried.stdout))


@shown_in_each_zone
def test_search_shows_times_in_the_display_zone_marked(
    run_cli: Callable[..., Any], archived: Callable[..., Path], zone: str, shown: str
) -> None:
    config = archived(zone, published=PUBLISHED)
    listing = run_cli("--config", str(config), "search", "--entity", "CSTO")
    assert listing.exit_code == 0, listing.output
    first = listing.stdout.splitlines()[0]
    assert re.fullmatch(rf"#\d+  {re.escape(shown)}  ·  imported  ·  CSTO", first), first
    assert not re.search(ISO, listing.stdout)
    as_json = json.loads(run_cli("--config", str(config), "search", "--entity", "CSTO", "--json").stdout)
    assert as_json[0]["published_at"] == "2022-01-06T10:00:00Z"
