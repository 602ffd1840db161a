"""Every statement on a feed's scheduling columns: claim, renew, release, reclaim, record.

A worker *claims* due feeds by writing its name and an expiry into ``lease_owner`` /
``lease_expires_at`` in one short statement, polls them, then records the outcome and
clears the lease in one more:

- PostgreSQL: the claim is ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)``;
  two workers never claim the same feed, and neither waits for the other.
- SQLite: the same statement without the row locks (SQLite has none); the database-wide
  write lock makes the claim atomic. SQLite is meant for one worker process.

A worker renews its leases while it works; one that dies loses them when they expire
(``poll.lease``), or at once when a process on the same host finds the owner's process
gone. Recording an outcome never takes a lease back from a worker that took it over.

The statements are built once on the table's columns; each call only binds values.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from monitor.config import PollSettings
from monitor.health import extraction_broken
from monitor.models import Feed, table_of
from monitor.outcomes import FeedStatus, PollStatus
from monitor.pipeline.refresh import FeedSnapshot, RefreshOutcome
from monitor.scheduling.backoff import plan_next
from monitor.scheduling.pace import Pace, interval, observe
from monitor.times import utcnow

log = logging.getLogger(__name__)

_FEED = table_of(Feed)
_C = _FEED.c
_SNAPSHOT_COLUMNS = (
    *(_C.id, _C.name, _C.url, _C.interval, _C.etag, _C.last_modified, _C.body_hash, _C.error_count),
    *(_C.pace_gaps, _C.pace_hours, _C.last_entry_at, _C.last_polled_at, _C.extraction_broken_at),
)

OutcomeShape = Literal["failed", "quiet", "polled"]
# A failure rate no poll gives: "leave the stored rate as it is".
_KEEP = -1.0


def new_owner() -> str:
    """A worker's name in leases: host, process id, and a random part."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _snapshot(row: sa.Row[Any], poll: PollSettings) -> FeedSnapshot:
    return FeedSnapshot(
        id=row.id,
        name=row.name,
        url=row.url,
        interval=row.interval or poll.interval,
        etag=row.etag,
        last_modified=row.last_modified,
        body_hash=row.body_hash,
        error_count=row.error_count,
        own_interval=row.interval is not None,
        pace_gaps=tuple(row.pace_gaps or ()),
        pace_hours=tuple(row.pace_hours or ()),
        last_entry_at=row.last_entry_at,
        last_polled_at=row.last_polled_at,
        extraction_broken_at=row.extraction_broken_at,
    )


# ----------------------------------------------------------------------------- claims


