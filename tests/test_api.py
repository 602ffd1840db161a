"""The HTTP API, the Atom feed and the search page, on SQLite and PostgreSQL.

Most route logic goes through FastAPI's in-process client; one test runs the app on a
real uvicorn server in a thread, and one runs ``monitor serve`` and stops it with
SIGTERM.
"""

from __future__ import annotations

import html
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from monitor.api import create_app
from monitor.cli.serve import listen
from monitor.config import Settings
from monitor.db import session
from monitor.errors import ConfigError, MonitorError
from monitor.models import Alert, Article, Feed, Mention, Seed
from tests.support.waiting import free_port, wait_for

NOW = datetime(2022, 1, 10, 12, tzinfo=UTC)
SEED_NAME = "001_73071e9b10a78990.txt"
HOSTILE_TITLE = '<script>alert("x")</script> Nazarbayev & Sons'
HOSTILE_URL = "javascript:alert(1)//hostile"
FILLERS = 22
SUMMARY_KEYS = {
    "id",
    "url",
    "title",
    "feed",
    "published_at",
    "fetched_at",
    "entities",
    "duplicate_of",
    "snippet",
}
UNREACHABLE_URL = "postgresql+psycopg://nobody@127.0.0.1:1/nowhere"
TOKEN = "s3cret-token"


def t(day: int, hour: int = 0) -> datetime:
    return datetime(2022, 1, day, hour, tzinfo=UTC)


@dataclass
class Archive:
    """Ids of the test archive's rows by short name."""

    ids: dict[str, int] = field(default_factory=dict)

    def name_of(self, article_id: int) -> str:
        return {v: k for k, v in self.ids.items()}[article_id]


def _mention(article: Article, entity: str, alias: str, snippet: str | None = None) -> Mention:
    start = article.text.index(alias)
    return Mention(
        article_id=article.id,
        entity=entity,
        text=alias,
        start=start,
        end=start + len(alias),
        snippet=snippet or article.text[max(0, start - 20) : start + len(alias) + 20],
    )


def _article(url: str, title: str, text: str, **fields: Any) -> Article:
    fields.setdefault("fetched_at", fields.get("published_at") or NOW)
    return Article(url=url, title=title, text=text, content_hash=url[-60:], **fields)


@pytest.fixture
def archive(engine: sa.Engine) -> Archive:
    """Two feeds, a seed, two stories with mentions, two duplicates and plain fillers."""
    found = Archive()
    with session(engine) as db:
        world = Feed(
            name="World Desk",
            url="https://news.example.org/world.xml",
            status="ok",
            last_polled_at=t(10, 11),
            last_success_at=t(10, 11),
            next_poll_at=t(10, 12),
            articles_stored=3,
        )
        broken = Feed(
            name="Broken Wire",
            url="https://wire.example.net/rss",
            status="error",
            last_polled_at=t(10, 11),
            error_kind="timeout",
            error_message="no answer within 20s",
            error_count=3,
        )
        seed = Seed(name=SEED_NAME, title="Seed", text="seed text", content_hash="s" * 64)
        db.add_all([world, broken, seed])
        db.flush()
        story = _article(
            "https://news.example.org/csto-almaty",
            "CSTO troops arrive in Almaty",
            "Peacekeepers of the CSTO landed near Almaty on Thursday after the request.",
            published_at=t(6, 10),
            feed_id=world.id,
            author="A. Writer",
            language="en",
        )
        hostile = _article(
            HOSTILE_URL,
            HOSTILE_TITLE,
            "A profile of Nazarbayev and his family business, with <b>markup</b> in the text.",
            published_at=t(7, 9),
            feed_id=world.id,
        )
        copy_of_seed = _article(
            "https://mirror.example.com/copy",
            "Republished seed about the CSTO",
            "The CSTO decided to send troops, as reported earlier.",
            published_at=t(8, 8),
            is_duplicate=True,
            duplicate_of_seed_id=seed.id,
            similarity=0.97,
        )
        db.add_all([story, hostile, copy_of_seed])
        db.flush()
        copy_of_story = _article(
            "https://mirror.example.com/story",
            "Peacekeepers land (copy)",
            "Peacekeepers of the CSTO landed near Almaty on Thursday.",
            published_at=None,
            fetched_at=t(9, 7),
            is_duplicate=True,
            duplicate_of_article_id=story.id,
            similarity=0.91,
        )
        fillers = [
            _article(
                f"https://news.example.org/filler-{i:02d}",
                f"Filler {i:02d}",
                f"Weather report number {i} with nothing of note.",
                published_at=datetime(2021, 12, 1, tzinfo=UTC) + timedelta(hours=i),
            )
            for i in range(FILLERS)
        ]
        db.add_all([copy_of_story, *fillers])
        db.flush()
        db.add_all(
            [
                _mention(story, "CSTO", "CSTO", snippet="…of the CSTO landed…"),
                _mention(story, "Almaty", "Almaty", snippet="…near Almaty on…"),
                _mention(hostile, "Nazarbayev", "Nazarbayev", snippet="…profile of Nazarbayev\x0b <i>&"),
                _mention(copy_of_seed, "CSTO", "CSTO"),
                Alert(article_id=story.id, channel="email", status="pending"),
                Alert(article_id=hostile.id, channel="email", status="sent"),
            ]
        )
        db.commit()
        found.ids.update(
            story=story.id,
            hostile=hostile.id,
            copy_of_seed=copy_of_seed.id,
            copy_of_story=copy_of_story.id,
            **{f"filler{i:02d}": f.id for i, f in enumerate(fillers)},
        )
    return found


