"""Secret feed URLs: the Atom feeds opened by a feed reader that cannot send a header.

When ``api_token`` is set, every ``/feeds/`` request needs ``Authorization: Bearer``,
which ordinary feed readers cannot send. Each Atom feed therefore also has a secret
URL, ``/feeds/token/<token>/mentions.atom`` and ``/feeds/token/<token>/rules/<name>.atom``,
whose token is derived from ``api_token`` and the feed:

    token = HMAC-SHA256(key=api_token, "monitor feed\\0" + feed)[:32 hex digits]

where ``feed`` is ``mentions`` or ``rules/<name>``. So a token opens its own feed and
nothing else (rule A's URL does not open rule B, and never ``/api/``); a leaked URL
reveals neither ``api_token`` nor another feed's token; changing ``api_token`` revokes
every secret URL at once. Tokens are compared in constant time (``deps.feed_token_ok``)
and masked in every log line (``monitor.redact``: the segment after ``/feeds/token/``).
Without ``api_token`` the plain URLs are open and a secret URL serves its feed too.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote

from monitor.config import Settings
from monitor.rules import rules_of

MENTIONS = "mentions"
TOKEN_CHARS = 32  # 128 bits
_CONTEXT = b"monitor feed\x00"


def rule_feed(name: str) -> str:
    """The feed of the rule ``name``, as ``feed_token`` names it."""
    return f"rules/{name}"


def feed_token(api_token: str, feed: str) -> str:
    """The secret that opens ``feed`` (``mentions`` or ``rules/<name>``) alone."""
    digest = hmac.new(api_token.encode("utf-8"), _CONTEXT + feed.encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:TOKEN_CHARS]


def feed_path(feed: str, api_token: str | None) -> str:
    """The feed's path: the plain one without ``api_token``, the secret one with it."""
    name = feed.removeprefix("rules/")
    tail = "mentions.atom" if feed == MENTIONS else f"rules/{quote(name, safe='')}.atom"
    if api_token is None:
        return f"/feeds/{tail}"
    return f"/feeds/token/{feed_token(api_token, feed)}/{tail}"


@dataclass(frozen=True)
class FeedLink:
    """A feed to subscribe to: what it holds, and its URL (secret when ``api_token`` is set)."""

    title: str
    feed: str
    url: str


def base_url(settings: Settings) -> str:
    """Where readers reach the server: ``alerts.public_url``, else ``serve.host``:``serve.port``."""
    if settings.alerts.public_url:
        return settings.alerts.public_url
    host = settings.serve.host
    if host in ("", "0.0.0.0", "::"):
        host = "localhost"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{settings.serve.port}"


def feed_links(settings: Settings, base: str | None = None) -> list[FeedLink]:
    """The mentions feed and every rule's feed (implicit rules too), under ``base``."""
    root = (base or base_url(settings)).rstrip("/")
    token = settings.api_token
    links = [FeedLink("Mentions of every tracked entity", MENTIONS, root + feed_path(MENTIONS, token))]
    for rule in rules_of(settings):
        kind = "tracked entity" if rule.implicit else "rule"
        feed = rule_feed(rule.name)
        links.append(FeedLink(f"{kind} {rule.name}: {rule.query}", feed, root + feed_path(feed, token)))
    return links


__all__ = ["MENTIONS", "FeedLink", "base_url", "feed_links", "feed_path", "feed_token", "rule_feed"]
