"""``GET /subscribe``: the Atom feeds' URLs, to paste into a feed reader.

Behind the page's sign-in: with an ``api_token`` the URLs shown are the secret ones
(``monitor.feed_tokens``), which only a signed-in person may see. They start with
``alerts.public_url``, else the address the page was reached at. ``monitor feed-urls``
prints the same list.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from monitor.api.deps import ServicesDep, page_allowed
from monitor.api.rendering import render
from monitor.feed_tokens import feed_links

router = APIRouter(include_in_schema=False)


@router.get("/subscribe", response_class=HTMLResponse)
def subscribe_page(request: Request, services: ServicesDep) -> Response:
    settings = services.settings
    if not page_allowed(request, settings):
        return render(request, services, "login.html", {"error": None}, 401)
    links = feed_links(settings, settings.alerts.public_url or str(request.base_url))
    return render(request, services, "subscribe.html", {"links": links, "secret": settings.api_token is not None})
