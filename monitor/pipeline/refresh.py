"""Refresh one feed: the pipeline line, in order.

    fetch (conditional GET) → unchanged? → only known links? → parse → canonicalise →
    known in bulk → fetch each new page → extract (process pool) → store (dedup, match, alerts)

``Refresher.refresh`` never raises for a feed's own trouble: every failure is classified
once (``FetchError.kind``) and returned in the ``RefreshOutcome``, which the worker
records on the feed. A page that cannot be had falls back to the entry's own content
and says so in ``Article.extraction_note``.

CPU-bound stages (feedparser, trafilatura) run in a ``CPUPool`` of processes created once
per worker process; database work runs in one dedicated thread, so the event loop keeps
the network busy and the archive's in-memory state (entity automaton, dedup index) is
only ever touched by one thread.

Isolation: no feed can hold up another. Each feed's pages take at most
``poll.per_feed_pages`` of the shared page slots (never more than half of them), so a
feed whose links lead to a server that never answers blocks only its own pages; each
page fetch has one deadline for all of it (``Fetcher``), each extraction a time limit
(``CPUPool``), and each refresh as a whole ``poll.feed_deadline``, past which it is
cancelled and recorded as a ``deadline`` failure. A poll takes at most
``poll.max_new_entries`` new entries, oldest first; the others wait for the next poll.

Crash safety: the feed's validators (ETag, Last-Modified, body hash) are returned, not
written; the worker saves them only after every new entry was stored. A process killed
half-way, or a refresh past its deadline, leaves the old validators, so the next poll
fetches and parses again and the bulk URL check skips what was already stored. While
entries wait their turn the outcome carries no validators at all, and the worker clears
the stored ones: the next poll then fetches unconditionally and finds them, where a
conditional GET would be answered ``304`` for as long as the feed stays the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from monitor.config import FeedConfig, Settings
from monitor.db import is_outage, outage_reason, session
from monitor.errors import FetchError
from monitor.health import EXTRACTION_WINDOW
from monitor.models import Article, table_of
from monitor.outcomes import FailureKind, PollStatus
from monitor.pipeline.extract import Extracted
from monitor.pipeline.fetch import PAGE_ACCEPT, Fetcher, FetchResult
from monitor.pipeline.ingest import Archive, Candidate, StoreResult
from monitor.pipeline.parse import Entry, ParsedFeed
from monitor.pipeline.pool import CPUPool
from monitor.pipeline.sitemaps import MAX_CHILDREN
from monitor.pipeline.titles import without_site_name

log = logging.getLogger(__name__)

T = TypeVar("T")


# ------------------------------------------------------------------------ plain values


@dataclass(frozen=True)
class FeedSnapshot:
    """What a refresh needs to know of a feed row: plain values, no session attached."""

    id: int
    name: str
    url: str
    interval: float  # seconds, the feed's own or the default
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    error_count: int = 0
    # Scheduling state: adaptive polling (``scheduling.pace``) and extraction health.
    own_interval: bool = False  # the feed sets its interval: it is not adapted
    pace_gaps: tuple[float, ...] = ()
    pace_hours: tuple[float, ...] = ()
    last_entry_at: datetime | None = None
    last_polled_at: datetime | None = None
    extraction_broken_at: datetime | None = None


@dataclass
class PollCounts:
    """What polling found and did, counted; a feed's poll and a whole cycle alike."""

    entries_seen: int = 0
    new_entries: int = 0
    stored: int = 0
    duplicates: int = 0
    alerts: int = 0
    fallbacks: int = 0  # new entries stored from the feed's own content
    skipped: int = 0  # new entries with neither a usable page nor feed content, or refused by the archive
    waiting: int = 0  # new entries left for the next poll (``poll.max_new_entries``)

    def add(self, other: PollCounts) -> None:
        for counter in fields(PollCounts):
            setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))


@dataclass(kw_only=True)
class RefreshOutcome(PollCounts):
    """What happened to one feed in one poll; the worker records it on the feed."""

    feed_id: int
    feed_name: str
    status: PollStatus
    # The validators to save once everything is stored (None: none, cleared).
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    max_age: float | None = None
    warning: str | None = None
    error_kind: FailureKind | None = None
    error_message: str | None = None
    retry_after: float | None = None
    elapsed: float = 0.0
    # The dates the feed gives its new entries, None for an undated one (adaptive polling).
    new_dates: tuple[datetime | None, ...] = ()
    # (failed, articles) over the feed's recent articles, when this poll stored any.
    extraction: tuple[int, int] | None = None

    @property
    def failed(self) -> bool:
        return self.status is PollStatus.ERROR


