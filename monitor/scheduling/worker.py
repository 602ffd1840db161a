"""One process's polling machinery: fetcher, process pool, database thread, its leases.

``async with Worker(settings, engine) as worker:`` then ``poll_cycle()`` (one pass over
every feed, ``monitor poll``) or ``tick()`` from a scheduler (claim what is due and poll
it in the background, the daemon). The database decides what is due, so any number of
workers can share one PostgreSQL database and a back-off is just a later ``next_poll_at``.

Threads: the event loop keeps the network busy; every database statement runs on one
database thread the worker owns (so the archive's in-memory state is only ever touched
by one thread); parsing and extraction run in the process pool.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from monitor.config import Settings
from monitor.db import is_outage, outage_reason
from monitor.pipeline.fetch import Fetcher
from monitor.pipeline.pool import CPUPool
from monitor.pipeline.refresh import FeedSnapshot, Refresher, RefreshOutcome
from monitor.scheduling.leases import claim_feeds, new_owner, reclaim_abandoned, record_outcomes, release_leases
from monitor.scheduling.leases import renew_leases as renew_leases_of
from monitor.scheduling.report import CycleReport, describe
from monitor.times import utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")
_Pending = tuple[RefreshOutcome, FeedSnapshot, "asyncio.Future[datetime]"]


def _log_fields(outcome: RefreshOutcome, owner: str) -> dict[str, object]:
    """A poll's figures as fields of its log line (``log_format: json``)."""
    return {
        "feed_id": outcome.feed_id,
        "feed": outcome.feed_name,
        "worker": owner,
        "status": str(outcome.status),
        "stored": outcome.stored,
        "new_entries": outcome.new_entries,
        "alerts": outcome.alerts,
        "error_kind": str(outcome.error_kind) if outcome.error_kind else None,
        "elapsed": round(outcome.elapsed, 3),
    }


