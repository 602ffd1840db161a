"""The web page's article, sources and mentions pages, and ``/api/stats/mentions``, on both engines.

The archive is test_api's: a story with mentions, a hostile article, a copy of a seed,
a copy of the story, fillers.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import tests.test_api as api_tests
from monitor.api import create_app
from monitor.api.display import Segment, highlighted, query_phrases
from monitor.config import Settings
from monitor.db import session
from monitor.errors import ConfigError
from monitor.models import Article, Mention
from monitor.pipeline.titles import without_title
from tests.reliability.test_xss import check_page
from tests.test_api import HOSTILE_TITLE, NOW, SEED_NAME, TOKEN, Archive

# test_api's archive and its client.
archive = api_tests.archive
client = api_tests.client

# ----------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    ("text", "q", "marked"),
    [
        ("Troops landed in Almaty.", "troop", ["Troops"]),
        ("The CSTO's troops, the csto again", "CSTO", ["CSTO", "csto"]),
        ("security treaty and a treaty of security", '"security treaty"', ["security treaty"]),
        ("Алматы и Almaty", "Almaty OR Алматы", ["Алматы", "Almaty"]),
        ("Café society", "cafe", ["Café"]),
        ("protests without football", "protests -football", ["protests"]),
        ("nothing here", '"unclosed', []),
    ],
)
def test_query_terms_are_marked_like_the_index_finds_them(text: str, q: str, marked: list[str]) -> None:
    segments = highlighted(text, query_phrases(q))
    assert "".join(s.text for s in segments) == text
    assert [s.text for s in segments if s.mark == "term"] == marked


def test_marks_are_runs_of_text_never_markup() -> None:
    segments = highlighted("<script>alert(1)</script> Almaty", query_phrases("script Almaty"))
    assert segments[1] == Segment("script", "term") and segments[-1] == Segment("Almaty", "term")


@pytest.mark.parametrize(
    ("snippet", "title", "expected"),
    [
        ("Troops land in Almaty. The CSTO said…", "Troops land in Almaty", "The CSTO said…"),
        ("TROOPS  land in almaty — the CSTO", "Troops land in Almaty", "the CSTO"),
        ("The CSTO said troops land in Almaty", "Troops land in Almaty", "The CSTO said troops land in Almaty"),
        ("Text", None, "Text"),
    ],
)
def test_snippets_do_not_repeat_the_title(snippet: str, title: str | None, expected: str) -> None:
    assert without_title(snippet, title) == expected


def test_display_timezone_is_validated(make_settings: Callable[..., Settings]) -> None:
    assert make_settings(display_timezone="Asia/Almaty").display_timezone == "Asia/Almaty"
    with pytest.raises((ConfigError, ValueError), match="time zone"):
        make_settings(display_timezone="Mars/Olympus")


# --------------------------------------------------------------------- search page


def test_search_marks_terms_filters_by_feed_and_links_the_article_page(client: TestClient, archive: Archive) -> None:
    page = client.get("/", params={"q": "peacekeepers"}).text
    assert f'<a href="/articles/{archive.ids["story"]}">' in page
    assert '<mark class="term">Peacekeepers</mark>' in page
    assert '<option value="World Desk">World Desk</option>' in page

    by_feed = client.get("/", params={"feed": "World Desk"}).text
    assert "CSTO troops arrive in Almaty" in by_feed and "Filler" not in by_feed
    assert '<option value="World Desk" selected>' in by_feed
    unknown = client.get("/", params={"feed": "Nowhere"})
    assert unknown.status_code == 400 and "no feed named" in unknown.text

    hostile = client.get("/", params={"q": "Nazarbayev"}).text
    assert "<script>" not in hostile
    assert '&lt;/script&gt; <mark class="term">Nazarbayev</mark> &amp; Sons</a>' in hostile


# -------------------------------------------------------------------- article page


def test_article_page_marks_mentions_and_lists_copies(client: TestClient, archive: Archive) -> None:
    response = client.get(f"/articles/{archive.ids['story']}")
    assert response.status_code == 200
    page = response.text
    assert "<h1>CSTO troops arrive in Almaty</h1>" in page
    assert '<mark class="mention" title="CSTO">CSTO</mark>' in page
    assert '<mark class="mention" title="Almaty">Almaty</mark>' in page
    assert "Republished by 1 outlet" in page
    assert f'<a href="/articles/{archive.ids["copy_of_story"]}">Peacekeepers land (copy)</a>' in page
    assert "2022-01-06 10:00 UTC" in page and "Language" in page and "A. Writer" in page
    assert 'href="https://news.example.org/csto-almaty"' in page
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_a_duplicate_links_its_original_article_or_seed(client: TestClient, archive: Archive) -> None:
    copy = client.get(f"/articles/{archive.ids['copy_of_story']}").text
    assert f'<a class="original" href="/articles/{archive.ids["story"]}">CSTO troops arrive in Almaty</a>' in copy
    assert "91% alike" in copy
    of_seed = client.get(f"/articles/{archive.ids['copy_of_seed']}").text
    assert f'<a class="original" href="/seeds/{SEED_NAME}">Seed</a>' in of_seed
    seed = client.get(f"/seeds/{SEED_NAME}")
    assert seed.status_code == 200 and "seed text" in seed.text and "Republished by 1 outlet" in seed.text


def test_unknown_and_hostile_articles(client: TestClient, archive: Archive) -> None:
    for path in ("/articles/999999", "/articles/0", "/articles/abc", "/articles/99999999999999999999", "/seeds/nope"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text
    hostile = client.get(f"/articles/{archive.ids['hostile']}")
    check_page(hostile, [HOSTILE_TITLE, "javascript:alert(1)//hostile"])
    assert "<script>" not in hostile.text


def test_an_imported_article_has_its_page(client: TestClient, engine: sa.Engine) -> None:
    text = "Imported report\nA backfilled story about Almaty and the CSTO."
    with session(engine) as db:
        article = Article(url="file:///archive/report.txt", title="Imported report", text=text, source="import",
                          content_hash="i" * 64, fetched_at=NOW)  # fmt: skip
        db.add(article)
        db.flush()
        start = text.index("Almaty")
        db.add(Mention(article_id=article.id, entity="Almaty", text="Almaty", start=start, end=start + 6, snippet="…"))
        db.commit()
        article_id = article.id
    listed = client.get("/", params={"q": "backfilled"}).text
    assert f'<a href="/articles/{article_id}">' in listed
    page = client.get(f"/articles/{article_id}").text
    assert "imported (import)" in page and 'href="file:' not in page
    assert '<mark class="mention" title="Almaty">Almaty</mark>' in page


# ------------------------------------------------------------------- sources page


def test_sources_page_shows_each_feeds_health(client: TestClient) -> None:
    page = client.get("/sources").text
    assert "Broken Wire" in page and "World Desk" in page
    assert '<span class="kind">timeout</span> ×3: no answer within 20s' in page
    assert "2022-01-10 11:00 UTC" in page and "never" in page


# ----------------------------------------------------------------- mentions over time


def _days(response: object) -> dict[str, dict[str, int]]:
    body = response.json()  # type: ignore[attr-defined]
    return {s["entity"]: {c["date"]: c["count"] for c in s["counts"]} for s in body["series"]}


def test_mentions_per_day_zero_filled_without_duplicates(client: TestClient, engine: sa.Engine) -> None:
    response = client.get("/api/stats/mentions", params={"since": "2022-01-05", "until": "2022-01-09"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["interval"] == "day" and body["since"] == "2022-01-05" and body["until"] == "2022-01-09"
    days = _days(response)
    assert set(days) == {"CSTO", "Nazarbayev", "Almaty"}  # the configured entities
    assert days["CSTO"] == {"2022-01-05": 0, "2022-01-06": 1, "2022-01-07": 0, "2022-01-08": 0, "2022-01-09": 0}
    assert days["Nazarbayev"]["2022-01-07"] == 1 and sum(days["Almaty"].values()) == 1

    # A second mention of the same entity in the same article counts once; an article
    # with no publication time counts on the day it was stored.
    with session(engine) as db:
        article = Article(url="https://news.example.org/late", title="Late", text="CSTO and CSTO",
                          content_hash="l" * 64, fetched_at=datetime(2022, 1, 9, 23, 59, tzinfo=UTC))  # fmt: skip
        db.add(article)
        db.flush()
        db.add_all([Mention(article_id=article.id, entity="CSTO", text="CSTO", start=s, end=s + 4, snippet="…")
                    for s in (0, 9)])  # fmt: skip
        db.commit()
    again = client.get("/api/stats/mentions", params={"entity": "csto", "since": "2022-01-09", "until": "2022-01-10"})
    assert _days(again) == {"CSTO": {"2022-01-09": 1, "2022-01-10": 0}}


def test_mentions_defaults_and_bounds(client: TestClient) -> None:
    default = client.get("/api/stats/mentions", params={"entity": "Nobody"}).json()
    assert default["until"] == "2022-01-10" and default["since"] == "2021-12-12"
    assert default["series"][0]["total"] == 0 and len(default["series"][0]["counts"]) == 30
    for params in (
        {"since": "2010-01-01"},
        {"since": "2022-01-09", "until": "2022-01-01"},
        {"interval": "hour"},
        {"since": "yesterday-ish"},
    ):
        response = client.get("/api/stats/mentions", params=params)
        assert response.status_code == 400, params
        assert "\n" not in response.json()["detail"]


def test_mentions_page_draws_an_accessible_chart_per_entity(client: TestClient) -> None:
    response = client.get("/mentions", params={"since": "2022-01-01", "until": "2022-01-10"})
    assert response.status_code == 200
    page = response.text
    charts = re.findall(r'<svg class="chart"[^>]*role="img"', page)
    assert len(charts) == 3
    assert '<title id="chart-1-title">Articles mentioning CSTO per day</title>' in page
    assert "axis: days (UTC)" in page
    assert "<title>2022-01-06: 1 article</title>" in page and "<title>2022-01-05: 0 articles</title>" in page
    assert html.escape("/?entity=CSTO&since=2022-01-06&until=2022-01-06") in page
    assert ">Jan 1<" in page and ">Jan 10<" in page
    assert client.get("/mentions", params={"since": "1990-01-01"}).status_code == 400
    check_page(response, ["CSTO"])


@pytest.fixture
def almaty_client(make_settings: Callable[..., Settings], database_url: str, engine: sa.Engine) -> Iterator[TestClient]:
    settings = make_settings(database_url=database_url, display_timezone="Asia/Almaty", api_token=TOKEN)
    with TestClient(create_app(settings, engine, clock=lambda: NOW)) as test_client:
        yield test_client


def test_times_in_the_display_zone_and_every_page_behind_the_token(almaty_client: TestClient, archive: Archive) -> None:
    pages = ["/", f"/articles/{archive.ids['story']}", f"/seeds/{SEED_NAME}", "/sources", "/mentions"]
    for path in pages:
        locked = almaty_client.get(path)
        assert locked.status_code == 401 and 'action="/login"' in locked.text, path
    assert almaty_client.get("/api/stats/mentions").status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert almaty_client.get("/api/stats/mentions", headers=auth).status_code == 200
    story = almaty_client.get(f"/articles/{archive.ids['story']}", headers=auth).text
    assert "2022-01-06 16:00 UTC+06" in story and "10:00 UTC" not in story
