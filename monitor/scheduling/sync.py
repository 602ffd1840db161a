"""Configured feeds into the feed table: the configuration says which of *its* feeds exist.

Rows are matched to configured feeds by URL, then by name, so renaming a feed or moving
it to a new URL keeps its articles and history. A feed gone from the configuration is
deactivated, never deleted: its articles stay in the archive.

The file is authoritative for its own feeds only (``origin = config``). Feeds added at
run time (``origin = added``: ``monitor feeds add``, the API, an OPML import) are never
deactivated for being absent from it. A configured feed takes over a run-time feed of
the same URL (the file wins, the feed keeps its articles); a run-time feed that merely
holds a configured feed's name is renamed out of its way, with a warning. Whether a
feed is paused is run-time state: the file never changes it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import astuple, dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from monitor.config import FeedConfig
from monitor.db import session
from monitor.models import Feed
from monitor.outcomes import FeedOrigin, FeedStatus
from monitor.times import utcnow

log = logging.getLogger(__name__)


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
        # A run-time feed is matched by its URL only: a name says nothing about its source.
        by_name = {r.name: r for r in rows if r.origin == FeedOrigin.CONFIG}
        matched: dict[int, tuple[Feed, FeedConfig]] = {}
        new: list[FeedConfig] = []
        for config in feeds:
            row = by_url.get(config.url) or by_name.get(config.name)
            if row is None or row.id in matched:
                new.append(config)
            else:
                assert row.id is not None
                matched[row.id] = (row, config)
        _make_way(rows, matched, {c.name for c in feeds})
        before = {row_id: (r.name, r.url) for row_id, (r, _c) in matched.items()}
        # Names and URLs are unique: park the changing rows first so a swap cannot collide.
        for row, config in matched.values():
            if (row.name, row.url) != (config.name, config.url):
                row.name = row.url = f"(renaming {row.id} {uuid.uuid4().hex})"
        db.flush()
        updated = sum(_apply(row, config, *before[row_id], now) for row_id, (row, config) in matched.items())
        for config in new:
            db.add(Feed(name=config.name, url=config.url, interval=config.interval, tags=config.tags, next_poll_at=now))
        deactivated = 0
        for row in rows:
            if row.id not in matched and row.active and row.origin == FeedOrigin.CONFIG:
                row.active = False
                deactivated += 1
        db.commit()
    report = SyncReport(added=len(new), updated=updated, deactivated=deactivated)
    if report != SyncReport():
        log.info("feeds synced: %d added, %d updated, %d deactivated", *astuple(report))
    return report


def _apply(row: Feed, config: FeedConfig, name: str, url: str, now: datetime) -> bool:
    """Bring ``row`` (named ``name``, at ``url``) in line with ``config``; True when anything changed."""
    changed = False
    if url != config.url:
        # Another source: its validators and health say nothing about the new one.
        row.etag = row.last_modified = row.body_hash = None
        row.error_count, row.status, row.error_kind, row.error_message = 0, FeedStatus.NEW, None, None
        row.next_poll_at, row.not_before = now, None
        changed = True
    if not row.active or row.interval != config.interval:
        row.next_poll_at = now if row.not_before is None else max(now, row.not_before)
        changed = True
    changed = changed or name != config.name or row.tags != config.tags or row.origin != FeedOrigin.CONFIG
    row.name, row.url, row.interval, row.active = config.name, config.url, config.interval, True
    row.tags, row.origin = list(config.tags), FeedOrigin.CONFIG.value
    return changed


def _make_way(rows: Sequence[Feed], matched: dict[int, tuple[Feed, FeedConfig]], names: set[str]) -> None:
    """Rename the run-time feeds that hold a configured feed's name: the file wins."""
    taken = {r.name for r in rows} | names
    for row in rows:
        if row.id in matched or row.name not in names:
            continue
        renamed = unique_name(row.name, taken)
        log.warning(
            "feed %r added at run time is renamed %r: the configuration names another feed so", row.name, renamed
        )
        taken.add(renamed)
        row.name = renamed


def unique_name(name: str, taken: set[str] | frozenset[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``… the first not in ``taken``; within the column's 200."""
    name = name[:200]
    if name not in taken:
        return name
    for n in range(2, 10_000):
        suffix = f" ({n})"
        candidate = name[: 200 - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
    raise ValueError(f"no free name like {name!r}")


__all__ = ["SyncReport", "sync_feeds", "unique_name"]
