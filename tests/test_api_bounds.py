"""Bounds on what clients send the API and the page, on SQLite and PostgreSQL.

Numbers, dates, durations, cursors and filters out of range are a 400 (or a 404 for an
id no article can have) with one line saying why, never a 500; a statement running
past ``serve.statement_timeout`` is a 503; wrong tokens on the page's sign-in form are
limited per client address.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from monitor.api import create_app
from monitor.api.throttle import FailedAttempts
from monitor.api.timeouts import is_statement_timeout, statement_timeout
from monitor.config import Settings
from monitor.db import session
from tests.support.api import ENDLESS, WORDS, cursor_of, fill

NOW = datetime(2022, 1, 10, 12, tzinfo=UTC)
TOKEN = "s3cret-token"


@pytest.fixture
def client(settings: Settings, engine: sa.Engine) -> Iterator[TestClient]:
    fill(engine, 30)
    with TestClient(create_app(settings, engine, clock=lambda: NOW)) as test_client:
        yield test_client


def assert_problem(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"}, body
    detail = body["detail"]
    assert isinstance(detail, str) and "\n" not in detail and len(detail) < 300, detail
    for word in words:
        assert word in detail, (word, detail)


# Each: parameters of /api/articles, and words the one-line answer must hold.
OUT_OF_RANGE: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"cursor": cursor_of(["2022-01-01T00:00:00+00:00", 2**70])}, ("cursor", "out of range")),
    ({"cursor": cursor_of(["2022-01-01T00:00:00+00:00", 2**63])}, ("cursor", "out of range")),
    ({"cursor": cursor_of(["2022-01-01T00:00:00+00:00", -5])}, ("cursor", "out of range")),
    ({"cursor": cursor_of(["0001-01-01T00:00:00+05:00", 1])}, ("cursor", "out of range")),
    ({"cursor": cursor_of(["9999-12-31T23:00:00-05:00", 1])}, ("cursor", "out of range")),
    ({"cursor": "A" * 5000}, ("cursor", "200")),
    ({"since": "0001-01-01T00:00:00+05:00"}, ("time", "out of range")),
    ({"until": "9999-12-31T23:00:00-05:00"}, ("time", "out of range")),
    ({"since": "1969-12-31"}, ("time", "1970")),
    ({"since": "999999999999w"}, ("time", "100 years")),
    ({"since": "9" * 99 + "d"}, ("time", "100 years")),
    ({"until": "9" * 400}, ("until", "100")),
    ({"limit": "0"}, ("limit",)),
    ({"limit": "501"}, ("limit", "500")),
    ({"limit": str(2**64)}, ("limit",)),
    ({"limit": "-1"}, ("limit",)),
    ({"limit": "1e3"}, ("limit",)),
    ({"entity": [f"e{i}" for i in range(21)]}, ("entity", "20")),
    ({"entity": "a\x00b"}, ("entity", "not a valid name")),
    ({"entity": "x" * 600}, ("entity", "not a valid name")),
    ({"feed": "a\x00b"}, ("feed", "not a valid name")),
    ({"feed": "x" * 600}, ("feed", "500")),
    ({"q": "x" * 1001}, ("q", "1000")),
    ({"q": " ".join(f"w{i}" for i in range(51))}, ("query", "50")),
]


def test_values_out_of_range_are_a_400_naming_the_parameter(client: TestClient) -> None:
    for params, words in OUT_OF_RANGE:
        assert_problem(client.get("/api/articles", params=params), 400, *words)


def test_ids_beyond_what_the_database_holds_are_a_404_or_a_400(client: TestClient) -> None:
    for article_id in (2**31 - 1, 2**31, 2**63 - 1):
        assert_problem(client.get(f"/api/articles/{article_id}"), 404, f"no article with id {article_id}")
    for article_id in (2**63, 2**64, 10**30, 0, -1):
        assert_problem(client.get(f"/api/articles/{article_id}"), 400, "article_id")
    assert client.get("/api/articles/1").status_code == 200


def test_a_cursor_id_past_the_databases_key_is_invalid(client: TestClient, engine: sa.Engine) -> None:
    # 2^40 fits SQLite's 64-bit key (the cursor then reads from the newest article on),
    # not PostgreSQL's 32-bit one, where the driver could not even send it.
    response = client.get("/api/articles", params={"cursor": cursor_of(["2022-01-01T00:00:00+00:00", 2**40])})
    if engine.dialect.name == "postgresql":
        assert_problem(response, 400, "cursor", "out of range")
    else:
        assert response.status_code == 200 and response.json()["items"]


def test_the_mentions_feed_is_bounded_too(client: TestClient) -> None:
    for params, words in [
        ({"limit": "0"}, ("limit",)),
        ({"limit": "201"}, ("limit", "200")),
        ({"limit": str(2**64)}, ("limit",)),
        ({"entity": [f"e{i}" for i in range(21)]}, ("entity", "20")),
        ({"entity": "a\x00b"}, ("entity", "not a valid name")),
        ({"entity": "x" * 600}, ("entity", "not a valid name")),
    ]:
        assert_problem(client.get("/feeds/mentions.atom", params=params), 400, *words)
    assert client.get("/feeds/mentions.atom", params={"entity": [f"e{i}" for i in range(20)]}).status_code == 200


def test_the_page_shows_the_same_bounds_as_a_400(client: TestClient) -> None:
    for params, words in OUT_OF_RANGE:
        if "limit" in params or "feed" in params:
            continue  # the page has neither: its page size is fixed and it lists all feeds
        response = client.get("/", params=params)
        assert response.status_code == 400, (params, response.text[:200])
        alert = response.text.split('role="alert">', 1)[1].split("<", 1)[0]
        assert words[-1] in alert, (params, alert)
    assert client.get("/", params={"entity": "Almaty"}).status_code == 200


@pytest.mark.parametrize("path", ["/api/articles", "/feeds/mentions.atom", "/"])
def test_four_hundred_entities_are_refused_at_once(client: TestClient, path: str) -> None:
    entities = [f"Entity {i}" for i in range(400)]
    started = time.monotonic()
    response = client.get(path, params={"entity": entities})
    took = time.monotonic() - started
    assert response.status_code == 400
    assert "20" in response.text
    assert took < 1.0, f"{took:.2f} s"


# ---------------------------------------------------------------- statement timeout


@pytest.fixture
def big_archive(engine: sa.Engine) -> sa.Engine:
    fill(engine, 3000, words=40)
    return engine


# Fifty words OR-ed together, an exclusion, 500 results with their snippets: a
# quarter of a second or more on either engine, hundreds of times the tiny limit.
HEAVY = {
    "q": " OR ".join(WORDS * 4) + " -nowhere",
    "include_duplicates": "1",
    "limit": "500",
}


def test_a_statement_past_the_timeout_is_a_503(
    make_settings: Callable[..., Settings], database_url: str, big_archive: sa.Engine
) -> None:
    tiny = make_settings(database_url=database_url, serve={"statement_timeout": "1ms"})
    with TestClient(create_app(tiny, big_archive, clock=lambda: NOW)) as client:
        started = time.monotonic()
        response = client.get("/api/articles", params=HEAVY)
        assert time.monotonic() - started < 5
        assert_problem(response, 503, "took longer than the server allows (0.001 s)")
        page = client.get("/", params={"q": HEAVY["q"], "include_duplicates": "1"})
        assert page.status_code == 503 and "took longer than the server allows" in page.text
        assert client.get("/healthz").status_code == 200  # the database itself is fine
    roomy = make_settings(database_url=database_url)
    with TestClient(create_app(roomy, big_archive, clock=lambda: NOW)) as client:
        response = client.get("/api/articles", params=HEAVY)
        assert response.status_code == 200 and len(response.json()["items"]) == 500


def test_the_timeout_stops_a_statement_and_leaves_the_connection_as_it_was(database_url: str) -> None:
    # One connection, so the one the limit was put on is the one used after.
    engine = sa.create_engine(database_url, poolclass=sa.pool.StaticPool)
    try:
        with session(engine) as db, statement_timeout(db, 0.2):
            started = time.monotonic()
            with pytest.raises(sa.exc.OperationalError) as caught:
                db.execute(sa.text(ENDLESS))
            assert time.monotonic() - started < 2
            assert is_statement_timeout(caught.value)
        # Outside the block a statement longer than the limit runs to its end.
        with engine.connect() as connection:
            counted = connection.execute(sa.text(ENDLESS.replace("100000000", "300000"))).scalar()
            assert counted == 300000
            if engine.dialect.name == "postgresql":
                assert connection.execute(sa.text("SHOW statement_timeout")).scalar() == "0"
    finally:
        engine.dispose()


def test_each_statement_of_a_request_has_the_whole_limit(database_url: str) -> None:
    engine = sa.create_engine(database_url, poolclass=sa.pool.StaticPool)
    statement = sa.text(ENDLESS.replace("100000000", "200000"))
    try:
        with engine.connect() as connection:
            took = []
            for _ in range(3):
                started = time.monotonic()
                connection.execute(statement).scalar()
                took.append(time.monotonic() - started)
        limit = 4 * max(took)
        with session(engine) as db, statement_timeout(db, limit):
            started = time.monotonic()
            # Statements until the request as a whole has run past the limit (bounded): on a
            # busy machine a fixed count may not get there.
            for _ in range(200):
                assert db.execute(statement).scalar() == 200000
                if time.monotonic() - started > 2 * limit:
                    break
            assert time.monotonic() - started > limit  # the request as a whole took longer
    finally:
        engine.dispose()


def test_an_unreachable_database_is_not_taken_for_a_timeout() -> None:
    error = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    assert not is_statement_timeout(error)


# ------------------------------------------------------------------------- sign-in


@pytest.fixture
def guarded(make_settings: Callable[..., Settings], database_url: str, engine: sa.Engine) -> Iterator[TestClient]:
    settings = make_settings(database_url=database_url, api_token=TOKEN)
    with TestClient(create_app(settings, engine, clock=lambda: NOW)) as test_client:
        yield test_client


def test_wrong_tokens_are_limited_per_client_address(guarded: TestClient) -> None:
    for _ in range(5):
        refused = guarded.post("/login", data={"token": "guess"}, follow_redirects=False)
        assert refused.status_code == 401 and "wrong token" in refused.text
    for token in ("guess", TOKEN):  # once locked out, not even the right token is checked
        locked = guarded.post("/login", data={"token": token}, follow_redirects=False)
        assert locked.status_code == 429
        assert 1 <= int(locked.headers["retry-after"]) <= 60
        assert "too many wrong tokens" in locked.text
        assert "monitor_page" not in locked.cookies
    # Another address is not locked out by this one.
    other = TestClient(guarded.app, client=("192.0.2.7", 40000))
    accepted = other.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert accepted.status_code == 303


def test_failed_attempts_leave_the_window_and_a_success_clears_them() -> None:
    now = [1000.0]
    attempts = FailedAttempts(limit=3, window=60, clock=lambda: now[0], max_clients=2)
    for _ in range(3):
        assert attempts.retry_after("a") is None
        attempts.failed("a")
        now[0] += 10
    assert attempts.retry_after("a") == 30  # the first failure (t=1000) leaves at t=1060
    now[0] += 30
    assert attempts.retry_after("a") is None
    attempts.failed("b")
    attempts.succeeded("b")
    attempts.failed("b")
    attempts.failed("b")
    assert attempts.retry_after("b") is None  # the success cleared the earlier failure
    for client in ("c", "d", "e"):
        attempts.failed(client)
    assert len(attempts._failures) <= 2
