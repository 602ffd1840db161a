"""Rendering the web page's templates, with the headers every page carries.

Each answer gets its own CSP nonce for the one inline stylesheet; no script is allowed
at all, so whatever an article smuggles into the markup could not run. Times are shown
in the configured display zone, always with the zone's name.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from monitor.api.deps import Services
from monitor.api.display import article_href
from monitor.times import iso_utc, shown_time


def render(request: Request, services: Services, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    zone = services.settings.display_zone

    def when(moment: datetime | None) -> str:
        return shown_time(moment, zone) if moment is not None else "—"

    values = {
        "nonce": nonce,
        "when": when,
        "iso": iso_utc,
        "article_href": article_href,
        "protected": services.settings.api_token is not None,
        "here": request.url.path,
        **context,
    }
    response = services.templates.TemplateResponse(request, name, values, status_code=status)
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


__all__ = ["render"]
