"""Dedup, match and store one article: the part every way in (poll, import) shares.

``Archive`` holds what is built once per process — the entity automaton, the dedup
index and the rules (``monitor.rules``) — and stores each article in one transaction
with its mentions, its fingerprints (only when it is new) and its outbox alerts (only
when it is new and fires a rule: the rules are evaluated on the flushed article, in
that same transaction, so an article fires a rule exactly when search with the rule's
query lists it). An ``Archive`` built with ``alerting=False`` (backfills) stores without
rules or alerts. A URL that is already stored is never stored again, even when two
workers race for it: the unique URL decides and the loser gets the winner's row.

The storage boundary: whatever a feed or a file carries, a ``Candidate`` holds only what
both engines store. Control characters (C0 but tab, newline and carriage return; C1),
lone surrogates and noncharacters are removed from every text field — PostgreSQL
refuses NUL, neither driver encodes a lone surrogate. Bounded columns are cut before
the insert: a title, an author or a note at a word with an ellipsis. A URL longer than
its column is stored as its head plus the SHA-256 of the whole (``stored_url``), so it
stays unique and is recognised when seen again. Whatever the database still refuses of
an entry's own data (a data exception, a limit of the engine) comes back as
``StoreResult.rejected`` with nothing written, never as an exception: one bad entry
cannot hold up the rest of its feed.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from monitor.alerts.outbox import enqueue_alerts
from monitor.config import Settings
from monitor.models import Article, Mention, table_of
from monitor.pipeline.dedup import DedupIndex, Shingled, Verdict, shingle
from monitor.pipeline.match import EntityMatcher, Match
from monitor.rules import Rulebook, routes
from monitor.text import storable_text
from monitor.times import as_utc, utcnow

# Built once: a poll of a thousand feeds asks it a thousand times.
_ARTICLE = table_of(Article)
_MENTION = table_of(Mention)
_KNOWN_URLS = sa.select(_ARTICLE.c.url).where(_ARTICLE.c.url.in_(sa.bindparam("urls", expanding=True)))


def _column_chars(table: sa.Table, name: str) -> int:
    """The length of a bounded column: what is stored in it is cut to that, never refused."""
    length = getattr(table.c[name].type, "length", None)
    if not isinstance(length, int):
        raise TypeError(f"{table.name}.{name} has no length")
    return length


# Read from the tables, so that the cuts follow the schema.
_URL_CHARS = _column_chars(_ARTICLE, "url")
_TITLE_CHARS = _column_chars(_ARTICLE, "title")
_AUTHOR_CHARS = _column_chars(_ARTICLE, "author")
_LANGUAGE_CHARS = _column_chars(_ARTICLE, "language")
_NOTE_CHARS = _column_chars(_ARTICLE, "extraction_note")
_ENTITY_CHARS = _column_chars(_MENTION, "entity")
_MATCH_CHARS = _column_chars(_MENTION, "text")
_SNIPPET_CHARS = _column_chars(_MENTION, "snippet")

_URL_DIGEST = "#sha256="
_PARTIAL_WORD = re.compile(r"\S+$")


def cut_at_word(value: str, limit: int) -> str:
    """``value`` in at most ``limit`` characters: when longer, cut at a word and ended by "…"."""
    if len(value) <= limit:
        return value
    head = value[: limit - 1]
    partial = _PARTIAL_WORD.search(head)
    # A word longer than half the room is cut inside rather than dropped whole.
    if partial is not None and not value[limit - 1].isspace() and partial.start() > limit // 2:
        head = head[: partial.start()]
    return head.rstrip() + "…"


def stored_url(url: str) -> str:
    """``url`` as the archive stores it: as it is, or its head and the SHA-256 of the whole.

    Bounded in characters by the column and in UTF-8 bytes too, because the column's
    unique index takes at most about 2.7 kB per entry on PostgreSQL. Two long URLs that
    share their head differ in their digest; the same long URL always gives the same form.
    """
    url = storable_text(url)
    if len(url) <= _URL_CHARS and (url.isascii() or len(url.encode()) <= _URL_CHARS):
        return url
    whole = url.encode()
    digest = _URL_DIGEST + hashlib.sha256(whole).hexdigest()
    return whole[: _URL_CHARS - len(digest)].decode("utf-8", "ignore") + digest


def _line(value: str | None, limit: int, *, ellipsis: bool = True) -> str | None:
    """A one-line field (title, author, note, language) as stored; None when nothing is left."""
    if value is None:
        return None
    # One line: the line breaks that stand for removed separators are spaces here.
    value = " ".join(storable_text(value).split())
    value = cut_at_word(value, limit) if ellipsis else value[:limit].strip()
    return value or None


def _utc_or_none(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    try:
        return as_utc(moment)
    except OverflowError:  # an offset that takes year 1 or 9999 out of range
        return None


@dataclass(frozen=True)
class Candidate:
    """An article about to be stored: extracted text plus what is known of it.

    Storable once built: its text fields are cleaned (``storable_text``) and the short
    ones cut to their columns. The URL keeps its full length: ``stored_url`` bounds it
    where it is stored and looked up, so its digest is of the whole URL.
    """

    url: str  # canonical URL (file:// for imported files)
    text: str
    title: str | None = None
    author: str | None = None
    language: str | None = None
    published_at: datetime | None = None
    feed_id: int | None = None
    source: str = "feed"
    extraction_note: str | None = None

    def __post_init__(self) -> None:
        cleaned = {
            "url": storable_text(self.url),
            "text": storable_text(self.text),
            "title": _line(self.title, _TITLE_CHARS),
            "author": _line(self.author, _AUTHOR_CHARS),
            "language": _line(self.language, _LANGUAGE_CHARS, ellipsis=False),
            "extraction_note": _line(self.extraction_note, _NOTE_CHARS),
            "published_at": _utc_or_none(self.published_at),
        }
        # Frozen: the cleaned values are set once, here, before anyone reads them.
        for name, value in cleaned.items():
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class Analysis:
    """What the pipeline concludes about a text, before anything is stored."""

    verdict: Verdict
    mentions: list[Match]

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(sorted({m.entity for m in self.mentions}))


@dataclass(frozen=True)
class StoreResult:
    article_id: int | None  # None when rejected
    created: bool  # False: the URL was stored before, or the entry was rejected; nothing was written
    duplicate_of: str | None = None
    similarity: float = 0.0
    entities: tuple[str, ...] = field(default_factory=tuple)
    alerts: int = 0
    rules: tuple[str, ...] = ()  # the rules it fired
    # Why the entry's own data could not be stored (the database refused it, or no text
    # was left once cleaned); the caller skips the entry and says so.
    rejected: str | None = None


class Archive:
    """The archive's write path, configured once from the settings."""

    def __init__(self, settings: Settings, *, alerting: bool = True) -> None:
        """``ConfigError`` naming the rule when a rule's query is bad (``alerting`` only)."""
        self.settings = settings
        self.matcher = EntityMatcher(settings.entities)
        self.index = DedupIndex(settings.dedup)
        self.rulebook = Rulebook.from_settings(settings) if alerting else None

    def rules_for(self, session: Session, candidate: Candidate, analysis: Analysis) -> list[str]:
        """The rules ``candidate`` would fire if it were stored now; writes nothing.

        Stored exactly as ``store`` stores it, evaluated, and rolled back with the
        session's transaction. A duplicate fires none, as it alerts nobody.
        """
        if self.rulebook is None or analysis.verdict.is_duplicate or not candidate.text.strip():
            return []
        shingled = shingle(candidate.text)
        article = self._article(candidate, f"urn:monitor:analyze:{uuid.uuid4().hex}", analysis.verdict, shingled.digest)
        try:
            session.add(article)
            session.flush()
            assert article.id is not None
            session.add_all(mention_rows(article.id, analysis.mentions))
            session.flush()
            return [rule.name for rule in self.rulebook.fired(session, article.id)]
        finally:
            session.rollback()

    def analyze(self, session: Session, text: str, shingled: Shingled | None = None) -> Analysis:
        """Dedup verdict and mentions of ``text`` against the archive; writes nothing."""
        verdict = self.index.check(session, shingled or text)
        return Analysis(verdict=verdict, mentions=self.matcher.find(text))

    def known_urls(self, session: Session, urls: Iterable[str]) -> set[str]:
        """Which of ``urls`` are stored already, in one query per thousand URLs."""
        wanted: dict[str, list[str]] = {}  # stored form -> the URLs given that have it
        for url in urls:
            wanted.setdefault(stored_url(url), []).append(url)
        forms = list(wanted)
        known: set[str] = set()
        for start in range(0, len(forms), 1000):
            for form in session.execute(_KNOWN_URLS, {"urls": forms[start : start + 1000]}).scalars():
                known.update(wanted.get(form, ()))
        return known

    def store(self, session: Session, candidate: Candidate) -> StoreResult:
        """Store ``candidate`` unless its URL is known; commits (or rolls back) itself.

        Never raises for the candidate's own data: what cannot be stored comes back as
        ``rejected``, with nothing written. The database's own trouble is raised.
        """
        if not candidate.text.strip():
            return StoreResult(article_id=None, created=False, rejected="no text left once cleaned")
        url = stored_url(candidate.url)
        existing = self._existing(session, url)
        if existing is not None:
            return existing
        try:
            return self._insert(session, candidate, url)
        except sa.exc.IntegrityError:
            # Another worker stored the same URL between our check and our insert.
            session.rollback()
            existing = self._existing(session, url)
            if existing is None:
                raise
            return existing
        except sa.exc.DBAPIError as exc:
            session.rollback()
            reason = _refusal(exc)
            if reason is None:
                raise
            return StoreResult(article_id=None, created=False, rejected=reason)
        except BaseException:
            session.rollback()
            raise

    def _insert(self, session: Session, candidate: Candidate, url: str) -> StoreResult:
        shingled = shingle(candidate.text)  # once, for the verdict, the hash and the index
        analysis = self.analyze(session, candidate.text, shingled)
        article = self._article(candidate, url, analysis.verdict, shingled.digest)
        session.add(article)
        session.flush()
        assert article.id is not None
        session.add_all(mention_rows(article.id, analysis.mentions))
        alerts, fired = 0, []
        if not analysis.verdict.is_duplicate:
            self.index.add(session, shingled, article_id=article.id)
            if self.rulebook is not None:
                session.flush()
                fired = self.rulebook.fired(session, article.id)
                queued = enqueue_alerts(
                    session,
                    article=article,
                    entities=analysis.entities,
                    routes=routes(fired),
                    settings=self.settings,
                )
                alerts = len(queued)
        session.commit()
        duplicate_of = analysis.verdict.duplicate_of
        return StoreResult(
            article_id=article.id,
            created=True,
            duplicate_of=duplicate_of.name if duplicate_of else None,
            similarity=analysis.verdict.similarity,
            entities=analysis.entities,
            alerts=alerts,
            rules=tuple(rule.name for rule in fired),
        )

    @staticmethod
    def _existing(session: Session, url: str) -> StoreResult | None:
        article_id = session.exec(select(Article.id).where(Article.url == url)).first()
        return None if article_id is None else StoreResult(article_id=article_id, created=False)

    @staticmethod
    def _article(candidate: Candidate, url: str, verdict: Verdict, digest: str) -> Article:
        known = verdict.duplicate_of
        return Article(
            url=url,
            title=candidate.title,
            text=candidate.text,
            author=candidate.author,
            language=candidate.language,
            published_at=candidate.published_at,
            fetched_at=utcnow(),
            feed_id=candidate.feed_id,
            source=candidate.source,
            content_hash=digest,
            extraction_note=candidate.extraction_note,
            duplicate_of_article_id=known.id if known and known.kind == "article" else None,
            duplicate_of_seed_id=known.id if known and known.kind == "seed" else None,
            similarity=verdict.similarity if known else None,
            is_duplicate=known is not None,
        )


