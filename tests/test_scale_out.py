"""Scale-out on PostgreSQL: three `monitor run` workers share 300 feeds through their leases.

Real processes on one fresh database, feeds and pages on a local server that notes when
each feed is fetched, alerts to a local webhook receiver. Over several short intervals
every feed is fetched once per interval, every article stored once and every alert
delivered once; a worker killed with SIGKILL mid-poll leaves its feeds to the others.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.models import Alert, Article, Feed
from tests.support.daemons import Daemon, alerted_urls, count, stored_urls, write_config
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.servers import HTTPServer, Request, Response, WebhookReceiver
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SECRET = "whsec_" + "c2NhbGUtb3V0LW9uLXBvc3RncmVzcWwtdGVzdHM="
FEEDS = 300
WORKERS = 3
INTERVAL = 6.0  # seconds; each poll plans the next at 0.9 to 1.1 intervals
LEASE = 6.0
JITTER = 0.1
# Time a due feed may wait on top of its interval: the workers' tick (0.3 s), the claim
# and the fetch, on a 2-core machine running three workers and their pools.
LATE = 4.0


class Sites:
    """300 feeds on one server; each feed's fetch times, and stories added as the test goes."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.stories: dict[int, list[int]] = defaultdict(list)  # feed → its stories' numbers
        self.fetched: dict[int, list[float]] = defaultdict(list)  # feed → monotonic fetch times
        self._feeds: dict[int, Response] = {}

    def feed_url(self, feed: int) -> str:
        return self.server.url(f"/f{feed}")

    def page_path(self, feed: int, n: int) -> str:
        return f"/f{feed}/p/{n}"

    def add_story(self, feed: int, *, delay: float = 0.0) -> str:
        n = len(self.stories[feed])
        path = self.page_path(feed, n)
        page = article_page(f"Story {feed}-{n}", story(f"Almaty {feed} {n}", 8))
        self.server.route(path, Response(page, headers={"Content-Type": "text/html"}, delay=delay))
        self.stories[feed].append(n)
        items = [Item(f"Story {feed}-{k}", self.server.url(self.page_path(feed, k))) for k in self.stories[feed]]
        self._feeds[feed] = Response(rss20(items), headers={"Content-Type": FEED_TYPES["rss20"]})
        self.server.route(f"/f{feed}", self._answer(feed))
        return self.server.url(path)

    def _answer(self, feed: int) -> Callable[[Request], Response]:
        def answer(_request: Request) -> Response:
            self.fetched[feed].append(time.monotonic())
            return self._feeds[feed]

        return answer

    def page_fetches(self, url: str) -> int:
        return len(self.server.hits(url.removeprefix(self.server.url(""))))


