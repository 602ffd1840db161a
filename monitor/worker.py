"""Scheduling: which feeds are due, who polls them (leases), when they come back (back-off).

The database is the source of truth. A feed is *due* when ``next_poll_at <= now``; a
worker *claims* due feeds by writing its name and an expiry into ``lease_owner`` /
``lease_expires_at`` in one short statement, polls them, then records the outcome and
clears the lease in one more. So any number of ``monitor run`` processes can share one
PostgreSQL database:

- PostgreSQL: the claim is ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)``;
  two workers never claim the same feed, and neither waits for the other.
- SQLite: the same statement without the row locks (SQLite has none); the database-wide
  write lock makes the claim atomic. SQLite is meant for one worker process.

A worker renews its leases while it works; one that dies loses them when they expire
(``poll.lease``), or at once when a process on the same host finds the owner's process
gone. Articles are never stored twice whatever happens: their URL is unique, and a
feed's validators (ETag, body hash) are saved only after its entries are stored.

Back-off: a failing feed waits ``interval × 2^(failures−1)``, with jitter, at most
``poll.max_backoff``, and never less than the server asked for (``Retry-After``,
``Cache-Control: max-age``, kept in ``not_before``). The first success resets it.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import signal
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from monitor.alerts.dispatch import DeliveryReport, deliver_due
from monitor.config import FeedConfig, PollSettings, Settings
from monitor.db import session
from monitor.models import Feed, utcnow
from monitor.pipeline.fetch import Fetcher
from monitor.pipeline.refresh import CPUPool, FeedSnapshot, Refresher, RefreshOutcome

log = logging.getLogger(__name__)

ALERT_EVERY = 30.0  # seconds between two alert deliveries in the daemon
SYNC_EVERY = 300.0  # seconds between two reloads of the configured feeds
# A Retry-After beyond this is a server's mistake, not a wish to be honoured.
RETRY_AFTER_CEILING = 30 * 86400.0


# ------------------------------------------------------------------ configured feeds


@dataclass(frozen=True)
class SyncReport:
    added: int = 0
    updated: int = 0
    deactivated: int = 0


def sync_feeds(engine: sa.Engine, feeds: Sequence[FeedConfig], *, now: datetime | None = None) -> SyncReport:
    """Make the Feed table match the configuration, matching rows by URL, then name.

    A feed gone from the configuration is deactivated, never deleted: its articles stay.
    Two workers syncing at once may collide on a new name; the loser retries.
    """
    for attempt in range(3):
        try:
            return _sync_once(engine, feeds, now or utcnow())
        except sa.exc.IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _sync_once(engine: sa.Engine, feeds: Sequence[FeedConfig], now: datetime) -> SyncReport:
    with session(engine) as db:
        rows = list(db.exec(select(Feed)).all())
        by_url = {r.url: r for r in rows}
        by_name = {r.name: r for r in rows}
        matched: dict[int, tuple[Feed, FeedConfig]] = {}
        new: list[FeedConfig] = []
        for config in feeds:
            row = by_url.get(config.url) or by_name.get(config.name)
            if row is None or row.id in matched:
                new.append(config)
            else:
                matched[row.id] = (row, config)  # type: ignore[index]
        before = {r.id: (r.name, r.url) for r, _c in matched.values()}
        # Names and URLs are unique: park the changing rows first so a swap cannot collide.
        for row, config in matched.values():
            if (row.name, row.url) != (config.name, config.url):
                row.name = row.url = f"(renaming {row.id} {uuid.uuid4().hex})"
        db.flush()
        updated = sum(_apply(row, config, *before[row.id], now) for row, config in matched.values())
        for config in new:
            db.add(Feed(name=config.name, url=config.url, interval=config.interval, next_poll_at=now))
        deactivated = 0
        for row in rows:
            if row.id not in matched and row.active:
                row.active = False
                deactivated += 1
        db.commit()
    report = SyncReport(added=len(new), updated=updated, deactivated=deactivated)
    if report != SyncReport():
        log.info("feeds synced: %d added, %d updated, %d deactivated", *vars(report).values())
    return report


def _apply(row: Feed, config: FeedConfig, name: str, url: str, now: datetime) -> bool:
    """Bring ``row`` (named ``name``, at ``url``) in line with ``config``; True when anything changed."""
    changed = False
    if url != config.url:
        # Another source: its validators and health say nothing about the new one.
        row.etag = row.last_modified = row.body_hash = None
        row.error_count, row.status, row.error_kind, row.error_message = 0, "new", None, None
        row.next_poll_at, row.not_before = now, None
        changed = True
    if not row.active or row.interval != config.interval:
        row.next_poll_at = now if row.not_before is None else max(now, row.not_before)
        changed = True
    changed = changed or name != config.name
    row.name, row.url, row.interval, row.active = config.name, config.url, config.interval, True
    return changed


# ---------------------------------------------------------------------------- leases


def new_owner() -> str:
    """A worker's name in leases: host, process id, and a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _snapshot(row: Any, poll: PollSettings) -> FeedSnapshot:
    return FeedSnapshot(
        id=row.id,
        name=row.name,
        url=row.url,
        interval=row.interval or poll.interval,
        etag=row.etag,
        last_modified=row.last_modified,
        body_hash=row.body_hash,
        error_count=row.error_count,
    )


