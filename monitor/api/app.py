"""The FastAPI application, built by ``create_app`` from settings (nothing at import time).

    GET /healthz                 200 when the database answers, else 503      (open)
    GET /metrics                 Prometheus text                              (open)
    GET /api/articles            search the archive                           (token)
    GET /api/articles/{id}       one article, its text and mentions           (token)
    GET /api/feeds               feeds and their polling health               (token)
    GET /feeds/mentions.atom     Atom feed of new mentions                    (token)
    GET /feeds/rules/{name}.atom Atom feed of what a rule fires on            (token)
    GET /feeds/token/{token}/…   either feed by its secret URL, for readers   (the feed's own token)
    GET /api/stats/mentions      articles mentioning each entity per UTC day  (token)
    GET /                        the search page                              (token, via login)
    GET /articles/{id}           an article's page; /seeds/{name} a seed's    (token, via login)
    GET /sources                 every feed's health                          (token, via login)
    GET /mentions                a chart of mentions over time per entity     (token, via login)
    GET /subscribe               the Atom feeds' URLs (secret with a token)   (token, via login)

"(token)": only when ``api_token`` is set. See docs/api.md.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine

from monitor.api.deps import Services
from monitor.api.errors import install_error_handlers, strip_validation_responses
from monitor.api.metrics import RequestMetrics, registry_for
from monitor.api.routes import (
    article_page,
    articles,
    atom_feeds,
    feeds,
    page,
    sources_page,
    stats,
    subscribe_page,
    system,
)
from monitor.api.throttle import FailedAttempts
from monitor.config import Settings
from monitor.db import make_engine
from monitor.errors import ConfigError
from monitor.times import utcnow

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def _templates() -> Jinja2Templates:
    # Autoescape every template, whatever its extension: all article fields are hostile.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Jinja2Templates(env=environment)


def _version() -> str:
    try:
        return metadata.version("news-monitor")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def create_app(
    settings: Settings,
    engine: Engine | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """The app for ``settings``; with no ``engine`` it makes one and disposes it on shutdown.

    ``clock`` gives "now" for relative times (``since=7d``); tests pass a fixed one.
    """
    if settings.api_token is not None and not settings.api_token.strip():
        raise ConfigError("api_token: is empty; set a token or remove the key")
    owned = engine is None
    engine = engine if engine is not None else make_engine(settings.database_url)
    registry, http_metrics = registry_for(engine, entities=[e.name for e in settings.entities])

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            engine.dispose()

    app = FastAPI(
        title="News monitor",
        version=_version(),
        description="Search the archive of monitored news feeds and follow entity mentions.",
        lifespan=lifespan,
        # Swagger UI and ReDoc load scripts from a CDN; /openapi.json is enough.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = Services(
        settings=settings,
        engine=engine,
        clock=clock,
        registry=registry,
        templates=_templates(),
        login_failures=FailedAttempts(limit=settings.serve.login_attempts, window=settings.serve.login_window),
    )
    app.add_middleware(RequestMetrics, metrics=http_metrics)
    install_error_handlers(app)
    for router in (
        system.router,
        articles.router,
        feeds.api_router,
        feeds.atom_router,
        atom_feeds.router,
        atom_feeds.secret_router,
        stats.api_router,
        page.router,
        article_page.router,
        sources_page.router,
        stats.page_router,
        subscribe_page.router,
    ):
        app.include_router(router)
    _use_400_in_openapi(app)
    return app


def _use_400_in_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = strip_validation_responses(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
