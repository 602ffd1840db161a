"""The outbox: alert rows written in the same transaction as their article.

``enqueue_alerts`` writes one alert per channel that a rule the article fired goes to
(``monitor.rules.routes``), naming those rules; ``load_message`` reads alerts back as
the message that carries them.

Because the alert is stored with the article, a crash can lose neither: either both
are committed or neither is, and the dispatcher (``monitor.alerts.dispatch``) sends
whatever is pending. The unique (article, channel) pair means nothing can alert twice
for the same article, however often a feed is polled.

Statuses (``AlertStatus``): ``pending`` (to send: due at ``next_attempt_at``), ``sent``, ``failed``
(permanently, or given up; ``monitor alerts retry`` puts them back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from monitor.alerts.channels import digest_window_end, new_message_id
from monitor.alerts.payloads import (
    CREATED,
    DIGEST,
    ArticleAlert,
    ArticleRef,
    MentionRef,
    Message,
    distinct_mentions,
    find_in_snippet,
)
from monitor.config import Settings
from monitor.models import Alert, AlertChannel, Article, Feed, Mention
from monitor.outcomes import AlertStatus
from monitor.times import iso, utcnow

if TYPE_CHECKING:
    from monitor.rules import Rule

STATUSES: tuple[str, ...] = tuple(status.value for status in AlertStatus)


def enqueue_alerts(
    session: Session,
    *,
    article: Article,
    entities: Sequence[str],
    routes: Mapping[str, Sequence[Rule]],
    settings: Settings,
    now: datetime | None = None,
) -> list[Alert]:
    """Add one pending alert per channel of ``routes`` (channel key → the rules fired
    for it); does not commit.

    ``article`` must be flushed (its id set) and new; ``entities`` are the distinct
    entities it mentions. An alert is due at the earliest of its rules' times: the end
    of the rule's digest window, else of the channel's, else now. One due at the end
    of a window is a digest's: it goes out with the others of its window.
    """
    assert article.id is not None, "flush the article before enqueueing its alerts"
    now = now or utcnow()
    names = sorted(set(entities), key=str.casefold)
    existing = set(session.exec(select(Alert.channel).where(Alert.article_id == article.id)).all())
    alerts = []
    for channel in settings.alerts.channels:
        rules = routes.get(channel.key)
        if not rules or channel.key in existing:
            continue
        due = min(_due(now, rule.digest or channel.digest) for rule in rules)
        alert = Alert(
            article_id=article.id,
            channel=channel.key,
            entities=names,
            rules=[rule.name for rule in rules],
            next_attempt_at=due,
            message_type=DIGEST if due > now else None,
            created_at=now,
            queued_at=now,
        )
        session.add(alert)
        alerts.append(alert)
    return alerts


def _due(now: datetime, digest: float | None) -> datetime:
    return digest_window_end(now, digest) if digest else now


def ensure_channels(session: Session, *, keys: Sequence[str]) -> None:
    """Make sure every channel has its state row (the row dispatchers lock)."""
    if not keys:
        return
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    rows = [{"key": key, "created_at": utcnow()} for key in keys]
    session.execute(insert(AlertChannel).values(rows).on_conflict_do_nothing())


@dataclass(frozen=True)
class AlertView:
    """An alert as ``monitor alerts`` shows it."""

    id: int
    channel: str
    status: str
    article_id: int
    title: str | None
    url: str
    entities: list[str]
    rules: list[str]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    message_id: str | None
    last_error: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "status": self.status,
            "article_id": self.article_id,
            "title": self.title,
            "url": self.url,
            "entities": self.entities,
            "rules": self.rules,
            "attempts": self.attempts,
            "created_at": iso(self.created_at),
            "next_attempt_at": iso(self.next_attempt_at),
            "sent_at": iso(self.sent_at),
            "message_id": self.message_id,
            "last_error": self.last_error,
        }


def list_alerts(
    session: Session,
    *,
    statuses: Sequence[str] = STATUSES,
    channel: str | None = None,
    limit: int = 100,
) -> list[AlertView]:
    """Alerts with the given statuses, newest first."""
    query = (
        select(Alert, Article.title, Article.url)
        .join(Article, col(Article.id) == col(Alert.article_id))
        .where(col(Alert.status).in_(list(statuses)))
        .order_by(col(Alert.id).desc())
        .limit(limit)
    )
    if channel:
        query = query.where(Alert.channel == channel)
    return [
        AlertView(
            id=alert.id or 0,
            channel=alert.channel,
            status=alert.status,
            article_id=alert.article_id,
            title=title,
            url=url,
            entities=list(alert.entities or []),
            rules=list(alert.rules or []),
            attempts=alert.attempts,
            created_at=alert.created_at,
            next_attempt_at=alert.next_attempt_at if alert.status == AlertStatus.PENDING else None,
            sent_at=alert.sent_at,
            message_id=alert.message_id,
            last_error=alert.last_error,
        )
        for alert, title, url in session.exec(query).all()
    ]


def count_by_status(session: Session) -> dict[tuple[str, str], int]:
    """(channel, status) → number of alerts."""
    query = select(Alert.channel, Alert.status, sa.func.count()).group_by(Alert.channel, Alert.status)
    return {(channel, status): n for channel, status, n in session.exec(query).all()}


def channel_states(session: Session) -> list[AlertChannel]:
    return list(session.exec(select(AlertChannel).order_by(AlertChannel.key)).all())


def requeue_failed(
    session: Session,
    *,
    channel: str | None = None,
    alert_ids: Sequence[int] = (),
    now: datetime | None = None,
) -> int:
    """Put failed alerts back in the queue, due now, with a fresh retry period."""
    now = now or utcnow()
    update = (
        sa.update(Alert)
        .where(col(Alert.status) == AlertStatus.FAILED)
        .values(status=AlertStatus.PENDING, next_attempt_at=now, queued_at=now)
    )
    if channel:
        update = update.where(col(Alert.channel) == channel)
    if alert_ids:
        update = update.where(col(Alert.id).in_(list(alert_ids)))
    return session.exec(update).rowcount or 0


def enable_channels(session: Session, *, channel: str | None = None) -> list[str]:
    """Re-enable disabled channels (all, or one); returns their keys."""
    query = select(AlertChannel).where(col(AlertChannel.disabled_at).is_not(None))
    if channel:
        query = query.where(AlertChannel.key == channel)
    states = list(session.exec(query).all())
    for state in states:
        state.disabled_at = None
        state.disabled_reason = None
        session.add(state)
    return [state.key for state in states]


# ------------------------------------------------------------------------- messages


def load_message(session: Session, alerts: Sequence[Alert], *, settings: Settings) -> Message | None:
    """The message carrying ``alerts`` (one, or a digest), read from the archive."""
    article_ids = [a.article_id for a in alerts]
    articles = {a.id: a for a in session.exec(select(Article).where(col(Article.id).in_(article_ids)))}
    feed_ids = {a.feed_id for a in articles.values() if a.feed_id is not None}
    feeds = dict(session.exec(select(Feed.id, Feed.name).where(col(Feed.id).in_(feed_ids))).all()) if feed_ids else {}
    mentions: dict[int, list[MentionRef]] = {}
    rows = session.exec(
        select(Mention)
        .where(col(Mention.article_id).in_(article_ids))
        .order_by(col(Mention.article_id), col(Mention.start))
    )
    for row in rows:
        mentions.setdefault(row.article_id, []).append(
            MentionRef(
                entity=row.entity,
                text=row.text,
                snippet=row.snippet,
                highlight=find_in_snippet(row.snippet, row.text, row.start),
            )
        )
    public = settings.alerts.public_url
    items = []
    for alert in alerts:
        article = articles.get(alert.article_id)
        if article is None or article.id is None:
            continue
        original = article.duplicate_of_article_id
        ref = ArticleRef(
            id=article.id,
            url=article.url,
            title=article.title,
            feed=feeds.get(article.feed_id) if article.feed_id else None,
            published_at=article.published_at,
            language=article.language,
            archive_url=f"{public}/articles/{article.id}" if public else None,
            original_url=f"{public}/articles/{original}" if public and original else None,
        )
        # Alerts queued before rules were stored had one per mentioned entity.
        rules = tuple(alert.rules if alert.rules is not None else alert.entities or ())
        items.append(ArticleAlert(ref, distinct_mentions(mentions.get(article.id, [])), rules=rules))
    if not items:
        return None
    first = alerts[0]
    return Message(
        message_id=first.message_id or new_message_id(),
        type=first.message_type or CREATED,
        timestamp=max(a.created_at for a in alerts),
        items=tuple(items),
    )
