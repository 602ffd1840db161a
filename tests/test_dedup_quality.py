"""Quality gate of the dedup: the labelled set of tests/eval/dedup through the real index.

Every seed has a republished variant of every kind (``make_variants.py``), and the set
holds articles written about the same events, several of them quoting a seed
paragraph, plus unrelated texts. The minimums pinned in ``gate.json`` must hold on
every run, on SQLite and on PostgreSQL. ``pytest -s`` prints the per-kind table.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.config import DedupSettings
from monitor.db import session
from monitor.models import Article
from monitor.pipeline.dedup import DedupIndex, Verdict
from monitor.pipeline.extract import extract_html, read_text
from monitor.seeds import load_seeds
from monitor.text import content_hash
from tests.support.paths import SEEDS_DIR

EVAL_DIR = Path(__file__).parent / "eval" / "dedup"
CASES = json.loads((EVAL_DIR / "manifest.json").read_text(encoding="utf-8"))["cases"]
GATE = json.loads((EVAL_DIR / "gate.json").read_text(encoding="utf-8"))
SEED_NAMES = sorted(p.name for p in SEEDS_DIR.glob("*.txt"))


def case_text(case: dict) -> str:
    path = EVAL_DIR / case["file"]
    if path.suffix == ".html":
        extracted = extract_html(path.read_bytes())
        assert extracted is not None, case["file"]
        return extracted.text
    return read_text(path.read_text(encoding="utf-8")).text


@dataclass
class Outcome:
    case: dict
    verdict: Verdict

    @property
    def found(self) -> str | None:
        return self.verdict.duplicate_of.name if self.verdict.duplicate_of else None

    @property
    def correct(self) -> bool:
        return self.found == self.case["expected"]


def test_cases_are_well_formed() -> None:
    files = {c["file"] for c in CASES}
    assert len(files) == len(CASES), "each file is one case"
    folders = (EVAL_DIR / "variants", EVAL_DIR / "new")
    on_disk = {f"{folder.name}/{p.name}" for folder in folders for p in folder.iterdir()}
    assert files == on_disk, "the manifest lists every file of variants/ and new/"
    pairs = {(c["expected"], c["kind"]) for c in CASES if c["expected"]}
    assert pairs == {(s, k) for s in SEED_NAMES for k in GATE["duplicate_kinds"]}
    new = [c for c in CASES if c["expected"] is None]
    assert sum(c["kind"] != "unrelated" for c in new) >= GATE["min_new_articles"]
    seeds = [(SEEDS_DIR / s).read_text(encoding="utf-8") for s in SEED_NAMES]
    seed_paragraphs = {p.strip() for text in seeds for p in text.splitlines() if len(p.split()) >= 20}
    quoting = [c for c in new if c["kind"] == "same_event_quoting"]
    assert len(quoting) >= GATE["min_quoting_articles"]
    for case in quoting:  # each really quotes a seed paragraph word for word
        text = (EVAL_DIR / case["file"]).read_text(encoding="utf-8")
        assert any(p in text for p in seed_paragraphs), case["file"]


def run_eval_set(engine: sa.Engine) -> list[Outcome]:
    """New texts first, archived as the pipeline would; then the duplicates."""
    index = DedupIndex(DedupSettings())
    outcomes = []
    with session(engine) as db:
        load_seeds(db, SEEDS_DIR, index)
        for case in sorted(CASES, key=lambda c: c["expected"] is not None):
            text = case_text(case)
            verdict = index.check(db, text)
            outcomes.append(Outcome(case, verdict))
            if not verdict.is_duplicate:
                article = Article(
                    url=f"eval:{case['file']}",
                    text=text,
                    content_hash=content_hash(text),
                    source="import",
                )
                db.add(article)
                db.flush()
                index.add(db, text, article_id=article.id)
        db.commit()
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    by_kind: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_kind[outcome.case["kind"]].append(outcome)
    lines = [f"{'kind':<22} {'cases':>5} {'right':>5} {'score min':>9} {'score max':>9}"]
    for kind, group in by_kind.items():
        scores = [o.verdict.similarity for o in group]
        right = sum(o.correct for o in group)
        lines.append(f"{kind:<22} {len(group):>5} {right:>5} {min(scores):>9.2f} {max(scores):>9.2f}")
    for o in outcomes:
        if not o.correct:
            expected = o.case["expected"]
            lines.append(f"WRONG {o.case['file']}: expected {expected}, {o.verdict.explain()}")
    return "\n".join(lines)


def test_scores_meet_the_gate(engine: sa.Engine) -> None:
    outcomes = run_eval_set(engine)
    duplicates = [o for o in outcomes if o.case["expected"] is not None]
    recall = sum(o.correct for o in duplicates) / len(duplicates)
    false_duplicates = sum(1 for o in outcomes if o.case["expected"] is None and o.found)
    table = report(outcomes)
    print(f"\ndedup eval on {engine.dialect.name}: recall {recall:.3f}, false duplicates {false_duplicates}\n{table}")
    assert false_duplicates <= GATE["max_false_duplicates"], table
    assert recall >= GATE["recall"], table
    # Each verdict is explained: the duplicates say how much of what they share.
    for o in duplicates:
        if o.correct:
            assert o.verdict.similarity > 0 and o.verdict.new_coverage > 0, o.case["file"]


@pytest.mark.parametrize("kind", GATE["duplicate_kinds"])
def test_variants_are_duplicates_by_compare_alone(kind: str) -> None:
    """The same cases through the pure comparison, without database or candidates."""
    from monitor.pipeline.dedup import compare

    settings = DedupSettings()
    for case in (c for c in CASES if c["kind"] == kind):
        known = read_text((SEEDS_DIR / case["expected"]).read_text(encoding="utf-8")).text
        similarity = compare(case_text(case), known, settings)
        assert similarity.is_duplicate, (case["file"], similarity)
