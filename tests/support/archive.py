"""The archive as ingest leaves it, for alert tests: an article with its mentions and alerts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from monitor.alerts import enqueue_alerts
from monitor.config import Settings
from monitor.db import session
from monitor.models import Article, Mention
from monitor.rules import routes, rules_of

STORY = " ".join(
    f"Paragraph {i}: ministers of the member states discussed the treaty, trade and "
    f"the pipeline near the border crossing number {i * 7}."
    for i in range(40)
)


def add_article(
    engine: sa.Engine,
    settings: Settings,
    *,
    url: str,
    title: str = "Ministers meet",
    mentions: tuple[tuple[str, str], ...] = (("CSTO", "ОДКБ"),),
    now: datetime | None = None,
) -> int:
    """Store a new article with its mentions and alerts as ingest does, in one transaction.

    The alerts are those of the implicit rules (one per entity): give settings without
    ``rules:``.
    """
    assert settings.rules is None, "add_article alerts for the implicit rules only"
    entities = sorted({e for e, _ in mentions})
    with session(engine) as db:
        article = Article(url=url, title=title, text=STORY, content_hash=url[-64:])
        db.add(article)
        db.flush()
        assert article.id is not None
        for offset, (entity, text) in enumerate(mentions):
            db.add(
                Mention(
                    article_id=article.id,
                    entity=entity,
                    text=text,
                    start=offset,
                    end=offset + len(text),
                    snippet=f"… {text} met in the capital …",
                )
            )
        fired = [rule for rule in rules_of(settings) if rule.name in entities]
        enqueue_alerts(db, article=article, entities=entities, routes=routes(fired), settings=settings, now=now)
        db.commit()
        return article.id
