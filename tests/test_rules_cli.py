"""``monitor rules``, ``rules test``, ``analyze``'s rules, ``import --alerts``, and which
commands need the channels' secrets; as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.models import Alert, Article
from tests.support.feeds import Item, article_page, rss20, story
from tests.support.notify import NotifyReceiver
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, Response, SMTPSink, WebhookReceiver

UNREST = "entity:Almaty protest OR unrest OR troops -football"
STORIES = {
    "protest": story("Almaty protest"),
    "football": story("Almaty football protest"),
    "summit": story("CSTO summit"),
    "troops": story("Alma-Ata troops ОДКБ"),
}


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(secret="s3cret") as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SMTPSink]:
    with SMTPSink() as sink:
        yield sink


def configure(
    config_file: Callable[..., Path], database_url: str, hook: WebhookReceiver, smtp: SMTPSink, **extra: Any
) -> Path:
    webhook = hook.settings(name="ops") | {"secret": "${WEBHOOK_SECRET}"}
    settings = {
        "database_url": database_url,
        "seeds_dir": str(SEEDS_DIR),
        "alerts": {"email": smtp.settings(), "webhooks": [webhook], "public_url": "https://monitor.example.org"},
        "rules": [
            {"name": "almaty-unrest", "query": UNREST, "channels": ["email"]},
            {"name": "csto", "query": "entity:CSTO", "channels": ["webhook:ops"], "digest": "1h"},
        ],
        **extra,
    }
    return config_file(json.dumps(settings))


def count(database_url: str, table: Any) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


def write_stories(directory: Path) -> list[Path]:
    directory.mkdir(exist_ok=True)
    paths = []
    for name, text in STORIES.items():
        path = directory / f"{name}.txt"
        path.write_text(f"{name.title()}\n\n{text}\n", encoding="utf-8")
        paths.append(path)
    return paths


def test_rules_lists_them_and_marks_the_implicit_ones(
    run_cli: Callable[..., Any],
    config_file: Callable[..., Path],
    database_url: str,
    hook: WebhookReceiver,
    smtp: SMTPSink,
) -> None:
    config = configure(config_file, database_url, hook, smtp)
    listed = run_cli("--config", str(config), "rules", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["query"], r["channels"], r["digest"], r["implicit"]) for r in rows] == [
        ("almaty-unrest", UNREST, ["email"], None, False),
        ("csto", "entity:CSTO", ["webhook:ops"], 3600.0, False),
    ]
    human = run_cli("--config", str(config), "rules")
    assert "almaty-unrest\n  query:    entity:Almaty protest" in human.stdout
    assert "digest:   1h (webhook:ops)" in human.stdout

    implicit = configure(config_file, database_url, hook, smtp, rules=None)
    text = run_cli("--config", str(implicit), "rules").stdout
    assert 'CSTO  (implicit: a tracked entity)\n  query:    entity:"CSTO"' in text
    assert "channels: email, webhook:ops" in text


def test_rules_test_previews_exactly_what_search_lists_and_sends_nothing(
    run_cli: Callable[..., Any],
    config_file: Callable[..., Path],
    database_url: str,
    hook: WebhookReceiver,
    smtp: SMTPSink,
    tmp_path: Path,
) -> None:
    config = configure(config_file, database_url, hook, smtp)
    imported = run_cli("--config", str(config), "import", *map(str, write_stories(tmp_path / "in")))
    assert imported.exit_code == 0, imported.output
    assert count(database_url, Alert) == 0  # a backfill alerts nobody

    for name, query in (("almaty-unrest", UNREST), ("csto", "entity:CSTO")):
        preview = run_cli("--config", str(config), "rules", "test", name, "--json")
        assert preview.exit_code == 0, preview.output
        shown = json.loads(preview.stdout)
        search = json.loads(run_cli("--config", str(config), "search", query, "--since", "30d", "--json").stdout)
        assert shown["rule"] == name and shown["articles"] == search
    unrest = json.loads(run_cli("--config", str(config), "rules", "test", "almaty-unrest", "--json").stdout)
    assert sorted(a["title"] for a in unrest["articles"]) == ["Protest", "Troops"]
    adhoc = run_cli("--config", str(config), "rules", "test", "entity:Alma-Ata", "-football")
    assert adhoc.exit_code == 0 and "query: entity:Alma-Ata -football" in adhoc.stdout
    assert "2 articles" in adhoc.stdout
    unknown = run_cli("--config", str(config), "rules", "test", "entity:Atlantis")
    assert unknown.exit_code == 2 and unknown.stderr.count("\n") == 1 and "Atlantis" in unknown.stderr
    assert count(database_url, Alert) == 0 and not hook.deliveries and not smtp.messages


def test_analyze_names_the_rules_a_text_would_fire_and_stores_nothing(
    run_cli: Callable[..., Any],
    config_file: Callable[..., Path],
    database_url: str,
    hook: WebhookReceiver,
    smtp: SMTPSink,
    tmp_path: Path,
) -> None:
    config = configure(config_file, database_url, hook, smtp)
    paths = write_stories(tmp_path / "in")
    result = run_cli("--config", str(config), "analyze", *map(str, paths), "--json")
    assert result.exit_code == 0, result.output
    fired = {Path(row["path"]).stem: row["rules"] for row in map(json.loads, result.stdout.splitlines())}
    assert fired == {
        "protest": ["almaty-unrest"],
        "football": [],
        "summit": ["csto"],
        "troops": ["almaty-unrest", "csto"],
    }
    assert count(database_url, Article) == 0
    human = run_cli("--config", str(config), "analyze", str(paths[3]))
    assert "rules:      almaty-unrest, csto" in human.stdout


def test_import_with_alerts_delivers_before_exiting(
    run_cli: Callable[..., Any],
    config_file: Callable[..., Path],
    database_url: str,
    hook: WebhookReceiver,
    smtp: SMTPSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = configure(config_file, database_url, hook, smtp, rules=[{"name": "unrest", "query": UNREST}])
    paths = list(map(str, write_stories(tmp_path / "in")))
    refused = run_cli("--config", str(config), "import", "--alerts", *paths)
    assert refused.exit_code == 2
    assert refused.stderr == (
        "monitor: error: config: alerts.webhooks[0].secret: environment variable WEBHOOK_SECRET is not set "
        "(needed to send to webhook:ops)\n"
    )
    assert count(database_url, Article) == 0

    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    result = run_cli("--config", str(config), "import", "--alerts", *paths)
    assert result.exit_code == 0, result.output
    assert "alerts: 4 sent in 4 messages" in result.stdout
    assert sorted(d.payload["data"]["article"]["title"] for d in hook.deliveries) == ["Protest", "Troops"]
    assert all(d.payload["data"]["rules"] == ["unrest"] for d in hook.deliveries)
    assert sorted(m["Subject"] for m in smtp.messages) == [
        "[monitor] unrest · Almaty, CSTO: Troops",
        "[monitor] unrest · Almaty: Protest",
    ]


def test_reading_needs_no_secrets_and_sending_names_the_missing_one(
    run_cli: Callable[..., Any],
    config_file: Callable[..., Path],
    database_url: str,
    hook: WebhookReceiver,
    smtp: SMTPSink,
    tmp_path: Path,
) -> None:
    config = configure(config_file, database_url, hook, smtp)
    text = str(write_stories(tmp_path / "in")[0])
    for args in (("search", "Almaty"), ("feeds",), ("rules",), ("rules", "test", "csto"), ("analyze", text)):
        result = run_cli("--config", str(config), *args)
        assert result.exit_code == 0, (args, result.output)
    missing = "environment variable WEBHOOK_SECRET is not set (needed to send to webhook:ops)"
    for args in (("poll",), ("alerts", "deliver"), ("alerts", "test"), ("import", "--alerts", text)):
        result = run_cli("--config", str(config), *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.count("\n") == 1 and missing in result.stderr, (args, result.stderr)


def test_a_bad_rule_stops_every_command_that_needs_rules_with_one_line(
    run_cli: Callable[..., Any],
    config_file: Callable[..., Path],
    database_url: str,
    hook: WebhookReceiver,
    smtp: SMTPSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    rules = [{"name": "csto", "query": "entity:CSTO"}, {"name": "typo", "query": "entity:Almatty protest"}]
    config = configure(config_file, database_url, hook, smtp, rules=rules)
    text = str(write_stories(tmp_path / "in")[0])
    for args in (("rules",), ("rules", "test", "csto"), ("analyze", text), ("poll",), ("import", "--alerts", text)):
        result = run_cli("--config", str(config), *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("monitor: error: config: rules: rule 'typo': "), (args, result.stderr)
        assert result.stderr.count("\n") == 1
    assert run_cli("--config", str(config), "search", "Almaty").exit_code == 0


def test_done_when_polled_articles_reach_the_channels_their_rules_name(
    run_cli: Callable[..., Any],
    config_file: Callable[..., Path],
    database_url: str,
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
    monkeypatch.setenv("WEBHOOK_SECRET", "s3cret")
    with NotifyReceiver() as team:
        config = configure(
            config_file,
            database_url,
            hook,
            smtp,
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
        preview = json.loads(run_cli("--config", str(config), "rules", "test", "almaty-unrest", "--json").stdout)
        assert preview["articles"] == []  # nothing stored yet
        polled = run_cli("--config", str(config), "poll", "--json")
        assert polled.exit_code == 0, polled.output
        notified = [post.json() for post in team.delivered()]
    for query, received in (
        (UNREST, [sent["title"].rsplit(": ", 1)[1] for sent in notified]),
        ("entity:CSTO", [d.payload["data"]["article"]["title"] for d in hook.deliveries]),
    ):
        listed = json.loads(run_cli("--config", str(config), "search", query, "--json").stdout)
        assert sorted(received) == sorted(a["title"] for a in listed) != []
    assert sorted(sent["title"].rsplit(": ", 1)[1] for sent in notified) == ["Protest", "Troops"]
    assert sorted(d.payload["data"]["article"]["title"] for d in hook.deliveries) == ["Summit", "Troops"]
    assert all(d.payload["data"]["rules"] == ["csto"] for d in hook.deliveries)
    assert all(d.payload["data"]["article"]["feed"] == "Steppe Wire" for d in hook.deliveries)
    for sent in notified:
        assert "almaty-unrest" in sent["message"] and "**Alma" in sent["message"], sent["message"]
    assert not smtp.messages
