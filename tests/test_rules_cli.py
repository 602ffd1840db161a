"""``monitor rules``, ``rules test``, ``analyze``'s rules, ``import --alerts``, and which
commands need the channels' secrets; as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.models import Alert, Article
from tests.support.feeds import Item, article_page, rss20, story
from tests.support.notify import NotifyReceiver
from tests.support.outbox import SECRET
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, Response, SMTPSink, WebhookReceiver

UNREST = "entity:Almaty protest OR unrest OR troops -football"
STORIES = {
    "protest": story("Almaty protest"),
    "football": story("Almaty football protest"),
    "summit": story("CSTO summit"),
    "troops": story("Alma-Ata troops ОДКБ"),
}


@dataclass
class Monitor:
    """The ``monitor`` command on the test's database, with the config ``configure`` wrote."""

    run_cli: Callable[..., Any]
    config_file: Callable[..., Path]
    database_url: str
    hook: WebhookReceiver
    smtp: SMTPSink
    config: Path | None = None

    def configure(self, **extra: Any) -> None:
        """Both channels (the webhook's secret from the environment) and two rules; ``extra``
        settings replace or add to them."""
        webhook = self.hook.settings(name="ops") | {"secret": "${WEBHOOK_SECRET}"}
        settings = {
            "database_url": self.database_url,
            "seeds_dir": str(SEEDS_DIR),
            "alerts": {
                "email": self.smtp.settings(),
                "webhooks": [webhook],
                "public_url": "https://monitor.example.org",
            },
            "rules": [
                {"name": "almaty-unrest", "query": UNREST, "channels": ["email"]},
                {"name": "csto", "query": "entity:CSTO", "channels": ["webhook:ops"], "digest": "1h"},
            ],
            **extra,
        }
        self.config = self.config_file(json.dumps(settings))

    def __call__(self, *args: str) -> Any:
        """Run ``monitor --config CONFIG ARGS…``; click's Result."""
        assert self.config is not None, "configure first"
        return self.run_cli("--config", str(self.config), *args)

    def count(self, table: Any) -> int:
        engine = sa.create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        finally:
            engine.dispose()


@pytest.fixture
def monitor(
    run_cli: Callable[..., Any],
    config_file: Callable[..., Path],
    database_url: str,
    hook: WebhookReceiver,
    smtp: SMTPSink,
) -> Monitor:
    return Monitor(run_cli, config_file, database_url, hook, smtp)


@pytest.fixture
def stories(tmp_path: Path) -> list[Path]:
    """``STORIES`` as text files to import or analyze, each titled with its name."""
    directory = tmp_path / "in"
    directory.mkdir()
    paths = []
    for name, text in STORIES.items():
        path = directory / f"{name}.txt"
        path.write_text(f"{name.title()}\n\n{text}\n", encoding="utf-8")
        paths.append(path)
    return paths


def test_rules_lists_them_and_marks_the_implicit_ones(monitor: Monitor) -> None:
    monitor.configure()
    listed = monitor("rules", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["query"], r["channels"], r["digest"], r["implicit"]) for r in rows] == [
        ("almaty-unrest", UNREST, ["email"], None, False),
        ("csto", "entity:CSTO", ["webhook:ops"], 3600.0, False),
    ]
    human = monitor("rules")
    assert "almaty-unrest\n  query:    entity:Almaty protest" in human.stdout
    assert "digest:   1h (webhook:ops)" in human.stdout

    monitor.configure(rules=None)
    text = monitor("rules").stdout
    assert 'CSTO  (implicit: a tracked entity)\n  query:    entity:"CSTO"' in text
    assert "channels: email, webhook:ops" in text


def test_rules_test_previews_exactly_what_search_lists_and_sends_nothing(
    monitor: Monitor, stories: list[Path], hook: WebhookReceiver, smtp: SMTPSink
) -> None:
    monitor.configure()
    imported = monitor("import", *map(str, stories))
    assert imported.exit_code == 0, imported.output
    assert monitor.count(Alert) == 0  # a backfill alerts nobody

    for name, query in (("almaty-unrest", UNREST), ("csto", "entity:CSTO")):
        preview = monitor("rules", "test", name, "--json")
        assert preview.exit_code == 0, preview.output
        shown = json.loads(preview.stdout)
        search = json.loads(monitor("search", query, "--since", "30d", "--json").stdout)
        assert shown["rule"] == name and shown["articles"] == search
    unrest = json.loads(monitor("rules", "test", "almaty-unrest", "--json").stdout)
    assert sorted(a["title"] for a in unrest["articles"]) == ["Protest", "Troops"]
    adhoc = monitor("rules", "test", "entity:Alma-Ata", "-football")
    assert adhoc.exit_code == 0 and "query: entity:Alma-Ata -football" in adhoc.stdout
    assert "2 articles" in adhoc.stdout
    unknown = monitor("rules", "test", "entity:Atlantis")
    assert unknown.exit_code == 2 and unknown.stderr.count("\n") == 1 and "Atlantis" in unknown.stderr
    assert monitor.count(Alert) == 0 and not hook.deliveries and not smtp.messages


def test_analyze_names_the_rules_a_text_would_fire_and_stores_nothing(monitor: Monitor, stories: list[Path]) -> None:
    monitor.configure()
    result = monitor("analyze", *map(str, stories), "--json")
    assert result.exit_code == 0, result.output
    fired = {Path(row["path"]).stem: row["rules"] for row in map(json.loads, result.stdout.splitlines())}
    assert fired == {
        "protest": ["almaty-unrest"],
        "football": [],
        "summit": ["csto"],
        "troops": ["almaty-unrest", "csto"],
    }
    assert monitor.count(Article) == 0
    human = monitor("analyze", str(stories[3]))
    assert "rules:      almaty-unrest, csto" in human.stdout


