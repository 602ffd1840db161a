"""What an alert says, independent of the tables it is read from and the channel it
goes to.

A ``Message`` is one e-mail or one webhook call. It carries one ``ArticleAlert``
(``mention.created``), or several (``mention.digest``, one per article of a digest
window), or an example article (``mention.test``, from ``monitor alerts test``).

Webhook bodies (``Message.body``)::

    {"type": "mention.created", "timestamp": "2022-01-06T10:00:05Z",
     "data": {"article": {"id": 12, "url": "…", "title": "…", "feed": "…",
                          "published_at": "2022-01-06T10:00:00Z"},
              "mentions": [{"entity": "CSTO", "text": "ОДКБ", "snippet": "…"}]}}

    {"type": "mention.digest", "timestamp": "…",   # the newest alert of the digest
     "data": {"count": 2, "items": [{"article": {…}, "mentions": […]}, …]}}

``mentions`` lists each distinct (entity, text as written) once, in text order, with
the snippet of its first occurrence. ``timestamp`` is when the alert was created, so a
re-sent message has the same body.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.times import iso

CREATED = "mention.created"
DIGEST = "mention.digest"
TEST = "mention.test"

# A message lists at most this many distinct mentions per article.
MAX_MENTIONS = 50


@dataclass(frozen=True)
class ArticleRef:
    id: int
    url: str
    title: str | None
    feed: str | None
    published_at: datetime | None
    # For people, not for the webhook body: the archive's page of the article and,
    # for a republished copy, the archive's page of its original.
    archive_url: str | None = None
    original_url: str | None = None

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "feed": self.feed,
            "published_at": iso(self.published_at),
        }


@dataclass(frozen=True)
class MentionRef:
    entity: str
    text: str
    snippet: str

    def body(self) -> dict[str, Any]:
        return {"entity": self.entity, "text": self.text, "snippet": self.snippet}


@dataclass(frozen=True)
class ArticleAlert:
    article: ArticleRef
    mentions: tuple[MentionRef, ...]

    @property
    def entities(self) -> list[str]:
        return sorted({m.entity for m in self.mentions}, key=str.casefold)

    def body(self) -> dict[str, Any]:
        return {"article": self.article.body(), "mentions": [m.body() for m in self.mentions]}


@dataclass(frozen=True)
class Message:
    """One e-mail or one webhook call; ``message_id`` is its ``webhook-id``."""

    message_id: str
    type: str
    timestamp: datetime
    items: tuple[ArticleAlert, ...]

    @property
    def is_digest(self) -> bool:
        return self.type == DIGEST

    @property
    def entities(self) -> list[str]:
        return sorted({e for item in self.items for e in item.entities}, key=str.casefold)

    def body(self) -> dict[str, Any]:
        if self.is_digest:
            data = {"count": len(self.items), "items": [item.body() for item in self.items]}
        else:
            data = self.items[0].body()
        return {"type": self.type, "timestamp": iso(self.timestamp), "data": data}


def distinct_mentions(mentions: list[MentionRef]) -> tuple[MentionRef, ...]:
    """Each (entity, text) once, first occurrence first."""
    seen: dict[tuple[str, str], MentionRef] = {}
    for mention in mentions:
        seen.setdefault((mention.entity, mention.text), mention)
    return tuple(seen.values())[:MAX_MENTIONS]


def sample_message(*, message_id: str, now: datetime, public_url: str | None) -> Message:
    """The example alert ``monitor alerts test`` sends: the shape of a real one."""
    article = ArticleRef(
        id=0,
        url=(public_url or "https://example.org") + "/",
        title="Test alert from the news monitor",
        feed=None,
        published_at=now,
        archive_url=f"{public_url}/api/articles/0" if public_url else None,
    )
    mention = MentionRef(
        entity="Test",
        text="test",
        snippet="This is a test alert: the channel is configured and reachable.",
    )
    return Message(message_id=message_id, type=TEST, timestamp=now, items=(ArticleAlert(article, (mention,)),))