@dataclass(frozen=True)
class _Page:
    """A new entry's page, extracted, or why it could not be used."""

    extracted: Extracted | None
    problem: str | None = None  # e.g. "http_404", "empty", "no link"


# ---------------------------------------------------------------------- the refresher


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def _entry_url(feed: FeedSnapshot, entry: Entry, canonical: str | None) -> str:
    """The article's identity: its canonical link, else a stable id under the feed."""
    if canonical:
        return canonical
    digest = hashlib.sha256(entry.key.encode("utf-8")).hexdigest()[:20]
    return f"{feed.url}#entry-{digest}"


def _is_synthetic(url: str) -> bool:
    # Canonical URLs carry no fragment, so a fragment marks an entry without a link.
    return "#entry-" in url


def _is_html(content_type: str | None) -> bool:
    return content_type is None or any(t in content_type.lower() for t in ("html", "xml", "text/plain"))


_ARTICLE = table_of(Article)
_RECENT_NOTES = (
    sa.select(_ARTICLE.c.extraction_note)
    .where(_ARTICLE.c.feed_id == sa.bindparam("feed_id"))
    .order_by(_ARTICLE.c.id.desc())
    .limit(EXTRACTION_WINDOW)
)
# The page of a feed with ``extract: false``: never fetched, the feed's content is the text.
_OWN_CONTENT = "not extracted"


def _fallback_text(entry: Entry) -> str | None:
    texts = [t.strip() for t in (entry.content, entry.summary) if t and t.strip()]
    return max(texts, key=len) if texts else None


def _by_name_and_url(settings: Settings) -> dict[str, FeedConfig]:
    """The configured feeds by name and by URL (a feed renamed in the file keeps its options)."""
    return {key: config for config in settings.feeds for key in (config.url, config.name)}


def oldest_first(entries: dict[str, Entry]) -> list[str]:
    """The entries' URLs, oldest first: by date, ties and undated entries from the bottom up.

    Feeds list their newest entries at the top, so an undated entry counts as old as the
    nearest dated entry below it, and undated entries with none below them come first.
    """
    keyed: list[tuple[datetime, int, str]] = []
    below = datetime.min.replace(tzinfo=UTC)
    for position, url in enumerate(reversed(entries)):
        below = entries[url].published_at or below
        keyed.append((below, position, url))
    return [url for _date, _position, url in sorted(keyed)]


