"""SQLModel tables and the public shapes the CLI and the API return.

Times are stored in UTC and always come back timezone-aware (``UTCDateTime``), on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import PlainSerializer
from sqlmodel import Field, SQLModel

from monitor.outcomes import AlertStatus, FeedOrigin, FeedStatus
from monitor.times import as_utc, iso_utc, utcnow


def stored_id(id_: int | None) -> int:
    """The primary key of a row read from the database.

    Table models type ``id`` as optional because a row has none before its insert;
    one that comes back from a query always has it.
    """
    if id_ is None:
        raise ValueError("a stored row without an id")
    return id_


def table_of(model: type[SQLModel]) -> sa.Table:
    """The Core table of a table model, for statements that need no ORM entity.

    SQLModel sets ``__table__`` on table models without declaring it.
    """
    table = sa.inspect(model).local_table
    if not isinstance(table, sa.Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored as UTC and returned timezone-aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = as_utc(value)
        # SQLite has no time zone type: keep naive UTC there.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)


def _time(*, index: bool = False, nullable: bool = True, default: Any = None) -> Any:
    kwargs: dict[str, Any] = {"sa_type": UTCDateTime, "index": index, "nullable": nullable}
    if default is not None:
        kwargs["default_factory"] = default
    else:
        kwargs["default"] = None
    return Field(**kwargs)


# ---------------------------------------------------------------------------- tables


class Feed(SQLModel, table=True):
    """A feed, from the configuration or added at run time, with its polling state and health."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    url: str = Field(max_length=2000, unique=True)
    active: bool = Field(default=True)  # False: removed (from the file, or at run time); articles stay
    origin: str = Field(default=FeedOrigin.CONFIG.value, max_length=10)  # FeedOrigin
    paused: bool = Field(default=False)  # kept across restarts and reloads; never polled meanwhile
    tags: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    site_url: str | None = Field(default=None, max_length=2000)  # the site's home page (OPML htmlUrl)
    interval: float | None = None  # seconds; None = the poll.interval default
    # Conditional GET and unchanged-body detection.
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    body_hash: str | None = Field(default=None, max_length=64)
    # Scheduling and health.
    next_poll_at: datetime | None = _time(index=True)
    # Earliest fetch the server allows (Retry-After, Cache-Control max-age).
    not_before: datetime | None = _time()
    last_polled_at: datetime | None = _time()
    last_success_at: datetime | None = _time()
    status: str = Field(default=FeedStatus.NEW.value, max_length=20)  # FeedStatus
    error_kind: str | None = Field(default=None, max_length=30)
    error_message: str | None = Field(default=None, max_length=2000)
    error_count: int = Field(default=0)  # consecutive failures
    entries_seen: int = Field(default=0)  # entries in the last parsed document
    entries_waiting: int = Field(default=0)  # new entries left for the next poll (poll.max_new_entries)
    articles_stored: int = Field(default=0)
    # Adaptive polling (``scheduling.pace``): the latest times between two entries, its
    # publishing hours, the newest entry's date, and the interval the last poll planned with.
    pace_gaps: list[float] = Field(default_factory=list, sa_type=sa.JSON)  # seconds
    pace_hours: list[float] = Field(default_factory=list, sa_type=sa.JSON)  # by hour of the day, UTC
    last_entry_at: datetime | None = _time()
    current_interval: float | None = None  # seconds
    # Extraction health: share of the recent articles whose page gave no text (the feed's
    # own content stood in), and since when that share says extraction is broken.
    extraction_failure_rate: float | None = None
    extraction_broken_at: datetime | None = _time()
    # A worker's claim on the feed while it polls it (scale-out on PostgreSQL).
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = _time()
    created_at: datetime = _time(nullable=False, default=utcnow)


class Seed(SQLModel, table=True):
    """A text of the seed corpus, known to the dedup from the start."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255, unique=True)  # file name, e.g. 001_….txt
    title: str | None = Field(default=None, max_length=1000)
    text: str = Field(sa_type=sa.Text)
    content_hash: str = Field(max_length=64, index=True)
    loaded_at: datetime = _time(nullable=False, default=utcnow)


class Article(SQLModel, table=True):
    """A stored article: from a feed, or imported from a local file."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000, unique=True)  # canonical URL
    title: str | None = Field(default=None, max_length=1000)
    text: str = Field(sa_type=sa.Text)
    author: str | None = Field(default=None, max_length=500)
    language: str | None = Field(default=None, max_length=20)
    published_at: datetime | None = _time(index=True)
    fetched_at: datetime = _time(nullable=False, index=True, default=utcnow)
    feed_id: int | None = Field(default=None, foreign_key="feed.id", index=True)
    source: str = Field(default="feed", max_length=20)  # feed | import
    content_hash: str = Field(max_length=64, index=True)
    # Why the text is not the page's extracted text (e.g. the feed summary was used).
    extraction_note: str | None = Field(default=None, max_length=500)
    # Dedup verdict: at most one of the two is set.
    duplicate_of_article_id: int | None = Field(default=None, foreign_key="article.id", index=True)
    duplicate_of_seed_id: int | None = Field(default=None, foreign_key="seed.id")
    similarity: float | None = None
    # Not indexed: two values, and an index on it misleads SQLite into sorting the
    # whole archive instead of reading ix_article_newest (migration 0002).
    is_duplicate: bool = Field(default=False)