def claim_feeds(
    engine: sa.Engine,
    *,
    owner: str,
    poll: PollSettings,
    limit: int,
    due_only: bool = True,
    polled_before: datetime | None = None,
    now: datetime | None = None,
) -> list[FeedSnapshot]:
    """Lease up to ``limit`` feeds that no live worker holds, in one short transaction.

    ``due_only``: feeds whose ``next_poll_at`` has come (the daemon). Otherwise every
    active feed not polled since ``polled_before`` whose server allows a fetch now
    (``monitor poll``).
    """
    now = now or utcnow()
    free = sa.or_(Feed.lease_expires_at.is_(None), Feed.lease_expires_at <= now)
    conditions = [Feed.active.is_(True), free]
    if due_only:
        conditions.append(sa.or_(Feed.next_poll_at.is_(None), Feed.next_poll_at <= now))
    else:
        conditions.append(sa.or_(Feed.not_before.is_(None), Feed.not_before <= now))
        if polled_before is not None:
            conditions.append(sa.or_(Feed.last_polled_at.is_(None), Feed.last_polled_at < polled_before))
    picked = (
        sa.select(Feed.id)
        .where(*conditions)
        .order_by(Feed.next_poll_at.asc().nulls_first(), Feed.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claim = (
        sa.update(Feed)
        .where(Feed.id.in_(picked.scalar_subquery()), free)
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=poll.lease))
        .returning(
            Feed.id, Feed.name, Feed.url, Feed.interval, Feed.etag, Feed.last_modified, Feed.body_hash, Feed.error_count
        )
    )
    with engine.begin() as connection:
        rows = connection.execute(claim).all()
    return sorted((_snapshot(row, poll) for row in rows), key=lambda f: f.id)


def renew_leases(engine: sa.Engine, *, owner: str, feed_ids: Sequence[int], lease: float) -> int:
    """Push back the expiry of the leases ``owner`` still holds."""
    if not feed_ids:
        return 0
    expires = utcnow() + timedelta(seconds=lease)
    with engine.begin() as connection:
        result = connection.execute(
            sa.update(Feed)
            .where(Feed.id.in_(list(feed_ids)), Feed.lease_owner == owner)
            .values(lease_expires_at=expires)
        )
    return result.rowcount


