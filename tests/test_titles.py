"""Titles without the site's name: the rule alone, from a page, and through a real poll."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.db import session
from monitor.models import Article
from monitor.pipeline.extract import extract_html
from monitor.pipeline.titles import without_site_name
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, Response

SITE = "Steppe Daily"
TITLE = "Troops land in Almaty"


@pytest.mark.parametrize(
    ("title", "names", "expected"),
    [
        (f"{TITLE} | {SITE}", [SITE], TITLE),
        (f"{TITLE} - {SITE}", [SITE], TITLE),
        (f"{TITLE} — {SITE}", [SITE], TITLE),
        (f"{TITLE} – {SITE}", [SITE], TITLE),
        (f"{TITLE} · {SITE}", [SITE], TITLE),
        (f"{TITLE} |  steppe   DAILY ", [SITE], TITLE),  # case and spaces
        (f"{TITLE} | {SITE}", [None, "Steppe Daily — World news"], TITLE),  # the head of a feed's title
        (f"{TITLE} | {SITE}", ["Steppe Daily: top stories"], TITLE),
        (f"Kazakhstan - Russia | {SITE}", [SITE], "Kazakhstan - Russia"),  # only the last part goes
        ("Kazakhstan - Russia", [SITE], "Kazakhstan - Russia"),  # not the site's name: kept
        (f"{TITLE} | {SITE}", [], f"{TITLE} | {SITE}"),  # no site name known: kept
        (f"{TITLE} | {SITE}", ["Other Site"], f"{TITLE} | {SITE}"),
        (f"{TITLE} | {SITE} Weekly", [SITE], f"{TITLE} | {SITE} Weekly"),  # another name
        (f"{TITLE}|{SITE}", [SITE], f"{TITLE}|{SITE}"),  # no spaced separator
        (f"{TITLE} {SITE}", [SITE], f"{TITLE} {SITE}"),
        (f"— | {SITE}", [SITE], f"— | {SITE}"),  # nothing would be left
        (SITE, [SITE], SITE),
        (f"{SITE} | {TITLE}", [SITE], f"{SITE} | {TITLE}"),  # a leading name is the title's business
        ("Алматы: войска прибыли — Степь", ["Степь"], "Алматы: войска прибыли"),
        (None, [SITE], None),
        ("", [SITE], ""),
    ],
)
def test_the_site_name_suffix_goes_only_when_it_is_the_sites(
    title: str | None, names: list[str | None], expected: str | None
) -> None:
    assert without_site_name(title, *names) == expected


def _page(title: str, site_name: str | None) -> str:
    page = article_page(title, story("Almaty", 10))
    meta = f'<meta property="og:site_name" content="{site_name}">' if site_name else ""
    return page.replace("<head>", f"<head>{meta}", 1)


def test_extraction_reads_the_sites_name_from_the_page() -> None:
    extracted = extract_html(_page(f"{TITLE} | {SITE}", SITE))
    assert extracted is not None
    assert extracted.site_name == SITE
    assert without_site_name(extracted.title, extracted.site_name) == TITLE
    plain = extract_html(_page(TITLE, None))
    assert plain is not None and plain.site_name is None


def test_a_polled_article_is_stored_without_the_suffix(
    fresh_database_url: Callable[[str], str],
    config_file: Callable[..., Path],
    run_cli: Callable[..., Any],
) -> None:
    url = fresh_database_url("sqlite")
    with HTTPServer() as server:
        items = [
            Item(f"{TITLE} | {SITE}", server.url("/og"), summary="Troops in Almaty."),
            Item("Markets close higher - Wire Desk", server.url("/feedname"), summary="Markets."),
            Item("Kazakhstan - Russia talks", server.url("/kept"), summary="Talks."),
        ]
        server.route("/feed", Response(rss20(items, title=SITE), headers={"Content-Type": FEED_TYPES["rss20"]}))
        pages = {
            "/og": _page(f"{TITLE} | {SITE}", SITE),
            "/feedname": _page("Markets close higher - Wire Desk", None),
            "/kept": _page("Kazakhstan - Russia talks", SITE),
        }
        for path, body in pages.items():
            server.route(path, Response(body, headers={"Content-Type": "text/html"}))
        config = {
            "database_url": url,
            "seeds_dir": str(SEEDS_DIR),
            "poll": {"allow_private_networks": True, "timeout": "5s", "extract_workers": 1},
            "feeds": [{"name": "Wire Desk", "url": server.url("/feed")}],
        }
        result = run_cli("--config", str(config_file(json.dumps(config))), "poll", "--json")
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(url)
    with session(engine) as db:
        titles = sorted(t for t in db.scalars(sa.select(Article.title)))  # type: ignore[arg-type]
    engine.dispose()
    assert titles == ["Kazakhstan - Russia talks", "Markets close higher", TITLE]