class Worker:
    """Claims feeds, refreshes them, records their outcomes, keeps and gives back its leases."""

    def __init__(
        self,
        settings: Settings,
        engine: sa.Engine,
        *,
        owner: str | None = None,
        rng: random.Random | None = None,
        pool: CPUPool | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.owner = owner or new_owner()
        self.rng = rng or random.Random()
        # Feeds in flight; more than the HTTP concurrency keeps the parse pool busy,
        # not so many that claimed feeds wait long for a connection.
        self.capacity = max(2 * settings.poll.concurrency, 4)
        self._own_pool = pool is None
        self.pool = pool or CPUPool(settings.poll.extract_workers)
        self.fetcher: Fetcher | None = None
        self.refresher: Refresher | None = None
        self._db_thread = ThreadPoolExecutor(1, thread_name_prefix="monitor-db")
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._on_outcome: Callable[[RefreshOutcome], None] | None = None
        # Called when a poll has queued alerts (the daemon delivers them right away).
        self.on_alerts_queued: Callable[[], None] | None = None
        self._outcomes: list[_Pending] = []
        # Feeds whose outcome could not be written (the database was away): their leases
        # are given back as soon as it answers, so they are polled again at once rather
        # than when the lease runs out.
        self._unrecorded: set[int] = set()
        self._recorder: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Worker:
        self.fetcher = Fetcher(self.settings.poll)
        self.refresher = Refresher(
            settings=self.settings,
            engine=self.engine,
            fetcher=self.fetcher,
            pool=self.pool,
            db_executor=self._db_thread,
        )
        self.pool.start()  # in the background, while the first feeds download
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown(self.settings.poll.shutdown_grace)

    @property
    def in_flight(self) -> list[int]:
        return list(self._tasks)

    def request_stop(self) -> None:
        """Stop claiming feeds (signal handlers call this)."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def reconfigure(self, settings: Settings) -> None:
        """Store new articles under ``settings`` from now on (entities, alert channels).

        The swap runs on the database thread, between two stores: no article is stored
        half under the old settings. Poll settings (concurrency, timeouts) keep their
        start-up values: the fetcher and its connections are built from them.
        """
        self.settings = settings
        if self.refresher is not None:
            await self._db(self.refresher.reconfigure, settings)

    async def _db(self, func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking database work on the database thread."""
        call = functools.partial(func, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, call)

    async def _claim(self, limit: int, **kwargs: Any) -> list[FeedSnapshot]:
        if self._unrecorded:
            unrecorded = sorted(self._unrecorded - set(self._tasks))
            await self._db(release_leases, self.engine, owner=self.owner, feed_ids=unrecorded)
            self._unrecorded.difference_update(unrecorded)
        await self._db(reclaim_abandoned, self.engine)
        return await self._db(
            claim_feeds, self.engine, owner=self.owner, poll=self.settings.poll, limit=limit, **kwargs
        )

    async def _record(self, outcome: RefreshOutcome, feed: FeedSnapshot) -> datetime:
        """Record ``outcome``, together with those that finish while a write is under way.

        One transaction per batch rather than per feed: when hundreds of feeds finish
        within a second, most of a transaction's cost (its commit) is shared.
        """
        done: asyncio.Future[datetime] = asyncio.get_running_loop().create_future()
        self._outcomes.append((outcome, feed, done))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_pending(), name="record-outcomes")
        return await asyncio.shield(done)

    async def _record_pending(self) -> None:
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                planned = await self._db(
                    record_outcomes,
                    self.engine,
                    [(outcome, feed) for outcome, feed, _done in batch],
                    owner=self.owner,
                    poll=self.settings.poll,
                    rng=self.rng,
                )
            except BaseException as exc:
                for _outcome, _feed, done in batch:
                    if not done.done():
                        done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_outcome, _feed, done), next_poll_at in zip(batch, planned, strict=True):
                if not done.done():
                    done.set_result(next_poll_at)

    def _start(self, feed: FeedSnapshot, report: CycleReport | None) -> None:
        task = asyncio.create_task(self._poll_feed(feed, report), name=f"feed-{feed.id}")
        self._tasks[feed.id] = task
        task.add_done_callback(functools.partial(self._forget, feed.id))

    def _forget(self, feed_id: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(feed_id, None)

    async def _poll_feed(self, feed: FeedSnapshot, report: CycleReport | None) -> None:
        assert self.refresher is not None
        outcome = await self.refresher.refresh(feed)
        next_poll_at: datetime | None
        try:
            next_poll_at = await self._record(outcome, feed)
        except Exception as exc:
            # Nothing is lost: the feed is polled again once its lease is given back (the
            # next claim that reaches the database) and known articles are not fetched twice.
            self._unrecorded.add(feed.id)
            if is_outage(exc):
                reason = outage_reason(exc)
                log.warning("feed %r: cannot record the outcome: %s", feed.name, reason, extra={"feed_id": feed.id})
            else:
                log.exception("feed %r: cannot record the outcome", feed.name, extra={"feed_id": feed.id})
            next_poll_at = None
        log.info(describe(outcome, next_poll_at), extra=_log_fields(outcome, self.owner))
        if report is not None:
            report.add_outcome(outcome)
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        if outcome.alerts and self.on_alerts_queued is not None:
            self.on_alerts_queued()

    async def poll_cycle(
        self, *, due_only: bool = False, on_outcome: Callable[[RefreshOutcome], None] | None = None
    ) -> CycleReport:
        """Poll every active feed once (or only the due ones), sharing them with other workers."""
        loop = asyncio.get_running_loop()
        started, report = loop.time(), CycleReport()
        cycle_start = utcnow()
        self._on_outcome = on_outcome
        exhausted = False
        while not self.stopping:
            free = self.capacity - len(self._tasks)
            if not exhausted and free > 0 and (free >= self.capacity // 2 or not self._tasks):
                feeds = await self._claim(free, due_only=due_only, polled_before=cycle_start)
                exhausted = len(feeds) < free
                for feed in feeds:
                    self._start(feed, report)
            if not self._tasks:
                break
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait([*self._tasks.values(), stop], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
        report.elapsed = loop.time() - started
        return report

    async def tick(self) -> int:
        """Claim the feeds that are due, up to the free capacity, and poll them in the background."""
        if self.stopping:
            return 0
        free = self.capacity - len(self._tasks)
        if free <= 0:
            return 0
        feeds = await self._claim(free, due_only=True)
        for feed in feeds:
            self._start(feed, None)
        return len(feeds)

    async def renew_leases(self) -> None:
        """Keep the leases of feeds still in flight (a long poll outlives ``poll.lease``)."""
        if self._tasks:
            await self._db(
                renew_leases_of, self.engine, owner=self.owner, feed_ids=self.in_flight, lease=self.settings.poll.lease
            )

    async def shutdown(self, grace: float) -> None:
        """Let in-flight polls finish for ``grace`` seconds, abandon the rest, release leases."""
        self.request_stop()
        self.on_alerts_queued = None
        tasks = list(self._tasks.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                log.info("abandoned %d feed poll(s) in flight; they stay due", len(pending))
        if self._recorder is not None:
            # Outcomes already handed over are written before the database thread stops.
            await asyncio.gather(self._recorder, return_exceptions=True)
        # Database work already under way finishes (one transaction each).
        await asyncio.to_thread(self._db_thread.shutdown, wait=True)
        released = release_leases(self.engine, owner=self.owner)
        if released:
            log.info("released %d lease(s)", released)
        if self.fetcher is not None:
            await self.fetcher.aclose()
            self.fetcher = None
        if self._own_pool:
            self.pool.close()
        self.refresher = None


__all__ = ["Worker"]
