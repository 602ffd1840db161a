"""``/api/feeds`` (polling health; add, change, remove feeds) and ``/feeds/mentions.atom``.

Writes (``POST``, ``PATCH``, ``DELETE``) need the bearer token like every ``/api/``
request. With no ``api_token`` configured at all they are refused (403) unless the
server listens on a loopback address, where only this machine reaches it: an open
server elsewhere lets anyone read, never change, the feeds.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.api import atom
from monitor.api.deps import ServicesDep, SessionDep, require_token
from monitor.api.errors import PROBLEMS
from monitor.api.queries import list_feeds, recent_mentions, stored_entity_names
from monitor.conditions import MAX_ENTITY_FILTERS
from monitor.config import Settings, parse_duration
from monitor.errors import FeedSourceError, FetchError
from monitor.health import FeedHealth, health_of
from monitor.times import utcnow

api_router = APIRouter(prefix="/api/feeds", tags=["feeds"], dependencies=[Depends(require_token)], responses=PROBLEMS)
atom_router = APIRouter(prefix="/feeds", tags=["feeds"], dependencies=[Depends(require_token)], responses=PROBLEMS)


@api_router.get("", response_model=list[FeedHealth])
def feeds(db: SessionDep) -> list[FeedHealth]:
    """Every feed with its last poll, status and current error, by name."""
    return list_feeds(db)


# ------------------------------------------------------------------------ writes


def require_writer(request: Request, services: ServicesDep) -> None:
    """Without a token, changes come only through a server bound to loopback."""
    if services.settings.api_token is not None:
        return  # require_token has checked it
    server = request.scope.get("server") or ("", None)
    try:
        loopback = ipaddress.ip_address(str(server[0])).is_loopback
    except ValueError:
        loopback = server[0] == "localhost"
    if not loopback:
        raise HTTPException(
            status_code=403,
            detail="changing feeds over the API needs an api_token (MONITOR_API_TOKEN) on a server others can reach",
        )


WRITE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"model": PROBLEMS[400]["model"], "description": "No api_token, and the server is not on loopback"},
    404: {"model": PROBLEMS[400]["model"], "description": "No such feed"},
    409: {"model": PROBLEMS[400]["model"], "description": "The feed exists, or belongs to the configuration file"},
}


def _interval(value: Any) -> float | None:
    return None if value is None else parse_duration(value)


class FeedIn(BaseModel):
    """A feed to add: its URL, or a page of its site (the feed is discovered)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    interval: float | None = Field(default=None, description="Seconds, or a duration such as 15m")
    tags: list[str] = Field(default_factory=list, max_length=50)

    _duration = field_validator("interval", mode="before")(_interval)


class FeedChange(BaseModel):
    """What to change: any of these; ``interval: null`` goes back to the default."""

    model_config = ConfigDict(extra="forbid")

    paused: bool | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    interval: float | None = Field(default=None, description="Seconds, or a duration such as 15m")
    tags: list[str] | None = Field(default=None, max_length=50)

    _duration = field_validator("interval", mode="before")(_interval)


class FeedAdded(FeedHealth):
    """The feed added, and what its discovery found."""

    title: str | None = None
    entries: int = 0
    found_via: str  # "given", "link" (the page links it) or "path" (a usual path)
    other_feeds: list[str] = Field(default_factory=list)


class FeedRemoved(BaseModel):
    name: str
    articles_kept: int


def _source_error(exc: FeedSourceError) -> HTTPException:
    status = {"not_found": 404, "conflict": 409}.get(exc.problem, 400)
    return HTTPException(status_code=status, detail=str(exc))


@api_router.post(
    "",
    status_code=201,
    response_model=FeedAdded,
    dependencies=[Depends(require_writer)],
    responses={**WRITE_PROBLEMS, 422: {"model": PROBLEMS[400]["model"], "description": "No feed found there"}},
)
def add(body: FeedIn, services: ServicesDep, db: SessionDep) -> FeedAdded:
    """Add a feed by its URL or a page of its site; it is fetched once, as polls fetch."""
    from monitor.sources.catalog import NewFeed, add_feed, refuse_known

    settings = services.settings
    try:
        refuse_known(db, settings, [body.url.strip()])
        found = asyncio.run(_discover(settings, body.url))
        new = NewFeed(
            url=found.url,
            name=body.name,
            interval=body.interval,
            tags=body.tags,
            title=found.title,
            site_url=found.feed.link,
            aliases=[body.url.strip()],
        )
        feed = add_feed(db, settings, new)
    except FeedSourceError as exc:
        raise _source_error(exc) from None
    except FetchError as exc:
        raise HTTPException(status_code=422, detail=f"cannot add {body.url}: {exc}") from None
    return FeedAdded(
        **health_of(feed, utcnow()).model_dump(),
        title=found.title,
        entries=found.entries,
        found_via=found.via,
        other_feeds=found.others,
    )


async def _discover(settings: Settings, url: str) -> Any:
    from monitor.pipeline.fetch import Fetcher
    from monitor.sources.discover import discover

    async with Fetcher(settings.poll) as fetcher:
        return await discover(fetcher, url)


@api_router.patch(
    "/{feed}", response_model=FeedHealth, dependencies=[Depends(require_writer)], responses=WRITE_PROBLEMS
)
def change(feed: str, body: FeedChange, services: ServicesDep, db: SessionDep) -> FeedHealth:
    """Pause or resume any feed; rename it, set its interval or tags when it was added at run time.

    ``feed`` is its name or its id.
    """
    from monitor.sources.catalog import UNSET, update_feed

    given = body.model_fields_set
    try:
        row = update_feed(
            db,
            services.settings,
            feed,
            name=body.name,
            interval=body.interval if "interval" in given else UNSET,
            tags=body.tags,
            paused=body.paused,
        )
    except FeedSourceError as exc:
        raise _source_error(exc) from None
    return health_of(row, utcnow())


@api_router.delete(
    "/{feed}", response_model=FeedRemoved, dependencies=[Depends(require_writer)], responses=WRITE_PROBLEMS
)
def remove(feed: str, services: ServicesDep, db: SessionDep) -> FeedRemoved:
    """Remove a feed added at run time; its stored articles stay in the archive."""
    from monitor.sources.catalog import remove_feed

    try:
        name, articles = remove_feed(db, services.settings, feed)
    except FeedSourceError as exc:
        raise _source_error(exc) from None
    return FeedRemoved(name=name, articles_kept=articles)


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
