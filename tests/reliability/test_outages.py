"""The database goes away while the daemon runs, and comes back.

A real ``monitor run`` on PostgreSQL reaches the server through a TCP proxy on
127.0.0.1 (``tests.support.proxy``); the test cuts the proxy — open connections
dropped, new ones refused, as when the server dies — keeps it cut until the daemon has
met the outage (said so, and the feed fell due or the poll under way failed), and
restores it. The server itself keeps running for the other tests. The daemon must stay
up, say that the database is unreachable, and once it is back store every story and send
every alert exactly once.

Two moments for the cut: between two polls (new stories appear during the outage), and
in the middle of a poll whose pages are still downloading. A poll cut short cannot record
its outcome; the daemon gives its feed's lease back with the first claim that reaches the
database again, so the feed is polled again at once, with a short ``poll.lease`` and with
the default one (five minutes) alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.models import Alert, Article, Feed
from monitor.outcomes import AlertStatus
from monitor.times import as_utc, utcnow
from tests.reliability.conftest import Ledger
from tests.support.daemons import Daemon, alerted_urls, count, losses, site, stored_urls, write_config
from tests.support.proxy import TCPProxy
from tests.support.servers import HTTPServer, WebhookReceiver
from tests.support.waiting import wait_for

SECRET = "whsec_" + "b3V0YWdlLW9mLXRoZS1kYXRhYmFzZQ=="
OVERDUE = 1.5  # seconds: five of the daemon's ticks (write_config: poll.tick 0.3 s)


@dataclass
class World:
    """A daemon on PostgreSQL through a proxy, a site, a webhook receiver."""

    engine: sa.Engine  # the test's own view of the database, around the proxy
    proxy: TCPProxy
    server: HTTPServer
    receiver: WebhookReceiver
    through_proxy: str
    config_file: Callable[..., Path]

    def config(self, **poll: Any) -> Path:
        return write_config(
            self.config_file, self.through_proxy, {"Wire": self.server.url("/feed")}, self.receiver, **poll
        )

    def last_polled(self) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(Feed.last_polled_at)).scalar_one()

    def next_poll(self) -> datetime:
        with self.engine.connect() as connection:
            return as_utc(connection.execute(sa.select(Feed.next_poll_at)).scalar_one())


@pytest.fixture
def world(fresh_database_url: Callable[[str], str], config_file: Callable[..., Path]) -> Iterator[World]:
    url = sa.engine.make_url(fresh_database_url("postgresql"))
    engine = sa.create_engine(url)
    with TCPProxy(url.port or 5432) as proxy, HTTPServer() as server, WebhookReceiver(SECRET) as receiver:
        through_proxy = url.set(port=proxy.port).render_as_string(hide_password=False)
        yield World(engine, proxy, server, receiver, through_proxy, config_file)
    engine.dispose()


def outage(world: World, daemon: Daemon, until: Callable[[], bool], what: str) -> str:
    """Cut the database off until the daemon has told so and ``until()`` holds (``what``);
    what the daemon logged meanwhile."""
    world.proxy.cut()
    wait_for(lambda: "cannot claim feeds" in daemon.log() and until(), 30, f"the outage told and {what}")
    assert daemon.running(), "the daemon died with the database"
    said = daemon.log()
    world.proxy.restore()
    return said


def settle(ledger: Ledger, world: World, expected: list[str], code: int, log: str, during: str) -> None:
    """Record and check the end state: each story stored once, alerted once, a clean exit."""
    got, alerted = stored_urls(world.engine), alerted_urls(world.receiver)
    lost, duplicated = losses(expected, got)
    lost_alerts, repeated_alerts = losses(expected, alerted)
    crashed = int(code != 0)
    clean = not (lost or duplicated or lost_alerts or repeated_alerts or crashed)
    ledger.record("database", tried=1, survived=int(clean), lost=lost + lost_alerts,
                  duplicated=duplicated + repeated_alerts, crashed=crashed)  # fmt: skip
    assert code == 0, log[-3000:]
    assert sorted(got) == sorted(expected) and count(world.engine, Alert) == len(expected)
    assert sorted(alerted) == sorted(expected)  # every alert, each story once
    # The outage was told, with its cause.
    assert "cannot claim feeds" in during and "Connection refused" in during, during[-3000:]
    # Told once, not a traceback at every tick (nor for a poll it cut); and its end told too.
    assert during.count("cannot claim feeds") == 1, during[-3000:]
    assert "Traceback" not in during, during[-3000:]
    assert "the database answers again" in log


def test_outage_between_polls_loses_and_repeats_nothing(world: World, ledger: Ledger) -> None:
    first = site(world.server, "/feed", 3)
    with Daemon(world.config(interval="3s")) as daemon:
        wait_for(lambda: len(world.receiver.kept) == 3, 60, "the first stories and their alerts")
        polled = world.last_polled()
        wait_for(lambda: world.last_polled() != polled, 30, "a poll to finish")  # the next one is 3 s away
        later = site(world.server, "/feed", 3, first=3)  # published as the database goes away
        # The database stays away until the feed has been due for several ticks, each a
        # claim that fails.
        overdue = world.next_poll() + timedelta(seconds=OVERDUE)
        during = outage(world, daemon, lambda: utcnow() > overdue, "the feed overdue")
        wait_for(lambda: count(world.engine, Article) == 6, 30, "the stories published during the outage")
        wait_for(lambda: count(world.engine, Alert, Alert.status == AlertStatus.SENT) == 6, 60, "their alerts")
        code, log = daemon.stop(), daemon.log()
    settle(ledger, world, first + later, code, log, during)


def cut_mid_poll(world: World, daemon: Daemon) -> tuple[list[str], str]:
    """Publish stories whose pages are slow, cut the database while they download, and
    restore it once the poll has failed for want of it."""
    later = site(world.server, "/feed", 3, delay=2.0, first=3)
    wait_for(lambda: len(world.server.hits("/feed/p/3")) == 1, 30, "the next poll to fetch a new page")
    return later, outage(world, daemon, lambda: "cannot record the outcome" in daemon.log(), "the poll cut short")


def test_outage_mid_poll_with_a_short_lease_loses_and_repeats_nothing(world: World, ledger: Ledger) -> None:
    first = site(world.server, "/feed", 3)
    with Daemon(world.config(interval="1s", lease="12s")) as daemon:
        wait_for(lambda: len(world.receiver.kept) == 3, 60, "the first stories and their alerts")
        later, during = cut_mid_poll(world, daemon)
        # Redone when the daemon gives the cut poll's lease back, or at the latest when the
        # lease runs out, 12 s after it was last renewed.
        wait_for(lambda: count(world.engine, Article) == 6, 45, "the stories of the cut poll")
        wait_for(lambda: count(world.engine, Alert, Alert.status == AlertStatus.SENT) == 6, 60, "their alerts")
        code, log = daemon.stop(), daemon.log()
    settle(ledger, world, first + later, code, log, during)


@pytest.mark.slow
def test_outage_mid_poll_is_made_good_soon_after_the_database_returns(world: World, ledger: Ledger) -> None:
    first = site(world.server, "/feed", 3)
    with Daemon(world.config(interval="1s")) as daemon:  # the default lease
        wait_for(lambda: len(world.receiver.kept) == 3, 60, "the first stories and their alerts")
        later, during = cut_mid_poll(world, daemon)
        with ledger.trial("database"):
            wait_for(lambda: count(world.engine, Article) == 6, 20, "the stories of the cut poll")
            wait_for(lambda: count(world.engine, Alert, Alert.status == AlertStatus.SENT) == 6, 30, "their alerts")
            code, log = daemon.stop(), daemon.log()
            assert code == 0 and sorted(stored_urls(world.engine)) == sorted(first + later), log[-3000:]
            assert during.count("cannot claim feeds") == 1, during[-3000:]