def leases_of(engine: sa.Engine, pid: int) -> set[int]:
    """The feeds whose lease the worker with process id ``pid`` holds now."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(Feed.id, Feed.url, Feed.lease_owner).where(Feed.lease_owner.is_not(None)))
        return {int(url.rsplit("/f", 1)[1]) for _id, url, owner in rows if f":{pid}:" in owner}


def test_three_workers_share_300_feeds_each_fetched_once_per_interval_and_survive_a_kill(
    fresh_database_url: Callable[[str], str], config_file: Callable[..., Path]
) -> None:
    url = fresh_database_url("postgresql")
    engine = sa.create_engine(url)
    with HTTPServer() as server, WebhookReceiver(SECRET) as receiver:
        sites = Sites(server)
        expected = [sites.add_story(feed) for feed in range(FEEDS)]
        names = {f"Wire {feed}": sites.feed_url(feed) for feed in range(FEEDS)}
        path = write_config(
            config_file, url, names, receiver, interval=f"{INTERVAL:g}s", lease=f"{LEASE:g}s", per_host=20
        )
        with ExitStack() as stack:
            workers = [stack.enter_context(Daemon(path)) for _ in range(WORKERS)]
            # 1. The first poll of every feed: one story each, stored and alerted once.
            wait_for(lambda: count(engine, Article) == FEEDS, 180, "the first story of every feed")
            wait_for(lambda: len(receiver.kept) == FEEDS, 60, "an alert for each")
            assert receiver.repeats == 0

            # 2. Steady state: nothing new for three more intervals; each feed fetched once
            # in each (server-side times), never twice within one. From each feed's second
            # fetch on: the first one's poll also extracted its story.
            wait_for(lambda: all(len(sites.fetched[f]) >= 2 for f in range(FEEDS)), 2 * INTERVAL + 60, "second polls")
            steady_from = {feed: len(times) for feed, times in sites.fetched.items()}
            wait_for(
                lambda: all(len(sites.fetched[f]) >= steady_from[f] + 3 for f in range(FEEDS)),
                6 * INTERVAL + 60,
                "three more fetches of every feed",
            )
            gaps = [
                later - earlier
                for feed in range(FEEDS)
                for earlier, later in zip(
                    sites.fetched[feed][steady_from[feed] - 1 :], sites.fetched[feed][steady_from[feed] :], strict=False
                )
            ]
            assert min(gaps) >= INTERVAL * (1 - JITTER) - 0.5, f"a feed fetched twice in {min(gaps):.2f} s"
            assert max(gaps) <= INTERVAL * (1 + JITTER) + LATE, f"a feed left {max(gaps):.2f} s between fetches"

            # 3. New stories in a third of the feeds, while all three workers poll.
            expected += [sites.add_story(feed) for feed in range(0, FEEDS, 3)]
            wait_for(lambda: count(engine, Article) == len(expected), 120, "the new stories")
            wait_for(lambda: len(receiver.kept) == len(expected), 60, "their alerts")
            assert receiver.repeats == 0

            # 4. SIGKILL a worker in the middle of polling feeds whose new pages are slow.
            slow = list(range(1, FEEDS, 10))
            expected += [sites.add_story(feed, delay=3.0) for feed in slow]
            victim, survivors = workers[0], workers[1:]
            held: set[int] = set()

            def victim_holds_slow_feeds() -> bool:
                held.update(leases_of(engine, victim.pid) & set(slow))
                return bool(held)

            wait_for(victim_holds_slow_feeds, 3 * INTERVAL + 30, "the worker to lease a slow feed")
            held = leases_of(engine, victim.pid)
            assert held, "the worker finished its slow feeds before it could be killed"
            victim.kill()
            killed_at = time.monotonic()
            wait_for(lambda: count(engine, Article) == len(expected), LEASE + 3 * INTERVAL + 60, "the slow stories")
            wait_for(lambda: len(receiver.kept) == len(expected), 60, "their alerts")
            # The killed worker's feeds were taken over: fetched again by a survivor, in
            # the time its lease had left and an interval.
            retaken = [
                min(t for t in sites.fetched[feed] if t > killed_at) - killed_at
                for feed in held
                if any(t > killed_at for t in sites.fetched[feed])
            ]
            assert held and len(retaken) == len(held), (held, retaken)
            assert max(retaken) <= LEASE + INTERVAL * (1 + JITTER) + LATE, retaken
            with engine.connect() as connection:
                owners = set(
                    connection.execute(sa.select(Feed.lease_owner).where(Feed.lease_owner.is_not(None))).scalars()
                )
            assert not any(f":{victim.pid}:" in owner for owner in owners)  # none left to the dead

            codes = [worker.stop() for worker in survivors]
            logs = [worker.log() for worker in workers]
        alerted = alerted_urls(receiver)
        # Pages: fetched once each, but those the killed worker was fetching when it died.
        refetched = {url for url in expected if sites.page_fetches(url) != 1}
        killed_pages = {server.url(sites.page_path(feed, len(sites.stories[feed]) - 1)) for feed in held}
    stored = stored_urls(engine)
    alerts = count(engine, Alert)
    engine.dispose()
    print(
        f"{FEEDS} feeds, {WORKERS} workers, interval {INTERVAL:g} s: {sum(map(len, sites.fetched.values()))} feed "
        f"fetches, steady gaps {min(gaps):.1f} to {max(gaps):.1f} s; {len(stored)} articles stored, {alerts} alerts, "
        f"{len(alerted)} delivered ({receiver.repeats} repeated); killed worker held {len(held)} feed(s), retaken "
        f"after {min(retaken):.1f} to {max(retaken):.1f} s"
    )
    assert codes == [0] * len(survivors) and "Traceback" not in "".join(logs), "".join(logs)[-3000:]
    assert len(stored) == len(set(stored)) and sorted(stored) == sorted(expected)
    assert alerts == len(expected)
    assert sorted(set(alerted)) == sorted(expected)  # one delivery kept per article
    assert refetched <= killed_pages, sorted(refetched - killed_pages)
    # Each of the three took its share of the polls.
    polled = [log.count(": ok, ") + log.count(": unchanged") for log in logs]
    assert all(polled), polled
