"""The web page in a real browser: Debian's chromium driven by Playwright, no browser download.

The app runs on a real uvicorn server on 127.0.0.1 with test_api's archive (SQLite and
PostgreSQL). Screenshots of each step are kept under ``test-output/browser/`` (or
``$TEST_OUTPUT``), so a person can look at what the test saw. Skipped, saying why, when
no chromium is installed; CI installs it (.ci/run) and sets TEST_REQUIRE_BROWSER.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import tests.test_api as api_tests
from monitor.api import create_app
from monitor.config import Settings
from monitor.db import session
from monitor.models import Article, Mention
from tests.support.api import serving
from tests.support.paths import ROOT
from tests.test_api import NOW, TOKEN, Archive

playwright_api = pytest.importorskip("playwright.sync_api")

archive = api_tests.archive

CHROMIUM = next(
    (p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium") if p and Path(p).exists()),
    None,
)
if CHROMIUM is None and os.environ.get("TEST_REQUIRE_BROWSER"):
    raise RuntimeError("TEST_REQUIRE_BROWSER is set but no chromium is installed (apt-get install chromium)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed (apt-get install chromium)")

OUTPUT = Path(os.environ.get("TEST_OUTPUT", ROOT / "test-output")) / "browser"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def site(
    make_settings: Callable[..., Settings], database_url: str, engine: sa.Engine, archive: Archive, browser: object
) -> Iterator[tuple[str, object, Archive]]:
    """A served app with an API token, and a browser page of a phone-sized window."""
    with session(engine) as db:
        text = "Imported dispatch\nA backfilled report: the CSTO met in Almaty, and Almaty answered."
        imported = Article(url="file:///archive/dispatch.txt", title="Imported dispatch", text=text,
                           source="import", content_hash="i" * 64, fetched_at=NOW)  # fmt: skip
        db.add(imported)
        db.flush()
        db.add_all(
            Mention(article_id=imported.id, entity=entity, text=entity, start=s, end=s + len(entity), snippet="…")
            for entity, s in (("CSTO", text.index("CSTO")), ("Almaty", text.index("Almaty")))
        )
        db.commit()
        archive.ids["imported"] = imported.id
    settings = make_settings(database_url=database_url, api_token=TOKEN)
    with serving(create_app(settings, engine, clock=lambda: NOW)) as client:
        context = browser.new_context(viewport={"width": 414, "height": 860}, device_scale_factor=1)  # type: ignore[attr-defined]
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.dialogs = dialogs
        yield str(client.base_url), page, archive
        context.close()


def shot(page: object, name: str, database_url: str) -> None:
    engine = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}-{engine}.png"), full_page=True)  # type: ignore[attr-defined]


def sign_in(page: object, base: str) -> None:
    page.goto(base + "/")  # type: ignore[attr-defined]
    assert page.locator("h1").inner_text() == "Sign in"  # type: ignore[attr-defined]
    page.fill("input[name=token]", "wrong")  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "wrong token" in page.locator("[role=alert]").inner_text()  # type: ignore[attr-defined]
    page.fill("input[name=token]", TOKEN)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("form[role=search]")  # type: ignore[attr-defined]


def test_search_filter_highlight_and_follow_a_duplicate(site: tuple[str, object, Archive], database_url: str) -> None:
    base, page, archive = site
    p: object = page
    sign_in(p, base)
    p.fill("input[name=q]", "peacekeepers")  # type: ignore[attr-defined]
    p.check("input[name=include_duplicates]")  # type: ignore[attr-defined]
    p.select_option("select[name=feed]", "World Desk")  # type: ignore[attr-defined]
    p.click("form[role=search] button[type=submit]")  # type: ignore[attr-defined]
    p.wait_for_load_state()  # type: ignore[attr-defined]
    titles = p.locator(".result h2").all_inner_texts()  # type: ignore[attr-defined]
    assert titles == ["CSTO troops arrive in Almaty"]  # the copy has no feed: filtered out
    assert p.locator("mark.term").first.inner_text() == "Peacekeepers"  # type: ignore[attr-defined]
    shot(p, "search", database_url)

    p.goto(base + "/?q=peacekeepers&include_duplicates=1")  # type: ignore[attr-defined]
    p.click(f"a[href='/articles/{archive.ids['copy_of_story']}']")  # type: ignore[attr-defined]
    p.wait_for_selector("p.dupnote")  # type: ignore[attr-defined]
    p.click("a.original")  # type: ignore[attr-defined]
    p.wait_for_url(f"**/articles/{archive.ids['story']}")  # type: ignore[attr-defined]
    assert p.locator("h1").inner_text() == "CSTO troops arrive in Almaty"  # type: ignore[attr-defined]
    assert "Republished by 1 outlet" in p.locator(".copies h2").inner_text()  # type: ignore[attr-defined]
    marks = p.locator("mark.mention").all_inner_texts()  # type: ignore[attr-defined]
    assert marks == ["CSTO", "Almaty"]
    shot(p, "article", database_url)


def test_imported_article_chart_and_sources(site: tuple[str, object, Archive], database_url: str) -> None:
    base, page, archive = site
    p: object = page
    sign_in(p, base)
    p.goto(base + "/?q=backfilled")  # type: ignore[attr-defined]
    p.click("text=Imported dispatch")  # type: ignore[attr-defined]
    p.wait_for_url(f"**/articles/{archive.ids['imported']}")  # type: ignore[attr-defined]
    assert p.locator("mark.mention").all_inner_texts() == ["CSTO", "Almaty"]  # type: ignore[attr-defined]
    assert "backfilled report" in p.locator(".text").inner_text()  # type: ignore[attr-defined]
    shot(p, "imported", database_url)

    p.click("nav >> text=Mentions")  # type: ignore[attr-defined]
    p.fill("input[name=since]", "2022-01-01")  # type: ignore[attr-defined]
    p.click("form.search button[type=submit]")  # type: ignore[attr-defined]
    p.wait_for_selector("svg.chart")  # type: ignore[attr-defined]
    assert p.locator("svg.chart").count() == 3  # type: ignore[attr-defined]
    chart = p.get_by_role("img", name="Articles mentioning CSTO per day")  # type: ignore[attr-defined]
    box = chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 80
    bars = chart.locator("rect:not(.rule)")
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(bars.count())]
    assert len(heights) == 10 and sum(h > 0 for h in heights) == 2  # Jan 6 and the imported one on Jan 10
    shot(p, "mentions", database_url)

    p.click("nav >> text=Sources")  # type: ignore[attr-defined]
    assert "timeout" in p.locator(".feedcard.status-error").inner_text()  # type: ignore[attr-defined]
    shot(p, "sources", database_url)


def test_a_hostile_title_stays_inert(site: tuple[str, object, Archive], database_url: str) -> None:
    base, page, archive = site
    p: object = page
    sign_in(p, base)
    executed: list[str] = []
    p.on("console", lambda message: executed.append(message.text))  # type: ignore[attr-defined]
    for path in ("/?entity=Nazarbayev", f"/articles/{archive.ids['hostile']}", '/?q="><script>alert(2)</script>'):
        p.goto(base + path)  # type: ignore[attr-defined]
        p.wait_for_load_state()  # type: ignore[attr-defined]
        assert p.locator("script").count() == 0, path  # type: ignore[attr-defined]
        assert p.evaluate("typeof window.__hostile") == "undefined"  # type: ignore[attr-defined]
    p.goto(f"{base}/articles/{archive.ids['hostile']}")  # type: ignore[attr-defined]
    assert '<script>alert("x")</script>' in p.locator("h1").inner_text()  # type: ignore[attr-defined]
    shot(p, "hostile", database_url)
    assert p.dialogs == []  # type: ignore[attr-defined]