def release_leases(engine: sa.Engine, *, owner: str) -> int:
    """Give back every lease ``owner`` holds; the feeds stay due for whoever comes next."""
    with engine.begin() as connection:
        result = connection.execute(
            sa.update(Feed).where(Feed.lease_owner == owner).values(lease_owner=None, lease_expires_at=None)
        )
    return result.rowcount


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reclaim_abandoned(engine: sa.Engine, *, now: datetime | None = None) -> int:
    """Free the leases of processes on this host that no longer exist (killed workers).

    Leases of other hosts are left to expire: their processes cannot be checked.
    """
    now = now or utcnow()
    host = socket.gethostname()[:60]
    with engine.connect() as connection:
        owners = connection.execute(
            sa.select(Feed.lease_owner).where(Feed.lease_owner.is_not(None), Feed.lease_expires_at > now).distinct()
        ).scalars()
        dead = [o for o in owners if _dead_local_owner(o, host)]
    if not dead:
        return 0
    with engine.begin() as connection:
        result = connection.execute(
            sa.update(Feed).where(Feed.lease_owner.in_(dead)).values(lease_owner=None, lease_expires_at=None)
        )
    log.info("freed %d feed lease(s) of %d dead process(es)", result.rowcount, len(dead))
    return result.rowcount


def _dead_local_owner(owner: str, host: str) -> bool:
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    owner_host, pid = parts[0], int(parts[1])
    return owner_host == host and pid != os.getpid() and not _process_alive(pid)


# -------------------------------------------------------------------------- back-off


def plan_next(
    outcome: RefreshOutcome,
    *,
    interval: float,
    error_count: int,
    poll: PollSettings,
    now: datetime,
    rng: random.Random,
) -> tuple[datetime, datetime | None]:
    """``(next_poll_at, not_before)`` after ``outcome``; ``error_count`` counts this failure."""
    if outcome.failed:
        backoff = min(poll.max_backoff, interval * 2 ** min(error_count - 1, 40))
        wait = backoff * rng.uniform(0.8, 1.0)
    else:
        wait = interval * rng.uniform(0.9, 1.1)
    server_wait = max(min(outcome.retry_after or 0.0, RETRY_AFTER_CEILING), outcome.max_age or 0.0)
    not_before = now + timedelta(seconds=server_wait) if server_wait > 0 else None
    next_poll_at = now + timedelta(seconds=max(wait, server_wait))
    return next_poll_at, not_before


def record_outcome(
    engine: sa.Engine,
    outcome: RefreshOutcome,
    feed: FeedSnapshot,
    *,
    owner: str,
    poll: PollSettings,
    rng: random.Random,
    now: datetime | None = None,
) -> datetime:
    """Write the outcome, health and next poll on the feed and release its lease, atomically."""
    (next_poll_at,) = record_outcomes(engine, [(outcome, feed)], owner=owner, poll=poll, rng=rng, now=now)
    return next_poll_at


def record_outcomes(
    engine: sa.Engine,
    outcomes: Sequence[tuple[RefreshOutcome, FeedSnapshot]],
    *,
    owner: str,
    poll: PollSettings,
    rng: random.Random,
    now: datetime | None = None,
) -> list[datetime]:
    """``record_outcome`` for several feeds in one transaction; their next polls, in order."""
    now = now or utcnow()
    planned: list[datetime] = []
    batches: dict[str, list[dict[str, Any]]] = {}
    for outcome, feed in outcomes:
        error_count = feed.error_count + 1 if outcome.failed else 0
        next_poll_at, not_before = plan_next(
            outcome, interval=feed.interval, error_count=error_count, poll=poll, now=now, rng=rng
        )
        planned.append(next_poll_at)
        params: dict[str, Any] = {
            "b_id": feed.id,
            "b_owner": owner,
            "b_now": now,
            "b_next": next_poll_at,
            "b_not_before": not_before,
        }
        if outcome.failed:
            kind = "failed"
            params.update(b_kind=outcome.error_kind, b_message=(outcome.error_message or "")[:2000])
        else:
            kind = "polled" if outcome.status == "ok" else "quiet"
            params.update(
                b_etag=_fits(outcome.etag, 500),
                b_last_modified=_fits(outcome.last_modified, 100),
                b_body_hash=outcome.body_hash,
                b_entries=outcome.entries_seen,
                b_stored=outcome.stored,
            )
        batches.setdefault(kind, []).append(params)
    with engine.begin() as connection:
        for kind, rows in batches.items():
            connection.execute(_OUTCOME_UPDATES[kind], rows)
    return planned


