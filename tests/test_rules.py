"""Alert rules end to end: routing, digests, content, and rule firing == search membership.

Real SMTP (aiosmtpd) and webhook receivers, SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from monitor.alerts.channels import digest_window_end
from monitor.config import Settings
from monitor.db import session
from monitor.models import Alert
from monitor.pipeline.ingest import Archive, Candidate, StoreResult
from monitor.rules import Rulebook
from monitor.search import SearchFilters, search_articles
from monitor.times import utcnow
from tests.support.feeds import story
from tests.support.outbox import deliver
from tests.support.servers import SMTPSink, WebhookReceiver

UNREST = "entity:Almaty protest OR unrest OR troops -football"
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# Each text a story of its own (the dedup sees no copies), with the words the rules want.
TEXTS = {
    "protest": story("Almaty protest"),
    "football": story("Almaty football protest"),
    "summit": story("CSTO summit"),
    "troops": story("Alma-Ata troops ОДКБ"),
    "weather": story("Almaty weather"),
    "nothing": story("harvest"),
}


def store_all(engine: sa.Engine, settings: Settings, names: list[str]) -> dict[str, StoreResult]:
    archive = Archive(settings)
    with session(engine) as db:
        return {
            name: archive.store(
                db, Candidate(url=f"https://news.example/{name}", text=TEXTS[name], title=name.title(), language="en")
            )
            for name in names
        }


def alerted(engine: sa.Engine, channel: str) -> dict[int, list[str]]:
    with session(engine) as db:
        rows = db.exec(select(Alert).where(Alert.channel == channel)).all()
        return {row.article_id: list(row.rules or []) for row in rows}


def searched(engine: sa.Engine, settings: Settings, query: str) -> set[int]:
    with session(engine) as db:
        page = search_articles(db, SearchFilters(query=query, limit=500), entities=settings.entities)
    return {item.id for item in page.items}


def test_each_channel_gets_what_search_lists_for_its_rules_with_rule_and_marked_snippet(
    engine: sa.Engine, alerting: Callable[..., Settings], smtp: SMTPSink, hook: WebhookReceiver
) -> None:
    settings = alerting(
        rules=[
            {"name": "almaty-unrest", "query": UNREST, "channels": ["email"]},
            {"name": "csto", "query": "entity:CSTO", "channels": ["webhook:ops"]},
        ]
    )
    stored = store_all(engine, settings, list(TEXTS))
    ids = {name: result.article_id for name, result in stored.items()}
    assert all(result.created and result.duplicate_of is None for result in stored.values())

    by_mail, by_hook = alerted(engine, "email"), alerted(engine, "webhook:ops")
    assert set(by_mail) == searched(engine, settings, UNREST) == {ids["protest"], ids["troops"]}
    assert set(by_hook) == searched(engine, settings, "entity:CSTO") == {ids["summit"], ids["troops"]}
    assert all(rules == ["almaty-unrest"] for rules in by_mail.values())
    assert all(rules == ["csto"] for rules in by_hook.values())
    assert stored["troops"].rules == ("almaty-unrest", "csto")
    assert stored["football"].alerts == stored["weather"].alerts == stored["nothing"].alerts == 0

    report = deliver(engine, settings)
    assert (report.sent, report.errors) == (4, [])
    mails = {mail["Subject"]: mail for mail in smtp.messages}
    assert set(mails) == {
        "[monitor] almaty-unrest · Almaty: Protest",
        "[monitor] almaty-unrest · Almaty, CSTO: Troops",
    }
    mail = mails["[monitor] almaty-unrest · Almaty, CSTO: Troops"]
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    assert "Rules: almaty-unrest" in html and "Rules: almaty-unrest" in text
    assert "<mark>Alma-Ata</mark>" in html and "**Alma-Ata**" in text
    assert "Language: en" in text and "Published: unknown" in text
    assert f"https://monitor.example.org/articles/{ids['troops']}" in text

    bodies = {d.payload["data"]["article"]["id"]: d.payload["data"] for d in hook.deliveries}
    assert set(bodies) == {ids["summit"], ids["troops"]}
    troops = bodies[ids["troops"]]
    assert troops["rules"] == ["csto"] and hook.deliveries[0].payload["type"] == "mention.created"
    assert troops["article"]["archive_url"] == f"https://monitor.example.org/articles/{ids['troops']}"
    marked = {m["text"]: m["snippet"][m["highlight"]["start"] : m["highlight"]["end"]] for m in troops["mentions"]}
    assert marked == {"Alma-Ata": "Alma-Ata", "ОДКБ": "ОДКБ"}


def test_implicit_rules_alert_as_before_rules_existed(
    engine: sa.Engine, alerting: Callable[..., Settings], smtp: SMTPSink, hook: WebhookReceiver
) -> None:
    # No rules: one per entity, to every channel; the webhook's entities: filter routes them.
    settings = alerting(webhooks=[hook.settings(name="ops", entities=["CSTO"])])
    assert [(r.name, r.query, r.channels, r.implicit) for r in Rulebook.from_settings(settings).rules] == [
        ("CSTO", 'entity:"CSTO"', ("email", "webhook:ops"), True),
        ("Nazarbayev", 'entity:"Nazarbayev"', ("email",), True),
        ("Almaty", 'entity:"Almaty"', ("email",), True),
    ]
    stored = store_all(engine, settings, ["weather", "summit", "nothing", "troops"])
    ids = {name: result.article_id for name, result in stored.items()}
    assert alerted(engine, "email") == {
        ids["weather"]: ["Almaty"],
        ids["summit"]: ["CSTO"],
        ids["troops"]: ["CSTO", "Almaty"],
    }
    assert alerted(engine, "webhook:ops") == {ids["summit"]: ["CSTO"], ids["troops"]: ["CSTO"]}
    assert deliver(engine, settings).sent == 5
    assert sorted(mail["Subject"] for mail in smtp.messages) == [
        "[monitor] Almaty, CSTO: Troops",
        "[monitor] Almaty: Weather",
        "[monitor] CSTO: Summit",
    ]


@sqlite_only
def test_a_rule_digest_gathers_its_window_and_holds_up_no_other_rule(
    engine: sa.Engine, alerting: Callable[..., Settings], hook: WebhookReceiver
) -> None:
    settings = alerting(
        rules=[
            {"name": "csto-daily", "query": "entity:CSTO", "channels": ["webhook:ops"], "digest": "1d"},
            {"name": "unrest", "query": UNREST, "channels": ["webhook:ops"]},
        ]
    )
    stored = store_all(engine, settings, ["summit", "protest", "troops"])
    # "troops" fires both rules: due at once, the earliest of the two.
    now = utcnow()
    report = deliver(engine, settings, now=now + timedelta(seconds=1))
    assert report.messages == 2
    assert [d.payload["type"] for d in hook.deliveries] == ["mention.created"] * 2
    assert {d.payload["data"]["article"]["id"] for d in hook.deliveries} == {
        stored["protest"].article_id,
        stored["troops"].article_id,
    }
    troops = next(d for d in hook.deliveries if d.payload["data"]["article"]["id"] == stored["troops"].article_id)
    assert troops.payload["data"]["rules"] == ["csto-daily", "unrest"]

    window_end = digest_window_end(now, 86400)
    assert deliver(engine, settings, now=window_end - timedelta(seconds=5)).messages == 0
    report = deliver(engine, settings, now=window_end + timedelta(seconds=1))
    assert report.messages == 1
    digest = hook.deliveries[-1].payload
    assert digest["type"] == "mention.digest" and digest["data"]["count"] == 1
    assert digest["data"]["items"][0]["rules"] == ["csto-daily"]
    assert digest["data"]["items"][0]["article"]["id"] == stored["summit"].article_id


@sqlite_only
def test_a_bad_rule_stops_the_rulebook_with_one_line_naming_it(alerting: Callable[..., Settings]) -> None:
    from monitor.errors import ConfigError

    for query, expected in (
        ("entity:Atlantis", "config: rules: rule 'bad': "),
        ('"unclosed', "config: rules: rule 'bad': query: unbalanced quote"),
    ):
        settings = alerting(rules=[{"name": "good", "query": "entity:CSTO"}, {"name": "bad", "query": query}])
        with pytest.raises(ConfigError) as caught:
            Archive(settings)
        assert str(caught.value).startswith(expected) and "\n" not in str(caught.value)
        Archive(settings, alerting=False)  # a backfill without alerts needs no rules


@sqlite_only
def test_a_reload_that_changes_the_rules_reconfigures_the_daemon(alerting: Callable[..., Settings]) -> None:
    from monitor.scheduling.daemon import changes

    before = alerting(rules=[{"name": "csto", "query": "entity:CSTO"}])
    after = alerting(rules=[{"name": "csto", "query": "entity:CSTO -football"}])
    assert "alert rules changed" in changes(before, after)
    assert "alert rules changed" not in changes(before, alerting(rules=[{"name": "csto", "query": "entity:CSTO"}]))


@sqlite_only
def test_monitor_alerts_names_the_rules_of_each_alert(
    engine: sa.Engine,
    alerting: Callable[..., Settings],
    run_cli: Callable[..., Any],
    config_file: Callable[..., Any],
    database_url: str,
) -> None:
    import json

    rules = [{"name": "csto", "query": "entity:CSTO", "channels": ["webhook:ops"]}]
    settings = alerting(rules=rules)
    store_all(engine, settings, ["summit"])
    config = config_file(json.dumps(settings.model_dump(mode="json")))
    listing = run_cli("--config", str(config), "alerts", "--status", "pending")
    assert listing.exit_code == 0, listing.output
    assert "webhook:ops article 1 [CSTO] rules: csto; due" in listing.stdout
    listed = json.loads(run_cli("--config", str(config), "alerts", "--json").stdout)
    assert [a["rules"] for a in listed["alerts"]] == [["csto"]]
