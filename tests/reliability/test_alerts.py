"""Alert receivers that are slow, stuck or dead, against the real commands.

A webhook that trickles its answer a byte at a time (no single read ever times out),
an SMTP server whose port is closed, one that accepts and never says a word, one whose
greeting never ends. Each one must be cut off at its channel's ``timeout`` and its
alerts kept pending and sent once it answers again, while the healthy channels beside
it get every alert within seconds; nothing is sent twice to a receiver that answered
(every webhook-id and Message-ID is counted). ``SIGTERM`` of a daemon whose receiver is
stuck ends it at once, its alerts still pending; ``monitor poll`` and ``monitor alerts
deliver`` end within the deadline.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.models import Alert, Article
from tests.reliability.conftest import Ledger
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.paths import ROOT
from tests.support.servers import HTTPServer, Response, SMTPSink, StalledServer, WebhookReceiver
from tests.support.waiting import free_port, wait_for

MONITOR = str(Path(sys.executable).parent / "monitor")
SECRET = "s3cret"
TRICKLE = 0.5  # seconds between two bytes of a trickled answer: far below any timeout
HOOK_TIMEOUT = 3  # seconds a webhook delivery may take, all in
SMTP_TIMEOUT = 2


@pytest.fixture
def site() -> Iterator[HTTPServer]:
    with HTTPServer() as server:
        yield server


def publish(site: HTTPServer, count: int) -> None:
    """A feed of ``count`` distinct stories that each mention Almaty."""
    items = [Item(f"Story {n}", site.url(f"/p/{n}")) for n in range(count)]
    site.route("/feed", Response(rss20(items), headers={"Content-Type": FEED_TYPES["rss20"]}))
    for n in range(count):
        page = article_page(f"Story {n}", story(f"Almaty story {n}", 8))
        site.route(f"/p/{n}", Response(page, headers={"Content-Type": "text/html"}))


def write_config(config_file: Callable[..., Path], database_url: str, site: HTTPServer | None, **alerts: Any) -> Path:
    settings = {
        "database_url": database_url,
        "seeds_dir": str(ROOT / "seeds"),
        "poll": {"allow_private_networks": True, "extract_workers": 1, "tick": "0.3s", "shutdown_grace": "3s"},
        "feeds": [{"name": "Wire", "url": site.url("/feed"), "interval": "1s"}] if site else [],
        "alerts": {"retry_initial": "1s", "retry_max": "2s", **alerts},
    }
    return config_file(json.dumps(settings))


def alerts_of(engine: sa.Engine, channel: str) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(Alert).where(Alert.channel == channel).order_by(Alert.id)).all())


def count(engine: sa.Engine, table: type) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def answered(receiver: WebhookReceiver) -> Counter[str]:
    """How often each webhook-id got a complete answer (the trickled calls never did)."""
    with receiver.lock:
        return Counter(d.webhook_id for d in receiver.deliveries if d.verified and not d.trickled)


def mail_ids(sink: SMTPSink) -> Counter[str]:
    with sink.lock:
        return Counter(str(m["Message-ID"]) for m in sink.messages)


@pytest.fixture
def sqlite(fresh_database_url: Callable[[str], str]) -> Iterator[tuple[str, sa.Engine]]:
    url = fresh_database_url("sqlite")
    engine = sa.create_engine(url)
    yield url, engine
    engine.dispose()


# ---------------------------------------------------------------------------- the daemon


def test_a_trickling_webhook_holds_up_neither_the_other_channels_nor_the_daemon(
    sqlite: tuple[str, sa.Engine], config_file: Callable[..., Path], site: HTTPServer, ledger: Ledger
) -> None:
    url, engine = sqlite
    publish(site, 4)
    with (
        WebhookReceiver(secret=SECRET) as ops,
        WebhookReceiver(secret=SECRET, trickle=TRICKLE) as slow,
        SMTPSink() as smtp,
    ):
        config = write_config(
            config_file,
            url,
            site,
            email=smtp.settings(timeout=SMTP_TIMEOUT),
            webhooks=[
                slow.settings(name="slow", timeout=HOOK_TIMEOUT),
                ops.settings(name="ops", timeout=HOOK_TIMEOUT),
            ],
        )
        daemon = subprocess.Popen([MONITOR, "--config", str(config), "run"], stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: count(engine, Article) == 4, 90, "the four stories stored")
            stored_at = time.monotonic()
            wait_for(lambda: len(ops.kept) == 4 and len(smtp.messages) == 4, 10, "the healthy channels' alerts")
            healthy_after = time.monotonic() - stored_at
            wait_for(lambda: alerts_of(engine, "webhook:slow")[0].attempts >= 1, 15, "the trickle cut off")
            head = alerts_of(engine, "webhook:slow")[0]
            assert all(a.status == "pending" for a in alerts_of(engine, "webhook:slow"))
            assert f"no answer within {HOOK_TIMEOUT}s" in (head.last_error or "")

            slow.trickle = 0  # it answers normally again; a fifth story makes a poll alert
            publish(site, 5)
            wait_for(lambda: len(slow.kept) == 5, 30, "the slow channel's alerts, once it answers")
            wait_for(lambda: len(ops.kept) == 5 and len(smtp.messages) == 5, 10, "the fifth alert")
            daemon.send_signal(signal.SIGTERM)
            _out, log = daemon.communicate(timeout=15)
        finally:
            daemon.kill()
    assert daemon.returncode == 0, log
    assert "Traceback" not in log, log
    assert healthy_after < 5, healthy_after
    sent = {key: alerts_of(engine, key) for key in ("email", "webhook:ops", "webhook:slow")}
    assert all(a.status == "sent" for alerts in sent.values() for a in alerts)
    # Every alert arrived, each exactly once where the receiver answered.
    assert set(slow.kept) == {a.message_id for a in sent["webhook:slow"]}
    assert set(answered(slow).values()) == {1} and set(answered(ops).values()) == {1}
    assert len(answered(ops)) == 5 and ops.repeats == 0
    assert len(mail_ids(smtp)) == 5 and set(mail_ids(smtp).values()) == {1}
    repeated = sum(n - 1 for receiver in (ops, slow) for n in answered(receiver).values())
    ledger.record("alerts", tried=15, survived=15, lost=0, duplicated=repeated)


def test_sigterm_with_a_stuck_receiver_exits_at_once_and_the_alerts_stay_queued(
    sqlite: tuple[str, sa.Engine], config_file: Callable[..., Path], site: HTTPServer, ledger: Ledger
) -> None:
    url, engine = sqlite
    publish(site, 2)
    # Its timeout is a minute: only the shutdown can end the exchange in time.
    with WebhookReceiver(secret=SECRET, trickle=TRICKLE) as stuck:
        config = write_config(config_file, url, site, webhooks=[stuck.settings(name="stuck", timeout=60)])
        daemon = subprocess.Popen([MONITOR, "--config", str(config), "run"], stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: stuck.trickled >= 1, 90, "a delivery in flight")
            stopped_at = time.monotonic()
            daemon.send_signal(signal.SIGTERM)
            _out, log = daemon.communicate(timeout=15)
            took = time.monotonic() - stopped_at
        finally:
            daemon.kill()
        assert daemon.returncode == 0, log
        assert took < 5, took
        assert "Traceback" not in log, log
        queued = alerts_of(engine, "webhook:stuck")
        assert [(a.status, a.attempts) for a in queued] == [("pending", 0), ("pending", 0)]
        in_flight = stuck.deliveries[0].webhook_id
        assert queued[0].message_id == in_flight  # fixed before the attempt, kept for the next

        stuck.trickle = 0
        result = subprocess.run(
            [MONITOR, "--config", str(config), "alerts", "deliver", "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 2
    assert [a.status for a in alerts_of(engine, "webhook:stuck")] == ["sent", "sent"]
    assert in_flight in stuck.kept and len(stuck.kept) == 2
    assert set(answered(stuck).values()) == {1}
    ledger.record("alerts", tried=2, survived=2, lost=0, duplicated=0)


# ---------------------------------------------------------------------- the commands


def test_monitor_poll_ends_within_the_deadline_of_a_trickling_webhook(
    sqlite: tuple[str, sa.Engine], config_file: Callable[..., Path], site: HTTPServer, ledger: Ledger
) -> None:
    url, engine = sqlite
    publish(site, 2)
    with WebhookReceiver(secret=SECRET, trickle=TRICKLE) as slow, WebhookReceiver(secret=SECRET) as ops:
        config = write_config(
            config_file,
            url,
            site,
            webhooks=[slow.settings(name="slow", timeout=HOOK_TIMEOUT), ops.settings(name="ops", timeout=HOOK_TIMEOUT)],
        )
        result = subprocess.run(
            [MONITOR, "--config", str(config), "poll", "--json"], capture_output=True, text=True, timeout=40
        )
    assert result.returncode == 0, result.stderr
    delivery = json.loads(result.stdout)["delivery"]
    assert (delivery["sent"], delivery["retrying"]) == (2, 1)
    assert delivery["errors"] == [f"webhook:slow: no answer within {HOOK_TIMEOUT}s"]
    assert [a.status for a in alerts_of(engine, "webhook:slow")] == ["pending", "pending"]
    assert len(ops.kept) == 2
    ledger.record("alerts", tried=4, survived=4)


def smtp_down(kind: str) -> tuple[int, StalledServer | None]:
    """A port where SMTP fails as ``kind`` says, and the server making it fail."""
    if kind == "closed":
        return free_port(), None
    greeting = b"220 smtp.example.org ESMTP at your service\r\n" if kind == "trickling" else b""
    server = StalledServer(trickle=greeting, interval=TRICKLE).start()
    return server.port, server


@pytest.mark.parametrize("kind", ["closed", "silent", "trickling"])
def test_a_dead_or_hung_smtp_server_is_cut_off_retried_and_holds_up_no_webhook(
    kind: str, database_url: str, config_file: Callable[..., Path], ledger: Ledger
) -> None:
    from monitor.config import load_settings
    from monitor.db import make_engine
    from tests.support.archive import add_article

    port, down = smtp_down(kind)
    sink = SMTPSink()
    sink.port = port
    try:
        with WebhookReceiver(secret=SECRET) as ops:
            email = sink.settings(timeout=SMTP_TIMEOUT)
            config = write_config(config_file, database_url, None, email=email, webhooks=[ops.settings(name="ops")])
            engine = make_engine(database_url)
            settings = load_settings(config, {})
            for n in range(2):
                add_article(engine, settings, url=f"https://n.example/{n}", mentions=(("Almaty", "Almaty"),))

            def deliver() -> dict[str, Any]:
                command = [MONITOR, "--config", str(config), "alerts", "deliver", "--json"]
                result = subprocess.run(command, capture_output=True, text=True, timeout=60)
                assert result.returncode == 0, result.stderr
                return dict(json.loads(result.stdout))

            started = time.monotonic()
            first = deliver()
            took = time.monotonic() - started
            assert (first["sent"], first["retrying"]) == (2, 1), first
            reason = "Connection refused" if kind == "closed" else f"no answer within {SMTP_TIMEOUT}s"
            assert len(first["errors"]) == 1 and reason in first["errors"][0], first
            assert len(ops.kept) == 2
            assert took < SMTP_TIMEOUT + 8, took  # the deadline, and the command's start-up

            if down is not None:
                down.stop()
                down = None
            sink.start()  # the relay is back, on the same port
            wait_for(lambda: all(a.next_attempt_at.timestamp() < time.time() for a in alerts_of(engine, "email")), 5)
            second = deliver()
            engine.dispose()
    finally:
        sink.stop()
        if down is not None:
            down.stop()
    assert second["sent"] == 2, second
    assert len(mail_ids(sink)) == 2 and set(mail_ids(sink).values()) == {1}
    assert len(ops.kept) == 2 and ops.repeats == 0
    ledger.record("alerts", tried=4, survived=4)
