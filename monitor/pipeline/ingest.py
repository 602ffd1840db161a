"""Dedup, match and store one article: the part every way in (poll, import) shares.

``Archive`` holds what is built once per process — the entity automaton and the dedup
index — and stores each article in one transaction with its mentions, its
fingerprints (only when it is new) and its outbox alerts (only when it is new and
mentions a tracked entity). A URL that is already stored is never stored again, even
when two workers race for it: the unique URL decides and the loser gets the winner's row.
"""

from __future__ import annotations

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
from monitor.times import utcnow

# Built once: a poll of a thousand feeds asks it a thousand times.
_ARTICLE = table_of(Article)
_KNOWN_URLS = sa.select(_ARTICLE.c.url).where(_ARTICLE.c.url.in_(sa.bindparam("urls", expanding=True)))


@dataclass(frozen=True)
class Candidate:
    """An article about to be stored: extracted text plus what is known of it."""

    url: str  # canonical URL (file:// for imported files)
    text: str
    title: str | None = None
    author: str | None = None
    language: str | None = None
    published_at: datetime | None = None
    feed_id: int | None = None
    source: str = "feed"
    extraction_note: str | None = None


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
    article_id: int
    created: bool  # False: the URL was stored before, nothing was written
    duplicate_of: str | None = None
    similarity: float = 0.0
    entities: tuple[str, ...] = field(default_factory=tuple)
    alerts: int = 0


class Archive:
    """The archive's write path, configured once from the settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.matcher = EntityMatcher(settings.entities)
        self.index = DedupIndex(settings.dedup)

    def analyze(self, session: Session, text: str, shingled: Shingled | None = None) -> Analysis:
        """Dedup verdict and mentions of ``text`` against the archive; writes nothing."""
        verdict = self.index.check(session, shingled or text)
        return Analysis(verdict=verdict, mentions=self.matcher.find(text))

    def known_urls(self, session: Session, urls: Iterable[str]) -> set[str]:
        """Which of ``urls`` are stored already, in one query per thousand URLs."""
        wanted = list(dict.fromkeys(urls))
        known: set[str] = set()
        for start in range(0, len(wanted), 1000):
            known.update(session.execute(_KNOWN_URLS, {"urls": wanted[start : start + 1000]}).scalars())
        return known

    def store(self, session: Session, candidate: Candidate) -> StoreResult:
        """Store ``candidate`` unless its URL is known; commits (or rolls back) itself."""
        existing = self._existing(session, candidate.url)
        if existing is not None:
            return existing
        shingled = shingle(candidate.text)  # once, for the verdict, the hash and the index
        analysis = self.analyze(session, candidate.text, shingled)
        article = self._article(candidate, analysis.verdict, shingled.digest)
        try:
            session.add(article)
            session.flush()
            assert article.id is not None
            session.add_all(_mentions(article.id, analysis.mentions))
            alerts = 0
            if not analysis.verdict.is_duplicate:
                self.index.add(session, shingled, article_id=article.id)
                if analysis.mentions:
                    alerts = len(
                        enqueue_alerts(
                            session,
                            article=article,
                            entities=analysis.entities,
                            settings=self.settings,
                        )
                    )
            session.commit()
        except sa.exc.IntegrityError:
            # Another worker stored the same URL between our check and our insert.
            session.rollback()
            existing = self._existing(session, candidate.url)
            if existing is None:
                raise
            return existing
        except BaseException:
            session.rollback()
            raise
        duplicate_of = analysis.verdict.duplicate_of
        return StoreResult(
            article_id=article.id,
            created=True,
            duplicate_of=duplicate_of.name if duplicate_of else None,
            similarity=analysis.verdict.similarity,
            entities=analysis.entities,
            alerts=alerts,
        )

    @staticmethod
    def _existing(session: Session, url: str) -> StoreResult | None:
        article_id = session.exec(select(Article.id).where(Article.url == url)).first()
        return None if article_id is None else StoreResult(article_id=article_id, created=False)

    @staticmethod
    def _article(candidate: Candidate, verdict: Verdict, digest: str) -> Article:
        known = verdict.duplicate_of
        return Article(
            url=candidate.url,
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


def _mentions(article_id: int, matches: list[Match]) -> list[Mention]:
    return [
        Mention(
            article_id=article_id,
            entity=m.entity,
            text=m.text[:500],
            start=m.start,
            end=m.end,
            snippet=m.snippet[:1000],
        )
        for m in matches
    ]
