"""The HTTP API and the search page under hostile requests, on SQLite and PostgreSQL.

Each case is an attack first seen against a running ``monitor serve``: numbers, dates
and cursors out of range (a 500 each), 400 ``entity=`` values (71 s of PostgreSQL
planning per request, while the client had long gone), an endless statement left
running by a client that gave up, unlimited guesses at the page's token. The server is
a real uvicorn on 127.0.0.1; the answer must be a clear 4xx (or 503 for a statement
past the limit) with one line saying why, never a 500. Last, schemathesis sends
requests generated from ``/openapi.json``, valid and invalid, to every operation (the
Atom feeds of rules and the secret feed URLs too), and none may get a 5xx.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from monitor.api import create_app
from monitor.api.deps import SessionDep
from monitor.config import Settings
from tests.reliability.conftest import Ledger
from tests.support.api import ENDLESS, cursor_of, fill, serving
from tests.support.waiting import wait_for

NOW = datetime(2022, 1, 10, 12, tzinfo=UTC)
TOKEN = "s3cret-token"
FLOOD = [f"Entity {i}" for i in range(400)]


def clear_answer(response: httpx.Response) -> bool:
    """A 4xx (or a 503) saying why in one line: JSON ``detail``, or the page's alert."""
    if response.status_code >= 500 and response.status_code != 503:
        return False
    if response.headers.get("content-type", "").startswith("application/json"):
        detail = response.json().get("detail")
        return isinstance(detail, str) and "\n" not in detail and 0 < len(detail) < 300
    return 'role="alert">' in response.text


# Path, parameters, and the status a clear answer has.
ATTACKS: list[tuple[str, dict[str, Any], int]] = [
    ("/api/articles/9223372036854775808", {}, 400),
    ("/api/articles/99999999999999999999999999", {}, 400),
    ("/api/articles/2147483648", {}, 404),
    ("/api/articles/-1", {}, 400),
    ("/api/articles", {"cursor": cursor_of(["2022-01-01T00:00:00+00:00", 2**70])}, 400),
    ("/api/articles", {"cursor": cursor_of(["0001-01-01T00:00:00+05:00", 1])}, 400),
    ("/api/articles", {"since": "0001-01-01T00:00:00+05:00"}, 400),
    ("/api/articles", {"until": "9999-12-31T23:00:00-05:00"}, 400),
    ("/api/articles", {"since": "999999999999w"}, 400),
    ("/api/articles", {"since": "9" * 5000}, 400),
    ("/api/articles", {"limit": str(2**64)}, 400),
    ("/api/articles", {"entity": FLOOD}, 400),
    ("/api/articles", {"entity": "\x00"}, 400),
    ("/api/articles", {"q": " ".join(f"w{i}" for i in range(60))}, 400),
    ("/feeds/mentions.atom", {"entity": FLOOD}, 400),
    ("/feeds/mentions.atom", {"entity": "CSTO\x00"}, 400),
    ("/feeds/mentions.atom", {"limit": str(2**64)}, 400),
    ("/", {"since": "0001-01-01T00:00:00+05:00"}, 400),
    ("/", {"until": "9999-12-31T23:00:00-05:00"}, 400),
    ("/", {"cursor": cursor_of(["0001-01-01T00:00:00+05:00", 1])}, 400),
    ("/", {"cursor": cursor_of(["2022-01-01T00:00:00+00:00", 2**70])}, 400),
    ("/", {"since": "999999999999w"}, 400),
    ("/", {"entity": FLOOD}, 400),
]


def test_values_out_of_range_get_a_clear_4xx_never_a_500(settings: Settings, engine: sa.Engine, ledger: Ledger) -> None:
    fill(engine, 30)
    unclear: list[tuple[str, str, int]] = []
    crashed = 0
    with serving(create_app(settings, engine, clock=lambda: NOW)) as client:
        for path, params, status in ATTACKS:
            started = time.monotonic()
            response = client.get(path, params=params)
            crashed += response.status_code >= 500
            if response.status_code != status or not clear_answer(response) or time.monotonic() - started > 2:
                unclear.append((path, str(params)[:80], response.status_code))
    assert not unclear
    assert crashed == 0
    survived = len(ATTACKS) - len(unclear)
    ledger.record("api", tried=len(ATTACKS), survived=survived, crashed=crashed)