def test_import_with_alerts_delivers_before_exiting(
    monitor: Monitor,
    stories: list[Path],
    hook: WebhookReceiver,
    smtp: SMTPSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monitor.configure(rules=[{"name": "unrest", "query": UNREST}])
    paths = list(map(str, stories))
    refused = monitor("import", "--alerts", *paths)
    assert refused.exit_code == 2
    assert refused.stderr == (
        "monitor: error: config: alerts.webhooks[0].secret: environment variable WEBHOOK_SECRET is not set "
        "(needed to send to webhook:ops)\n"
    )
    assert monitor.count(Article) == 0

    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    result = monitor("import", "--alerts", *paths)
    assert result.exit_code == 0, result.output
    assert "alerts: 4 sent in 4 messages" in result.stdout
    assert sorted(d.payload["data"]["article"]["title"] for d in hook.deliveries) == ["Protest", "Troops"]
    assert all(d.payload["data"]["rules"] == ["unrest"] for d in hook.deliveries)
    assert sorted(m["Subject"] for m in smtp.messages) == [
        "[monitor] unrest · Almaty, CSTO: Troops",
        "[monitor] unrest · Almaty: Protest",
    ]


def test_reading_needs_no_secrets_and_sending_names_the_missing_one(monitor: Monitor, stories: list[Path]) -> None:
    monitor.configure()
    text = str(stories[0])
    for args in (("search", "Almaty"), ("feeds",), ("rules",), ("rules", "test", "csto"), ("analyze", text)):
        result = monitor(*args)
        assert result.exit_code == 0, (args, result.output)
    missing = "environment variable WEBHOOK_SECRET is not set (needed to send to webhook:ops)"
    for args in (("poll",), ("alerts", "deliver"), ("alerts", "test"), ("import", "--alerts", text)):
        result = monitor(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.count("\n") == 1 and missing in result.stderr, (args, result.stderr)


def test_a_bad_rule_stops_every_command_that_needs_rules_with_one_line(
    monitor: Monitor, stories: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    monitor.configure(
        rules=[{"name": "csto", "query": "entity:CSTO"}, {"name": "typo", "query": "entity:Almatty protest"}]
    )
    text = str(stories[0])
    for args in (("rules",), ("rules", "test", "csto"), ("analyze", text), ("poll",), ("import", "--alerts", text)):
        result = monitor(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("monitor: error: config: rules: rule 'typo': "), (args, result.stderr)
        assert result.stderr.count("\n") == 1
    assert monitor("search", "Almaty").exit_code == 0


def test_done_when_polled_articles_reach_the_channels_their_rules_name(
    monitor: Monitor,
    hook: WebhookReceiver,
    smtp: SMTPSink,
    server: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rule for Almaty unrest to an Apprise URL, CSTO to a webhook; a feed on a local
    server: each channel gets exactly what search lists for its rule, and says why."""
    items = []
    for name, text in STORIES.items():
        server.route(f"/{name}", Response(article_page(name.title(), text)))
        items.append(Item(title=name.title(), link=server.url(f"/{name}")))
    server.route("/feed", Response(rss20(items), headers={"content-type": "application/rss+xml"}))
    monkeypatch.setenv("WEBHOOK_SECRET", SECRET)
    with NotifyReceiver() as team:
        monitor.configure(
            poll={"allow_private_networks": True, "extract_workers": 1},
            feeds=[{"name": "Steppe Wire", "url": server.url("/feed")}],
            alerts={
                "webhooks": [hook.settings(name="ops") | {"secret": "${WEBHOOK_SECRET}"}],
                "apprise": [{"name": "team", "urls": [team.url("json")]}],
                "public_url": "https://monitor.example.org",
            },
            rules=[
                {"name": "almaty-unrest", "query": UNREST, "channels": ["apprise:team"]},
                {"name": "csto", "query": "entity:CSTO", "channels": ["webhook:ops"]},
            ],
        )
        preview = json.loads(monitor("rules", "test", "almaty-unrest", "--json").stdout)
        assert preview["articles"] == []  # nothing stored yet
        polled = monitor("poll", "--json")
        assert polled.exit_code == 0, polled.output
        notified = [post.json() for post in team.delivered()]
    for query, received in (
        (UNREST, [sent["title"].rsplit(": ", 1)[1] for sent in notified]),
        ("entity:CSTO", [d.payload["data"]["article"]["title"] for d in hook.deliveries]),
    ):
        listed = json.loads(monitor("search", query, "--json").stdout)
        assert sorted(received) == sorted(a["title"] for a in listed) != []
    assert sorted(sent["title"].rsplit(": ", 1)[1] for sent in notified) == ["Protest", "Troops"]
    assert sorted(d.payload["data"]["article"]["title"] for d in hook.deliveries) == ["Summit", "Troops"]
    assert all(d.payload["data"]["rules"] == ["csto"] for d in hook.deliveries)
    assert all(d.payload["data"]["article"]["feed"] == "Steppe Wire" for d in hook.deliveries)
    for sent in notified:
        assert "almaty-unrest" in sent["message"] and "**Alma" in sent["message"], sent["message"]
    assert not smtp.messages
