"""Reads the API needs besides search: one article, the feeds, recent mentions.

Keyword-only functions taking the session explicitly, returning API shapes or rows;
the routes stay thin and these can be tested against a database alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.api.schemas import ArticleDetail, MentionOut
from monitor.conditions import clean_entity_names
from monitor.health import FeedHealth, feed_health
from monitor.models import Article, Feed, Mention, Seed, stored_id
from monitor.search import article_summary, duplicate_label, lead, max_id


def article_detail(session: Session, *, article_id: int) -> ArticleDetail | None:
    """The article with its text and mentions; its summary part reads as in search."""
    if not 1 <= article_id <= max_id(session.get_bind().dialect.name):
        return None  # no row has it, and the driver could not even send it
    article = session.get(Article, article_id)
    if article is None:
        return None
    mentions = session.exec(select(Mention).where(Mention.article_id == article_id).order_by(col(Mention.start))).all()
    feed = session.get(Feed, article.feed_id) if article.feed_id is not None else None
    seed = session.get(Seed, article.duplicate_of_seed_id) if article.duplicate_of_seed_id else None
    summary = article_summary(
        article,
        feed=feed.name if feed else None,
        entities=(m.entity for m in mentions),
        duplicate_of=duplicate_label(article, seed.name if seed else None),
        snippet=mentions[0].snippet if mentions else lead(article.text),
    )
    return ArticleDetail(
        **summary.model_dump(),
        text=article.text,
        author=article.author,
        language=article.language,
        similarity=article.similarity,
        mentions=[MentionOut.model_validate(m) for m in mentions],
    )


def list_feeds(session: Session) -> list[FeedHealth]:
    return feed_health(session)


@dataclass(frozen=True)
class MentionedArticle:
    """An article for the mentions feed, with the mentions that put it there."""

    article: Article
    feed: str | None
    mentions: list[Mention]


def stored_entity_names(session: Session, names: Sequence[str]) -> list[str]:
    """Each name as the archive spells it (``csto`` -> ``CSTO``); unknown names stay as given.

    Raises ``QueryError`` for more names than a search takes, or a name no row can have.
    """
    if not names:
        return []
    names = clean_entity_names(names)
    known = {n.casefold(): n for n in session.exec(select(Mention.entity).distinct()).all()}
    return list(dict.fromkeys(known.get(n.casefold(), n) for n in names))


def recent_mentions(session: Session, *, entities: Sequence[str] = (), limit: int = 50) -> list[MentionedArticle]:
    """The newest non-duplicate articles mentioning any of ``entities`` (any entity if none)."""
    mentioned = select(Mention.article_id).where(col(Mention.article_id) == col(Article.id))
    if entities:
        mentioned = mentioned.where(col(Mention.entity).in_(list(entities)))
    rows = session.exec(
        select(Article, Feed.name)
        .join(Feed, col(Feed.id) == col(Article.feed_id), isouter=True)
        .where(col(Article.is_duplicate) == sa.false(), mentioned.exists())
        .order_by(col(Article.fetched_at).desc(), col(Article.id).desc())
        .limit(limit)
    ).all()
    if not rows:
        return []
    found = select(Mention).where(col(Mention.article_id).in_([a.id for a, _ in rows]))
    if entities:
        found = found.where(col(Mention.entity).in_(list(entities)))
    by_article: dict[int, list[Mention]] = defaultdict(list)
    for mention in session.exec(found.order_by(col(Mention.article_id), col(Mention.start))):
        by_article[mention.article_id].append(mention)
    return [MentionedArticle(a, feed, by_article[stored_id(a.id)]) for a, feed in rows]
