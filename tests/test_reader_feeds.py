"""Atom feeds for feed readers: a rule's feed, and secret feed URLs (SQLite and PostgreSQL).

A rule's feed lists what ``monitor search`` lists for the rule's query; with an
``api_token``, a reader without a header opens a feed only by that feed's secret URL.
Stories are stored through the archive's own write path; the token tests run the app
on a real uvicorn server, and one runs ``monitor serve`` to read its log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from monitor.api import create_app
from monitor.config import Settings
from monitor.db import session
from monitor.feed_tokens import MENTIONS, feed_links, feed_path, feed_token, rule_feed
from monitor.pipeline.ingest import Archive, Candidate
from monitor.search import SearchFilters, search_articles
from tests.support.api import serving
from tests.support.feeds import story
from tests.support.waiting import free_port, wait_for

TOKEN = "s3cret-token"
NOW = datetime(2022, 1, 20, 12, tzinfo=UTC)
UNREST = "entity:Almaty protest OR unrest OR troops -football"
RULES = [
    {"name": "almaty-unrest", "query": UNREST},
    {"name": "csto", "query": "entity:CSTO"},
]
TEXTS = {
    "protest": story("Almaty protest"),
    "football": story("Almaty football protest"),
    "summit": story("CSTO summit"),
    "troops": story("Alma-Ata troops ОДКБ"),
    "weather": story("Almaty weather"),
}
ATOM_NS = "{http://www.w3.org/2005/Atom}"


def store(engine: sa.Engine, settings: Settings) -> dict[str, int]:
    """The stories, a day apart, and a copy of the protest story (a duplicate)."""
    archive = Archive(settings, alerting=False)
    ids: dict[str, int] = {}
    with session(engine) as db:
        for day, (name, text) in enumerate(TEXTS.items(), start=1):
            result = archive.store(
                db,
                Candidate(
                    url=f"https://news.example/{name}",
                    text=text,
                    title=f"{name.title()} <b>&</b>",
                    language="en",
                    published_at=datetime(2022, 1, day, 9, tzinfo=UTC),
                ),
            )
            assert result.article_id is not None and result.duplicate_of is None
            ids[name] = result.article_id
        copy = archive.store(db, Candidate(url="https://mirror.example/protest", text=TEXTS["protest"], title="Copy"))
        assert copy.duplicate_of is not None and copy.article_id is not None
        ids["copy"] = copy.article_id
    return ids


def searched(engine: sa.Engine, settings: Settings, query: str) -> list[int]:
    with session(engine) as db:
        page = search_articles(db, SearchFilters(query=query, limit=500), entities=settings.entities)
    return [item.id for item in page.items]


def entry_ids(body: bytes) -> list[int]:
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return [int(e.id.rsplit("/", 1)[1]) for e in parsed.entries]


@pytest.fixture
def ruled(make_settings: Callable[..., Settings], database_url: str) -> Callable[..., Settings]:
    def make(**extra: Any) -> Settings:
        return make_settings(database_url=database_url, rules=RULES, **extra)

    return make


@pytest.fixture
def open_client(ruled: Callable[..., Settings], engine: sa.Engine) -> Iterator[tuple[TestClient, dict[str, int]]]:
    settings = ruled(alerts={"public_url": "https://monitor.example.org/archive"})
    ids = store(engine, settings)
    with TestClient(create_app(settings, engine, clock=lambda: NOW)) as client:
        yield client, ids


# ----------------------------------------------------------------------- rule feeds


def test_a_rule_feed_lists_what_search_lists_for_its_query(
    open_client: tuple[TestClient, dict[str, int]], ruled: Callable[..., Settings], engine: sa.Engine
) -> None:
    client, ids = open_client
    settings = ruled()
    for rule in RULES:
        response = client.get(f"/feeds/rules/{rule['name']}.atom")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/atom+xml")
        assert entry_ids(response.content) == searched(engine, settings, rule["query"])
    unrest = feedparser.parse(client.get("/feeds/rules/almaty-unrest.atom").content)
    # Newest first, duplicates and the excluded football story left out.
    assert entry_ids(client.get("/feeds/rules/almaty-unrest.atom").content) == [ids["troops"], ids["protest"]]
    assert unrest.feed.title == "News monitor: rule almaty-unrest"
    assert (
        unrest.feed.link
        == "https://monitor.example.org/archive/?q=entity%3AAlmaty%20protest%20OR%20unrest%20OR%20troops%20-football"
    )

    troops = unrest.entries[0]
    assert troops.title == "Troops <b>&</b>"  # text, escaped in the XML, intact once parsed
    links = {link.rel: link.href for link in troops.links}
    assert links == {
        "alternate": "https://news.example/troops",
        "related": f"https://monitor.example.org/archive/articles/{ids['troops']}",
    }
    assert troops.published == "2022-01-04T09:00:00Z"
    assert troops.updated.endswith("Z")
    terms = {(tag.term, tag.scheme) for tag in troops.tags}
    assert ("almaty-unrest", "tag:news-monitor,2024:rules") in terms
    assert {term for term, _ in terms} == {"almaty-unrest", "Almaty", "CSTO"}
    summary = troops.summary.splitlines()
    assert summary[0] == "Entities: Almaty, CSTO"
    assert "troops" in summary[1].lower()

    one = client.get("/feeds/rules/almaty-unrest.atom", params={"limit": 1})
    assert entry_ids(one.content) == [ids["troops"]]
    assert client.get("/feeds/rules/csto.atom", params={"limit": 0}).status_code == 400


def test_an_unknown_rule_is_a_404_that_says_so(open_client: tuple[TestClient, dict[str, int]]) -> None:
    client, _ = open_client
    response = client.get("/feeds/rules/nope.atom")
    assert response.status_code == 404
    assert response.json() == {"detail": "no rule named 'nope' (monitor rules lists them)"}


def test_implicit_rules_have_feeds_under_the_entity_name(
    make_settings: Callable[..., Settings], database_url: str, engine: sa.Engine
) -> None:
    settings = make_settings(database_url=database_url)  # no rules: one per tracked entity
    ids = store(engine, settings)
    with TestClient(create_app(settings, engine, clock=lambda: NOW)) as client:
        almaty = client.get("/feeds/rules/Almaty.atom")
        assert almaty.status_code == 200
        expected = searched(engine, settings, 'entity:"Almaty"')
        assert entry_ids(almaty.content) == expected
        assert ids["weather"] in expected and ids["copy"] not in expected
        assert client.get("/feeds/rules/almaty-unrest.atom").status_code == 404


# ------------------------------------------------------------------- secret URLs


@pytest.fixture
def guarded(ruled: Callable[..., Settings], engine: sa.Engine) -> Iterator[tuple[httpx.Client, dict[str, int]]]:
    """A real server with an api_token, and a client that sends no header (a feed reader)."""
    settings = ruled(api_token=TOKEN)
    ids = store(engine, settings)
    with serving(create_app(settings, engine, clock=lambda: NOW)) as client:
        yield client, ids


def test_a_feed_reader_opens_a_feed_by_its_secret_url_only(guarded: tuple[httpx.Client, dict[str, int]]) -> None:
    reader, ids = guarded
    unrest, csto = rule_feed("almaty-unrest"), rule_feed("csto")
    for plain in ("/feeds/rules/almaty-unrest.atom", "/feeds/mentions.atom"):
        assert reader.get(plain).status_code == 401, plain

    secret = feed_path(unrest, TOKEN)
    assert secret == f"/feeds/token/{feed_token(TOKEN, unrest)}/rules/almaty-unrest.atom"
    response = reader.get(secret)
    assert response.status_code == 200
    assert entry_ids(response.content) == [ids["troops"], ids["protest"]]
    mentions = reader.get(feed_path(MENTIONS, TOKEN), params={"entity": "CSTO"})
    assert mentions.status_code == 200
    assert entry_ids(mentions.content) == [ids["troops"], ids["summit"]]

    # A wrong token, another feed's token, the API token itself: refused, rule or not.
    unrest_token, csto_token = feed_token(TOKEN, unrest), feed_token(TOKEN, csto)
    for token in ("0" * 32, csto_token, feed_token(TOKEN, MENTIONS), TOKEN, unrest_token.upper(), unrest_token[:-1]):
        refused = reader.get(f"/feeds/token/{token}/rules/almaty-unrest.atom")
        assert refused.status_code == 401, token
        assert "invalid feed token" in refused.json()["detail"]
    assert reader.get(f"/feeds/token/{unrest_token}/mentions.atom").status_code == 401
    assert reader.get(f"/feeds/token/{unrest_token}/rules/nope.atom").status_code == 401
    assert reader.get(f"/feeds/token/{feed_token(TOKEN, rule_feed('nope'))}/rules/nope.atom").status_code == 404
    assert reader.get(f"/feeds/token/{csto_token}/rules/csto.atom").status_code == 200

    # The API never takes a feed token, as a header or anywhere in the URL.
    for token in (unrest_token, feed_token(TOKEN, MENTIONS)):
        assert reader.get("/api/articles", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        assert reader.get(f"/api/articles?token={token}").status_code == 401
        assert reader.get(f"/feeds/token/{token}/../../api/articles").status_code in (401, 404)
    # The bearer token still opens the plain URLs.
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert reader.get("/feeds/rules/almaty-unrest.atom", headers=bearer).status_code == 200
    # Metrics count requests by route template, never by the path with its token.
    figures = reader.get("/metrics").text
    assert 'route="/feeds/token/{token}/rules/{name}.atom"' in figures and unrest_token not in figures


def test_changing_the_api_token_revokes_every_secret_url(ruled: Callable[..., Settings], engine: sa.Engine) -> None:
    store(engine, ruled())
    old = feed_path(rule_feed("csto"), TOKEN)
    with TestClient(create_app(ruled(api_token="another-token"), engine)) as client:
        assert client.get(old).status_code == 401
        assert client.get(feed_path(rule_feed("csto"), "another-token")).status_code == 200


def test_feed_links_list_the_mentions_and_every_rule(ruled: Callable[..., Settings]) -> None:
    settings = ruled(api_token=TOKEN, alerts={"public_url": "https://monitor.example.org"})
    links = feed_links(settings)
    assert [link.feed for link in links] == [MENTIONS, "rules/almaty-unrest", "rules/csto"]
    secret = feed_token(TOKEN, "rules/almaty-unrest")
    assert links[1].url == f"https://monitor.example.org/feeds/token/{secret}/rules/almaty-unrest.atom"
    assert TOKEN not in "".join(link.url for link in links)
    plain = feed_links(ruled(), "http://localhost:9000/")
    assert plain[2].url == "http://localhost:9000/feeds/rules/csto.atom"


def test_monitor_serve_logs_no_feed_token(
    fresh_database_url: Callable[[str], str], tmp_path: Path, config_file: Callable[..., Path]
) -> None:
    """uvicorn's access log and our own lines show the path with the token masked."""
    port = free_port()
    config = config_file("log_level: INFO\nrules:\n  - name: csto\n    query: 'entity:CSTO'\n")
    env = {
        **os.environ,
        "MONITOR_DATABASE_URL": fresh_database_url("sqlite"),
        "MONITOR_SERVE__PORT": str(port),
        "MONITOR_CONFIG": str(config),
        "MONITOR_API_TOKEN": TOKEN,
    }
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("monitor")), "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    secret = feed_token(TOKEN, rule_feed("csto"))
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 20, f"{base} to come up", interval=0.1)
        assert httpx.get(f"{base}/feeds/token/{secret}/rules/csto.atom").status_code == 200
        assert httpx.get(f"{base}/feeds/token/{secret}/rules/nope.atom").status_code == 401
        process.send_signal(signal.SIGTERM)
        _stdout, stderr = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "GET /feeds/token/***/rules/csto.atom" in stderr, stderr
    assert secret not in stderr and TOKEN not in stderr


