"""Re-matching: the stored articles' mentions recomputed with the entities configured now.

Mentions are found once, when an article is stored, with the entities of that moment.
When an entity or an alias is added or removed, re-matching brings the archive in line,
so that ``monitor search --entity Astana`` finds the articles stored before Astana was
tracked, and an alias dropped stops finding what only it matched.

Each article is matched again (``EntityMatcher.find``) and its stored mentions compared
by (entity, start, end): those no longer found are deleted, those newly found are
inserted as ingest writes them; the rest stay as they are. Nothing else changes: no
alert is queued or touched (alerts tell of new articles, not of old ones newly
recognised), and the full-text index holds no mentions.

Work goes in batches of articles, by id, each in its own short transaction, so polling
goes on beside it and an interruption loses at most one batch's work. The single
``match_state`` row (``MatchState``) records:

- ``matched``: the fingerprint of the entity set (names, aliases, their order, and
  ``MATCHER_VERSION``) that every stored article was last matched with;
- ``target``, ``cursor``: a re-match under way, the set it matches with and the last
  article id done; an interrupted re-match resumes after ``cursor``; a change of the
  set while one is under way starts it again from the first article;
- ``owner``, ``lease_expires_at``: the process doing it. A batch starts only with the
  lease in hand (an ``UPDATE`` that takes it when free, expired or already ours, the
  same on SQLite and PostgreSQL) and renews it in its own transaction, so two workers
  never re-match at the same time, and a crashed one's lease runs out.

A database without the row (before this table, or new) is re-matched once when it has
articles: what entities their mentions came from is not known.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from monitor.config import EntityConfig
from monitor.db import session as open_session
from monitor.models import Article, MatchState, Mention
from monitor.pipeline.ingest import mention_rows
from monitor.pipeline.match import EntityMatcher
from monitor.times import utcnow

# Part of the fingerprint: raise it when match.py comes to find other mentions in the
# same text, and every archive is re-matched once.
MATCHER_VERSION = 1
STATE_KEY = "entities"
BATCH = 200  # articles per transaction
LEASE = 120.0  # seconds a batch may take before another process may take over


def fingerprint(entities: Sequence[EntityConfig]) -> str:
    """What the stored mentions depend on, as a hex digest."""
    shape = {"version": MATCHER_VERSION, "entities": [[e.name, *e.aliases] for e in entities]}
    return hashlib.sha256(json.dumps(shape, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass
class RematchReport:
    """What re-matching did: articles checked, mentions added and removed per entity."""

    articles: int = 0
    changed: int = 0  # articles whose mentions changed
    added: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)

    def add(self, other: RematchReport) -> None:
        self.articles += other.articles
        self.changed += other.changed
        self.added.update(other.added)
        self.removed.update(other.removed)

    def as_dict(self) -> dict[str, Any]:
        entities = sorted(set(self.added) | set(self.removed), key=str.casefold)
        return {
            "articles": self.articles,
            "changed": self.changed,
            "added": sum(self.added.values()),
            "removed": sum(self.removed.values()),
            "entities": {e: {"added": self.added[e], "removed": self.removed[e]} for e in entities},
        }

    def summary(self) -> str:
        text = (
            f"{self.articles} article(s) checked, {self.changed} changed: "
            f"{sum(self.added.values())} mention(s) added, {sum(self.removed.values())} removed"
        )
        per_entity = [
            f"{entity} +{counts['added']} -{counts['removed']}" for entity, counts in self.as_dict()["entities"].items()
        ]
        return text + (f" ({', '.join(per_entity)})" if per_entity else "")


def rematch_articles(session: Session, matcher: EntityMatcher, articles: Sequence[tuple[int, str]]) -> RematchReport:
    """Bring the mentions of ``articles`` (id, text) in line with ``matcher``; no commit."""
    report = RematchReport(articles=len(articles))
    if not articles:
        return report
    ids = [article_id for article_id, _ in articles]
    stored: dict[int, dict[tuple[str, int, int], Mention]] = {article_id: {} for article_id in ids}
    for mention in session.exec(select(Mention).where(col(Mention.article_id).in_(ids))):
        stored[mention.article_id][(mention.entity, mention.start, mention.end)] = mention
    for article_id, text in articles:
        found = {(m.entity, m.start, m.end): m for m in matcher.find(text)}
        had = stored[article_id]
        gone = [mention for key, mention in had.items() if key not in found]
        new = [match for key, match in found.items() if key not in had]
        if not gone and not new:
            continue
        report.changed += 1
        for mention in gone:
            session.delete(mention)
            report.removed[mention.entity] += 1
        session.add_all(mention_rows(article_id, new))
        report.added.update(match.entity for match in new)
    return report


class Progress(StrEnum):
    """Where a re-match stands after a step."""

    MORE = "more"  # a batch was done; more may follow
    DONE = "done"  # every stored article follows the entity set
    BUSY = "busy"  # another process holds the lease


@dataclass
class Step:
    progress: Progress
    report: RematchReport = field(default_factory=RematchReport)
    started: bool = False  # this step began a re-match from the first article


class Rematcher:
    """Re-matches the archive with ``entities``, a batch per ``step``, holding the lease as ``owner``.

    ``full`` re-matches every article from the first even when ``matched`` says they
    follow the set already (``monitor rematch``); without it a step finds nothing to do
    then. ``since`` limits it to articles published (else stored) from then on; such a
    partial re-match keeps its place in memory and leaves ``matched`` as it was.
    """

    def __init__(
        self,
        engine: Engine,
        entities: Sequence[EntityConfig],
        *,
        owner: str,
        batch: int = BATCH,
        full: bool = False,
        since: datetime | None = None,
    ) -> None:
        self.engine = engine
        self.matcher = EntityMatcher(entities)
        self.target = fingerprint(entities)
        self.owner = owner[:100]
        self.batch = batch
        self.since = since
        self._restart = full and since is None  # at the first step
        self._cursor = 0  # a partial re-match's place

    # ------------------------------------------------------------------------ state

    def needed(self) -> bool:
        """Whether the stored mentions may not follow the entity set (a cheap read)."""
        with open_session(self.engine) as session:
            state = session.get(MatchState, STATE_KEY)
            if state is None:
                return session.exec(select(Article.id).limit(1)).first() is not None
            return state.matched != self.target or state.target is not None

    def step(self) -> Step:
        """One batch, in one transaction with the lease and the place; or DONE or BUSY."""
        with open_session(self.engine) as session:
            state = self._claim(session)
            if state is None:
                session.rollback()
                return Step(Progress.BUSY)
            started = False
            if self.since is None and (state.target != self.target or self._restart):
                if state.matched == self.target and state.target is None and not self._restart:
                    self._release(session, finished=False)
                    return Step(Progress.DONE)
                state.target, state.cursor, started = self.target, 0, True
                self._restart = False
            after = self._cursor if self.since is not None else state.cursor or 0
            articles = self._next_articles(session, after)
            if not articles:
                self._release(session, finished=self.since is None)
                return Step(Progress.DONE, started=started)
            report = rematch_articles(session, self.matcher, articles)
            last = articles[-1][0]
            if self.since is not None:
                self._cursor = last
            else:
                state.cursor = last
            state.updated_at = utcnow()
            session.add(state)
            session.commit()
            return Step(Progress.MORE, report, started)

    def holder(self) -> str | None:
        """The process holding the lease, if any."""
        with open_session(self.engine) as session:
            state = session.get(MatchState, STATE_KEY)
            return state.owner if state is not None else None

    def release(self) -> None:
        """Give the lease back (stopping mid-way: the place is kept for whoever goes on)."""
        with open_session(self.engine) as session:
            self._release(session, finished=False)

    def _ensure_state(self, session: Session) -> None:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert(MatchState).values(key=STATE_KEY, updated_at=utcnow()).on_conflict_do_nothing(index_elements=["key"])
        )

    def _claim(self, session: Session) -> MatchState | None:
        """Take or renew the lease; the state row, or None when another process holds it."""
        self._ensure_state(session)
        now = utcnow()
        taken = session.exec(
            sa.update(MatchState)
            .where(
                col(MatchState.key) == STATE_KEY,
                sa.or_(
                    col(MatchState.owner).is_(None),
                    col(MatchState.owner) == self.owner,
                    col(MatchState.lease_expires_at) < now,
                ),
            )
            .values(owner=self.owner, lease_expires_at=now + timedelta(seconds=LEASE))
        )
        if not taken.rowcount:
            return None
        state = session.get(MatchState, STATE_KEY, populate_existing=True)
        assert state is not None
        return state

    def _release(self, session: Session, *, finished: bool) -> None:
        values: dict[str, Any] = {"owner": None, "lease_expires_at": None, "updated_at": utcnow()}
        if finished:
            values |= {"matched": self.target, "matched_at": utcnow(), "target": None, "cursor": None}
        session.execute(
            sa.update(MatchState)
            .where(col(MatchState.key) == STATE_KEY, col(MatchState.owner) == self.owner)
            .values(**values)
        )
        session.commit()

    def _next_articles(self, session: Session, after: int) -> list[tuple[int, str]]:
        query = select(Article.id, Article.text).where(col(Article.id) > after)
        if self.since is not None:
            moment = sa.func.coalesce(col(Article.published_at), col(Article.fetched_at))
            query = query.where(moment >= self.since)
        rows = session.exec(query.order_by(col(Article.id)).limit(self.batch)).all()
        return [(article_id, text) for article_id, text in rows if article_id is not None]


__all__ = ["BATCH", "MATCHER_VERSION", "Progress", "RematchReport", "Rematcher", "Step", "fingerprint"]
