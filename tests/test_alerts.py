"""The alert outbox end to end: real SMTP and webhook receivers, SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from monitor.alerts import deliver_due, enqueue_alerts
from monitor.alerts.dispatch import DeliveryReport
from monitor.alerts.exchange import Stop
from monitor.config import Settings
from monitor.db import session
from monitor.models import AlertChannel, Article, Mention
from monitor.pipeline.ingest import Archive, Candidate
from monitor.rules import routes, rules_of
from tests.support.archive import STORY, add_article
from tests.support.outbox import SECRET, alerts_of, deliver
from tests.support.servers import SMTPSink, WebhookReceiver
from tests.support.waiting import wait_for

# Engine-independent logic runs on SQLite only; locking, crashes and the ingest path on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


# --------------------------------------------------------------------- the happy path


def test_new_article_alerts_once_per_channel_duplicates_and_repolls_never(
    engine: sa.Engine, alerting: Callable[..., Settings], smtp: SMTPSink, hook: WebhookReceiver
) -> None:
    settings = alerting()
    archive = Archive(settings)
    text = STORY + " The CSTO summit opened in Almaty."
    with session(engine) as db:
        first = archive.store(db, Candidate(url="https://news.example/a", text=text, title="Summit"))
        again = archive.store(db, Candidate(url="https://news.example/a", text=text, title="Summit"))
        copy = archive.store(db, Candidate(url="https://other.example/b", text="Republished. " + text, title="Copy"))
    assert first.created and first.alerts == 2
    assert not again.created and copy.duplicate_of == f"article:{first.article_id}"

    report = deliver(engine, settings)
    assert (report.sent, report.messages, report.errors) == (2, 2, [])
    assert len(smtp.messages) == 1 and len(hook.deliveries) == 1
    body = hook.deliveries[0].payload
    assert set(body) == {"type", "timestamp", "data"} and body["type"] == "mention.created"
    assert body["data"]["article"] == {
        "id": first.article_id,
        "url": "https://news.example/a",
        "title": "Summit",
        "feed": None,
        "published_at": None,
        "language": None,
        "archive_url": f"https://monitor.example.org/articles/{first.article_id}",
    }
    # The implicit rules: one per mentioned entity.
    assert body["data"]["rules"] == ["CSTO", "Almaty"]
    assert [(m["entity"], m["text"]) for m in body["data"]["mentions"]] == [
        ("CSTO", "CSTO"),
        ("Almaty", "Almaty"),
    ]
    assert all(set(m) == {"entity", "text", "snippet", "highlight"} for m in body["data"]["mentions"])
    for mention in body["data"]["mentions"]:
        marked = mention["highlight"]
        assert mention["snippet"][marked["start"] : marked["end"]] == mention["text"]
    mail = smtp.messages[0]
    assert mail["Subject"] == "[monitor] Almaty, CSTO: Summit"
    assert f"https://monitor.example.org/articles/{first.article_id}" in mail.get_body(("plain",)).get_content()

    # Re-polling the same article and further rounds send nothing more.
    with session(engine) as db:
        assert not archive.store(db, Candidate(url="https://news.example/a", text=text)).created
    assert deliver(engine, settings).messages == 0
    assert len(smtp.messages) == 1 and len(hook.deliveries) == 1
    assert [a.status for a in alerts_of(engine)] == ["sent", "sent"]


@sqlite_only
def test_routing_by_entity(
    engine: sa.Engine, alerting: Callable[..., Settings], hook: WebhookReceiver, smtp: SMTPSink
) -> None:
    settings = alerting(
        email={"entities": ["almaty"]},
        webhooks=[hook.settings(name="all"), hook.settings(name="cities", entities=["Almaty"])],
    )
    csto = add_article(engine, settings, url="https://n.example/csto")
    city = add_article(
        engine, settings, url="https://n.example/city", mentions=(("Almaty", "Алматы"), ("CSTO", "CSTO"))
    )
    assert {(a.article_id, a.channel) for a in alerts_of(engine)} == {
        (csto, "webhook:all"),
        (city, "webhook:all"),
        (city, "webhook:cities"),
        (city, "email"),
    }
    deliver(engine, settings)
    assert sorted(d.payload["data"]["article"]["id"] for d in hook.deliveries) == [csto, city, city]
    assert len(smtp.messages) == 1


# ------------------------------------------------------------------- failures, retries


def test_receivers_down_for_several_rounds_then_back(
    engine: sa.Engine, alerting: Callable[..., Settings], smtp: SMTPSink, hook: WebhookReceiver
) -> None:
    settings = alerting()
    first = add_article(engine, settings, url="https://n.example/1")
    second = add_article(engine, settings, url="https://n.example/2")
    smtp.stop()
    hook.stop()
    now = datetime.now(UTC)
    for round_ in range(4):
        report = deliver(engine, settings, now=now)
        # Only the oldest alert of each channel is tried; the newer one waits behind it.
        assert (report.retrying, report.sent, report.failed) == (2, 0, 0)
        pending = alerts_of(engine)
        assert [a.attempts for a in pending] == [round_ + 1, round_ + 1, 0, 0]
        assert all(a.status == "pending" for a in pending)
        assert all(("refused" in (a.last_error or "")) == (a.attempts > 0) for a in pending)
        assert deliver(engine, settings, now=now).retrying == 0  # still backing off
        now = max(a.next_attempt_at for a in pending) + timedelta(seconds=1)
    smtp.start()
    hook.start()
    report = deliver(engine, settings, now=now)
    assert (report.sent, report.failed) == (4, 0)
    assert [d.payload["data"]["article"]["id"] for d in hook.deliveries] == [first, second]
    assert len(smtp.messages) == 2 and hook.repeats == 0
    assert [a.status for a in alerts_of(engine)] == ["sent"] * 4


@sqlite_only
def test_backoff_grows_with_jitter_and_honours_retry_after(
    engine: sa.Engine, alerting: Callable[..., Settings], hook: WebhookReceiver
) -> None:
    settings = alerting(email=False, retry_initial="1m", retry_max="10m")
    add_article(engine, settings, url="https://n.example/1")
    hook.status = 503
    now = datetime.now(UTC)
    delays = []
    for _ in range(6):
        deliver(engine, settings, now=now)
        (alert,) = alerts_of(engine)
        delays.append((alert.next_attempt_at - now).total_seconds())
        now = alert.next_attempt_at
    ceilings = [60, 120, 240, 480, 600, 600]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    hook.status, hook.retry_after = 429, "120"
    deliver(engine, settings, now=now)
    (alert,) = alerts_of(engine)
    assert alert.next_attempt_at - now == timedelta(seconds=120)
    assert "HTTP 429" in (alert.last_error or "")


@sqlite_only
def test_gives_up_after_the_retry_period(engine: sa.Engine, alerting: Callable[..., Settings], smtp: SMTPSink) -> None:
    settings = alerting(webhooks=[], give_up_after="6h")
    add_article(engine, settings, url="https://n.example/1")
    add_article(engine, settings, url="https://n.example/2")
    smtp.stop()
    now = datetime.now(UTC)
    assert deliver(engine, settings, now=now).retrying == 1
    report = deliver(engine, settings, now=now + timedelta(hours=7))
    assert report.failed == 2
    assert [a.status for a in alerts_of(engine)] == ["failed", "failed"]
    assert "gave up after retrying for 6h" in (alerts_of(engine)[0].last_error or "")


def test_timeout_after_receipt_resends_the_same_id(
    engine: sa.Engine, alerting: Callable[..., Settings], hook: WebhookReceiver
) -> None:
    settings = alerting(email=False, webhooks=[hook.settings(timeout=0.3)])
    add_article(engine, settings, url="https://n.example/1")
    hook.delay = 1.0
    now = datetime.now(UTC)
    report = deliver(engine, settings, now=now)
    assert report.retrying == 1 and "no answer within 0.3s" in report.errors[0]
    hook.delay = 0
    (alert,) = alerts_of(engine)
    deliver(engine, settings, now=alert.next_attempt_at)
    wait_for(lambda: len(hook.deliveries) == 2)
    assert hook.deliveries[0].webhook_id == hook.deliveries[1].webhook_id == alert.message_id
    assert len(hook.kept) == 1 and hook.repeats == 1
    assert alerts_of(engine)[0].status == "sent"


@sqlite_only
def test_permanent_failure_is_recorded_and_retry_requeues(
    engine: sa.Engine, alerting: Callable[..., Settings], hook: WebhookReceiver, smtp: SMTPSink
) -> None:
    from monitor.alerts.outbox import requeue_failed

    settings = alerting()
    add_article(engine, settings, url="https://n.example/1")
    add_article(engine, settings, url="https://n.example/2")
    hook.status = 422
    smtp.reply = "550 5.7.1 relaying denied"
    report = deliver(engine, settings)
    # Permanent failures do not block the channel: every alert was tried and failed.
    assert (report.failed, report.retrying) == (4, 0)
    errors = {a.channel: a.last_error for a in alerts_of(engine)}
    assert errors["webhook:ops"].startswith("HTTP 422")
    assert errors["email"] == "SMTP 550 5.7.1 relaying denied"
    hook.status, smtp.reply = 200, None
    with session(engine) as db:
        assert requeue_failed(db, channel="webhook:ops") == 2
        db.commit()
    assert deliver(engine, settings).sent == 2
    assert {a.channel: a.status for a in alerts_of(engine) if a.status == "sent"} == {"webhook:ops": "sent"}


@sqlite_only
def test_smtp_4xx_is_retried(engine: sa.Engine, alerting: Callable[..., Settings], smtp: SMTPSink) -> None:
    settings = alerting(webhooks=[])
    add_article(engine, settings, url="https://n.example/1")
    smtp.reply = "451 4.3.0 mailbox busy"
    now = datetime.now(UTC)
    assert deliver(engine, settings, now=now).retrying == 1
    smtp.reply = None
    (alert,) = alerts_of(engine)
    assert alert.status == "pending" and alert.last_error == "SMTP 451 4.3.0 mailbox busy"
    assert deliver(engine, settings, now=alert.next_attempt_at).sent == 1
    assert len(smtp.messages) == 1


def test_gone_disables_the_endpoint_until_retry(
    engine: sa.Engine, alerting: Callable[..., Settings], hook: WebhookReceiver
) -> None:
    from monitor.alerts.outbox import enable_channels

    settings = alerting(webhooks=[hook.settings(name="ops")])
    add_article(engine, settings, url="https://n.example/1")
    hook.status = 410
    report = deliver(engine, settings)
    assert report.disabled == ["webhook:ops"]
    add_article(engine, settings, url="https://n.example/2")
    hook.status = 200
    deliver(engine, settings, now=datetime.now(UTC) + timedelta(days=1))
    assert len(hook.deliveries) == 1  # nothing is sent to a disabled endpoint
    with session(engine) as db:
        state = db.get(AlertChannel, "webhook:ops")
        assert state and state.disabled_at and "HTTP 410" in (state.disabled_reason or "")
        assert enable_channels(db) == ["webhook:ops"]
        db.commit()
    assert deliver(engine, settings).sent == 2
    assert len(hook.kept) == 2


# -------------------------------------------------------------------------- crashes

_DISPATCH = """
import sys
from monitor.alerts import deliver_due
from monitor.config import Settings
from monitor.db import make_engine