class Mention(SQLModel, table=True):
    """One occurrence of a tracked entity in an article's text."""

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    entity: str = Field(max_length=200, index=True)
    text: str = Field(max_length=500)  # the matched text as written
    start: int  # character offsets into Article.text
    end: int
    snippet: str = Field(max_length=1000)


class Fingerprint(SQLModel, table=True):
    """One sampled shingle hash of a known text: the dedup's inverted index."""

    # (hash, owner) covers the lookup: it is answered from the index alone.
    __table_args__ = (sa.Index("ix_fingerprint_hash_owner", "hash", "seed_id", "article_id"),)

    id: int | None = Field(default=None, primary_key=True)
    hash: int = Field(sa_type=sa.BigInteger)
    seed_id: int | None = Field(default=None, foreign_key="seed.id", index=True)
    article_id: int | None = Field(default=None, foreign_key="article.id", index=True)


class Alert(SQLModel, table=True):
    """The outbox: one row per (article, channel), written in the article's transaction.

    ``message_id`` (the ``webhook-id`` / ``Message-ID``) is fixed before the first send
    and never changes, so a re-send after a crash or a lost answer carries the same id.
    Alerts of a digest channel share the message id of the digest that carries them.
    """

    __table_args__ = (
        sa.UniqueConstraint("article_id", "channel", name="uq_alert_article_channel"),
        sa.Index("ix_alert_channel_status", "channel", "status", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    channel: str = Field(max_length=300)  # "email" or "webhook:<name or url>"
    entities: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    # Names of the rules that fired for this channel (migration 0006; NULL before it).
    rules: list[str] | None = Field(default=None, sa_type=sa.JSON)
    status: str = Field(default=AlertStatus.PENDING.value, max_length=20, index=True)  # AlertStatus
    message_id: str | None = Field(default=None, max_length=100, index=True)
    message_type: str | None = Field(default=None, max_length=40)  # mention.created|.digest
    attempts: int = Field(default=0)
    # Due time: now, the end of the digest window, or the end of a back-off.
    next_attempt_at: datetime = _time(nullable=False, index=True, default=utcnow)
    last_attempt_at: datetime | None = _time()
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = _time(nullable=False, default=utcnow)
    # Start of the current retry period (creation, or ``monitor alerts retry``).
    queued_at: datetime = _time(nullable=False, default=utcnow)
    sent_at: datetime | None = _time()


class AlertChannel(SQLModel, table=True):
    """The delivery state of one channel; its row is the lock one dispatcher holds."""

    __tablename__ = "alert_channel"

    key: str = Field(primary_key=True, max_length=300)
    # Set when the endpoint answered 410 Gone: nothing is sent until re-enabled.
    disabled_at: datetime | None = _time()
    disabled_reason: str | None = Field(default=None, max_length=500)
    last_sent_at: datetime | None = _time()
    last_error_at: datetime | None = _time()
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = _time(nullable=False, default=utcnow)


class MatchState(SQLModel, table=True):
    """The entity set the stored mentions follow, and a re-match under way.

    One row (``key`` "entities"), kept by ``monitor.pipeline.rematch``: ``matched`` is
    the fingerprint of the entity set every stored article was last matched with (None:
    not known, as in a database from before re-matching); ``target`` and ``cursor``
    the set a re-match is bringing the archive to and the last article id it has done;
    ``owner`` and ``lease_expires_at`` the process doing it, so that one does.
    """

    __tablename__ = "match_state"

    key: str = Field(primary_key=True, max_length=50)
    matched: str | None = Field(default=None, max_length=64)
    matched_at: datetime | None = _time()
    target: str | None = Field(default=None, max_length=64)
    cursor: int | None = None
    owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = _time()
    updated_at: datetime = _time(nullable=False, default=utcnow)


# ---------------------------------------------------------------------- public shapes


UTCTimestamp = Annotated[datetime, PlainSerializer(iso_utc, return_type=str, when_used="json")]


class ArticleSummary(SQLModel):
    """An article in a result list: ``monitor search --json``, ``GET /api/articles``."""

    id: int
    url: str
    title: str | None
    feed: str | None  # the feed's name; None for imported articles
    published_at: UTCTimestamp | None
    fetched_at: UTCTimestamp
    entities: list[str]  # sorted distinct names of the tracked entities mentioned
    duplicate_of: str | None  # a seed's file name, "article:<id>", or None
    snippet: str  # plain text: the matched context, or the start of the text
