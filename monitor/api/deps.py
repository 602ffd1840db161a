"""What routes receive: the app's services, a database session, the token check.

Everything hangs off ``app.state.services`` (built by ``create_app``), so two apps in
one process (tests) never share state.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine
from sqlmodel import Session

from monitor.api.throttle import FailedAttempts
from monitor.api.timeouts import statement_timeout
from monitor.config import Settings
from monitor.db import session as open_session
from monitor.feed_tokens import feed_token

PAGE_COOKIE = "monitor_page"
REALM = "monitor"


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    clock: Callable[[], datetime]
    registry: CollectorRegistry
    templates: Jinja2Templates
    # Failed sign-ins on the page, by client address.
    login_failures: FailedAttempts


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services  # set by ``create_app``
    return services


async def _services(request: Request) -> Services:
    # A coroutine, as every dependency that never blocks: FastAPI runs a plain function
    # in a worker thread, and each such hand-off costs a request a thread wake-up.
    return get_services(request)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request; it connects on first use and closes after the answer.

    Each of its statements is cut off after ``serve.statement_timeout``. Opening it
    touches no database, so it happens on the event loop; closing it may (a rollback,
    the connection back to the pool), so that happens in a worker thread.
    """
    services = get_services(request)
    with ExitStack() as opened:
        db = opened.enter_context(open_session(services.engine))
        opened.enter_context(statement_timeout(db, services.settings.serve.statement_timeout))
        closing = opened.pop_all()
    try:
        yield db
    finally:
        await run_in_threadpool(closing.close)


ServicesDep = Annotated[Services, Depends(_services)]
SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(
    auto_error=False,
    description="Required on /api/ and /feeds/ when the server has an api_token.",
)


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, so the answer time does not leak the token."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


async def require_token(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Let the request through when no token is configured or the bearer token matches."""
    expected = services.settings.api_token
    if expected is None:
        return
    if credentials is None:
        raise HTTPException(
            status_code=401,
            detail="authentication required: send Authorization: Bearer <token>",
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        )
    if not token_matches(credentials.credentials, expected):
        raise HTTPException(
            status_code=401,
            detail="invalid bearer token",
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
        )


def require_feed_token(settings: Settings, given: str, feed: str) -> None:
    """Let a secret feed URL through when its token is ``feed``'s (see ``monitor.feed_tokens``).

    Only the Atom routes under ``/feeds/token/`` call this: ``/api/`` never takes it.
    """
    if settings.api_token is None:
        return  # every feed is open
    if not token_matches(given, feed_token(settings.api_token, feed)):
        raise HTTPException(
            status_code=401,
            detail="invalid feed token: this secret URL is not this feed's (monitor feed-urls lists them)",
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
        )


def page_cookie_value(token: str) -> str:
    """What the page's cookie holds: derived from the token, so the cookie never reveals it."""
    return hmac.new(token.encode("utf-8"), b"monitor web page", hashlib.sha256).hexdigest()


def page_allowed(request: Request, settings: Settings) -> bool:
    """The page is open without a token; with one, a bearer header or the login cookie."""
    expected = settings.api_token
    if expected is None:
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token_matches(given.strip(), expected):
        return True
    cookie = request.cookies.get(PAGE_COOKIE, "")
    return token_matches(cookie, page_cookie_value(expected))