@pytest.fixture
def client(settings: Settings, engine: sa.Engine, archive: Archive) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine, clock=lambda: NOW)) as test_client:
        yield test_client


@pytest.fixture
def guarded(
    make_settings: Callable[..., Settings], database_url: str, engine: sa.Engine, archive: Archive
) -> Iterator[TestClient]:
    """A client of an app that has an API token."""
    settings = make_settings(database_url=database_url, api_token=TOKEN)
    with TestClient(create_app(settings, engine, clock=lambda: NOW)) as test_client:
        yield test_client


def _ids(response: httpx.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


# ------------------------------------------------------------------------- JSON API


def test_articles_newest_first_duplicates_on_request(client: TestClient, archive: Archive) -> None:
    response = client.get("/api/articles", params={"limit": 3})
    body = response.json()
    assert set(body) == {"items", "next_cursor", "approximate_total"}
    assert body["approximate_total"] >= 3  # about: an estimate (docs/api.md)
    assert [archive.name_of(i["id"]) for i in body["items"]] == ["hostile", "story", "filler21"]
    assert body["next_cursor"]
    story = body["items"][1]
    assert set(story) == SUMMARY_KEYS
    assert story["feed"] == "World Desk"
    assert story["published_at"] == "2022-01-06T10:00:00Z"
    assert story["entities"] == ["Almaty", "CSTO"]
    assert story["duplicate_of"] is None
    assert story["title"] == "CSTO troops arrive in Almaty"

    items = client.get("/api/articles", params={"include_duplicates": "true", "limit": 4}).json()["items"]
    by_name = {archive.name_of(i["id"]): i for i in items}
    assert list(by_name) == ["copy_of_story", "copy_of_seed", "hostile", "story"]
    assert by_name["copy_of_seed"]["duplicate_of"] == SEED_NAME
    assert by_name["copy_of_story"]["duplicate_of"] == f"article:{archive.ids['story']}"
    assert by_name["copy_of_story"]["published_at"] is None


FILTER_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"q": "peacekeepers"}, ["story"]),
    ({"q": "peacekeepers", "include_duplicates": "1"}, ["copy_of_story", "story"]),
    ({"entity": "csto", "include_duplicates": "true"}, ["copy_of_seed", "story"]),
    ({"entity": ["CSTO", "Almaty"]}, ["story"]),
    ({"entity": ["CSTO", "Nazarbayev"]}, []),
    ({"since": "2022-01-07", "until": "2022-01-07"}, ["hostile"]),
    ({"since": "4d"}, ["hostile"]),  # 4 days before NOW: the 6th, 12:00
    ({"feed": "World Desk"}, ["hostile", "story"]),
    ({"q": "weather", "until": "2021-12-01T01:00:00Z"}, ["filler01", "filler00"]),
]


def test_filters_narrow_the_list(client: TestClient, archive: Archive) -> None:
    # One database for all cases: each case is a read.
    for params, expected in FILTER_CASES:
        found = _ids(client.get("/api/articles", params=params))
        assert [archive.name_of(i) for i in found] == expected, params


