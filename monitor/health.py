"""Feed health, read one way for ``monitor feeds``, ``/api/feeds`` and the web page.

Everything comes from the feed's own row (status, last success, current error, next
poll, the running count of articles its polls stored), so listing a thousand feeds is
one query whatever the size of the archive. Feeds written in the configuration but not
synced yet (no daemon or poll has run since) show as ``new``.

A feed's URL and error are shown redacted (``monitor.redact``): ``/api/feeds`` is open
when no token is set, and a feed's URL may carry its password or an access token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlmodel import Session, col, select

from monitor.config import Settings
from monitor.models import Feed, UTCTimestamp
from monitor.outcomes import ExtractionStatus, FeedOrigin, FeedStatus
from monitor.redact import redact_text, redact_url
from monitor.times import utcnow


class FeedHealth(BaseModel):
    """A feed with its polling health (``/api/feeds`` returns these as they are)."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None  # None for a configured feed not synced yet
    name: str
    url: str
    active: bool
    status: str
    origin: str = FeedOrigin.CONFIG.value  # "config": the file's; "added": at run time
    paused: bool = False
    tags: list[str] = []
    last_polled_at: UTCTimestamp | None = None
    last_success_at: UTCTimestamp | None = None
    error_count: int = 0
    error_kind: str | None = None
    error_message: str | None = None
    next_poll_at: UTCTimestamp | None = None
    articles_stored: int = 0
    entries_seen: int = 0
    # New entries the last poll left for the next one (``poll.max_new_entries``).
    entries_waiting: int = 0
    polling_by: str | None = None  # the worker holding the feed's lease right now
    # Seconds between two polls: the feed's own ``interval``, else its adaptive one.
    interval: float | None = None
    adaptive: bool = True  # False: the feed sets its own interval
    # Share of the recent articles whose page gave no text; "broken" while it is high.
    extraction_failure_rate: float | None = None
    extraction: str | None = None  # ExtractionStatus; None: nothing stored yet
    extraction_broken_since: UTCTimestamp | None = None

    def as_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# Extraction health: over a feed's last ``EXTRACTION_WINDOW`` articles, the share whose
# page gave no text (``Article.extraction_note``; an entry without a link is no failure).
# At least ``BROKEN_SHARE`` of at least ``EXTRACTION_SAMPLE`` articles flags the feed;
# the flag stays until the share is below ``RECOVERED_SHARE`` (no flapping on one page).
EXTRACTION_WINDOW = 20
EXTRACTION_SAMPLE = 5
BROKEN_SHARE = 0.5
RECOVERED_SHARE = 0.25


def extraction_broken(failed: int, sample: int, *, was_broken: bool) -> bool:
    """Whether a feed's extraction counts as broken, ``failed`` of its last ``sample`` articles."""
    if sample < EXTRACTION_SAMPLE:
        return was_broken
    share = failed / sample
    return share >= RECOVERED_SHARE if was_broken else share >= BROKEN_SHARE


def feed_health(
    session: Session,
    settings: Settings | None = None,
    *,
    include_inactive: bool = True,
    now: datetime | None = None,
) -> list[FeedHealth]:
    """Every feed with its health, by name; with ``settings``, configured feeds not synced yet too."""
    now = now or utcnow()
    query = select(Feed).order_by(col(Feed.name))
    if not include_inactive:
        query = query.where(col(Feed.active).is_(True))
    rows = session.exec(query).all()
    feeds = [health_of(row, now) for row in rows]
    if settings is not None:
        known = {row.name for row in rows} | {row.url for row in rows}
        feeds.extend(
            FeedHealth(name=c.name, url=redact_url(c.url), active=True, status=FeedStatus.NEW.value, tags=c.tags)
            for c in settings.feeds
            if c.name not in known and c.url not in known
        )
    return sorted(feeds, key=lambda f: f.name)


def health_of(feed: Feed, now: datetime) -> FeedHealth:
    """One feed row's health, as listed."""
    leased = feed.lease_expires_at is not None and feed.lease_expires_at > now
    return FeedHealth(
        id=feed.id,
        name=feed.name,
        url=redact_url(feed.url),
        active=feed.active,
        status=feed.status,
        origin=feed.origin,
        paused=feed.paused,
        tags=list(feed.tags),
        last_polled_at=feed.last_polled_at,
        last_success_at=feed.last_success_at,
        error_count=feed.error_count,
        error_kind=feed.error_kind,
        error_message=redact_text(feed.error_message) if feed.error_message else None,
        next_poll_at=feed.next_poll_at if feed.active and not feed.paused else None,
        articles_stored=feed.articles_stored,
        entries_seen=feed.entries_seen,
        entries_waiting=feed.entries_waiting,
        polling_by=feed.lease_owner if leased else None,
        interval=feed.interval or feed.current_interval,
        adaptive=feed.interval is None,
        extraction_failure_rate=feed.extraction_failure_rate,
        extraction=_extraction_status(feed),
        extraction_broken_since=feed.extraction_broken_at,
    )


def _extraction_status(feed: Feed) -> str | None:
    if feed.extraction_broken_at is not None:
        return ExtractionStatus.BROKEN.value
    return ExtractionStatus.OK.value if feed.extraction_failure_rate is not None else None


__all__ = ["FeedHealth", "feed_health", "health_of"]
