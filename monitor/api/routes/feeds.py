"""``/api/feeds`` (polling health) and ``/feeds/mentions.atom`` (new mentions, for readers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from monitor.api import atom
from monitor.api.deps import ServicesDep, SessionDep, require_token
from monitor.api.errors import PROBLEMS
from monitor.api.queries import list_feeds, recent_mentions, stored_entity_names
from monitor.health import FeedHealth
from monitor.search import MAX_ENTITY_FILTERS

api_router = APIRouter(prefix="/api/feeds", tags=["feeds"], dependencies=[Depends(require_token)], responses=PROBLEMS)
atom_router = APIRouter(prefix="/feeds", tags=["feeds"], dependencies=[Depends(require_token)], responses=PROBLEMS)


@api_router.get("", response_model=list[FeedHealth])
def feeds(db: SessionDep) -> list[FeedHealth]:
    """Every feed with its last poll, status and current error, by name."""
    return list_feeds(db)


@atom_router.get(
    "/mentions.atom",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}, "description": "An Atom feed"}},
)
def mentions_atom(
    request: Request,
    services: ServicesDep,
    db: SessionDep,
    entity: Annotated[
        list[str] | None,
        Query(
            description=f"Only mentions of this entity (repeatable, at most {MAX_ENTITY_FILTERS}: any of them); "
            "all when absent",
            max_length=MAX_ENTITY_FILTERS,
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Entries in the feed")] = 50,
) -> Response:
    """The newest non-duplicate articles that mention tracked entities, as Atom."""
    entities = stored_entity_names(db, [e for e in entity or () if e.strip()])
    items = recent_mentions(db, entities=entities, limit=limit)
    public = services.settings.alerts.public_url
    body = atom.mentions_feed(
        items,
        entities=entities,
        self_url=str(request.url),
        alternate_url=public or str(request.base_url),
        now=services.clock(),
    )
    return Response(body, media_type=atom.MEDIA_TYPE)
