"""``GET /sources``: every feed's health on one page, for people (``/api/feeds`` for programs).

Read from ``monitor.health`` as ``monitor feeds`` reads it: status, last success, the
current error's kind and message, next poll, articles stored, and whatever extraction
health the feed rows keep (every ``FeedHealth`` field about extraction is shown).
Not under ``/feeds/``, which holds the token-protected Atom feeds.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from monitor.api.deps import ServicesDep, SessionDep, page_allowed
from monitor.api.errors import UNAVAILABLE, unavailable_detail
from monitor.api.rendering import render
from monitor.health import FeedHealth, feed_health

router = APIRouter(include_in_schema=False)


def extraction_fields() -> list[str]:
    """The extraction health ``FeedHealth`` carries, by field name."""
    return [name for name in FeedHealth.model_fields if "extract" in name]


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0%}" if 0 <= value <= 1 else f"{value:g}"
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@router.get("/sources", response_class=HTMLResponse)
def sources_page(request: Request, services: ServicesDep, db: SessionDep) -> Response:
    if not page_allowed(request, services.settings):
        return render(request, services, "login.html", {"error": None}, 401)
    feeds: list[FeedHealth] = []
    error, status = None, 200
    try:
        feeds = feed_health(db, services.settings, now=services.clock())
    except UNAVAILABLE as exc:
        error, status = unavailable_detail(request, exc), 503
    extraction = [(name, _label(name)) for name in extraction_fields()]
    context = {
        "feeds": feeds,
        "extraction": extraction,
        "shown": _shown,
        "error": error,
        "failing": sum(1 for f in feeds if f.error_kind),
    }
    return render(request, services, "sources.html", context, status)