def _outcome_statements() -> dict[str, sa.Update]:
    """The three shapes of an outcome's update, built once; each poll only binds values."""
    feed = Feed.__table__
    ours = feed.c.lease_owner == sa.bindparam("b_owner")
    common = {
        "last_polled_at": sa.bindparam("b_now"),
        "next_poll_at": sa.bindparam("b_next"),
        "not_before": sa.bindparam("b_not_before"),
        # A lease taken over by another worker (ours expired) stays theirs.
        "lease_owner": sa.case((ours, None), else_=feed.c.lease_owner),
        "lease_expires_at": sa.case((ours, None), else_=feed.c.lease_expires_at),
    }
    success = {
        **common,
        "status": "ok",
        "error_kind": None,
        "error_message": None,
        "error_count": 0,
        "last_success_at": sa.bindparam("b_now"),
        "etag": sa.bindparam("b_etag"),
        "last_modified": sa.bindparam("b_last_modified"),
        "body_hash": sa.bindparam("b_body_hash"),
    }
    failure = {
        **common,
        "status": "error",
        "error_kind": sa.bindparam("b_kind"),
        "error_message": sa.bindparam("b_message"),
        "error_count": feed.c.error_count + 1,
    }
    polled = {
        **success,
        "entries_seen": sa.bindparam("b_entries"),
        "articles_stored": feed.c.articles_stored + sa.bindparam("b_stored"),
    }
    update = feed.update().where(feed.c.id == sa.bindparam("b_id"))
    return {"failed": update.values(failure), "quiet": update.values(success), "polled": update.values(polled)}


_OUTCOME_UPDATES = _outcome_statements()


def _fits(value: str | None, limit: int) -> str | None:
    # A validator cut short would never match again: better not to send one.
    return value if value is not None and len(value) <= limit else None


# ----------------------------------------------------------------------------- cycles


@dataclass
class CycleReport:
    """Totals of one poll cycle (``monitor poll``), and each failing feed."""

    polled: int = 0
    ok: int = 0
    not_modified: int = 0
    unchanged: int = 0
    failed: int = 0
    entries_seen: int = 0
    new_entries: int = 0
    stored: int = 0
    duplicates: int = 0
    from_feed_content: int = 0
    skipped: int = 0
    alerts_queued: int = 0
    alerts_sent: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0

    def add(self, outcome: RefreshOutcome) -> None:
        self.polled += 1
        if outcome.failed:
            self.failed += 1
            self.errors.append(
                {"feed": outcome.feed_name, "kind": outcome.error_kind, "message": outcome.error_message}
            )
        else:
            setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        self.entries_seen += outcome.entries_seen
        self.new_entries += outcome.new_entries
        self.stored += outcome.stored
        self.duplicates += outcome.duplicates
        self.from_feed_content += outcome.fallbacks
        self.skipped += outcome.skipped
        self.alerts_queued += outcome.alerts

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeds": {
                "polled": self.polled,
                "ok": self.ok,
                "not_modified": self.not_modified,
                "unchanged": self.unchanged,
                "failed": self.failed,
            },
            "entries_seen": self.entries_seen,
            "new_entries": self.new_entries,
            "articles": {
                "stored": self.stored,
                "duplicates": self.duplicates,
                "from_feed_content": self.from_feed_content,
                "skipped": self.skipped,
            },
            "alerts": {"queued": self.alerts_queued, "sent": self.alerts_sent},
            "errors": sorted(self.errors, key=lambda e: e["feed"]),
            "elapsed": round(self.elapsed, 3),
        }


def describe(outcome: RefreshOutcome, next_poll_at: datetime | None) -> str:
    """The one log line of a poll."""
    when = f"next poll {next_poll_at:%Y-%m-%d %H:%M:%S}Z" if next_poll_at else "lease lost"
    if outcome.failed:
        wait = f", Retry-After {outcome.retry_after:.0f}s" if outcome.retry_after else ""
        return (
            f"feed {outcome.feed_name!r}: {outcome.error_kind}: {outcome.error_message}; "
            f"{when}{wait} ({outcome.elapsed:.2f}s)"
        )
    if outcome.status != "ok":
        return f"feed {outcome.feed_name!r}: {outcome.status.replace('_', ' ')}; {when} ({outcome.elapsed:.2f}s)"
    details = f", {outcome.fallbacks} from feed content" if outcome.fallbacks else ""
    details += f", {outcome.skipped} skipped" if outcome.skipped else ""
    return (
        f"feed {outcome.feed_name!r}: ok, {outcome.entries_seen} entries, {outcome.new_entries} new, "
        f"{outcome.stored} stored ({outcome.duplicates} duplicates{details}), {outcome.alerts} alerts; "
        f"{when} ({outcome.elapsed:.2f}s)"
    )


