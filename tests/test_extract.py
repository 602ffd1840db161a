"""Extraction: titles of plain-text files, and a quality gate on real news pages.

The gate runs ``extract_html`` as the poller does (with metadata) over the real pages of
the real-world corpus and scores it against their gold annotations: the share of main-text
snippets found, the share of boilerplate snippets kept out, and the share of titles
right. The minimums pinned in ``tests/eval/extraction/gate.json`` must hold on every run.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest

from monitor.errors import InputError
from monitor.pipeline.extract import extract_html, read_file, read_text
from tests.support.corpus import PAGES, needs_corpus

GATE = json.loads((Path(__file__).parent / "eval" / "extraction" / "gate.json").read_text("utf-8"))


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


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


@pytest.mark.slow
@needs_corpus("pages", "gold.json")
def test_extraction_quality_on_real_news_pages() -> None:
    gold = json.loads((PAGES / "gold.json").read_text(encoding="utf-8"))
    found = wanted = kept_out = unwanted = titled = titles = empty = 0
    for name, expect in sorted(gold.items()):
        extracted = extract_html((PAGES / name).read_bytes(), url=expect.get("url"), metadata=True)
        text = _norm(extracted.text) if extracted else ""
        empty += not text
        wanted += len(expect["with"])
        found += sum(_norm(snippet) in text for snippet in expect["with"])
        unwanted += len(expect["without"])
        kept_out += sum(_norm(snippet) not in text for snippet in expect["without"])
        if expect.get("title"):
            titles += 1
            titled += bool(extracted and extracted.title and _norm(expect["title"]) in _norm(extracted.title))
    scores = {
        "pages": len(gold),
        "main_text_recall": round(found / wanted, 3),
        "boilerplate_rejection": round(kept_out / unwanted, 3),
        "title_accuracy": round(titled / titles, 3),
        "pages_without_text": empty,
    }
    print(f"extraction on {PAGES}: {scores}")
    assert scores["pages"] >= GATE["min_pages"]
    assert scores["main_text_recall"] >= GATE["main_text_recall"], scores
    assert scores["boilerplate_rejection"] >= GATE["boilerplate_rejection"], scores
    assert scores["title_accuracy"] >= GATE["title_accuracy"], scores
    assert scores["pages_without_text"] <= GATE["max_pages_without_text"], scores