def test_malformed_parameters_are_a_400_with_one_line(client: TestClient) -> None:
    cases = [
        ({"q": '"unbalanced'}, "quote"),
        ({"q": "OR"}, "OR"),
        ({"since": "last tuesday-ish"}, "time"),
        ({"until": "2022-13-45"}, "time"),
        ({"since": "2022-01-09", "until": "2022-01-01"}, "since"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJhIjoxfQ"}, "cursor"),  # base64 JSON of the wrong shape
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"include_duplicates": "perhaps"}, "include_duplicates"),
        ({"feed": "No Such Feed"}, "feed"),
    ]
    for params, word in cases:
        response = client.get("/api/articles", params=params)
        assert response.status_code == 400, (params, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail and word in detail, (params, detail)
    response = client.get("/api/articles/not-a-number")
    assert response.status_code == 400 and "article_id" in response.json()["detail"]


def test_pages_by_cursor_cover_every_article_once(client: TestClient, archive: Archive) -> None:
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"include_duplicates": "true", "limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/articles", params=params).json()
        assert len(body["items"]) <= 5
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    ids = [item["id"] for item in seen]
    assert sorted(ids) == sorted(archive.ids.values())  # all, each once
    times = [item["published_at"] or item["fetched_at"] for item in seen]
    assert times == sorted(times, reverse=True)


def test_one_article_has_its_text_and_mentions(client: TestClient, archive: Archive) -> None:
    body = client.get(f"/api/articles/{archive.ids['story']}").json()
    assert SUMMARY_KEYS | {"text", "author", "language", "similarity", "mentions"} == set(body)
    assert body["author"] == "A. Writer" and body["language"] == "en"
    assert body["entities"] == ["Almaty", "CSTO"]
    assert [m["entity"] for m in body["mentions"]] == ["CSTO", "Almaty"]  # in text order
    for mention in body["mentions"]:
        assert set(mention) == {"entity", "text", "start", "end", "snippet"}
        assert body["text"][mention["start"] : mention["end"]] == mention["text"]

    copy = client.get(f"/api/articles/{archive.ids['copy_of_seed']}").json()
    assert copy["duplicate_of"] == SEED_NAME and copy["similarity"] == pytest.approx(0.97)

    missing = client.get("/api/articles/987654")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no article with id 987654"}


def test_feeds_report_their_polling_health(client: TestClient) -> None:
    feeds = client.get("/api/feeds").json()
    assert [f["name"] for f in feeds] == ["Broken Wire", "World Desk"]
    broken, world = feeds
    assert broken["status"] == "error"
    assert broken["error_kind"] == "timeout" and broken["error_count"] == 3
    assert broken["error_message"] == "no answer within 20s"
    assert broken["last_success_at"] is None
    assert world["status"] == "ok" and world["error_kind"] is None
    assert world["last_polled_at"] == "2022-01-10T11:00:00Z"
    assert world["next_poll_at"] == "2022-01-10T12:00:00Z"
    assert world["articles_stored"] == 3
    assert world["url"] == "https://news.example.org/world.xml"