def test_the_token_is_derived_and_not_guessable_from_another() -> None:
    tokens = {feed_token(TOKEN, f) for f in (MENTIONS, "rules/a", "rules/b")}
    tokens |= {feed_token("other", f) for f in (MENTIONS, "rules/a")}
    assert len(tokens) == 5 and all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)
    assert TOKEN not in "".join(tokens)


# ---------------------------------------------------- where a person finds the URLs


def test_the_page_shows_the_secret_urls_to_a_signed_in_person_only(
    ruled: Callable[..., Settings], engine: sa.Engine
) -> None:
    store(engine, ruled())
    secret = feed_path(rule_feed("csto"), TOKEN)
    with TestClient(create_app(ruled(api_token=TOKEN), engine)) as client:
        anonymous = client.get("/subscribe")
        assert anonymous.status_code == 401 and "/feeds/token/" not in anonymous.text
        signed_in = client.get("/subscribe", headers={"Authorization": f"Bearer {TOKEN}"})
        assert signed_in.status_code == 200
        assert f'href="http://testserver{secret}"' in signed_in.text
        assert 'href="/subscribe" aria-current="page"' in signed_in.text
        assert TOKEN not in signed_in.text
        assert client.get(secret).status_code == 200
    with TestClient(create_app(ruled(), engine)) as client:
        page = client.get("/subscribe").text
        assert 'href="http://testserver/feeds/rules/csto.atom"' in page and "open to anyone" in page
