"""Feeds managed at run time: add, remove, pause, resume, change, in the feed table.

The configuration file is authoritative for its feeds (``origin = config``): they are
changed there, never here, except for pausing, which is run-time state for every feed.
A feed added here (``origin = added``) lives in the database alone and survives
restarts and reloads; one whose URL or name is the file's is refused, so the two never
fight over a row. Removing a feed keeps its stored articles (the row is deactivated, as
the file's removed feeds are; a feed with no article is deleted outright), and adding
its URL again brings it back with its history.

A running daemon claims feeds from the table at every ``poll.tick``, so whatever is
done here takes effect within one scheduling round.

Keyword-only functions taking the session explicitly; each commits what it changes.
A feed is named by its name, or by its id (digits).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from monitor.config import Settings
from monitor.config.schema import clean_tags
from monitor.config.values import http_url
from monitor.errors import FeedSourceError
from monitor.models import Article, Feed
from monitor.outcomes import FeedOrigin
from monitor.scheduling.sync import unique_name
from monitor.times import utcnow

NOT_FOUND, CONFLICT, INVALID = "not_found", "conflict", "invalid"


@dataclass(frozen=True)
class NewFeed:
    """A feed to add: its URL and what is known of it."""

    url: str
    name: str | None = None  # None: ``title``, else the host, made unique
    interval: float | None = None
    tags: Sequence[str] = ()
    title: str | None = None
    site_url: str | None = None
    # Other URLs that are the same feed (the address given before discovery).
    aliases: Sequence[str] = ()


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)  # names
    duplicates: int = 0  # already a feed (configured or added), or twice in the file
    invalid: list[str] = field(default_factory=list)  # one line each


def find_feed(db: Session, key: str, *, include_removed: bool = False) -> Feed:
    """The feed named ``key``, else the one whose id it is; ``FeedSourceError`` when none."""
    feed = db.exec(select(Feed).where(Feed.name == key)).first()
    if feed is None and key.strip().isdigit() and len(key.strip()) < 10:
        feed = db.get(Feed, int(key))
    if feed is None or (not feed.active and not include_removed):
        raise FeedSourceError(f"no feed named {key!r} (see `monitor feeds`)", problem=NOT_FOUND)
    return feed


def add_feed(db: Session, settings: Settings, new: NewFeed, *, now: datetime | None = None) -> Feed:
    """Store ``new`` as a feed added at run time, due at once; refuse a feed that exists."""
    now = now or utcnow()
    url = _checked_url(new.url)
    rows = refuse_known(db, settings, [url, *(u for u in new.aliases if u != url)])
    reused = next(iter(rows), None)
    name = _name_for(db, settings, new, keep=reused)
    feed = reused or Feed(name=name, url=url)
    feed.name, feed.url, feed.active, feed.paused = name, url, True, False
    feed.origin = FeedOrigin.ADDED.value
    feed.interval = new.interval
    feed.tags = _tags(new.tags)
    feed.site_url = new.site_url or feed.site_url
    feed.next_poll_at = now if feed.not_before is None else max(now, feed.not_before)
    db.add(feed)
    _commit(db, f"{url} or the name {name!r} was just taken by another feed")
    db.refresh(feed)
    return feed


def refuse_known(db: Session, settings: Settings, urls: Sequence[str]) -> list[Feed]:
    """Raise when one of ``urls`` is a configured or active feed; the removed feeds at them.

    Called before a URL is fetched, too: a known feed is refused without a request.
    """
    configured = _configured(settings)
    for candidate in urls:
        if candidate in configured:
            raise FeedSourceError(
                f"{candidate} is in the configuration file as feed {configured[candidate]!r}", problem=CONFLICT
            )
    rows = db.exec(select(Feed).where(col(Feed.url).in_(list(urls)))).all()
    for row in rows:
        if row.active:
            where = "in the configuration file" if row.origin == FeedOrigin.CONFIG else "already added"
            raise FeedSourceError(f"{row.url} is {where} as feed {row.name!r}", problem=CONFLICT)
    return list(rows)


def remove_feed(db: Session, settings: Settings, key: str) -> tuple[str, int]:
    """Remove an added feed; its name and how many stored articles stay in the archive."""
    if key in {c.name for c in settings.feeds}:
        raise _configured_feed(key, "removed")
    feed = find_feed(db, key)
    if feed.origin == FeedOrigin.CONFIG:
        raise _configured_feed(feed.name, "removed")
    articles = db.exec(select(func.count()).select_from(Article).where(Article.feed_id == feed.id)).one()
    name = feed.name
    if articles:
        feed.active, feed.paused = False, False
        db.add(feed)
    else:
        db.delete(feed)
    _commit(db, "the feed changed meanwhile")
    return name, articles


def set_paused(db: Session, key: str, paused: bool, *, now: datetime | None = None) -> Feed:
    """Pause a feed (no poll until resumed), or resume it (due at once)."""
    feed = find_feed(db, key)
    if feed.paused != paused:
        feed.paused = paused
        if not paused:
            now = now or utcnow()
            feed.next_poll_at = now if feed.not_before is None else max(now, feed.not_before)
        db.add(feed)
        _commit(db, "the feed changed meanwhile")
        db.refresh(feed)
    return feed


class _Unset:
    """No change asked (None means "back to the default" for an interval)."""


UNSET = _Unset()


def update_feed(
    db: Session,
    settings: Settings,
    key: str,
    *,
    name: str | None = None,
    interval: float | _Unset | None = UNSET,
    tags: Sequence[str] | None = None,
    paused: bool | None = None,
    now: datetime | None = None,
) -> Feed:
    """Change an added feed's name, interval (None: the default) or tags; pause or resume any feed."""
    feed = find_feed(db, key)
    changes_file = name is not None or not isinstance(interval, _Unset) or tags is not None
    if changes_file and feed.origin == FeedOrigin.CONFIG:
        raise _configured_feed(feed.name, "changed")
    now = now or utcnow()
    if name is not None and name != feed.name:
        feed.name = _free_name(db, settings, _checked_name(name))
    if not isinstance(interval, _Unset):
        feed.interval = interval
        if interval is not None and feed.next_poll_at is not None:
            feed.next_poll_at = min(feed.next_poll_at, now + timedelta(seconds=interval))
    if tags is not None:
        feed.tags = _tags(tags)
    db.add(feed)
    _commit(db, f"the name {feed.name!r} was just taken by another feed")
    if paused is not None:
        return set_paused(db, feed.name, paused, now=now)
    db.refresh(feed)
    return feed


