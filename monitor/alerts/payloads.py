"""What an alert says, independent of the tables it is read from and the channel it
goes to.

A ``Message`` is one e-mail or one webhook call. It carries one ``ArticleAlert``
(``mention.created``), or several (``mention.digest``, one per article of a digest
window), or an example article (``mention.test``, from ``monitor alerts test``). Each
``ArticleAlert`` names the rules the article fired for the channel.

Webhook bodies (``Message.body``)::

    {"type": "mention.created", "timestamp": "2022-01-06T10:00:05Z",
     "data": {"article": {"id": 12, "url": "…", "title": "…", "feed": "…",
                          "published_at": "2022-01-06T10:00:00Z", "language": "ru",
                          "archive_url": "https://monitor.example.org/articles/12"},
              "rules": ["csto"],
              "mentions": [{"entity": "CSTO", "text": "ОДКБ", "snippet": "… ОДКБ …",
                            "highlight": {"start": 2, "end": 6}}]}}

    {"type": "mention.digest", "timestamp": "…",   # the newest alert of the digest
     "data": {"count": 2, "items": [{"article": {…}, "mentions": […]}, …]}}

``mentions`` lists each distinct (entity, text as written) once, in text order, with
the snippet of its first occurrence; the snippet is plain text and ``highlight`` gives
the match's offsets in it (characters, as Python and JSON count code points; null when
the match is not in the snippet). ``archive_url`` is the article's page in the archive,
null without ``alerts.public_url``. ``timestamp`` is when the alert was created, so a
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
# About how many characters of context a snippet has before its match
# (``monitor.pipeline.match.snippet``: 80, cut at a word, and "… ").
SNIPPET_LEAD = 82


@dataclass(frozen=True)
class ArticleRef:
    id: int
    url: str
    title: str | None
    feed: str | None
    published_at: datetime | None
    language: str | None = None
    # The archive's page of the article and, for people only (not in the webhook body),
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
            "language": self.language,
            "archive_url": self.archive_url,
        }


@dataclass(frozen=True)
class MentionRef:
    entity: str
    text: str
    snippet: str
    # The match's offsets in ``snippet``; None when it is not found there.
    highlight: tuple[int, int] | None = None

    def body(self) -> dict[str, Any]:
        highlight = {"start": self.highlight[0], "end": self.highlight[1]} if self.highlight else None
        return {"entity": self.entity, "text": self.text, "snippet": self.snippet, "highlight": highlight}

    def parts(self) -> tuple[str, str, str]:
        """The snippet as (before, the match, after); the match is empty when not found."""
        if self.highlight is None:
            return self.snippet, "", ""
        start, end = self.highlight
        return self.snippet[:start], self.snippet[start:end], self.snippet[end:]


def find_in_snippet(snippet: str, text: str, start: int) -> tuple[int, int] | None:
    """Where the match ``text`` (at ``start`` in the article) is in its ``snippet``.

    Snippets collapse whitespace and begin up to about ``SNIPPET_LEAD`` characters
    before the match, so the occurrence nearest to there is the match itself.
    """
    wanted = " ".join(text.split())
    if not wanted:
        return None
    found = [i for i in range(len(snippet)) if snippet.startswith(wanted, i)]
    if not found:
        folded, target = snippet.casefold(), wanted.casefold()
        if len(folded) != len(snippet):  # a folding that changes lengths moves offsets
            return None
        found = [i for i in range(len(folded)) if folded.startswith(target, i)]
    if not found:
        return None
    expected = min(start, SNIPPET_LEAD)
    at = min(found, key=lambda i: abs(i - expected))
    return at, at + len(wanted)


@dataclass(frozen=True)
class ArticleAlert:
    article: ArticleRef
    mentions: tuple[MentionRef, ...]
    rules: tuple[str, ...] = ()

    @property
    def entities(self) -> list[str]:
        return sorted({m.entity for m in self.mentions}, key=str.casefold)

    def body(self) -> dict[str, Any]:
        return {
            "article": self.article.body(),
            "rules": list(self.rules),
            "mentions": [m.body() for m in self.mentions],
        }


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

    @property
    def rules(self) -> list[str]:
        """The rules of every item, each once, first seen first."""
        return list(dict.fromkeys(rule for item in self.items for rule in item.rules))

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
        archive_url=f"{public_url}/articles/0" if public_url else None,
    )
    snippet = "This is a test alert: the channel is configured and reachable."
    mention = MentionRef(entity="Test", text="test", snippet=snippet, highlight=find_in_snippet(snippet, "test", 10))
    item = ArticleAlert(article, (mention,), rules=("test",))
    return Message(message_id=message_id, type=TEST, timestamp=now, items=(item,))
