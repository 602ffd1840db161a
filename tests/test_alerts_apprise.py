"""Apprise channels end to end: real local receivers (json://, form://, ntfy://, mailto://)
through the outbox and the dispatcher, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.alerts import deliver_due
from monitor.alerts.apprise import AppriseSender, markdown_body, markdown_link, markdown_text
from monitor.alerts.dispatch import DeliveryReport
from monitor.alerts.exchange import Cancelled, Stop
from monitor.alerts.payloads import sample_message
from monitor.config import AppriseSettings, Settings, load_settings
from monitor.db import session
from monitor.errors import ConfigError, DeliveryError
from monitor.pipeline.ingest import Archive, Candidate
from tests.support.archive import STORY, add_article
from tests.support.notify import NotifyReceiver
from tests.support.outbox import alerts_of, deliver
from tests.support.servers import SMTPSink
from tests.support.waiting import wait_for

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
NOW = datetime(2030, 5, 1, 10, 0, tzinfo=UTC)
TOKEN = "tk_Zq8Xw3Lr7Vb2Nc6Md1Kp"  # stands for a service's token: never shown


@pytest.fixture
def receiver() -> Iterator[NotifyReceiver]:
    with NotifyReceiver() as running:
        yield running


def mailto(sink: SMTPSink) -> str:
    return f"mailto://127.0.0.1:{sink.port}?from=monitor@example.org&to=desk@example.org&mode=insecure"


@pytest.fixture
def apprise_settings(make_settings: Callable[..., Settings], database_url: str) -> Callable[..., Settings]:
    def make(*channels: dict[str, Any], rules: list[dict[str, Any]] | None = None, **alerts: Any) -> Settings:
        return make_settings(
            database_url=database_url,
            alerts={"apprise": list(channels), "public_url": "https://monitor.example.org", **alerts},
            rules=rules,
        )

    return make


# ------------------------------------------------------------------ through the outbox


def test_a_new_article_reaches_every_apprise_target(
    engine: sa.Engine, apprise_settings: Callable[..., Settings], receiver: NotifyReceiver, smtp: SMTPSink
) -> None:
    settings = apprise_settings(
        {"name": "hooks", "urls": [receiver.url("json", "/json"), receiver.url("form", "/form")], "timeout": 5},
        {"name": "phone", "urls": [receiver.ntfy_url], "timeout": 5},
        {"name": "desk", "urls": [mailto(smtp)], "timeout": 5},
    )
    assert [c.key for c in settings.alerts.channels] == ["apprise:hooks", "apprise:phone", "apprise:desk"]
    text = STORY + " The CSTO summit opened in Almaty."
    with session(engine) as db:
        stored = Archive(settings).store(db, Candidate(url="https://news.example/a", text=text, title="Summit"))
    assert stored.created and stored.alerts == 3

    report = deliver(engine, settings)
    assert (report.sent, report.messages, report.errors) == (3, 3, [])
    assert [a.status for a in alerts_of(engine)] == ["sent"] * 3
    archive_link = f"https://monitor.example.org/articles/{stored.article_id}"

    (as_json,) = receiver.delivered("/json")
    sent = as_json.json()
    assert sent["title"] == "Almaty, CSTO: Summit" and sent["type"] == "info"
    assert "[Summit](https://news.example/a)" in sent["message"] and archive_link in sent["message"]
    assert "**CSTO** “CSTO”" in sent["message"] and "**Almaty** “Almaty”" in sent["message"]
    (as_form,) = receiver.delivered("/form")
    assert as_form.form()["title"] == "Almaty, CSTO: Summit" and as_form.form()["message"] == sent["message"]
    (as_ntfy,) = receiver.delivered("/")
    published = as_ntfy.json()
    assert published["topic"] == "alerts" and published["title"] == "Almaty, CSTO: Summit"
    assert archive_link in published["message"]
    (mail,) = smtp.messages
    assert mail["Subject"] == "Almaty, CSTO: Summit"
    html = mail.get_body(("html",)).get_content()
    assert f'<a href="{archive_link}">in the archive</a>' in html and "<strong>CSTO</strong>" in html

    # Further rounds send nothing more.
    assert deliver(engine, settings).messages == 0
    assert len(receiver.posts) == 3 and len(smtp.messages) == 1


@sqlite_only
def test_a_rule_routed_to_apprise_names_the_rule_and_marks_the_match(
    engine: sa.Engine, apprise_settings: Callable[..., Settings], receiver: NotifyReceiver
) -> None:
    settings = apprise_settings(
        {"name": "team", "urls": [receiver.url("json", "/team")]},
        {"name": "other", "urls": [receiver.url("json", "/other")]},
        rules=[
            {
                "name": "almaty-unrest",
                "query": "entity:Almaty protest OR unrest -football",
                "channels": ["apprise:team"],
            }
        ],
    )
    with session(engine) as db:
        archive = Archive(settings)
        fired = archive.store(db, Candidate(url="https://n.example/p", text=STORY + " A protest in Almaty.", title="P"))
        quiet = archive.store(db, Candidate(url="https://n.example/f", text="Almaty football news. " * 30, title="F"))
    assert (fired.alerts, quiet.alerts) == (1, 0)
    assert deliver(engine, settings).sent == 1
    (post,) = receiver.posts
    assert post.path == "/team" and post.json()["title"] == "almaty-unrest · Almaty: P"
    message = post.json()["message"]
    assert "Rules: almaty-unrest" in message and "A protest in **Almaty**." in message


def test_a_receiver_that_is_down_keeps_the_alert_queued_until_it_is_back(
    engine: sa.Engine, apprise_settings: Callable[..., Settings], receiver: NotifyReceiver
) -> None:
    settings = apprise_settings({"name": "team", "urls": [receiver.url("json")], "timeout": 5})
    first = add_article(engine, settings, url="https://n.example/1")
    second = add_article(engine, settings, url="https://n.example/2")
    receiver.stop()
    now = datetime.now(UTC)
    for round_ in range(3):
        report = deliver(engine, settings, now=now)
        assert (report.retrying, report.sent, report.failed) == (1, 0, 0)
        pending = alerts_of(engine)
        assert [(a.status, a.attempts) for a in pending] == [("pending", round_ + 1), ("pending", 0)]
        assert "connection error" in (pending[0].last_error or "").lower()
        assert f"json://127.0.0.1:{receiver.port}/hook" in (pending[0].last_error or "")
        now = pending[0].next_attempt_at + timedelta(seconds=1)
    receiver.start()
    report = deliver(engine, settings, now=now)
    assert (report.sent, report.messages, report.failed) == (2, 2, 0)
    messages = [post.json()["message"] for post in receiver.posts]
    assert len(messages) == 2 and f"/articles/{first})" in messages[0] and f"/articles/{second})" in messages[1]
    assert [a.status for a in alerts_of(engine)] == ["sent", "sent"]


@sqlite_only
def test_a_server_error_is_retried_with_the_reason_and_then_sent(
    engine: sa.Engine, apprise_settings: Callable[..., Settings], receiver: NotifyReceiver
) -> None:
    settings = apprise_settings({"name": "team", "urls": [receiver.ntfy_url]}, retry_initial="1m", retry_max="10m")
    add_article(engine, settings, url="https://n.example/1")
    receiver.status = 500
    now = datetime.now(UTC)
    report = deliver(engine, settings, now=now)
    assert (report.retrying, report.sent) == (1, 0)
    (alert,) = alerts_of(engine)
    assert alert.status == "pending" and 30 <= (alert.next_attempt_at - now).total_seconds() <= 60
    assert "error=50000" in (alert.last_error or "") and "the server is failing" in (alert.last_error or "")
    receiver.status = 200
    assert deliver(engine, settings, now=alert.next_attempt_at).sent == 1
    assert len(receiver.posts) == 2 and len(receiver.delivered()) == 1


@sqlite_only
def test_a_digest_is_one_notification(
    engine: sa.Engine, apprise_settings: Callable[..., Settings], receiver: NotifyReceiver
) -> None:
    settings = apprise_settings({"name": "team", "urls": [receiver.url("json")], "digest": "1h"})
    start = datetime(2030, 5, 1, 10, 5, tzinfo=UTC)
    for i in range(3):
        add_article(engine, settings, url=f"https://n.example/{i}", title=f"Story {i}", now=start)
    assert deliver(engine, settings, now=start + timedelta(minutes=30)).messages == 0
    report = deliver(engine, settings, now=datetime(2030, 5, 1, 11, 0, 1, tzinfo=UTC))
    assert (report.messages, report.sent) == (1, 3)
    (post,) = receiver.posts
    assert post.json()["title"] == "3 new articles mentioning CSTO"
    message = post.json()["message"]
    assert all(f"[Story {i}](https://n.example/{i})" in message for i in range(3)) and message.count("---") == 2


@sqlite_only
def test_a_url_token_never_reaches_the_outbox(
    engine: sa.Engine, apprise_settings: Callable[..., Settings], receiver: NotifyReceiver
) -> None:
    url = f"ntfy://{TOKEN}@127.0.0.1:{receiver.port}/alerts?mode=private&auth=token"
    settings = apprise_settings({"name": "team", "urls": [url]})
    add_article(engine, settings, url="https://n.example/1")
    receiver.status = 503
    report = deliver(engine, settings)
    assert report.retrying == 1
    (alert,) = alerts_of(engine)
    assert receiver.posts[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert alert.last_error and "error=50300" in alert.last_error
    assert TOKEN not in alert.last_error and TOKEN not in " ".join(report.errors)


@sqlite_only
def test_stopping_cuts_a_send_short_and_leaves_the_alert_as_it_was(
    engine: sa.Engine, apprise_settings: Callable[..., Settings], receiver: NotifyReceiver
) -> None:
    settings = apprise_settings({"name": "team", "urls": [receiver.url("json")], "timeout": 60})
    add_article(engine, settings, url="https://n.example/1")
    receiver.delay = 30
    stop = Stop()
    reports: list[DeliveryReport] = []
    thread = threading.Thread(target=lambda: reports.append(deliver_due(engine, settings, stop=stop)))
    thread.start()
    wait_for(lambda: len(receiver.posts) == 1, 10, "the notification in flight")
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()
    (report,) = reports
    assert (report.sent, report.retrying, report.failed, report.errors) == (0, 0, 0, [])
    (alert,) = alerts_of(engine)
    assert (alert.status, alert.attempts, alert.last_error) == ("pending", 0, None)


# --------------------------------------------------------------------- the sender alone


def test_a_receiver_too_slow_for_the_timeout_is_a_transient_failure(receiver: NotifyReceiver) -> None:
    receiver.delay = 10
    sender = AppriseSender(AppriseSettings(name="slow", urls=[receiver.url("json")], timeout=1))
    started = datetime.now(UTC)
    with pytest.raises(DeliveryError) as caught:
        sender.send(sample_message(message_id="msg_1", now=NOW, public_url=None))
    assert (datetime.now(UTC) - started).total_seconds() < 5
    assert caught.value.kind == "transient" and "no answer within 1s" in str(caught.value)


def test_a_stop_set_before_sending_sends_nothing(receiver: NotifyReceiver) -> None:
    sender = AppriseSender(AppriseSettings(name="team", urls=[receiver.url("json")]))
    stop = Stop()
    stop.set()
    with pytest.raises(Cancelled):
        sender.send(sample_message(message_id="msg_1", now=NOW, public_url=None), stop)
    assert receiver.posts == []


def test_hostile_article_content_arrives_inert(smtp: SMTPSink, receiver: NotifyReceiver) -> None:
    base = sample_message(message_id="msg_1", now=NOW, public_url=None)
    item = base.items[0]
    article = type(item.article)(
        id=1,
        url="javascript:alert(1)",
        title='<script>alert("x")</script> **loud** [click](https://evil.example)',
        feed="# Feed\n> quoted",
        published_at=NOW,
    )
    message = type(base)(base.message_id, base.type, base.timestamp, (type(item)(article, item.mentions),))
    for url in (mailto(smtp), receiver.url("json")):
        AppriseSender(AppriseSettings(name="t", urls=[url], timeout=5)).send(message)
    html = smtp.messages[0].get_body(("html",)).get_content()
    assert "<script" not in html and "javascript:" not in html and 'href="https://evil.example"' not in html
    assert "&lt;script&gt;" in html and "**loud**" in html
    body = receiver.posts[0].json()["message"]
    assert "&lt;script>" in body and "\\*\\*loud\\*\\*" in body and "(javascript:" not in body


def test_markdown_escapes_markup_and_links_only_http() -> None:
    assert markdown_text("a*b_c [d](e) `f` <g>\n#h") == "a\\*b\\_c \\[d\\](e) \\`f\\` &lt;g> #h"
    assert markdown_link("https://x.example/a (1)", "A [b]") == "[A \\[b\\]](https://x.example/a%20%281%29)"
    assert markdown_link("ftp://x.example/", "label") == "label"
    body = markdown_body(sample_message(message_id="msg_1", now=NOW, public_url="https://m.example.org"))
    assert body.startswith("**[Test alert from the news monitor](https://m.example.org/)**\n")
    assert "[in the archive](https://m.example.org/articles/0)" in body


# ---------------------------------------------------------------------- configuration


def test_configuration_and_bad_urls(config_file: Callable[..., Path], receiver: NotifyReceiver) -> None:
    good = receiver.url("json")
    path = config_file(f"alerts:\n  apprise:\n    - name: team\n      urls: ['{good}']\n      digest: 1h\n")
    (channel,) = load_settings(path, {}).alerts.channels
    assert isinstance(channel, AppriseSettings) and (channel.key, channel.digest) == ("apprise:team", 3600)

    bad = f"tgram://{TOKEN}/"  # a Telegram URL without its chat
    path = config_file(f"alerts:\n  apprise:\n    - name: team\n      urls: ['{good}', '{bad}']\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    said = str(caught.value)
    assert said.startswith("config: alerts.apprise.0.urls: URL 2 (tgram://…) is not one Apprise can use")
    assert TOKEN not in said and "\n" not in said

    for body, problem in (
        ("    - urls: ['json://h/']\n", "alerts.apprise.0.name: Field required"),
        ("    - name: team\n      urls: []\n", "alerts.apprise.0.urls: List should have at least 1 item"),
        (f"    - name: team\n      urls: ['nosuch://{TOKEN}']\n", "URL 1 (nosuch://…) is not one Apprise can use"),
        (f"    - name: team\n      urls: ['{TOKEN}']\n", "URL 1 (it) is not one Apprise can use"),
        ("    - {name: a, urls: ['json://h/']}\n    - {name: a, urls: ['json://i/']}\n", "two channels are both"),
    ):
        with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")) as caught:
            load_settings(config_file("alerts:\n  apprise:\n" + body), {})
        assert TOKEN not in str(caught.value)


def test_alerts_test_command_sends_through_apprise_and_lists_keys_only(
    run_cli: Callable[..., Any], config_file: Callable[..., Path], receiver: NotifyReceiver, tmp_path: Path
) -> None:
    url = f"json://{TOKEN}@127.0.0.1:{receiver.port}/hook"
    path = config_file(
        f"database_url: sqlite:///{tmp_path / 'm.db'}\n"
        f"alerts:\n  apprise:\n    - name: team\n      urls: ['{url}']\n      timeout: 5\n"
    )
    assert run_cli("--config", str(path), "init").exit_code == 0
    result = run_cli("--config", str(path), "alerts", "test")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "apprise:team: ok: delivered"
    (post,) = receiver.posts
    assert post.json()["title"].startswith("Test: Test alert")
    listed = run_cli("--config", str(path), "alerts")
    assert "apprise:team" in listed.output and TOKEN not in listed.output

    receiver.stop()
    result = run_cli("--config", str(path), "alerts", "test")
    assert result.exit_code == 1 and "apprise:team: FAILED: transient: " in result.output
    assert TOKEN not in result.output