class Refresher:
    """Refreshes feeds with shared machinery: fetcher, process pool, archive, DB thread."""

    def __init__(
        self,
        *,
        settings: Settings,
        engine: sa.Engine,
        fetcher: Fetcher,
        pool: CPUPool,
        archive: Archive | None = None,
        db_executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.fetcher = fetcher
        self.pool = pool
        self._configs = _by_name_and_url(settings)
        self.archive = archive or Archive(settings)
        # Limits and deadlines keep their start-up values, as the fetcher's do.
        self._poll = settings.poll
        self._own_db_executor = db_executor is None
        self.db_executor = db_executor or ThreadPoolExecutor(1, thread_name_prefix="monitor-db")
        # Pages being fetched right now, so two feeds carrying one story fetch it once.
        self._inflight: dict[str, asyncio.Future[StoreResult | None]] = {}
        # Pages downloaded or waiting for extraction at once: downloads outpace the
        # extraction pool, and without a bound a burst of new entries would hold every
        # page in memory until its turn.
        page_slots = max(settings.poll.concurrency, 2 * pool.workers)
        self._page_slots = asyncio.Semaphore(page_slots)
        # One feed's share of them: a feed whose pages hang holds these, the others go on.
        self._feed_pages = max(1, min(settings.poll.per_feed_pages, page_slots // 2))

    async def db(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking database work on the database thread."""
        return await asyncio.get_running_loop().run_in_executor(self.db_executor, func, *args)

    def close(self) -> None:
        if self._own_db_executor:
            self.db_executor.shutdown(wait=True)

    def reconfigure(self, settings: Settings) -> None:
        """Store under ``settings`` from now on (entities, alert channels); on the database thread."""
        self.settings = settings
        self.archive = Archive(settings)
        self._configs = _by_name_and_url(settings)

    def _config(self, feed: FeedSnapshot) -> FeedConfig:
        """The feed's options from the configuration; the defaults for a feed added at run time."""
        config = self._configs.get(feed.name) or self._configs.get(feed.url)
        return config or FeedConfig(name=feed.name, url=feed.url)

    async def _fetch(self, config: FeedConfig, url: str, **kwargs: Any) -> FetchResult:
        """``Fetcher.fetch`` with the feed's own headers, user agent and proxy."""
        headers = dict(config.headers)
        if config.user_agent:
            headers["User-Agent"] = config.user_agent
        return await self.fetcher.fetch(url, headers=headers, proxy=config.proxy, **kwargs)

    async def refresh(self, feed: FeedSnapshot) -> RefreshOutcome:
        """Poll ``feed`` once; failures come back classified in the outcome."""
        started = time.monotonic()
        # Counted as the poll goes, so that a failed poll still tells what it stored.
        tally = PollCounts()
        try:
            outcome = await self._within_deadline(feed, tally)
        except FetchError as exc:
            outcome = self._failed(feed, exc, tally)
        except Exception as exc:  # the database, or a bug: recorded, never fatal
            if is_outage(exc):
                # The daemon reports the outage itself; a traceback would say nothing more.
                reason = outage_reason(exc)
                log.warning("feed %s: the database is unreachable: %s", feed.name, reason)
                message = f"database unreachable: {reason}"
            else:
                log.exception("feed %s: unexpected failure", feed.name)
                message = f"{type(exc).__name__}: {exc}"
            outcome = self._failed(feed, FetchError(FailureKind.INTERNAL, message), tally)
        outcome.elapsed = time.monotonic() - started
        return outcome

    async def _within_deadline(self, feed: FeedSnapshot, tally: PollCounts) -> RefreshOutcome:
        deadline = self._poll.feed_deadline
        scope = asyncio.timeout(deadline)
        try:
            async with scope:
                return await self._refresh(feed, tally)
        except TimeoutError:
            if not scope.expired():
                raise
            # Cancelled part-way: what was stored stays, the rest comes with the next poll.
            message = f"not done after {deadline:g}s; {tally.stored} new entries stored, the rest next poll"
            raise FetchError(FailureKind.DEADLINE, message) from None

    @staticmethod
    def _failed(feed: FeedSnapshot, exc: FetchError, tally: PollCounts) -> RefreshOutcome:
        outcome = RefreshOutcome(
            feed_id=feed.id,
            feed_name=feed.name,
            status=PollStatus.ERROR,
            error_kind=exc.kind,
            error_message=exc.message,
            retry_after=exc.retry_after,
        )
        outcome.add(tally)
        return outcome

    async def _refresh(self, feed: FeedSnapshot, tally: PollCounts) -> RefreshOutcome:
        config = self._config(feed)
        result = await self._fetch(config, feed.url, etag=feed.etag, last_modified=feed.last_modified)
        if result.not_modified:
            return self._quiet(feed, PollStatus.NOT_MODIFIED, result, feed.body_hash)
        assert result.body is not None
        digest = body_hash(result.body)
        if digest == feed.body_hash:
            # The server ignores conditional requests but sent the same bytes again.
            return self._quiet(feed, PollStatus.UNCHANGED, result, digest)
        limit = self._poll.feed_deadline
        links = await self.pool.scan(result.body, url=result.url, limit=limit)
        if links is not None and not set(links) - await self.db(self._known_urls, links):
            # A changed feed that lists only stories already stored: no full parse.
            return self._known_only(feed, result, digest, entries=len(links))
        document, urls = await self.pool.parse(
            result.body, url=result.url, content_type=result.content_type, limit=limit
        )
        index = bool(document.sitemaps)
        if index:
            document, urls = await self._sitemaps(config, document)
        entries = self._entries(feed, document, urls)
        known = await self.db(self._known_urls, list(entries))
        new = {url: entry for url, entry in entries.items() if url not in known}
        tally.entries_seen, tally.new_entries = len(document.entries), len(new)
        taken = oldest_first(new)[: self._poll.max_new_entries]
        tally.waiting = len(new) - len(taken)
        errors = await self._ingest_all(feed, config, {url: new[url] for url in taken}, tally)
        if errors:
            # Keep the old validators: what was not stored is tried again next time.
            raise errors[0]
        # An index's sitemaps change while it stays the same: it is fetched in full each time.
        waiting = tally.waiting > 0 or index
        extraction = await self.db(self._extraction_window, feed.id) if tally.stored else None
        outcome = RefreshOutcome(
            feed_id=feed.id,
            feed_name=feed.name,
            status=PollStatus.OK,
            etag=None if waiting else result.etag,
            last_modified=None if waiting else result.last_modified,
            body_hash=None if waiting else digest,
            max_age=result.max_age,
            warning=document.warning,
            new_dates=tuple(entry.published_at for entry in new.values()),
            extraction=extraction,
        )
        outcome.add(tally)
        return outcome

    async def _sitemaps(self, config: FeedConfig, index: ParsedFeed) -> tuple[ParsedFeed, list[str | None]]:
        """The entries of an index's sitemaps, newest first, one level of indexes down.

        At most ``MAX_CHILDREN`` sitemaps are fetched; one that fails is skipped with a
        warning, and only when every one fails does the poll fail.
        """
        queue, depth = list(index.sitemaps), dict.fromkeys(index.sitemaps, 1)
        entries: list[Entry] = []
        urls: list[str | None] = []
        problems: list[FetchError] = []
        fetched = 0
        while queue and fetched < MAX_CHILDREN:
            child_url = queue.pop(0)
            fetched += 1
            try:
                result = await self._fetch(config, child_url)
                assert result.body is not None
                child, child_urls = await self.pool.parse(
                    result.body, url=result.url, content_type=result.content_type, limit=self._poll.feed_deadline
                )
            except FetchError as exc:
                problems.append(exc)
                continue
            if child.sitemaps and depth[child_url] < 2:
                for grandchild in child.sitemaps:
                    depth.setdefault(grandchild, depth[child_url] + 1)
                    queue.append(grandchild)
            entries.extend(child.entries)
            urls.extend(child_urls)
        if problems and len(problems) == fetched:
            raise problems[0]
        warning = f"{len(problems)} of {fetched} sitemaps failed: {problems[0].message}" if problems else None
        return ParsedFeed(None, None, "sitemapindex", entries, warning), urls

    @staticmethod
    def _known_only(feed: FeedSnapshot, result: FetchResult, digest: str, *, entries: int) -> RefreshOutcome:
        return RefreshOutcome(
            feed_id=feed.id,
            feed_name=feed.name,
            status=PollStatus.OK,
            entries_seen=entries,
            etag=result.etag,
            last_modified=result.last_modified,
            body_hash=digest,
            max_age=result.max_age,
        )

    @staticmethod
    def _quiet(feed: FeedSnapshot, status: PollStatus, result: FetchResult, digest: str | None) -> RefreshOutcome:
        return RefreshOutcome(
            feed_id=feed.id,
            feed_name=feed.name,
            status=status,
            etag=result.etag or feed.etag,
            last_modified=result.last_modified or feed.last_modified,
            body_hash=digest,
            max_age=result.max_age,
        )

    @staticmethod
    def _entries(feed: FeedSnapshot, document: ParsedFeed, urls: list[str | None]) -> dict[str, Entry]:
        """Entries by article URL; an entry listed twice counts once (the first)."""
        entries: dict[str, Entry] = {}
        for entry, canonical in zip(document.entries, urls, strict=True):
            entries.setdefault(_entry_url(feed, entry, canonical), entry)
        return entries

    def _known_urls(self, urls: list[str]) -> set[str]:
        with session(self.engine) as db:
            return self.archive.known_urls(db, urls)

    def _extraction_window(self, feed_id: int) -> tuple[int, int]:
        """(failed, articles) over the feed's last ``EXTRACTION_WINDOW`` articles."""
        with self.engine.connect() as connection:
            notes = connection.execute(_RECENT_NOTES, {"feed_id": feed_id}).scalars().all()
        failed = sum(1 for note in notes if note is not None and not note.startswith("no link"))
        return failed, len(notes)

    def _store(self, candidate: Candidate) -> StoreResult:
        with session(self.engine) as db:
            return self.archive.store(db, candidate)

    # ------------------------------------------------------------------- new entries

    async def _ingest_all(
        self, feed: FeedSnapshot, config: FeedConfig, new: dict[str, Entry], tally: PollCounts
    ) -> list[Exception]:
        """Store the new entries, counting into ``tally``; the exceptions of those that failed."""
        share = asyncio.Semaphore(self._feed_pages)
        results = await asyncio.gather(
            *(self._ingest(feed, config, url, entry, tally, share) for url, entry in new.items()),
            return_exceptions=True,
        )
        errors: list[Exception] = []
        for result in results:
            if isinstance(result, Exception):
                errors.append(result)
            elif isinstance(result, BaseException):  # cancelled: the whole refresh is
                raise result
        return errors

    async def _ingest(
        self,
        feed: FeedSnapshot,
        config: FeedConfig,
        url: str,
        entry: Entry,
        tally: PollCounts,
        share: asyncio.Semaphore,
    ) -> None:
        shared = self._inflight.get(url)
        if shared is not None:
            # Another feed of this process is storing the same story right now.
            await asyncio.shield(shared)
            return
        future: asyncio.Future[StoreResult | None] = asyncio.get_running_loop().create_future()
        self._inflight[url] = future
        try:
            result = await self._fetch_extract_store(feed, config, url, entry, tally, share)
        except BaseException:
            future.set_result(None)
            raise
        else:
            future.set_result(result)
        finally:
            self._inflight.pop(url, None)
        if result is not None and result.created:
            tally.stored += 1
            tally.duplicates += bool(result.duplicate_of)
            tally.alerts += result.alerts

    async def _fetch_extract_store(
        self,
        feed: FeedSnapshot,
        config: FeedConfig,
        url: str,
        entry: Entry,
        tally: PollCounts,
        share: asyncio.Semaphore,
    ) -> StoreResult | None:
        if not config.extract:
            page = _Page(None, _OWN_CONTENT)
        else:
            # The feed's share first: a page waiting for it holds none of the shared slots.
            async with share, self._page_slots:
                page = await self._page(config, url, entry)
        candidate = self._candidate(feed, url, entry, page)
        if candidate is None:
            tally.skipped += 1
            log.info("feed %s: %s: page %s and no text in the feed; skipped", feed.name, url, page.problem)
            return None
        result = await self.db(self._store, candidate)
        if result.rejected is not None:
            # The entry's own data, refused for good: trying it again would not help, and
            # an error would keep the feed's validators and so block the entries after it.
            tally.skipped += 1
            log.warning("feed %s: %s: not stored, %s; skipped", feed.name, url, result.rejected)
            return None
        tally.fallbacks += candidate.extraction_note is not None
        return result

    async def _page(self, config: FeedConfig, url: str, entry: Entry) -> _Page:
        if _is_synthetic(url):
            return _Page(None, "no link")
        try:
            result = await self._fetch(config, url, accept=PAGE_ACCEPT)
        except FetchError as exc:
            return _Page(None, exc.problem)
        if not result.body or not _is_html(result.content_type):
            return _Page(None, "empty" if not result.body else "not_html")
        # trafilatura's metadata search costs a third of the extraction; the entry's
        # own date (and title, author) are as good, so it runs only without one.
        metadata = entry.published_at is None
        try:
            extracted, problem = await self.pool.extract(
                result.body,
                url=result.url,
                metadata=metadata,
                selector=config.selector,
                limit=self._poll.extract_timeout,
            )
        except FetchError as exc:  # past the time limit
            return _Page(None, exc.problem)
        if extracted is None:
            return _Page(None, problem or "empty")
        return _Page(extracted)

    @staticmethod
    def _candidate(feed: FeedSnapshot, url: str, entry: Entry, page: _Page) -> Candidate | None:
        extracted = page.extracted
        note = None
        if extracted is None:
            text = _fallback_text(entry)
            if text is None:
                return None
            extracted = Extracted(text=text)
            if page.problem != _OWN_CONTENT:  # asked for, not a failure
                reason = page.problem if page.problem == "no link" else f"page {page.problem}"
                note = f"{reason}; feed content used"
        return Candidate(
            url=url,
            text=extracted.text,
            title=without_site_name(extracted.title or entry.title, extracted.site_name, feed.name),
            author=extracted.author or entry.author,
            language=entry.language or extracted.language,  # a news sitemap says it per story
            published_at=extracted.published_at or entry.published_at,
            feed_id=feed.id,
            source="feed",
            extraction_note=note,
        )


__all__ = ["FeedSnapshot", "PollCounts", "RefreshOutcome", "Refresher", "body_hash"]
