"""Near-duplicate detection: normalisation, pairwise comparison, the database index."""

from __future__ import annotations

import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from monitor.config import DedupSettings
from monitor.db import session
from monitor.errors import ConfigError
from monitor.models import Article, Fingerprint, Seed
from monitor.pipeline import dedup
from monitor.pipeline.dedup import DedupIndex, Known, compare, fingerprints
from monitor.seeds import load_seeds
from monitor.text import content_hash, normalize, tokens
from tests.support.paths import SEEDS_DIR

SETTINGS = DedupSettings()
SEED_FILES = sorted(SEEDS_DIR.glob("*.txt"))


def seed_text(index: int) -> str:
    return SEED_FILES[index].read_text(encoding="utf-8").strip()


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.splitlines() if p.strip()]


def halves(text: str) -> tuple[str, str]:
    paras = paragraphs(text)
    middle = len(paras) // 2
    return "\n\n".join(paras[:middle]), "\n\n".join(paras[middle:])


def synthetic(words: int, seed: int) -> str:
    """Text of ``words`` random made-up words (no shared phrases with anything else)."""
    rng = random.Random(seed)
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    return " ".join("".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(words))


OWN_ARTICLE = """Residents of Almaty queued for bread on Monday as the city slowly came back
to life after a week of curfew, closed banks and an internet shutdown that cut families
off from each other. Market traders said prices had risen and that supplies from the
countryside were arriving late because of checkpoints on the main roads into the city.
Teachers were told that schools would reopen after the holidays as planned, although
several buildings near the central square were still being repaired. City officials
promised compensation to shop owners whose premises had been looted, and said that the
metro would resume service once engineers had inspected every station on the line."""


# ---------------------------------------------------------------------- text


def test_normalize_ignores_form_case_and_punctuation() -> None:
    assert normalize("Ｋａｚａｋｈｓｔａｎ’s  “ﬁne”\nPROTESTS!") == "kazakhstan s fine protests"
    assert tokens("Alma-Ata, Алматы; snake_case 2022") == ["alma", "ata", "алматы", "snake", "case", "2022"]
    assert content_hash("A  copy, the SAME.") == content_hash("a copy the same")
    assert content_hash("a copy") != content_hash("a different copy")
    assert len(content_hash("")) == 64


# ------------------------------------------------------------------ compare()


def test_identical_texts_are_duplicates_with_full_coverage() -> None:
    similarity = compare(seed_text(1), seed_text(1), SETTINGS)
    assert similarity == dedup.Similarity(1.0, 1.0, 1.0, 1.0, True)


@pytest.mark.parametrize("half", [0, 1])
def test_a_half_is_an_excerpt(half: int) -> None:
    similarity = compare(halves(seed_text(2))[half], seed_text(2), SETTINGS)
    assert similarity.is_duplicate
    assert similarity.new_coverage > 0.95
    assert 0.35 < similarity.known_coverage < 0.65
    assert similarity.known_span == pytest.approx(similarity.known_coverage, abs=0.02)


def test_copy_inside_other_boilerplate_is_a_duplicate() -> None:
    framed = f"{synthetic(150, 1)}\n\n{seed_text(3)}\n\n{synthetic(150, 2)}"
    similarity = compare(framed, seed_text(3), SETTINGS)
    assert similarity.is_duplicate
    assert similarity.known_coverage > 0.97
    assert 0.6 < similarity.new_coverage < 0.75


def test_a_quoted_paragraph_is_not_a_duplicate() -> None:
    quoted = max(paragraphs(seed_text(2)), key=len)
    article = f"{OWN_ARTICLE}\n\nAs one report put it:\n\n{quoted}\n\n{synthetic(80, 3)}"
    similarity = compare(article, seed_text(2), SETTINGS)
    assert not similarity.is_duplicate
    assert similarity.known_coverage < 0.15
    assert similarity.score < 0.5


def test_an_excerpt_must_span_enough_of_the_known_text() -> None:
    # The new text is all from the known one, but only one paragraph of it.
    paragraph = max(paragraphs(seed_text(1)), key=len)
    similarity = compare(paragraph, seed_text(1), SETTINGS)
    assert similarity.new_coverage > 0.95
    assert similarity.known_span < SETTINGS.excerpt_span
    assert not similarity.is_duplicate


def test_a_short_text_quoted_whole_in_a_long_article_is_not_its_copy() -> None:
    brief = paragraphs(seed_text(1))[0]
    article = f"{OWN_ARTICLE}\n\n{brief}\n\n{synthetic(300, 4)}"
    similarity = compare(article, brief, SETTINGS)
    assert similarity.known_coverage == 1.0
    assert similarity.new_coverage < SETTINGS.copy_new_coverage
    assert not similarity.is_duplicate