class Worker:
    """One process's polling machinery: fetcher, process pool, archive, its leases.

    ``async with Worker(settings, engine) as worker:`` then ``poll_cycle()`` (one pass
    over every feed) or ``tick()`` from a scheduler (claim what is due, in the background).
    """

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
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._on_outcome: Callable[[RefreshOutcome], None] | None = None
        # Called when a poll has queued alerts (the daemon delivers them right away).
        self.on_alerts_queued: Callable[[], None] | None = None
        self._outcomes: list[tuple[RefreshOutcome, FeedSnapshot, asyncio.Future[datetime]]] = []
        self._recorder: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Worker:
        self.fetcher = Fetcher(self.settings.poll)
        self.refresher = Refresher(settings=self.settings, engine=self.engine, fetcher=self.fetcher, pool=self.pool)
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

    async def _db(self, func: Callable[..., Any], /, **kwargs: Any) -> Any:
        assert self.refresher is not None
        return await self.refresher.db(functools.partial(func, self.engine, **kwargs))

    async def _claim(self, limit: int, **kwargs: Any) -> list[FeedSnapshot]:
        await self._db(reclaim_abandoned)
        return await self._db(claim_feeds, owner=self.owner, poll=self.settings.poll, limit=limit, **kwargs)

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
                    outcomes=[(o, f) for o, f, _done in batch],
                    owner=self.owner,
                    poll=self.settings.poll,
                    rng=self.rng,
                )
            except BaseException as exc:
                for _o, _f, done in batch:
                    if not done.done():
                        done.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
                if not isinstance(exc, Exception):
                    raise
                continue
            for (_o, _f, done), next_poll_at in zip(batch, planned, strict=True):
                if not done.done():
                    done.set_result(next_poll_at)

    def _start(self, feed: FeedSnapshot, report: CycleReport | None) -> None:
        task = asyncio.create_task(self._poll_feed(feed, report), name=f"feed-{feed.id}")
        self._tasks[feed.id] = task
        task.add_done_callback(lambda _t, i=feed.id: self._tasks.pop(i, None))

    async def _poll_feed(self, feed: FeedSnapshot, report: CycleReport | None) -> None:
        assert self.refresher is not None
        outcome = await self.refresher.refresh(feed)
        try:
            next_poll_at = await self._record(outcome, feed)
        except Exception:
            # The lease expires and another poll will redo the work; nothing is lost.
            log.exception("feed %r: cannot record the outcome", feed.name)
            next_poll_at = None
        log.info(describe(outcome, next_poll_at))
        if report is not None:
            report.add(outcome)
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

    async def renew(self) -> None:
        """Keep the leases of feeds still in flight (a long poll outlives ``poll.lease``)."""
        if self._tasks:
            await self._db(renew_leases, owner=self.owner, feed_ids=self.in_flight, lease=self.settings.poll.lease)

    async def shutdown(self, grace: float) -> None:
        """Let in-flight polls finish for ``grace`` seconds, abandon the rest, release leases."""
        self.request_stop()
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
        if self.refresher is not None:
            # Database work already under way finishes (one transaction each).
            await asyncio.to_thread(self.refresher.close)
        released = release_leases(self.engine, owner=self.owner)
        if released:
            log.info("released %d lease(s)", released)
        if self.fetcher is not None:
            await self.fetcher.aclose()
            self.fetcher = None
        if self._own_pool:
            self.pool.close()
        self.refresher = None


# ---------------------------------------------------------------------------- alerts


