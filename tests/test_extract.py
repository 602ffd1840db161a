"""Extraction: text and metadata of news pages, titles of plain-text files, a quality gate.

The pages in ``tests/fixtures/pages/`` are small news pages written for these tests, with
their expectations in ``gold.json``: the story's text found, the site's boilerplate kept
out, title, author, date and language right. They always run. The quality gate runs
``extract_html`` as the poller does (with metadata) over the real pages of the corpus
and scores it against their gold annotations; the minimums pinned in
``tests/eval/extraction/gate.json`` must hold on every run. It needs the corpus.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import InputError
from monitor.pipeline.extract import extract_html, read_file, read_text
from tests.support.corpus import PAGES, needs_corpus
from tests.support.paths import FIXTURES

FIXTURE_PAGES = FIXTURES / "pages"
FIXTURE_GOLD: dict[str, dict[str, Any]] = json.loads((FIXTURE_PAGES / "gold.json").read_text("utf-8"))
GATE = json.loads((Path(__file__).parent / "eval" / "extraction" / "gate.json").read_text("utf-8"))


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


def extraction_scores(pages: Path, gold: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Run ``extract_html`` with metadata over ``gold``'s pages and score it against ``gold``."""
    found = wanted = kept_out = unwanted = titled = titles = empty = 0
    for name, expect in sorted(gold.items()):
        extracted = extract_html((pages / name).read_bytes(), url=expect.get("url"), metadata=True)
        text = _norm(extracted.text) if extracted else ""
        empty += not text
        wanted += len(expect["with"])
        found += sum(_norm(snippet) in text for snippet in expect["with"])
        unwanted += len(expect["without"])
        kept_out += sum(_norm(snippet) not in text for snippet in expect["without"])
        if expect.get("title"):
            titles += 1
            titled += bool(extracted and extracted.title and _norm(expect["title"]) in _norm(extracted.title))
    return {
        "pages": len(gold),
        "main_text_recall": round(found / wanted, 3),
        "boilerplate_rejection": round(kept_out / unwanted, 3),
        "title_accuracy": round(titled / titles, 3),
        "pages_without_text": empty,
    }


# --------------------------------------------------------------------------- own pages


def test_own_pages_score_perfectly() -> None:
    assert extraction_scores(FIXTURE_PAGES, FIXTURE_GOLD) == {
        "pages": 2,
        "main_text_recall": 1.0,
        "boilerplate_rejection": 1.0,
        "title_accuracy": 1.0,
        "pages_without_text": 0,
    }


@pytest.mark.parametrize("name", sorted(FIXTURE_GOLD))
def test_story_text_is_kept_and_boilerplate_rejected(name: str) -> None:
    expect = FIXTURE_GOLD[name]
    extracted = extract_html((FIXTURE_PAGES / name).read_bytes(), url=expect["url"], metadata=True)
    assert extracted is not None
    for snippet in expect["with"]:
        assert snippet in extracted.text
    for snippet in expect["without"]:
        assert snippet not in extracted.text
    # Paragraphs stay apart; the headline leads the text.
    assert extracted.text.startswith(expect["title"] + "\n")
    assert extracted.text.count("\n") >= len(expect["with"])


@pytest.mark.parametrize("name", sorted(FIXTURE_GOLD))
def test_metadata_of_a_news_page(name: str) -> None:
    """With metadata (as the poller runs it): the title without the site's name, the
    author, the publication date (a day, in UTC) and the language."""
    expect = FIXTURE_GOLD[name]
    extracted = extract_html((FIXTURE_PAGES / name).read_bytes(), url=expect["url"], metadata=True)
    assert extracted is not None
    assert (extracted.title, extracted.author, extracted.language) == (
        expect["title"],
        expect["author"],
        expect["language"],
    )
    assert extracted.published_at == datetime.fromisoformat(expect["date"]).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("article-en.html", "Almaty airport reopens after a week of closure"),  # og:title first
        ("article-ru-windows-1251.html", "Войска ОДКБ начали покидать Казахстан — Степной вестник"),  # <title>
    ],
)
def test_head_metadata_without_the_metadata_pass(name: str, title: str) -> None:
    """Without metadata (``analyze``): title, author and language straight from the head,
    no date; the text is the same."""
    raw = (FIXTURE_PAGES / name).read_bytes()
    expect = FIXTURE_GOLD[name]
    quick = extract_html(raw)
    full = extract_html(raw, url=expect["url"], metadata=True)
    assert quick is not None and full is not None
    assert (quick.title, quick.author, quick.language, quick.published_at) == (
        title,
        expect["author"],
        expect["language"],
        None,
    )
    assert quick.text == full.text


