"""``/feeds/rules/{name}.atom`` (what a rule fires on) and the secret feed URLs.

A rule's feed lists exactly what ``monitor search`` lists for the rule's query:
non-duplicates, newest first, ``limit`` entries. Implicit rules (one per tracked
entity, when the configuration has no ``rules:``) have feeds too, under the entity's
name. ``/feeds/mentions.atom`` is served by ``routes.feeds``.

The secret URLs, ``/feeds/token/{token}/mentions.atom`` and
``/feeds/token/{token}/rules/{name}.atom``, serve the same documents without a bearer
header: the token in the path must be that feed's (``monitor.feed_tokens``). They
are checked before anything else, so a wrong token learns nothing, not even whether
the rule exists.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response

from monitor.api import atom
from monitor.api.deps import ServicesDep, SessionDep, require_feed_token, require_token
from monitor.api.errors import PROBLEMS
from monitor.api.routes.feeds import mentions_atom
from monitor.feed_tokens import MENTIONS, rule_feed
from monitor.rules import Rule, rules_of
from monitor.search import SearchFilters, search_articles

ATOM_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/atom+xml": {}}, "description": "An Atom feed"}
}
NO_RULE: dict[int | str, dict[str, Any]] = {
    404: {"model": PROBLEMS[400]["model"], "description": "No rule of that name"}
}

router = APIRouter(prefix="/feeds", tags=["feeds"], dependencies=[Depends(require_token)], responses=PROBLEMS)
secret_router = APIRouter(prefix="/feeds/token", tags=["feeds"], responses=PROBLEMS)

Limit = Annotated[int, Query(ge=1, le=200, description="Entries in the feed")]


def rule_named(rules: list[Rule], name: str) -> Rule:
    for rule in rules:
        if rule.name == name:
            return rule
    raise HTTPException(status_code=404, detail=f"no rule named {name!r} (monitor rules lists them)")


def _rule_atom(request: Request, services: ServicesDep, db: SessionDep, name: str, limit: int) -> Response:
    settings = services.settings
    rule = rule_named(rules_of(settings), name)
    page = search_articles(db, SearchFilters(query=rule.query, limit=limit), entities=settings.entities)
    base = settings.alerts.public_url or str(request.base_url)
    body = atom.rule_feed(
        page.items,
        rule=rule.name,
        self_url=str(request.url),
        alternate_url=f"{base.rstrip('/')}/?q={quote(rule.query, safe='')}",
        base_url=base,
        now=services.clock(),
    )
    return Response(body, media_type=atom.MEDIA_TYPE)


@router.get("/rules/{name}.atom", response_class=Response, responses={**ATOM_RESPONSE, **NO_RULE})
def rule_atom(request: Request, services: ServicesDep, db: SessionDep, name: str, limit: Limit = 50) -> Response:
    """The newest articles the rule ``name`` fires on (as ``monitor search`` lists its query), as Atom."""
    return _rule_atom(request, services, db, name, limit)


def _mentions_token(services: ServicesDep, token: str) -> None:
    require_feed_token(services.settings, token, MENTIONS)


def _rule_token(services: ServicesDep, token: str, name: str) -> None:
    require_feed_token(services.settings, token, rule_feed(name))


# The same endpoint as /feeds/mentions.atom, behind the feed's own token instead of a header.
secret_router.add_api_route(
    "/{token}/mentions.atom",
    mentions_atom,
    methods=["GET"],
    response_class=Response,
    responses=ATOM_RESPONSE,
    dependencies=[Depends(_mentions_token)],
    summary="Mentions Atom, by secret URL",
    description="As /feeds/mentions.atom, for feed readers: the token in the path opens this feed only.",
)


@secret_router.get(
    "/{token}/rules/{name}.atom",
    response_class=Response,
    responses={**ATOM_RESPONSE, **NO_RULE},
    dependencies=[Depends(_rule_token)],
)
def secret_rule_atom(request: Request, services: ServicesDep, db: SessionDep, name: str, limit: Limit = 50) -> Response:
    """As ``/feeds/rules/{name}.atom``, for feed readers: the token in the path opens this rule's feed only."""
    return _rule_atom(request, services, db, name, limit)