def mention_rows(article_id: int, matches: list[Match]) -> list[Mention]:
    """The rows of ``matches`` in the article ``article_id``, cut to their columns (ingest, re-matching)."""
    return [
        Mention(
            article_id=article_id,
            entity=m.entity[:_ENTITY_CHARS],
            text=storable_text(m.text)[:_MATCH_CHARS],
            start=m.start,
            end=m.end,
            snippet=storable_text(m.snippet)[:_SNIPPET_CHARS],
        )
        for m in matches
    ]


# SQLSTATE classes that speak of the statement's data: data exception (NUL, a value too
# long, an untranslatable character) and program limit exceeded (tsvector, index entry).
_DATA_STATES = ("22", "54")
_SQLITE_TOOBIG = 18


def _refusal(exc: sa.exc.DBAPIError) -> str | None:
    """Why the database refused the entry's own data; None when the trouble is the database's."""
    orig = exc.orig
    state = str(getattr(orig, "sqlstate", None) or "")
    if not (
        isinstance(exc, sa.exc.DataError)
        or state[:2] in _DATA_STATES
        or getattr(orig, "sqlite_errorcode", None) == _SQLITE_TOOBIG
    ):
        return None
    lines = str(orig).strip().splitlines()
    return f"refused by the database: {lines[0] if lines else type(orig).__name__}"
