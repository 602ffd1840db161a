"""Crashes and company: ``kill -9`` mid-poll and mid-dispatch, again and again, and two
daemons on one database. Real ``monitor run`` processes, real feeds, a real webhook
receiver that verifies signatures and, like a well-behaved receiver, keeps the first
delivery of each ``webhook-id``.

What must hold: every story ends up stored exactly once, every alert is delivered (a
re-send after a crash carries the same ``webhook-id``, so the receiver drops it), no
article is alerted under two ids, the extraction pool of a killed daemon exits by itself,
and the next daemon takes over the dead one's work at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.models import Alert, Article
from monitor.outcomes import AlertStatus
from tests.reliability.conftest import Ledger
from tests.support.daemons import Daemon, alerted_urls, count, losses, site, stored_urls, write_config
from tests.support.servers import HTTPServer, WebhookReceiver
from tests.support.waiting import wait_for

SECRET = "whsec_" + "c2VjcmV0LW9mLXRoZS1jcmFzaC10ZXN0cw=="


def tally(ledger: Ledger, part: str, rounds: int, expected: list[str], got: list[str], crashed: int = 0) -> None:
    lost, duplicated = losses(expected, got)
    clean = not (lost or duplicated or crashed)
    ledger.record(
        part, tried=rounds, survived=rounds if clean else 0, lost=lost, duplicated=duplicated, crashed=crashed
    )


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_kill_9_mid_poll_again_and_again_loses_and_repeats_nothing(
    fresh_database_url: Callable[[str], str], config_file: Callable[..., Path], ledger: Ledger, kind: str
) -> None:
    rounds, pages = 3, 8
    url = fresh_database_url(kind)
    engine = sa.create_engine(url)
    with HTTPServer() as server, WebhookReceiver(SECRET) as receiver:
        expected = site(server, "/feed", pages, delay=0.5)
        path = write_config(config_file, url, {"Wire": server.url("/feed")}, receiver, per_host=1, timeout="30s")
        progress = []
        for _ in range(rounds):
            before = count(engine, Article)
            with Daemon(path) as daemon:
                wait_for(lambda: count(engine, Article) > before, 60, "a story stored by this daemon")  # noqa: B023
                daemon.kill()
                daemon.helpers_gone()
            progress.append(count(engine, Article))
        assert progress[-1] < pages, f"the polls were not cut short: {progress}"
        with Daemon(path) as daemon:
            wait_for(lambda: count(engine, Article) == pages, 60, "every story")
            wait_for(lambda: len(receiver.kept) >= pages, 30, "every alert")
            assert daemon.stop() == 0
            log = daemon.log()
        assert "Traceback" not in log, log
    got = stored_urls(engine)
    alerted = alerted_urls(receiver)
    alerts = count(engine, Alert)
    engine.dispose()
    tally(ledger, "daemon", rounds, expected, got)
    tally(ledger, "alerts", rounds, expected, alerted)
    assert sorted(got) == sorted(expected)
    assert sorted(alerted) == sorted(expected)  # one alert per story, under one id
    assert alerts == pages


def test_kill_9_mid_dispatch_again_and_again_sends_every_alert_under_one_id(
    fresh_database_url: Callable[[str], str], config_file: Callable[..., Path], ledger: Ledger
) -> None:
    rounds, pages = 3, 5
    url = fresh_database_url("postgresql")
    engine = sa.create_engine(url)
    with HTTPServer() as server, WebhookReceiver(SECRET, delay=1.0) as receiver:
        expected = site(server, "/feed", pages)
        path = write_config(config_file, url, {"Wire": server.url("/feed")}, receiver, per_host=20)
        for _ in range(rounds):
            before = len(receiver.kept)
            with Daemon(path) as daemon:
                # The receiver holds each answer 1 s: kill while it holds the next new
                # alert (the one killed before is re-sent first, under its id, and marked).
                wait_for(lambda: len(receiver.kept) > before, 60, "a new alert under way")  # noqa: B023
                daemon.kill()
                daemon.helpers_gone()
        receiver.delay = 0
        with Daemon(path) as daemon:
            wait_for(lambda: count(engine, Alert, Alert.status == AlertStatus.SENT) == pages, 60, "every alert sent")
            assert daemon.stop() == 0
            log = daemon.log()
        assert "Traceback" not in log, log
        alerted = alerted_urls(receiver)
        resent = receiver.repeats
    alerts = count(engine, Alert)
    engine.dispose()
    tally(ledger, "alerts", rounds, expected, alerted)
    assert sorted(alerted) == sorted(expected)
    assert alerts == pages
    # The killed deliveries were sent again, each under the id it had: the receiver saw
    # repeats, and kept one payload per story.
    assert resent >= rounds


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_daemons_on_one_database_do_each_thing_once(
    fresh_database_url: Callable[[str], str], config_file: Callable[..., Path], ledger: Ledger, kind: str
) -> None:
    feeds, pages = 4, 3
    url = fresh_database_url(kind)
    engine = sa.create_engine(url)
    with HTTPServer() as server, WebhookReceiver(SECRET) as receiver:
        expected = [u for n in range(feeds) for u in site(server, f"/f{n}", pages, delay=0.2)]
        names = {f"Wire {n}": server.url(f"/f{n}") for n in range(feeds)}
        path = write_config(config_file, url, names, receiver, per_host=20, interval="1s")
        with Daemon(path) as first, Daemon(path) as second:
            wait_for(lambda: count(engine, Article) == feeds * pages, 60, "every story")
            wait_for(lambda: len(receiver.kept) >= feeds * pages, 30, "every alert")
            # Both keep polling the (unchanged) feeds for a while.
            polls = sum(len(server.hits(f"/f{n}")) for n in range(feeds))
            wait_for(lambda: sum(len(server.hits(f"/f{n}")) for n in range(feeds)) >= polls + 2 * feeds, 30, "polls")
            codes = (first.stop(), second.stop())
            logs = first.log() + second.log()
        page_fetches = [len(server.hits(u.removeprefix(server.url("")))) for u in expected]
        alerted = alerted_urls(receiver)
        repeats = receiver.repeats
    got = stored_urls(engine)
    alerts = count(engine, Alert)
    engine.dispose()
    crashed = sum(code != 0 for code in codes) + logs.count("Traceback")
    tally(ledger, "daemon", 1, expected, got, crashed=crashed)
    tally(ledger, "alerts", 1, expected, alerted)
    assert codes == (0, 0) and "Traceback" not in logs, logs
    assert sorted(got) == sorted(expected) and alerts == feeds * pages
    assert page_fetches == [1] * len(expected)  # no page fetched by both
    assert sorted(alerted) == sorted(expected) and repeats == 0  # no alert sent by both