@pytest.mark.parametrize("as_bytes", [False, True])
@pytest.mark.parametrize("control", ["&#1;", "&#x1b;", "\x01", "\x0b"])
def test_a_control_character_in_a_page_loses_neither_the_page_nor_its_words(control: str, as_bytes: bool) -> None:
    """trafilatura gives up on a page whose tree holds a control character (lxml refuses to
    set it as an element's text); it is dropped before the page is parsed."""
    paragraph = "Flights resume from Almaty after a week of closure, the airport said. " * 6
    page = (
        f"<html><head><title>Airport{control}reopens</title></head><body><article>"
        f"<h1>Airport reopens</h1><p>One{control}two. {paragraph}</p></article></body></html>"
    )
    extracted = extract_html(page.encode() if as_bytes else page, metadata=True)
    assert extracted is not None
    assert "Onetwo. Flights" in extracted.text or "One two. Flights" in extracted.text, extracted.text
    assert extracted.title in ("Airport reopens", "Airportreopens")


def test_read_file_takes_a_page_as_extract_html_does() -> None:
    path = FIXTURE_PAGES / "article-ru-windows-1251.html"
    assert read_file(path) == extract_html(path.read_bytes())


def test_read_file_skips_a_dateline_above_the_title() -> None:
    extracted = read_file(FIXTURE_PAGES / "dateline-first.txt")
    assert extracted.title == "CSTO troops begin to leave Kazakhstan"
    assert extracted.text.startswith("Thursday, 13 January 2022 – 10:15\n\nCSTO troops begin")
    assert extracted.text.endswith("about ten days.")


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Almaty airport reopens\n\nThe airport...", "Almaty airport reopens"),
        ("\n\n  Troops leave  \nBody", "Troops leave"),
        ("Monday, June 24, 2024\n\nKazakhstan protests\n\nBody", "Kazakhstan protests"),
        ("06.01.2022 10:15\nCurfew in Almaty\nBody", "Curfew in Almaty"),
        ("Jan 6th, 2022 – 10:15 UTC\nCSTO troops land\nBody", "CSTO troops land"),
        # Words that merely begin like a date are titles.
        ("Monumental protests\nBody", "Monumental protests"),
        ("May Day rally in Almaty\nBody", "May Day rally in Almaty"),
        # Nothing but dates: the first line all the same.
        ("2022\n2023", "2022"),
    ],
)
def test_plain_text_title_is_the_first_line_that_is_not_a_bare_date(text: str, title: str) -> None:
    assert read_text(text).title == title


def test_read_file_refuses_other_kinds_and_pages_without_text(tmp_path: Path) -> None:
    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    with pytest.raises(InputError, match=r"only \.txt and \.html"):
        read_file(pdf)
    empty = tmp_path / "empty.html"
    empty.write_text("<html><head><title>x</title></head><body></body></html>", encoding="utf-8")
    with pytest.raises(InputError, match="no article text"):
        read_file(empty)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("Almaty – café".encode("latin-1", errors="replace"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_file(latin1)


# --------------------------------------------------------------------------- real pages


@pytest.mark.slow
@needs_corpus("pages", "gold.json")
def test_extraction_quality_on_real_news_pages() -> None:
    gold = json.loads((PAGES / "gold.json").read_text(encoding="utf-8"))
    scores = extraction_scores(PAGES, gold)
    print(f"extraction on {PAGES}: {scores}")
    assert scores["pages"] >= GATE["min_pages"]
    assert scores["main_text_recall"] >= GATE["main_text_recall"], scores
    assert scores["boilerplate_rejection"] >= GATE["boilerplate_rejection"], scores
    assert scores["title_accuracy"] >= GATE["title_accuracy"], scores
    assert scores["pages_without_text"] <= GATE["max_pages_without_text"], scores