def test_synonyms_every_few_words_still_align() -> None:
    words = seed_text(4).split()
    reworded = " ".join("altered" if i % 6 == 3 else w for i, w in enumerate(words))
    similarity = compare(reworded, seed_text(4), SETTINGS)
    assert similarity.is_duplicate
    assert similarity.known_coverage > 0.8


def test_shared_function_words_are_not_evidence() -> None:
    # Word salad of common words shares many three-word runs with any English text,
    # but runs made only of common words do not count.
    common = "of the and in to a that is was for on it with as by at from one the said"
    salad = " ".join(random.Random(5).choices(common.split(), k=400))
    similarity = compare(salad, seed_text(1), SETTINGS)
    assert similarity.known_coverage < 0.02 and similarity.new_coverage < 0.02


@pytest.mark.parametrize("text", ["", "Kazakhstan", "Two words"])
def test_texts_too_short_to_compare(text: str) -> None:
    assert compare(text, text, SETTINGS).is_duplicate is False


def test_the_last_part_of_a_very_long_text_is_found() -> None:
    long_text = synthetic(3 * dedup.MAX_ALIGN_SHINGLES, 6)
    words = long_text.split()
    tail = " ".join(words[-len(words) // 3 :])
    similarity = compare(tail, long_text, SETTINGS)
    assert similarity.is_duplicate
    assert similarity.new_coverage > 0.95
    assert similarity.known_span == pytest.approx(1 / 3, abs=0.02)


def test_fingerprints_are_a_sample_shared_by_copies() -> None:
    first, _second = halves(seed_text(1))
    whole = set(fingerprints(seed_text(1)))
    part = set(fingerprints(first))
    assert 0 < len(whole) < len(tokens(seed_text(1))) / 4
    assert part <= whole
    assert all(-(2**63) <= h < 2**63 for h in whole)


# --------------------------------------------------------------------- index


@pytest.fixture
def db(engine: sa.Engine) -> Iterator[Session]:
    with session(engine) as s:
        yield s


@pytest.fixture
def index() -> DedupIndex:
    return DedupIndex(SETTINGS)


def store_article(db: Session, text: str, *, duplicate: bool = False) -> Article:
    article = Article(
        url=f"https://example.org/{content_hash(text)[:16]}",
        text=text,
        content_hash=content_hash(text),
        source="import",
        is_duplicate=duplicate,
    )
    db.add(article)
    db.flush()
    return article


def fingerprint_count(db: Session, **owner: int) -> int:
    query = sa.select(sa.func.count()).select_from(Fingerprint)
    for column, value in owner.items():
        query = query.where(getattr(Fingerprint, column) == value)
    return db.execute(query).scalar_one()


def test_load_seeds_is_idempotent(db: Session, index: DedupIndex) -> None:
    assert load_seeds(db, SEEDS_DIR, index) == len(SEED_FILES)
    rows = fingerprint_count(db)
    assert load_seeds(db, SEEDS_DIR, index) == 0
    assert fingerprint_count(db) == rows > 0
    seeds = db.execute(sa.select(Seed).order_by(Seed.name)).scalars().all()
    assert [s.name for s in seeds] == [p.name for p in SEED_FILES]
    assert seeds[2].title == "Kazakh President says order is restored after suppressing protests"
    assert seeds[2].content_hash == content_hash(seed_text(2))


def test_a_changed_seed_file_is_reindexed(db: Session, index: DedupIndex, tmp_path: Path) -> None:
    for path in SEED_FILES[:2]:
        shutil.copy(path, tmp_path / path.name)
    assert load_seeds(db, tmp_path, index) == 2
    changed = tmp_path / SEED_FILES[1].name
    changed.write_text(OWN_ARTICLE + "\n\n" + synthetic(200, 7), encoding="utf-8")
    assert load_seeds(db, tmp_path, index) == 0
    seed = db.execute(sa.select(Seed).where(Seed.name == changed.name)).scalar_one()
    assert seed.text.startswith("Residents of Almaty")
    assert fingerprint_count(db, seed_id=seed.id) == len(fingerprints(seed.text))
    assert not index.check(db, seed_text(1)).is_duplicate


def test_missing_seeds_dir_is_a_config_error(db: Session, index: DedupIndex, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="seeds_dir"):
        load_seeds(db, tmp_path / "nowhere", index)


@pytest.mark.parametrize("number", range(len(SEED_FILES)))
def test_every_seed_is_a_duplicate_of_itself(db: Session, index: DedupIndex, number: int) -> None:
    load_seeds(db, SEEDS_DIR, index)
    name = SEED_FILES[number].name
    exact = index.check(db, seed_text(number))
    assert exact.duplicate_of is not None and exact.duplicate_of.name == name
    assert exact.similarity == 1.0
    # Without its first paragraph and with a line added, it is found by the index.
    paras = paragraphs(seed_text(number))
    edited = "\n".join(paras[1:]) + "\nShare this story with your friends."
    verdict = index.check(db, edited)
    assert verdict.duplicate_of == Known("seed", exact.duplicate_of.id, name)
    assert verdict.candidates >= 1
    assert verdict.known_coverage > 0.9 and verdict.new_coverage > 0.9


def test_new_texts_are_new(db: Session, index: DedupIndex) -> None:
    load_seeds(db, SEEDS_DIR, index)
    for text in (OWN_ARTICLE, synthetic(400, 8), "", "Almaty"):
        verdict = index.check(db, text)
        assert not verdict.is_duplicate
        assert verdict.duplicate_of is None
    assert index.check(db, "").similarity == 0.0


def test_a_copy_of_an_article_points_to_it_with_an_explanation(db: Session, index: DedupIndex) -> None:
    article = store_article(db, OWN_ARTICLE + "\n" + synthetic(200, 9))
    assert index.add(db, article.text, article_id=article.id) == fingerprint_count(db) > 0
    copy = "World | Politics | Sport\n" + article.text.replace("Monday", "Tuesday")
    verdict = index.check(db, copy)
    assert verdict.duplicate_of == Known("article", article.id, f"article:{article.id}")
    assert verdict.is_duplicate and verdict.similarity > 0.9
    assert verdict.known_coverage > 0.9 and verdict.new_coverage > 0.9
    assert verdict.candidates == 1
    explanation = verdict.explain()
    assert f"article:{article.id}" in explanation and "%" in explanation


def test_a_copy_of_a_copy_points_to_the_original(db: Session, index: DedupIndex) -> None:
    original = store_article(db, OWN_ARTICLE + "\n" + synthetic(300, 10))
    index.add(db, original.text, article_id=original.id)
    # The pipeline's convention: a duplicate is stored but not indexed.
    copy_text = "Breaking news\n" + original.text + "\nRelated: football results"
    assert index.check(db, copy_text).duplicate_of.id == original.id  # type: ignore[union-attr]
    store_article(db, copy_text, duplicate=True)
    assert fingerprint_count(db) == fingerprint_count(db, article_id=original.id)
    excerpt = " ".join(copy_text.split()[: len(copy_text.split()) // 2])
    assert index.check(db, excerpt).duplicate_of.id == original.id  # type: ignore[union-attr]
    # The exact-copy shortcut skips stored duplicates too.
    assert index.check(db, copy_text).duplicate_of.id == original.id  # type: ignore[union-attr]


def test_check_never_writes(db: Session, index: DedupIndex) -> None:
    load_seeds(db, SEEDS_DIR, index)
    before = fingerprint_count(db)
    index.check(db, seed_text(0))
    index.check(db, OWN_ARTICLE)
    assert fingerprint_count(db) == before
    assert not db.new and not db.dirty and not db.deleted


def test_verification_is_capped(db: Session) -> None:
    shared = synthetic(200, 11)
    for n in range(4):
        article = store_article(db, f"{shared}\n{synthetic(40, 20 + n)}")
        DedupIndex(SETTINGS).add(db, article.text, article_id=article.id)
    capped = DedupIndex(DedupSettings(max_candidates=2))
    verdict = capped.check(db, shared)
    assert verdict.candidates == 2 and verdict.is_duplicate


def test_a_stock_phrase_stops_being_indexed(db: Session) -> None:
    index = DedupIndex(DedupSettings(max_postings=3))
    phrase = synthetic(200, 12)
    ids = []
    for n in range(5):
        article = store_article(db, f"{phrase}\n{synthetic(100, 30 + n)}")
        index.add(db, article.text, article_id=article.id)
        ids.append(article.id)
    rows = db.execute(sa.select(Fingerprint.hash, Fingerprint.article_id)).all()
    for phrase_hash in fingerprints(phrase):
        assert sorted(a for h, a in rows if h == phrase_hash) == ids[:3]
    assert fingerprint_count(db, article_id=ids[4]) > 0  # its own shingles still count


def test_add_and_remove_need_exactly_one_owner(db: Session, index: DedupIndex) -> None:
    with pytest.raises(ValueError):
        index.add(db, OWN_ARTICLE)
    with pytest.raises(ValueError):
        index.add(db, OWN_ARTICLE, seed_id=1, article_id=1)
    with pytest.raises(ValueError):
        index.remove(db)
