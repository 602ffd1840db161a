"""Quality gate of the entity matcher: precision, recall and F1 over labelled snippets.

Each case in ``tests/eval/entities/cases.json`` lists the mentions a careful reader
would mark, as ``[entity, text as written]``. Scores count (entity, text) pairs per
case; the minimums pinned in ``gate.json`` must hold on every run.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor.config import DEFAULT_ENTITIES
from monitor.pipeline.match import EntityMatcher

EVAL_DIR = Path(__file__).parent / "eval" / "entities"
CASES = json.loads((EVAL_DIR / "cases.json").read_text(encoding="utf-8"))["cases"]
GATE = json.loads((EVAL_DIR / "gate.json").read_text(encoding="utf-8"))


@dataclass
class Score:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@pytest.fixture(scope="module")
def matcher() -> EntityMatcher:
    return EntityMatcher(DEFAULT_ENTITIES)


def _score(matcher: EntityMatcher) -> tuple[Score, list[str]]:
    score, misses = Score(), []
    for case in CASES:
        found = Counter((m.entity, m.text) for m in matcher.find(case["text"]))
        expected = Counter(tuple(pair) for pair in case["expect"])
        hits = sum((found & expected).values())
        score.true_positives += hits
        score.false_positives += sum(found.values()) - hits
        score.false_negatives += sum(expected.values()) - hits
        if found != expected:
            misses.append(f"{case['id']}: found {sorted(found)} expected {sorted(expected)}")
    return score, misses


def test_cases_are_well_formed() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) >= GATE["min_cases"]
    assert len(set(ids)) == len(ids), "case ids must be unique"
    names = {e.name for e in DEFAULT_ENTITIES}
    for case in CASES:
        for entity, text in case["expect"]:
            assert entity in names, case["id"]
            assert text in case["text"], case["id"]
    # Both kinds are needed for precision and recall to mean anything.
    assert sum(1 for c in CASES if not c["expect"]) >= 40
    assert sum(len(c["expect"]) for c in CASES) >= 120


def test_scores_meet_the_gate(matcher: EntityMatcher) -> None:
    score, misses = _score(matcher)
    report = f"P={score.precision:.3f} R={score.recall:.3f} F1={score.f1:.3f}; misses:\n" + "\n".join(misses)
    assert score.precision >= GATE["precision"], report
    assert score.recall >= GATE["recall"], report
    assert score.f1 >= GATE["f1"], report


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_offsets_point_into_the_original(matcher: EntityMatcher, case: dict) -> None:
    text = case["text"]
    matches = matcher.find(text)
    for match in matches:
        assert text[match.start : match.end] == match.text
    spans = [(m.start, m.end) for m in matches]
    assert spans == sorted(spans)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
