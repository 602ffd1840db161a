"""``GET /``: the search page, server-rendered, no script.

The page queries the archive directly (not through ``/api``). When the server has an
``api_token`` the page asks for it once (``POST /login``) and keeps an HttpOnly,
SameSite=Strict cookie derived from the token; a bearer header works too. The other
pages (an article, the feeds' health, mentions over time) are behind the same sign-in.

Results link to the archive's own article page (``/articles/{id}``); their snippets
have the query's terms marked (``monitor.api.display``) and do not repeat the title.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import col, select
from starlette.datastructures import QueryParams

from monitor.api.deps import (
    PAGE_COOKIE,
    Services,
    ServicesDep,
    SessionDep,
    page_allowed,
    page_cookie_value,
    token_matches,
)
from monitor.api.display import Segment, article_href, highlighted, query_phrases
from monitor.api.errors import UNAVAILABLE, unavailable_detail
from monitor.api.params import search_filters
from monitor.api.rendering import render
from monitor.errors import QueryError
from monitor.models import ArticleSummary, Feed
from monitor.pipeline.titles import without_title
from monitor.search import SearchPage, search_articles

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
COOKIE_MAX_AGE = 30 * 86400
MAX_LOGIN_BODY = 4096
_TRUE = {"1", "on", "true", "yes"}


@dataclass(frozen=True)
class SearchForm:
    """The page's form as submitted; free text, checked when searched."""

    q: str = ""
    entities: tuple[str, ...] = ()
    since: str = ""
    until: str = ""
    feed: str = ""
    include_duplicates: bool = False
    cursor: str = ""

    @classmethod
    def from_query(cls, params: QueryParams) -> SearchForm:
        return cls(
            q=params.get("q", ""),
            entities=tuple(dict.fromkeys(e for e in params.getlist("entity") if e.strip())),
            since=params.get("since", ""),
            until=params.get("until", ""),
            feed=params.get("feed", ""),
            include_duplicates=params.get("include_duplicates", "").lower() in _TRUE,
            cursor=params.get("cursor", ""),
        )

    def url(self, **changes: Any) -> str:
        """The page's URL for this form, e.g. with another ``cursor``."""
        values = {**self.__dict__, **changes}
        pairs: list[tuple[str, str]] = [("q", values["q"])] if values["q"] else []
        pairs += [("entity", e) for e in values["entities"]]
        pairs += [(k, values[k]) for k in ("since", "until", "feed") if values[k]]
        if values["include_duplicates"]:
            pairs.append(("include_duplicates", "1"))
        if values["cursor"]:
            pairs.append(("cursor", values["cursor"]))
        return "/?" + urlencode(pairs) if pairs else "/"


@dataclass(frozen=True)
class Result:
    """A search result as the page shows it: the item, its title and snippet in runs."""

    item: ArticleSummary
    title: list[Segment]
    snippet: list[Segment]
    original: str | None  # the page of the original of a duplicate
    site: str | None  # the host of the article's own page, when it is a web page


def original_href(duplicate_of: str | None) -> str | None:
    """The page of a duplicate's original: ``article:<id>`` or a seed's file name."""
    if not duplicate_of:
        return None
    kind, _, rest = duplicate_of.partition(":")
    if kind == "article" and rest.isdigit():
        return f"/articles/{rest}"
    if kind == "seed" and rest.isdigit():
        return None  # a seed row without a name: nothing to link
    return "/seeds/" + quote(duplicate_of, safe="")


def _result(item: ArticleSummary, phrases: list[tuple[str, ...]]) -> Result:
    snippet = without_title(item.snippet, item.title)
    href = article_href(item.url)
    return Result(
        item=item,
        title=highlighted(item.title or item.url, phrases),
        snippet=highlighted(snippet, phrases) if snippet.strip() else [],
        original=original_href(item.duplicate_of),
        site=urlsplit(href).hostname if href else None,
    )


def _feed_choices(db: SessionDep, chosen: str) -> list[str]:
    names = list(db.exec(select(Feed.name).order_by(col(Feed.name))).all())
    return names if not chosen or chosen in names else [*names, chosen]


def _entity_choices(configured: Sequence[str], chosen: Sequence[str]) -> list[str]:
    return list(dict.fromkeys([*configured, *chosen]))


@router.get("/", response_class=HTMLResponse)
def search_page(request: Request, services: ServicesDep, db: SessionDep) -> Response:
    if not page_allowed(request, services.settings):
        return render(request, services, "login.html", {"error": None}, 401)
    form = SearchForm.from_query(request.query_params)
    page, error, status = SearchPage(items=[], next_cursor=None), None, 200
    feeds: list[str] = [form.feed] if form.feed else []
    try:
        feeds = _feed_choices(db, form.feed)
        filters = search_filters(
            now=services.clock(),
            q=form.q,
            entities=form.entities,
            since=form.since,
            until=form.until,
            feed=form.feed,
            include_duplicates=form.include_duplicates,
            limit=PAGE_SIZE,
            cursor=form.cursor,
        )
        page = search_articles(db, filters, entities=services.settings.entities)
    except QueryError as exc:
        error, status = str(exc), 400
    except UNAVAILABLE as exc:
        error, status = unavailable_detail(request, exc), 503
    phrases = query_phrases(form.q)
    context = {
        "form": form,
        "entities": _entity_choices([e.name for e in services.settings.entities], form.entities),
        "feeds": feeds,
        "results": [_result(item, phrases) for item in page.items],
        # Set by search when it can tell without counting every match.
        "approximate_total": getattr(page, "approximate_total", None),
        "next_url": form.url(cursor=page.next_cursor) if page.next_cursor else None,
        "first_url": form.url(cursor="") if form.cursor else None,
        "error": error,
    }
    return render(request, services, "search.html", context, status)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, services: ServicesDep) -> Response:
    """Check the token typed into the page's form and set the page cookie.

    An address that failed ``serve.login_attempts`` times within ``serve.login_window``
    is answered 429 without its token being checked, until the window has moved on.
    """
    expected = services.settings.api_token
    if expected is None:
        return RedirectResponse("/", status_code=303)
    client = request.client.host if request.client else "unknown"
    failures = services.login_failures
    wait = failures.retry_after(client)
    if wait is not None:
        return _too_many_tries(request, services, wait)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_LOGIN_BODY:
            return Response("request too large", status_code=413)
    fields = dict(parse_qsl(body.decode("utf-8", "replace")))
    if not token_matches(fields.get("token", "").strip(), expected):
        failures.failed(client)
        return render(request, services, "login.html", {"error": "wrong token"}, 401)
    failures.succeeded(client)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        PAGE_COOKIE,
        page_cookie_value(expected),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _too_many_tries(request: Request, services: Services, wait: int) -> Response:
    error = f"too many wrong tokens from this address; try again in {wait} s"
    response = render(request, services, "login.html", {"error": error}, 429)
    response.headers["Retry-After"] = str(wait)
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(PAGE_COOKIE, httponly=True, samesite="strict")
    return response
