"""``GET /articles/{id}`` and ``GET /seeds/{name}``: one text of the archive, to read.

Every stored article has its page, imported ones too: the text with the mentions
marked (from their stored offsets), where it came from and when, its original when it
is a duplicate (an article or a seed, linked), and the copies of it that were found
("republished by 3 outlets"). An outlet is a copy's feed, or the host of its URL for
an imported copy. A seed, the texts known from the start, has a page of its own so a
duplicate's original can always be followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session, col, select

from monitor.api.deps import ServicesDep, SessionDep, page_allowed
from monitor.api.display import MentionSpan, article_href, paragraphs
from monitor.api.errors import UNAVAILABLE, unavailable_detail
from monitor.api.rendering import render
from monitor.models import Article, Feed, Mention, Seed, UTCDateTime, stored_id
from monitor.search import max_id

router = APIRouter(include_in_schema=False)

MAX_COPIES = 200


@dataclass(frozen=True)
class Copy:
    """A duplicate of the text on the page."""

    id: int
    title: str
    outlet: str
    when: datetime
    similarity: float | None


@dataclass(frozen=True)
class Original:
    href: str
    title: str


def _outlet(feed: str | None, url: str) -> str:
    return feed or urlsplit(url).hostname or "imported"


def _copies(db: Session, condition: sa.ColumnElement[bool]) -> tuple[list[Copy], int, int]:
    """The copies (newest first, at most ``MAX_COPIES``), how many there are, and their outlets."""
    sort_time = sa.func.coalesce(Article.published_at, Article.fetched_at, type_=UTCDateTime)
    rows = db.execute(
        sa.select(
            col(Article.id), col(Article.title), col(Article.url), col(Feed.name), sort_time, col(Article.similarity)
        )
        .outerjoin(Feed, col(Feed.id) == col(Article.feed_id))
        .where(condition)
        .order_by(sort_time.desc(), col(Article.id).desc())
        .limit(MAX_COPIES + 1)
    ).all()
    copies = [
        Copy(stored_id(i), title or url, _outlet(feed, url), moment, similarity)
        for i, title, url, feed, moment, similarity in rows
    ]
    total = len(copies)
    if total > MAX_COPIES:
        total = db.exec(select(sa.func.count()).select_from(Article).where(condition)).one()
    return copies[:MAX_COPIES], total, len({c.outlet for c in copies})


def _original(db: Session, article: Article) -> Original | None:
    if article.duplicate_of_article_id is not None:
        found = db.get(Article, article.duplicate_of_article_id)
        title = (found.title or found.url) if found else f"article {article.duplicate_of_article_id}"
        return Original(f"/articles/{article.duplicate_of_article_id}", title)
    if article.duplicate_of_seed_id is not None:
        seed = db.get(Seed, article.duplicate_of_seed_id)
        if seed is not None:
            return Original(f"/seeds/{seed.name}", seed.title or seed.name)
    return None


def _not_found(request: Request, services: ServicesDep, what: str) -> HTMLResponse:
    return render(request, services, "missing.html", {"what": what}, 404)


@router.get("/articles/{article_id}", response_class=HTMLResponse)
def article_page(request: Request, article_id: str, services: ServicesDep, db: SessionDep) -> Response:
    if not page_allowed(request, services.settings):
        return render(request, services, "login.html", {"error": None}, 401)
    if not article_id.isdigit() or not 1 <= int(article_id) <= max_id(db.get_bind().dialect.name):
        return _not_found(request, services, f"article {article_id[:40]}")
    try:
        article = db.get(Article, int(article_id))
        if article is None:
            return _not_found(request, services, f"article {article_id}")
        mentions = db.exec(select(Mention).where(Mention.article_id == article.id).order_by(col(Mention.start))).all()
        feed = db.get(Feed, article.feed_id) if article.feed_id is not None else None
        copies, total, outlets = _copies(db, col(Article.duplicate_of_article_id) == article.id)
        original = _original(db, article)
    except UNAVAILABLE as exc:
        return render(request, services, "missing.html", {"what": None, "error": unavailable_detail(request, exc)}, 503)
    counts: dict[str, int] = {}
    for mention in mentions:
        counts[mention.entity] = counts.get(mention.entity, 0) + 1
    context = {
        "kind": "article",
        "article": article,
        "title": article.title or article.url,
        "feed": feed.name if feed else None,
        "href": article_href(article.url),
        "paragraphs": paragraphs(article.text, (MentionSpan(m.start, m.end, m.entity) for m in mentions)),
        "entity_counts": sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
        "original": original,
        "copies": copies,
        "copies_total": total,
        "outlets": outlets,
    }
    return render(request, services, "article.html", context)


@router.get("/seeds/{name}", response_class=HTMLResponse)
def seed_page(request: Request, name: str, services: ServicesDep, db: SessionDep) -> Response:
    if not page_allowed(request, services.settings):
        return render(request, services, "login.html", {"error": None}, 401)
    if len(name) > 255 or "\x00" in name:
        return _not_found(request, services, f"seed {name[:40]}")
    try:
        seed = db.exec(select(Seed).where(Seed.name == name)).first()
        if seed is None:
            return _not_found(request, services, f"seed {name}")
        copies, total, outlets = _copies(db, col(Article.duplicate_of_seed_id) == seed.id)
    except UNAVAILABLE as exc:
        return render(request, services, "missing.html", {"what": None, "error": unavailable_detail(request, exc)}, 503)
    context = {
        "kind": "seed",
        "seed": seed,
        "title": seed.title or seed.name,
        "paragraphs": paragraphs(seed.text, ()),
        "copies": copies,
        "copies_total": total,
        "outlets": outlets,
    }
    return render(request, services, "article.html", context)


__all__ = ["Copy", "Original", "router"]