def test_a_flood_of_entity_filters_is_refused_at_once(
    make_settings: Callable[..., Settings], database_url: str, engine: sa.Engine, ledger: Ledger
) -> None:
    fill(engine, 300)
    requests = 40
    app = create_app(make_settings(database_url=database_url), engine, clock=lambda: NOW)
    with serving(app) as client, ThreadPoolExecutor(8) as pool:
        started = time.monotonic()
        statuses = list(
            pool.map(lambda _: client.get("/api/articles", params={"entity": FLOOD}).status_code, range(requests))
        )
        took = time.monotonic() - started
        assert client.get("/api/articles", params={"entity": "Almaty"}).status_code == 200
        active = _active_statements(engine)
    assert statuses == [400] * requests
    assert took < 10, f"{requests} refusals took {took:.1f} s"
    assert active == 0
    ledger.record("api", tried=requests, survived=statuses.count(400))


def _active_statements(engine: sa.Engine, marker: str = "") -> int:
    """Statements running on the database now, besides this one (PostgreSQL only; 0 on SQLite)."""
    if engine.dialect.name != "postgresql":
        return 0
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'active' AND pid <> pg_backend_pid() AND query LIKE :marker"
                ),
                {"marker": f"%{marker}%"},
            ).scalar_one()
        )


def test_a_client_that_gives_up_leaves_no_statement_running(
    make_settings: Callable[..., Settings], database_url: str, engine: sa.Engine, ledger: Ledger
) -> None:
    # A statement slower than any archive a test can build, run the way the routes run
    # theirs: through the request's session.
    limit = 0.5
    app = create_app(make_settings(database_url=database_url, serve={"statement_timeout": limit}), engine)
    ended: list[float] = []

    @app.get("/test/endless")
    def endless(db: SessionDep) -> None:
        try:
            db.execute(sa.text(ENDLESS))
        finally:
            ended.append(time.monotonic())

    with serving(app) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get("/test/endless", timeout=0.1)  # the client leaves
        wait_for(lambda: ended, limit + 3, "the statement to stop")
        wait_for(lambda: _active_statements(engine, "WITH RECURSIVE") == 0, 3, "PostgreSQL to stop the statement")
        assert ended[0] - started < limit + 1.5
        answer = client.get("/test/endless")  # one that waits is told why
        assert answer.status_code == 503 and "took longer than the server allows" in answer.json()["detail"]
    ledger.record("api", tried=2, survived=2)


def test_guessing_the_page_token_is_cut_off(
    make_settings: Callable[..., Settings], database_url: str, engine: sa.Engine, ledger: Ledger
) -> None:
    app = create_app(make_settings(database_url=database_url, api_token=TOKEN), engine)
    guesses = 100
    with serving(app) as client:
        answers = [client.post("/login", data={"token": f"guess-{i}"}).status_code for i in range(guesses)]
        right = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert answers == [401] * 5 + [429] * (guesses - 5)
    assert right.status_code == 429 and int(right.headers["retry-after"]) <= 60
    ledger.record("api", tried=guesses, survived=answers.count(401) + answers.count(429))


# --------------------------------------------------------------------- schemathesis

EXAMPLES = 30  # per operation and mode: some 700 requests per engine
# Operations the schema must hold, so that generated requests reach them.
COVERED = {
    "/api/articles",
    "/api/articles/{article_id}",
    "/api/export",
    "/api/feeds",
    "/api/stats/mentions",
    "/feeds/mentions.atom",
    "/feeds/rules/{name}.atom",
    "/feeds/token/{token}/mentions.atom",
    "/feeds/token/{token}/rules/{name}.atom",
}


def test_generated_requests_get_no_server_error(settings: Settings, engine: sa.Engine, ledger: Ledger) -> None:
    fill(engine, 30)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(settings, engine, clock=lambda: NOW))
    answers: list[tuple[str, int, str]] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @examples(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case) -> None:
                response = case.call()
                answers.append((case.operation.path, response.status_code, response.text[:200]))

            try:
                call()
            except Unsatisfiable:
                pass  # nothing to make invalid: the operation takes no parameters
    # A rule that exists, by both of its URLs: generated names rarely hit one.
    for operation in (
        schema["/feeds/rules/{name}.atom"]["GET"],
        schema["/feeds/token/{token}/rules/{name}.atom"]["GET"],
    ):
        response = operation.Case(path_parameters={"name": "Almaty", "token": "any"}, query={"limit": 5}).call()
        assert response.status_code == 200, response.text[:200]
        answers.append((operation.path, response.status_code, response.text[:200]))
    server_errors = [answer for answer in answers if answer[1] >= 500]
    assert {path for path, _, _ in answers} >= COVERED
    assert len(answers) > 300
    assert not server_errors, server_errors[:5]
    ledger.record("api", tried=len(answers), survived=len(answers) - len(server_errors), crashed=len(server_errors))