def _free(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(_C.lease_expires_at.is_(None), _C.lease_expires_at <= now)


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

    Only active feeds that are not paused. ``due_only``: feeds whose ``next_poll_at``
    has come (the daemon). Otherwise every such feed not polled since ``polled_before``
    whose server allows a fetch now (``monitor poll``).
    """
    now = now or utcnow()
    # Feeds added, removed or paused at run time count from the next claim on.
    conditions = [_C.active.is_(True), _C.paused.is_(False), _free(now)]
    if due_only:
        conditions.append(sa.or_(_C.next_poll_at.is_(None), _C.next_poll_at <= now))
    else:
        conditions.append(sa.or_(_C.not_before.is_(None), _C.not_before <= now))
        if polled_before is not None:
            conditions.append(sa.or_(_C.last_polled_at.is_(None), _C.last_polled_at < polled_before))
    picked = (
        sa.select(_C.id)
        .where(*conditions)
        .order_by(_C.next_poll_at.asc().nulls_first(), _C.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claim = (
        _FEED.update()
        .where(_C.id.in_(picked.scalar_subquery()), _free(now))
        .values(lease_owner=owner, lease_expires_at=now + timedelta(seconds=poll.lease))
        .returning(*_SNAPSHOT_COLUMNS)
    )
    with engine.begin() as connection:
        rows = connection.execute(claim).all()
    return sorted((_snapshot(row, poll) for row in rows), key=lambda f: f.id)


def renew_leases(engine: sa.Engine, *, owner: str, feed_ids: Sequence[int], lease: float) -> int:
    """Push back the expiry of the leases ``owner`` still holds."""
    if not feed_ids:
        return 0
    expires = utcnow() + timedelta(seconds=lease)
    statement = (
        _FEED.update().where(_C.id.in_(list(feed_ids)), _C.lease_owner == owner).values(lease_expires_at=expires)
    )
    with engine.begin() as connection:
        return connection.execute(statement).rowcount


def release_leases(engine: sa.Engine, *, owner: str, feed_ids: Sequence[int] | None = None) -> int:
    """Give back the leases ``owner`` holds (all, or those of ``feed_ids``); the feeds stay due."""
    statement = _FEED.update().where(_C.lease_owner == owner).values(lease_owner=None, lease_expires_at=None)
    if feed_ids is not None:
        statement = statement.where(_C.id.in_(list(feed_ids)))
    with engine.begin() as connection:
        return connection.execute(statement).rowcount


def reclaim_abandoned(engine: sa.Engine, *, now: datetime | None = None) -> int:
    """Free the leases of processes on this host that no longer exist (killed workers).

    Leases of other hosts are left to expire: their processes cannot be checked.
    """
    now = now or utcnow()
    host = socket.gethostname()[:60]
    owners_query = sa.select(_C.lease_owner).where(_C.lease_owner.is_not(None), _C.lease_expires_at > now).distinct()
    with engine.connect() as connection:
        owners = connection.execute(owners_query).scalars().all()
    dead = [owner for owner in owners if _dead_local_owner(owner, host)]
    if not dead:
        return 0
    statement = _FEED.update().where(_C.lease_owner.in_(dead)).values(lease_owner=None, lease_expires_at=None)
    with engine.begin() as connection:
        freed = connection.execute(statement).rowcount
    log.info("freed %d feed lease(s) of %d dead process(es)", freed, len(dead))
    return freed


def _dead_local_owner(owner: str, host: str) -> bool:
    parts = owner.rsplit(":", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    owner_host, pid = parts[0], int(parts[1])
    return owner_host == host and pid != os.getpid() and not _process_alive(pid)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------- outcomes


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
    batches: dict[OutcomeShape, list[dict[str, Any]]] = {}
    for outcome, feed in outcomes:
        error_count = feed.error_count + 1 if outcome.failed else 0
        pace = Pace(gaps=feed.pace_gaps, last_entry=feed.last_entry_at, hours=feed.pace_hours)
        if not outcome.failed:
            pace = observe(pace, outcome.new_dates, now=now, previous_poll=feed.last_polled_at, poll=poll)
        every = feed.interval if feed.own_interval else interval(pace, now=now, poll=poll)
        next_poll_at, not_before = plan_next(
            outcome, interval=every, error_count=error_count, poll=poll, now=now, rng=rng
        )
        planned.append(next_poll_at)
        shape, params = _outcome_params(outcome)
        params.update(b_id=feed.id, b_owner=owner, b_now=now, b_next=next_poll_at, b_not_before=not_before)
        params.update(b_gaps=list(pace.gaps), b_hours=list(pace.hours), b_last_entry=pace.last_entry)
        params.update(b_interval=every)
        params.update(_extraction_params(outcome, feed, now))
        batches.setdefault(shape, []).append(params)
    with engine.begin() as connection:
        for shape, rows in batches.items():
            connection.execute(_OUTCOME_UPDATES[shape], rows)
    return planned


def _outcome_params(outcome: RefreshOutcome) -> tuple[OutcomeShape, dict[str, Any]]:
    if outcome.failed:
        message = (outcome.error_message or "")[:2000]
        # A poll that failed part-way (past its deadline) may have stored articles first.
        return "failed", {"b_kind": outcome.error_kind, "b_message": message, "b_stored": outcome.stored}
    validators = {
        "b_etag": _fits(outcome.etag, 500),
        "b_last_modified": _fits(outcome.last_modified, 100),
        "b_body_hash": outcome.body_hash,
    }
    if outcome.status is not PollStatus.OK:
        return "quiet", validators
    counts = {"b_entries": outcome.entries_seen, "b_stored": outcome.stored, "b_waiting": outcome.waiting}
    return "polled", {**validators, **counts}


def _extraction_params(outcome: RefreshOutcome, feed: FeedSnapshot, now: datetime) -> dict[str, Any]:
    """The feed's extraction health after ``outcome``; a warning when it breaks or recovers."""
    broken_at = feed.extraction_broken_at
    if outcome.extraction is None:
        return {"b_rate": _KEEP, "b_broken_at": broken_at}
    failed, sample = outcome.extraction
    rate = failed / sample if sample else None
    broken = extraction_broken(failed, sample, was_broken=broken_at is not None)
    if broken and broken_at is None:
        broken_at = now
        log.warning(
            "feed %r: extraction broken: %d of its last %d articles had no text from their page "
            "(a site redesign?); the feed's own content stands in",
            feed.name,
            failed,
            sample,
            extra={"feed_id": feed.id},
        )
    elif not broken and broken_at is not None:
        broken_at = None
        log.info("feed %r: extraction works again (%d of the last %d failed)", feed.name, failed, sample)
    return {"b_rate": rate, "b_broken_at": broken_at}


def _fits(value: str | None, limit: int) -> str | None:
    # A validator cut short would never match again: better not to send one.
    return value if value is not None and len(value) <= limit else None


def _outcome_statements() -> dict[OutcomeShape, sa.Update]:
    """The three shapes of an outcome's update; each poll only binds values."""
    ours = _C.lease_owner == sa.bindparam("b_owner")
    common: dict[str, Any] = {
        "last_polled_at": sa.bindparam("b_now"),
        "next_poll_at": sa.bindparam("b_next"),
        "not_before": sa.bindparam("b_not_before"),
        "pace_gaps": sa.bindparam("b_gaps", type_=sa.JSON),
        "pace_hours": sa.bindparam("b_hours", type_=sa.JSON),
        "last_entry_at": sa.bindparam("b_last_entry"),
        "current_interval": sa.bindparam("b_interval"),
        # A poll that stored nothing leaves the rate as it was (``_KEEP``).
        "extraction_failure_rate": sa.case(
            (sa.bindparam("b_rate", type_=sa.Float) == _KEEP, _C.extraction_failure_rate),
            else_=sa.bindparam("b_rate", type_=sa.Float),
        ),
        "extraction_broken_at": sa.bindparam("b_broken_at"),
        # A lease taken over by another worker (ours expired) stays theirs.
        "lease_owner": sa.case((ours, None), else_=_C.lease_owner),
        "lease_expires_at": sa.case((ours, None), else_=_C.lease_expires_at),
    }
    success = {
        **common,
        "status": FeedStatus.OK.value,
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
        "status": FeedStatus.ERROR.value,
        "error_kind": sa.bindparam("b_kind"),
        "error_message": sa.bindparam("b_message"),
        "error_count": _C.error_count + 1,
        "articles_stored": _C.articles_stored + sa.bindparam("b_stored"),
    }
    polled = {
        **success,
        "entries_seen": sa.bindparam("b_entries"),
        "entries_waiting": sa.bindparam("b_waiting"),
        "articles_stored": _C.articles_stored + sa.bindparam("b_stored"),
    }
    update = _FEED.update().where(_C.id == sa.bindparam("b_id"))
    return {"failed": update.values(failure), "quiet": update.values(success), "polled": update.values(polled)}


_OUTCOME_UPDATES = _outcome_statements()


__all__ = [
    "claim_feeds",
    "new_owner",
    "reclaim_abandoned",
    "record_outcome",
    "record_outcomes",
    "release_leases",
    "renew_leases",
]