settings = Settings.model_validate_json(sys.argv[1])
deliver_due(make_engine(settings.database_url), settings)
"""


@pytest.mark.parametrize("kind", ["webhook", "email"])
def test_killed_after_send_before_mark_resends_the_same_id(
    kind: str,
    engine: sa.Engine,
    alerting: Callable[..., Settings],
    hook: WebhookReceiver,
    smtp: SMTPSink,
) -> None:
    settings = alerting(email=kind == "email", webhooks=[hook.settings()] if kind == "webhook" else [])
    add_article(engine, settings, url="https://n.example/1")
    hook.delay = smtp.hold = 30  # the receiver has it, the sender never hears back
    process = subprocess.Popen([sys.executable, "-c", _DISPATCH, settings.model_dump_json()])
    try:
        wait_for(lambda: hook.deliveries or smtp.messages, timeout=30)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    hook.delay = smtp.hold = 0
    (alert,) = alerts_of(engine)
    assert alert.status == "pending" and alert.message_id

    def again() -> bool:
        report = deliver(engine, settings)
        return not report.busy  # PostgreSQL may need a moment to notice the dead client

    wait_for(again, timeout=10, interval=0.2)
    assert alerts_of(engine)[0].status == "sent"
    if kind == "webhook":
        assert [d.webhook_id for d in hook.deliveries] == [alert.message_id] * 2
        assert len(hook.kept) == 1
    else:
        wait_for(lambda: len(smtp.messages) == 2)
        assert smtp.messages[0]["Message-ID"] == smtp.messages[1]["Message-ID"]
        assert smtp.messages[0]["Message-ID"] == f"<{alert.message_id}@example.org>"


def test_a_channel_held_by_another_dispatcher_is_skipped(
    engine: sa.Engine, alerting: Callable[..., Settings], hook: WebhookReceiver
) -> None:
    settings = alerting(email=False, webhooks=[hook.settings(name="ops")])
    add_article(engine, settings, url="https://n.example/1")
    deliver(engine, settings, now=datetime.now(UTC) - timedelta(days=1))  # creates the state row
    if engine.dialect.name == "postgresql":
        other = engine.connect()
        other.execute(sa.text("SELECT key FROM alert_channel WHERE key = 'webhook:ops' FOR UPDATE"))
        release = other.close
    else:
        import fcntl

        handle = open(f"{engine.url.database}.alerts.lock", "a")  # noqa: SIM115
        fcntl.flock(handle, fcntl.LOCK_EX)
        release = handle.close
    try:
        report = deliver(engine, settings)
        assert report.busy == ["webhook:ops"] and report.sent == 0
        assert hook.deliveries == []
    finally:
        release()
    assert deliver(engine, settings).sent == 1


# ----------------------------------------------------------------- slow receivers, stopping


def in_thread(call: Callable[[], DeliveryReport]) -> tuple[threading.Thread, list[DeliveryReport]]:
    reports: list[DeliveryReport] = []
    thread = threading.Thread(target=lambda: reports.append(call()), daemon=True)
    thread.start()
    return thread, reports


def test_a_trickling_channel_holds_up_no_other(
    engine: sa.Engine, alerting: Callable[..., Settings], hook: WebhookReceiver, smtp: SMTPSink
) -> None:
    with WebhookReceiver(secret=SECRET, trickle=0.3) as slow:
        # The slow one first: channels used to be delivered one after another, in order.
        settings = alerting(webhooks=[slow.settings(name="slow", timeout=3), hook.settings(name="ops")])
        for n in range(3):
            add_article(engine, settings, url=f"https://n.example/{n}")
        thread, reports = in_thread(lambda: deliver(engine, settings))
        wait_for(lambda: len(hook.kept) == 3 and len(smtp.messages) == 3, 10, "the healthy channels")
        assert thread.is_alive()  # the slow channel is still being waited for
        thread.join(timeout=30)
    assert not thread.is_alive()
    (report,) = reports
    assert (report.sent, report.messages, report.retrying) == (6, 6, 1)
    assert report.errors == ["webhook:slow: no answer within 3s"]
    slow_alerts = [a for a in alerts_of(engine) if a.channel == "webhook:slow"]
    assert [(a.status, a.attempts) for a in slow_alerts] == [("pending", 1), ("pending", 0), ("pending", 0)]
    assert slow.trickled == 1 and slow.kept == {}


def test_stopping_cuts_a_delivery_short_and_leaves_its_alert_as_it_was(
    engine: sa.Engine, alerting: Callable[..., Settings]
) -> None:
    with WebhookReceiver(secret=SECRET, trickle=0.3) as stuck:
        settings = alerting(email=False, webhooks=[stuck.settings(name="stuck", timeout=60)])
        add_article(engine, settings, url="https://n.example/1")
        stop = Stop()
        thread, reports = in_thread(lambda: deliver_due(engine, settings, stop=stop))
        wait_for(lambda: stuck.trickled == 1, 10, "the delivery in flight")
        stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()
        (report,) = reports
        assert (report.sent, report.retrying, report.failed, report.errors) == (0, 0, 0, [])
        (alert,) = alerts_of(engine)
        assert (alert.status, alert.attempts, alert.last_error) == ("pending", 0, None)
        assert alert.message_id == stuck.deliveries[0].webhook_id

        stuck.trickle = 0
        assert deliver(engine, settings).sent == 1
    assert list(stuck.kept) == [alert.message_id]


def test_a_channel_is_delivered_by_one_thread_at_a_time(
    engine: sa.Engine, alerting: Callable[..., Settings], smtp: SMTPSink
) -> None:
    with WebhookReceiver(secret=SECRET, trickle=0.3) as stuck:
        settings = alerting(webhooks=[stuck.settings(name="stuck", timeout=60)])
        add_article(engine, settings, url="https://n.example/1")
        stop = Stop()
        thread, _ = in_thread(lambda: deliver_due(engine, settings, channels=["webhook:stuck"], stop=stop))
        try:
            wait_for(lambda: stuck.trickled == 1, 10, "the delivery in flight")
            # The same process delivers the other channel meanwhile, and skips this one.
            report = deliver(engine, settings)
        finally:
            stop.set()
            thread.join(timeout=10)
    assert (report.sent, report.busy) == (1, ["webhook:stuck"])
    assert stuck.trickled == 1 and len(smtp.messages) == 1


# --------------------------------------------------------------------------- digests


def test_digest_sends_one_message_per_window(
    engine: sa.Engine, alerting: Callable[..., Settings], hook: WebhookReceiver, smtp: SMTPSink
) -> None:
    settings = alerting(email={"digest": "1h"}, webhooks=[hook.settings(digest="1h")])
    start = datetime(2030, 5, 1, 10, 5, tzinfo=UTC)
    ids = [
        add_article(
            engine, settings, url=f"https://n.example/{i}", title=f"Story {i}", now=start + timedelta(minutes=10 * i)
        )
        for i in range(3)
    ]
    late = add_article(engine, settings, url="https://n.example/late", now=start + timedelta(hours=1))
    assert deliver(engine, settings, now=start + timedelta(minutes=50)).messages == 0
    report = deliver(engine, settings, now=datetime(2030, 5, 1, 11, 0, 1, tzinfo=UTC))
    assert (report.messages, report.sent) == (2, 6)
    (call,) = hook.deliveries
    body = call.payload
    assert body["type"] == "mention.digest" and body["data"]["count"] == 3
    assert [item["article"]["id"] for item in body["data"]["items"]] == ids
    assert set(body["data"]["items"][0]) == {"article", "rules", "mentions"}
    assert body["data"]["items"][0]["rules"] == ["CSTO"]
    (mail,) = smtp.messages
    assert mail["Subject"] == "[monitor] 3 new articles mentioning CSTO"
    html = mail.get_body(("html",)).get_content()
    assert all(f"Story {i}" in html for i in range(3))
    report = deliver(engine, settings, now=datetime(2030, 5, 1, 12, 0, 1, tzinfo=UTC))
    assert report.messages == 2
    assert hook.deliveries[1].payload["data"]["items"][0]["article"]["id"] == late
    assert hook.deliveries[1].webhook_id != call.webhook_id


# ------------------------------------------------------------------- hostile content


@sqlite_only
def test_hostile_article_content_arrives_escaped(
    engine: sa.Engine, alerting: Callable[..., Settings], smtp: SMTPSink, hook: WebhookReceiver
) -> None:
    settings = alerting()
    title = '<script>alert(1)</script>\r\nBcc: victim@evil.example\r\n\r\n<b onmouseover="x">bold</b>'
    with session(engine) as db:
        article = Article(url="javascript:alert(document.cookie)", title=title, text=STORY, content_hash="h")
        db.add(article)
        db.flush()
        assert article.id is not None
        db.add(
            Mention(
                article_id=article.id,
                entity="CSTO",
                text="<i>CSTO</i>",
                start=0,
                end=5,
                snippet='</li><img src=x onerror="alert(2)"> <i>CSTO</i> & more',
            )
        )
        fired = [rule for rule in rules_of(settings) if rule.name == "CSTO"]
        enqueue_alerts(db, article=article, entities=["CSTO"], routes=routes(fired), settings=settings)
        db.commit()
    assert deliver(engine, settings).sent == 2

    (mail,) = smtp.messages
    assert mail["Bcc"] is None and mail["Subject"].count("\n") == 0
    assert smtp.envelopes == [("monitor@example.org", ["desk@example.org"])]
    html = mail.get_body(("html",)).get_content()
    for raw in ("<script", "<img", "<b ", "<i>", 'href="javascript'):
        assert raw not in html
    assert "javascript:alert(document.cookie)" in html  # shown, not linked
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt; <mark>&lt;i&gt;CSTO&lt;/i&gt;</mark> &amp; more" in html
    text = mail.get_body(("plain",)).get_content()
    assert "\r" not in text.replace("\r\n", "\n")
    # The webhook carries the data as it is: JSON escaping is the receiver's safety.
    (delivery,) = hook.deliveries
    assert delivery.payload["data"]["article"]["title"] == title
    assert delivery.payload["data"]["mentions"][0]["text"] == "<i>CSTO</i>"