def deliver_alerts(engine: sa.Engine, settings: Settings) -> DeliveryReport:
    """One delivery round of the alerts that are due."""
    return deliver_due(engine, settings)


# ----------------------------------------------------------------------------- daemon


async def run_daemon(
    settings: Settings,
    engine: sa.Engine,
    *,
    reload: Callable[[], Settings] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """The daemon: poll due feeds, deliver alerts, re-read feeds, until SIGTERM/SIGINT.

    APScheduler drives four short jobs; the database decides what is due, so any number
    of daemons can share one PostgreSQL database and a back-off is just a later
    ``next_poll_at``:

    - ``poll`` every ``poll.tick``: claim due feeds and poll them in the background;
    - ``leases`` every ``poll.lease / 3``: renew the leases of feeds in flight;
    - ``alerts`` every 30 s, and as soon as a poll has queued alerts: deliver them;
    - ``feeds`` every 5 min (and on SIGHUP): re-read the configured feeds.
    """
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    current = {"settings": settings}

    def resync() -> None:
        if reload is not None:
            try:
                current["settings"] = reload()
            except Exception as exc:  # a broken edit must not stop the daemon
                log.error("configuration not reloaded: %s", exc)
        sync_feeds(engine, current["settings"].feeds)

    async def sync_job() -> None:
        try:
            await asyncio.to_thread(resync)
        except Exception:
            log.exception("feed sync failed")

    delivering = asyncio.Event()

    async def alerts_job() -> None:
        delivering.set()
        try:
            report = await asyncio.to_thread(deliver_alerts, engine, settings)
            if report.sent or report.errors:
                log.info(report.summary())
        except Exception:
            log.exception("alert delivery failed")
        finally:
            delivering.clear()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(sync_job()))
    await asyncio.to_thread(sync_feeds, engine, settings.feeds)
    poll = settings.poll
    async with Worker(settings, engine) as worker:
        await asyncio.to_thread(worker.pool.warm_up)

        async def poll_job() -> None:
            try:
                await worker.tick()
            except Exception:
                log.exception("cannot claim feeds")

        async def lease_job() -> None:
            try:
                await worker.renew()
            except Exception:
                log.exception("cannot renew leases")

        scheduler = AsyncIOScheduler(event_loop=loop)
        first = {"next_run_time": datetime.now().astimezone()}
        options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        running: set[asyncio.Task[Any]] = set()

        def tracked(job: Callable[[], Any]) -> Callable[[], Any]:
            # The scheduler cancels the jobs still running when it shuts down; these are
            # let finish first, so a delivery under way is not cut off mid-round.
            async def run() -> None:
                task = asyncio.current_task()
                assert task is not None
                running.add(task)
                try:
                    await job()
                finally:
                    running.discard(task)

            return run

        scheduler.add_job(tracked(poll_job), "interval", seconds=poll.tick, id="poll", **options, **first)
        scheduler.add_job(tracked(lease_job), "interval", seconds=max(poll.lease / 3, 1.0), id="leases", **options)
        scheduler.add_job(tracked(alerts_job), "interval", seconds=ALERT_EVERY, id="alerts", **options, **first)
        scheduler.add_job(tracked(sync_job), "interval", seconds=SYNC_EVERY, id="feeds", **options)
        scheduler.start()

        def deliver_now() -> None:
            # New alerts go out at once rather than at the next round; a round under way
            # already, or the next one, takes those it does not see.
            if not delivering.is_set():
                scheduler.modify_job("alerts", next_run_time=datetime.now().astimezone())

        worker.on_alerts_queued = deliver_now
        log.info("worker %s polling %d feed(s); SQLite: %s", worker.owner, len(settings.feeds), settings.is_sqlite)
        try:
            await stop.wait()
            log.info("stopping: finishing polls in flight (at most %.0fs)", poll.shutdown_grace)
        finally:
            scheduler.pause()
            if running:
                await asyncio.wait(list(running), timeout=poll.shutdown_grace)
            scheduler.shutdown(wait=False)
            worker.request_stop()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.remove_signal_handler(signum)
    log.info("stopped")
