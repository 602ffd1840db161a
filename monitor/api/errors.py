"""How failures reach an HTTP client: a status and ``{"detail": "<one line>"}``.

Parameter problems (FastAPI's validation and ``QueryError``) are 400, not FastAPI's
422 with a list: the client sent something malformed and one line says what. An
unreachable database is 503, logged here with its reason, never a 500 page; so is a
statement cut off by ``serve.statement_timeout``, with its own line.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from monitor.api.schemas import Problem
from monitor.api.timeouts import is_statement_timeout
from monitor.errors import DatabaseError, QueryError

log = logging.getLogger(__name__)

DATABASE_UNAVAILABLE = "the database is unavailable; try again later"

# Declared on the routers so /openapi.json shows the error answers.
PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "A malformed parameter or query"},
    401: {"model": Problem, "description": "Missing or wrong bearer token"},
    503: {"model": Problem, "description": "The database is unavailable, or the query took too long"},
}

# Failures of the database connection, as opposed to a bug in a statement.
UNAVAILABLE = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError, DatabaseError)


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def validation_message(exc: RequestValidationError) -> str:
    """One line for the first invalid parameter, e.g. ``limit: Input should be …``."""
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    where = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "header", "body")]
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{'.'.join(where) or 'request'}: {message}"


def too_slow(seconds: float) -> str:
    return f"the query took longer than the server allows ({seconds:g} s); narrow it and try again"


def unavailable_detail(request: Request, exc: BaseException) -> str:
    """The one line for a database failure, logged with its reason."""
    where = f"{request.method} {request.url.path}"
    if is_statement_timeout(exc):
        seconds: float = request.app.state.services.settings.serve.statement_timeout
        log.warning("%s: a statement ran past the statement timeout (%g s)", where, seconds)
        return too_slow(seconds)
    log.warning("%s: database unavailable: %s", where, database_reason(exc))
    return DATABASE_UNAVAILABLE


def database_reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def install_error_handlers(app: FastAPI) -> None:
    async def invalid_parameter(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _problem(400, validation_message(exc))

    async def bad_query(_request: Request, exc: QueryError) -> JSONResponse:
        return _problem(400, str(exc))

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return _problem(503, unavailable_detail(request, exc))

    # Starlette types a handler as taking any Exception, not the class it is registered for.
    app.add_exception_handler(RequestValidationError, invalid_parameter)  # type: ignore[arg-type]
    app.add_exception_handler(QueryError, bad_query)  # type: ignore[arg-type]
    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, unavailable)


def strip_validation_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop FastAPI's generated 422 answers: this API answers 400 instead."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
    return schema