def test_openapi_describes_the_responses(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(database_url=UNREACHABLE_URL))) as client:
        schema = client.get("/openapi.json").json()
        assert client.get("/docs").status_code == 404  # no Swagger UI: it loads scripts from a CDN
    paths = schema["paths"]
    for path in (
        "/healthz",
        "/metrics",
        "/api/articles",
        "/api/articles/{article_id}",
        "/api/feeds",
        "/feeds/mentions.atom",
    ):
        assert path in paths
    listing = paths["/api/articles"]["get"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ArticlePage")
    assert "400" in listing["responses"] and "422" not in listing["responses"]
    assert {p["name"] for p in listing["parameters"]} == {
        "q",
        "entity",
        "since",
        "until",
        "feed",
        "include_duplicates",
        "limit",
        "cursor",
    }
    components = schema["components"]["schemas"]
    assert {"ArticleSummary", "ArticleDetail", "FeedHealth", "MentionOut"} <= set(components)


# --------------------------------------------------------------------------- Atom


def test_mentions_feed_is_valid_atom_by_entity(client: TestClient, archive: Archive) -> None:
    response = client.get("/feeds/mentions.atom")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    parsed = feedparser.parse(response.content)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    # Non-duplicate articles with mentions, newest first; duplicates never appear.
    assert [e.link for e in parsed.entries] == [HOSTILE_URL, "https://news.example.org/csto-almaty"]
    hostile, story = parsed.entries
    assert hostile.title == HOSTILE_TITLE  # escaped in XML, intact once parsed
    assert hostile.id == f"tag:news-monitor,2022-01-07:article/{archive.ids['hostile']}"
    assert "Nazarbayev: …profile of Nazarbayev <i>&" in hostile.summary  # control char dropped
    assert story.summary.splitlines() == [
        "CSTO: …of the CSTO landed…",
        "Almaty: …near Almaty on…",
    ]
    assert {tag.term for tag in story.tags} == {"Almaty", "CSTO"}
    assert story.updated == "2022-01-06T10:00:00Z"
    again = feedparser.parse(client.get("/feeds/mentions.atom").content)
    assert [e.id for e in again.entries] == [e.id for e in parsed.entries]

    cases = [
        (["csto"], ["story"]),
        (["Nazarbayev", "Almaty"], ["hostile", "story"]),
        (["Nobody"], []),
    ]
    for entities, expected in cases:
        response = client.get("/feeds/mentions.atom", params={"entity": entities, "limit": 5})
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo, entities
        names = [archive.name_of(int(e.id.rsplit("/", 1)[1])) for e in parsed.entries]
        assert names == expected, entities
    one = feedparser.parse(client.get("/feeds/mentions.atom", params={"limit": 1}).content)
    assert len(one.entries) == 1


# ---------------------------------------------------------------------------- page


def _next_link(page: str) -> str | None:
    match = re.search(r'<a href="([^"]+)" rel="next">', page)
    return html.unescape(match.group(1)) if match else None


def test_page_escapes_what_comes_from_articles(client: TestClient) -> None:
    response = client.get("/", params={"entity": "Nazarbayev"})
    assert response.status_code == 200
    page = response.text
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Nazarbayev &amp; Sons" in page
    assert "javascript:" not in page  # a hostile URL is shown as text, never linked
    assert 'class="badge">Nazarbayev<' in page
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy


def test_page_shows_results_duplicates_and_pages(client: TestClient) -> None:
    first = client.get("/").text
    assert '<a class="out" href="https://news.example.org/csto-almaty" rel="noopener noreferrer">' in first
    assert "World Desk" in first and "2022-01-06 10:00 UTC" in first
    assert "duplicate of" not in first
    second_url = _next_link(first)
    assert second_url is not None and "cursor=" in second_url
    second = client.get(second_url).text
    assert _next_link(second) is None
    titles = re.findall(r"Filler \d\d", first + second)
    assert sorted(titles) == [f"Filler {i:02d}" for i in range(FILLERS)]

    with_copies = client.get("/", params={"q": "CSTO", "include_duplicates": "1"}).text
    assert f'duplicate of <a href="/seeds/{SEED_NAME}">{SEED_NAME}</a>' in with_copies
    assert 'name="include_duplicates" value="1" checked' in with_copies
    assert 'value="CSTO"' in with_copies

    # A malformed query is shown on the page, with the form as typed.
    response = client.get("/", params={"q": '"<b>unclosed'})
    assert response.status_code == 400
    assert 'role="alert">query: unbalanced quote' in response.text
    assert 'value="&#34;&lt;b&gt;unclosed"' in response.text  # the form keeps the query
    assert client.get("/", params={"cursor": "garbage"}).status_code == 400


# ---------------------------------------------------------------------------- auth


def test_token_guards_the_api_feeds_and_page(guarded: TestClient, archive: Archive) -> None:
    for path in (
        "/api/articles",
        f"/api/articles/{archive.ids['story']}",
        "/api/feeds",
        "/feeds/mentions.atom",
    ):
        missing = guarded.get(path)
        assert missing.status_code == 401, path
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = guarded.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and 'error="invalid_token"' in wrong.headers["www-authenticate"]
        basic = guarded.get(path, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        right = guarded.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200, path
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/metrics").status_code == 200
    assert guarded.get("/openapi.json").status_code == 200

    # The page: a login form, then a cookie (or a bearer header).
    locked = guarded.get("/")
    assert locked.status_code == 401 and 'action="/login"' in locked.text
    assert "CSTO troops" not in locked.text
    assert guarded.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200

    refused = guarded.post("/login", data={"token": "guess"}, follow_redirects=False)
    assert refused.status_code == 401 and "wrong token" in refused.text
    assert "monitor_page" not in refused.cookies

    accepted = guarded.post("/login", data={"token": TOKEN}, follow_redirects=False)
    assert accepted.status_code == 303
    cookie = accepted.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    page = guarded.get("/")
    assert page.status_code == 200 and "CSTO troops arrive in Almaty" in page.text
    # The page cookie is for the page only: the API still wants the bearer token.
    assert guarded.get("/api/articles").status_code == 401

    guarded.post("/logout", follow_redirects=False)
    guarded.cookies.clear()
    assert guarded.get("/").status_code == 401


def test_an_empty_token_is_refused(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ConfigError, match="api_token"):
        create_app(make_settings(api_token=" "))


# ------------------------------------------------------------------- health, metrics


def _metrics(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_health_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    client.get("/api/articles", params={"limit": "0"})
    client.get("/api/articles/1")
    client.get("/no/such/path")
    figures = _metrics(client)
    assert figures[("monitor_database_up", ())] == 1
    assert figures[("monitor_articles_stored", ())] == 4 + FILLERS
    assert figures[("monitor_articles_duplicates", ())] == 2
    assert figures[("monitor_mentions", (("entity", "CSTO"),))] == 2
    assert figures[("monitor_mentions", (("entity", "Nazarbayev"),))] == 1
    assert figures[("monitor_feeds", (("status", "error"),))] == 1
    assert figures[("monitor_feeds", (("status", "new"),))] == 0
    assert figures[("monitor_alerts", (("status", "pending"),))] == 1
    assert figures[("monitor_alerts", (("status", "sent"),))] == 1
    requests = "monitor_http_requests_total"
    assert figures[(requests, (("method", "GET"), ("route", "/api/articles"), ("status", "400")))] == 1
    assert figures[(requests, (("method", "GET"), ("route", "/healthz"), ("status", "200")))] == 1
    assert figures[(requests, (("method", "GET"), ("route", "unmatched"), ("status", "404")))] == 1
    assert (
        requests,
        (("method", "GET"), ("route", "/api/articles/{article_id}"), ("status", "200")),
    ) in figures


def test_an_unreachable_database_is_a_503_not_a_crash(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(database_url=UNREACHABLE_URL))  # does not connect yet
    with TestClient(app) as client:
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json()["status"] != "ok"
        for path in ("/api/articles", "/api/articles/1", "/api/feeds", "/feeds/mentions.atom"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert response.json() == {"detail": "the database is unavailable; try again later"}
        page = client.get("/")
        assert page.status_code == 503 and "the database is unavailable" in page.text
        figures = _metrics(client)
        assert figures[("monitor_database_up", ())] == 0
        assert ("monitor_articles_stored", ()) not in figures


def test_apps_do_not_share_metrics(make_settings: Callable[..., Settings]) -> None:
    first = create_app(make_settings(database_url=UNREACHABLE_URL))
    second = create_app(make_settings(database_url=UNREACHABLE_URL))
    with TestClient(first) as one, TestClient(second) as two:
        one.get("/healthz")
        one.get("/healthz")
        two.get("/healthz")
        key = (
            "monitor_http_requests_total",
            (("method", "GET"), ("route", "/healthz"), ("status", "503")),
        )
        assert _metrics(one)[key] == 2
        assert _metrics(two)[key] == 1


# ------------------------------------------------------------------- real servers


def _wait_until_up(url: str, seconds: float = 20) -> None:
    def up() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(up, seconds, f"{url} to come up", interval=0.1)


def test_through_a_real_uvicorn_server(settings: Settings, engine: sa.Engine, archive: Archive) -> None:
    port = free_port()
    config = uvicorn.Config(create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(f"{base}/healthz")
        with httpx.Client(base_url=base, timeout=10) as http:
            listing = http.get("/api/articles", params={"entity": "Almaty"})
            assert listing.status_code == 200
            assert [i["id"] for i in listing.json()["items"]] == [archive.ids["story"]]
            assert http.get("/api/articles", params={"q": "-only"}).status_code == 400
            atom = http.get("/feeds/mentions.atom")
            assert not feedparser.parse(atom.content).bozo
            assert "<script>" not in http.get("/").text
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_monitor_serve_stops_cleanly_on_sigterm(fresh_database_url: Callable[[str], str], tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "MONITOR_DATABASE_URL": fresh_database_url("sqlite"),
        "MONITOR_SERVE__PORT": str(port),
        "MONITOR_CONFIG": str(tmp_path / "monitor.yaml"),
    }
    (tmp_path / "monitor.yaml").write_text("log_level: WARNING\n", encoding="utf-8")
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("monitor")), "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_until_up(f"http://127.0.0.1:{port}/healthz")
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_serve_reports_a_taken_port_in_one_line() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(MonitorError, match=rf"^cannot listen on 127.0.0.1:{port}: .+$"):
            listen("127.0.0.1", port)