def import_feeds(
    db: Session, settings: Settings, feeds: Iterable[NewFeed], *, now: datetime | None = None
) -> ImportReport:
    """Add each feed not known yet (by URL); the others count as duplicates."""
    report = ImportReport()
    known = set(_configured(settings)) | set(db.exec(select(Feed.url).where(col(Feed.active).is_(True))).all())
    for new in feeds:
        if new.url in known:
            report.duplicates += 1
            continue
        try:
            added = add_feed(db, settings, new, now=now)
        except FeedSourceError as exc:
            db.rollback()
            if exc.problem == CONFLICT:
                report.duplicates += 1
            else:
                report.invalid.append(str(exc))
            continue
        known.add(added.url)
        report.added.append(added.name)
    return report


# ---------------------------------------------------------------------------- helpers


def _configured(settings: Settings) -> dict[str, str]:
    return {c.url: c.name for c in settings.feeds}


def _configured_feed(name: str, verb: str) -> FeedSourceError:
    return FeedSourceError(
        f"feed {name!r} comes from the configuration file: it is {verb} there, not at run time "
        "(it can be paused and resumed)",
        problem=CONFLICT,
    )


def _checked_url(url: str) -> str:
    try:
        return http_url(url.strip())
    except ValueError as exc:
        raise FeedSourceError(str(exc), problem=INVALID) from None


def _checked_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 200:
        raise FeedSourceError("a feed's name has 1 to 200 characters", problem=INVALID)
    return name


def _tags(tags: Sequence[str]) -> list[str]:
    try:
        return clean_tags(list(tags))
    except ValueError as exc:
        raise FeedSourceError(str(exc), problem=INVALID) from None


def _name_for(db: Session, settings: Settings, new: NewFeed, *, keep: Feed | None) -> str:
    if new.name is not None:
        name = _checked_name(new.name)
        if keep is not None and keep.name == name:
            return name
        return _free_name(db, settings, name)
    fallback = " ".join((new.title or "").split()) or urlsplit(new.url).hostname or "feed"
    if keep is not None and keep.name == fallback[:200]:
        return keep.name
    return unique_name(fallback, _taken(db, settings))


def _free_name(db: Session, settings: Settings, name: str) -> str:
    if name in {c.name for c in settings.feeds}:
        raise FeedSourceError(f"the configuration file names a feed {name!r}: choose another name", problem=CONFLICT)
    if db.exec(select(Feed.id).where(Feed.name == name)).first() is not None:
        raise FeedSourceError(f"a feed is already named {name!r}: choose another name", problem=CONFLICT)
    return name


def _taken(db: Session, settings: Settings) -> set[str]:
    return set(db.exec(select(Feed.name)).all()) | {c.name for c in settings.feeds}


def _commit(db: Session, conflict: str) -> None:
    try:
        db.commit()
    except sa.exc.IntegrityError:
        db.rollback()
        raise FeedSourceError(conflict, problem=CONFLICT) from None


__all__ = [
    "UNSET",
    "ImportReport",
    "NewFeed",
    "add_feed",
    "find_feed",
    "import_feeds",
    "refuse_known",
    "remove_feed",
    "set_paused",
    "update_feed",
]
