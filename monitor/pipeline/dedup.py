"""Near-duplicate detection: is a new text a republished copy of a text we know?

A text is a duplicate when it is essentially a known text (a seed, or an archived
article that was itself new) republished: with other boilerplate or markup, light
edits, words swapped for synonyms, or as an excerpt (a substantial continuous part,
such as its first or last half). Articles about the same event that quote a paragraph
of each other are not duplicates.

How, in two steps:

1. **Candidates from an inverted index in the database.** A text becomes word 3-gram
   shingles (``monitor.text.tokens``: NFKC, case-folded words), each hashed to 64 bits
   (xxh3). The index keeps a *position-independent sample* of them — those whose hash
   is 0 modulo ``SAMPLE_MODULUS`` — as ``fingerprint`` rows owned by a seed or an
   article. The same shingle is sampled in every text that contains it, so a copy, an
   excerpt or a text with extra boilerplate around the original all share most of
   their sampled shingles with it; that containment is what MinHash-Jaccard (which
   compares whole sets) misses for excerpts and boilerplate-heavy copies. Shingles
   made only of very common short words ("one of the") are never sampled: they are
   shared by unrelated texts and would make the posting lists grow with the archive.
   A lookup is one indexed query ``WHERE hash IN (…) GROUP BY owner`` that counts the
   hits per known text, answered from the covering index ``(hash, seed_id,
   article_id)``. Its cost depends on the posting lists of the new text's shingles,
   not on the archive size, and those lists are bounded: a shingle already indexed
   for ``DedupSettings.max_postings`` texts is a stock phrase or boilerplate, and
   texts added later skip it (see ``tests/bench/bench_dedup.py``).

2. **Verification by alignment.** The best few candidates are loaded and aligned with
   the new text (``compare``): an LCS over the two shingle sequences (rapidfuzz, in
   C++) yields the blocks of the known text found *in order* in the new one. Aligning
   shingles rather than words keeps the noise floor low: a matched block is at least
   three words in a row, and a block made only of common-word shingles does not count,
   so the function words that any two English texts share do not add up. Two blocks
   separated by at most ``BRIDGE`` words in both texts are joined: that is the trace
   of a word swapped for a synonym, which breaks the three shingles around it.
   From the blocks:

   - ``known_coverage``: share of the known text's words found in the new text,
   - ``new_coverage``: share of the new text's words found in the known text,
   - ``known_span``: the longest stretch of the known text covered without a gap of
     more than ``SPAN_GAP`` words, as a share of the known text.

   The new text is a **republished copy** when ``known_coverage`` reaches the setting
   of that name (and the known text is a sizeable part of the new one,
   ``copy_new_coverage``, so a short brief quoted inside a long article is not its
   copy); it is an **excerpt** when ``new_coverage`` reaches its setting over a
   ``known_span`` of at least ``excerpt_span``. A paragraph quoted in another article
   gives low coverages both ways, and a short span.

A text whose normalised form equals a seed's or a new article's (``content_hash``) is
an exact copy and needs neither step. Only texts found new are indexed by their
callers, so a copy of a copy still points to the original. Every verdict names the
known text and the coverages it rests on.

The default thresholds sit in the gap measured on ``tests/eval/dedup``: republished
copies reach a known_coverage of 0.80 or more (with 20% of the words swapped for
synonyms), excerpts a new_coverage of 0.70 or more, while articles about the same
events, quoting a seed paragraph, stay at or below 0.15 and 0.40.

Costs are bounded: the query uses at most ``MAX_QUERY_HASHES`` fingerprints (the
smallest hashes, a consistent sample), at most ``DedupSettings.max_candidates`` texts
are verified, and alignment works on at most ``MAX_ALIGN_SHINGLES`` shingles per side
(a longer known text is aligned on the window that shares most shingles with the new
text).

Shingling, the fingerprint index and the verdict stay in one module, past the house's
usual size: the thresholds of the verdict only mean something for the way the index
samples and the alignment counts, and the three are tuned together on the gate above.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
import xxhash
from rapidfuzz.distance import Indel
from sqlmodel import Session, col

from monitor.config import DedupSettings
from monitor.models import Article, Fingerprint, Seed
from monitor.text import tokens, tokens_hash

# Words per shingle.
SHINGLE = 3
# A shingle is indexed when its hash is 0 modulo this (1 in 8). Changing it requires
# rebuilding the fingerprint table.
SAMPLE_MODULUS = 8
# Upper bound of fingerprints sent in one lookup.
MAX_QUERY_HASHES = 300
# Upper bound of shingles indexed per text (a very long text keeps its first ones).
MAX_INDEX_SHINGLES = 50_000
# Upper bound of shingles aligned per side (the alignment costs their product / 64).
MAX_ALIGN_SHINGLES = 4_000
# Largest gap (in words, on both sides) between two matched runs that still counts
# as aligned: what a word or two swapped for synonyms leaves.
BRIDGE = 4
# Largest gap (in words) inside a covered stretch of the known text.
SPAN_GAP = 40
# A candidate is verified only with at least this share of the lookup's fingerprints.
MIN_HIT_SHARE = 0.08
# Fingerprints per statement when indexing a (very long) text.
_BATCH = 1000

_SIGN64 = 1 << 63

# Very common words of a few European languages. With words of one or two letters,
# they make the "common" shingles that are neither indexed nor counted as evidence.
_COMMON_WORDS = frozenset([
    "a", "an", "the", "and", "or", "but", "nor", "so", "yet", "if", "then", "than", "that", "this", "these",
    "those", "there", "here", "of", "in", "on", "at", "to", "for", "from", "by", "with", "without", "about", "into",
    "onto", "over", "under", "after", "before", "between", "through", "during", "against", "among", "since",
    "until", "upon", "within", "along", "across", "is", "are", "was", "were", "be", "been", "being", "am", "has",
    "have", "had", "having", "do", "does", "did", "done", "will", "would", "shall", "should", "can", "could", "may",
    "might", "must", "not", "no", "yes", "also", "just", "only", "very", "more", "most", "much", "many", "some",
    "any", "all", "each", "every", "both", "either", "neither", "other", "another", "such", "same", "own", "which",
    "who", "whom", "whose", "what", "when", "where", "why", "how", "it", "its", "he", "him", "his", "she", "her",
    "hers", "they", "them", "their", "theirs", "we", "us", "our", "ours", "you", "your", "yours", "i", "me", "my",
    "mine", "one", "two", "three", "said", "says", "say", "told", "according", "while", "as", "because", "although",
    "though", "however", "still", "even", "out", "up", "down", "off", "again", "further", "once", "new", "last",
    "first", "next",
    "der", "die", "das", "und", "oder", "ein", "eine", "einer", "eines", "einem", "einen", "ist", "sind", "war",
    "waren", "wird", "werden", "nicht", "mit", "von", "zu", "den", "dem", "des", "auf", "für", "auch", "als", "bei",
    "nach", "aus", "sich", "wie",
    "le", "la", "les", "un", "une", "des", "du", "et", "ou", "est", "sont", "dans", "pour", "par", "sur", "avec",
    "pas", "qui", "que", "ce",
    "el", "los", "las", "uno", "una", "y", "o", "es", "son", "en", "por", "para", "con", "no", "que", "del", "al",
    "lo", "se",
    "il", "lo", "gli", "di", "da", "con", "per", "non", "che", "è", "sono",
    "и", "в", "во", "не", "на", "с", "со", "что", "как", "а", "но", "к", "ко", "по", "из", "за", "от", "до", "о",
    "об", "же", "бы", "это",
])  # fmt: skip


# ------------------------------------------------------------------------ results


@dataclass(frozen=True)
class Known:
    """A text the index knows: a seed or an archived article."""

    kind: Literal["seed", "article"]
    id: int
    name: str  # the seed's file name, or "article:<id>"


@dataclass(frozen=True)
class Similarity:
    """How much of two texts is the same text, in order (see the module docstring)."""

    known_coverage: float
    new_coverage: float
    known_span: float
    score: float
    is_duplicate: bool


@dataclass(frozen=True)
class Verdict:
    """The dedup decision for one text, with what it rests on."""

    duplicate_of: Known | None  # None: the text is new
    similarity: float  # score of the best candidate (0.0 when none)
    known_coverage: float
    new_coverage: float
    candidates: int  # how many known texts were verified

    @property
    def is_duplicate(self) -> bool:
        return self.duplicate_of is not None

    def explain(self) -> str:
        """One line for logs and the command line."""
        shares = (
            f"{self.known_coverage:.0%} of the known text found in order in this one, "
            f"{self.new_coverage:.0%} of this text found in it"
        )
        similarity = f"similarity {self.similarity:.2f}: {shares}"
        if self.duplicate_of is not None:
            return f"duplicate of {self.duplicate_of.name} ({similarity})"
        if self.candidates:
            return f"new (closest of {self.candidates} known texts verified: {similarity})"
        return "new (no known text shares enough of it)"


NEW = Verdict(None, similarity=0.0, known_coverage=0.0, new_coverage=0.0, candidates=0)


# ----------------------------------------------------------------------- shingles


@dataclass(frozen=True)
class Shingled:
    """A text as the dedup sees it: its words and its shingles in order."""

    words: int
    hashes: list[int]  # one unsigned 64-bit hash per shingle position
    common: list[bool]  # whether that shingle is made only of common words
    digest: str = ""  # content hash of the whole text (``monitor.text.content_hash``)

    @classmethod
    def of(cls, text: str) -> Shingled:
        return cls.of_tokens(tokens(text))

    @classmethod
    def of_tokens(cls, words: list[str]) -> Shingled:
        digest = tokens_hash(words)
        if len(words) < SHINGLE:
            return cls(words=len(words), hashes=[], common=[], digest=digest)
        is_common = [len(w) <= 2 or w in _COMMON_WORDS for w in words]
        grams = zip(words, words[1:], words[2:], strict=False)
        hashes = [xxhash.xxh3_64_intdigest(f"{a} {b} {c}".encode()) for a, b, c in grams]
        common = [a and b and c for a, b, c in zip(is_common, is_common[1:], is_common[2:], strict=False)]
        return cls(words=len(words), hashes=hashes, common=common, digest=digest)

    def head(self, shingles: int) -> Shingled:
        """The text cut after its first ``shingles`` shingles."""
        if len(self.hashes) <= shingles:
            return self
        return Shingled(shingles + SHINGLE - 1, self.hashes[:shingles], self.common[:shingles], self.digest)

    def fingerprints(self, limit: int | None = None) -> list[int]:
        """The sampled shingle hashes (signed, as stored), the smallest first."""
        pairs = zip(self.hashes, self.common, strict=True)
        sampled = sorted({h for h, common in pairs if not common and h % SAMPLE_MODULUS == 0})
        if limit is not None:
            sampled = sampled[:limit]
        return [h - (1 << 64) if h >= _SIGN64 else h for h in sampled]


def shingle(text: str) -> Shingled:
    """``text`` tokenised and shingled once, for ``check``, ``add`` and its content hash."""
    return Shingled.of(text)


# ---------------------------------------------------------------------- alignment


def _merge(intervals: Iterable[tuple[int, int]], gap: int = 0) -> list[tuple[int, int]]:
    """Sorted half-open intervals merged when they overlap or are ``gap`` apart at most."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1] + gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _covered(intervals: Sequence[tuple[int, int]]) -> int:
    return sum(end - start for start, end in intervals)


def _best_window(known: list[int], new_set: set[int], size: int) -> int:
    """Start of the ``size``-long window of ``known`` holding most shingles of the new text."""
    hits = [i for i, h in enumerate(known) if h in new_set]
    best_start, best_count, first = 0, 0, 0
    for last, position in enumerate(hits):
        while position - hits[first] >= size:
            first += 1
        if last - first + 1 > best_count:
            best_count, best_start = last - first + 1, hits[first]
    return min(best_start, max(0, len(known) - size))


def _blocks(new: Shingled, known: Shingled) -> list[tuple[int, int, int, int]]:
    """Word ranges ``(new_start, new_end, known_start, known_end)`` matched in order.

    Each range is a run of shared shingles (so at least ``SHINGLE`` words in a row)
    that is not made only of common-word shingles.
    """
    new = new.head(MAX_ALIGN_SHINGLES)
    offset, known_hashes = 0, known.hashes
    if len(known_hashes) > MAX_ALIGN_SHINGLES:
        offset = _best_window(known_hashes, set(new.hashes), MAX_ALIGN_SHINGLES)
        known_hashes = known_hashes[offset : offset + MAX_ALIGN_SHINGLES]
    blocks: list[tuple[int, int, int, int]] = []
    for opcode in Indel.opcodes(new.hashes, known_hashes):
        n_start, n_end, k_start = opcode.src_start, opcode.src_end, opcode.dest_start
        if opcode.tag != "equal" or all(new.common[n_start:n_end]):
            continue
        # A run of shingles [s, e) covers the words [s, e + SHINGLE - 1).
        length = n_end - n_start + SHINGLE - 1
        blocks.append((n_start, n_start + length, offset + k_start, offset + k_start + length))
    return blocks


def _bridge(blocks: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Blocks extended over the short gaps between them that both texts have.

    A word swapped for a synonym breaks the shingles around it and leaves a gap of a
    few words on both sides between two matched runs; those words count as aligned.
    """
    bridged = list(blocks[:1])
    for block in blocks[1:]:
        n_start, n_end, k_start, k_end = bridged[-1]
        if 0 <= block[0] - n_end <= BRIDGE and 0 <= block[2] - k_end <= BRIDGE:
            bridged[-1] = (n_start, block[1], k_start, block[3])
        else:
            bridged.append(block)
    return bridged


def _align(new: Shingled, known: Shingled, settings: DedupSettings) -> Similarity:
    if not new.hashes or not known.hashes:
        # Fewer than three words: too little to call a republication (an exact copy is
        # still found by ``DedupIndex.check`` through the content hash).
        return _NOTHING
    blocks = _bridge(_blocks(new, known))
    new_words = min(new.words, MAX_ALIGN_SHINGLES + SHINGLE - 1)
    new_coverage = _covered(_merge((b[0], b[1]) for b in blocks)) / new_words
    known_spans = [(b[2], b[3]) for b in blocks]
    known_coverage = _covered(_merge(known_spans)) / known.words
    stretches = _merge(known_spans, gap=SPAN_GAP)
    known_span = max((end - start for start, end in stretches), default=0) / known.words
    return _judge(known_coverage, new_coverage, known_span, settings)


def _judge(known_coverage: float, new_coverage: float, known_span: float, settings: DedupSettings) -> Similarity:
    is_copy = known_coverage >= settings.known_coverage and new_coverage >= settings.copy_new_coverage
    is_excerpt = new_coverage >= settings.new_coverage and known_span >= settings.excerpt_span
    # Each rule's leading coverage, damped when its second condition falls short, so
    # the score reads as "how much of a duplicate" on one 0..1 scale.
    copy_score = known_coverage * min(1.0, new_coverage / settings.copy_new_coverage)
    excerpt_score = new_coverage * min(1.0, known_span / settings.excerpt_span)
    return Similarity(
        known_coverage=round(known_coverage, 4),
        new_coverage=round(new_coverage, 4),
        known_span=round(known_span, 4),
        score=round(max(copy_score, excerpt_score), 4),
        is_duplicate=is_copy or is_excerpt,
    )


_NOTHING = Similarity(0.0, 0.0, 0.0, 0.0, False)


def fingerprints(text: str) -> list[int]:
    """The fingerprints the index stores for ``text``: signed 64-bit, smallest first."""
    return Shingled.of(text).head(MAX_INDEX_SHINGLES).fingerprints()


def compare(new_text: str, known_text: str, settings: DedupSettings) -> Similarity:
    """How far ``new_text`` is a republication of ``known_text``; no database involved."""
    return _align(Shingled.of(new_text), Shingled.of(known_text), settings)


# The lookup's statements, built once: each lookup only binds its values.
_HITS = sa.func.count().label("hits")
_CANDIDATES = (
    sa.select(col(Fingerprint.seed_id), col(Fingerprint.article_id), _HITS)
    .where(col(Fingerprint.hash).in_(sa.bindparam("hashes", expanding=True)))
    .group_by(col(Fingerprint.seed_id), col(Fingerprint.article_id))
    .having(sa.bindparam("min_hits") <= _HITS)
    # Ties go to seeds, then to the oldest article: the original rather than a copy.
    .order_by(_HITS.desc(), col(Fingerprint.seed_id).is_(None), col(Fingerprint.seed_id), col(Fingerprint.article_id))
    .limit(sa.bindparam("limit"))
)
_SATURATED = (
    sa.select(col(Fingerprint.hash))
    .where(col(Fingerprint.hash).in_(sa.bindparam("hashes", expanding=True)))
    .group_by(col(Fingerprint.hash))
    .having(sa.func.count() >= sa.bindparam("max_postings"))
)
_SEED_TEXTS = sa.select(col(Seed.id), col(Seed.name), col(Seed.text)).where(
    col(Seed.id).in_(sa.bindparam("ids", expanding=True))
)
_ARTICLE_TEXTS = sa.select(col(Article.id), col(Article.text)).where(
    col(Article.id).in_(sa.bindparam("ids", expanding=True))
)
# What ``DedupIndex._candidates`` reads the known texts with, by kind.
_TEXTS: tuple[tuple[Literal["seed", "article"], sa.Executable], ...] = (
    ("seed", _SEED_TEXTS),
    ("article", _ARTICLE_TEXTS),
)
_EXACT: sa.CompoundSelect[*tuple[Any, ...]] = sa.union_all(
    sa.select(sa.literal(0).label("rank"), col(Seed.id), col(Seed.name)).where(
        col(Seed.content_hash) == sa.bindparam("digest")
    ),
    sa.select(sa.literal(1).label("rank"), col(Article.id), sa.null()).where(
        col(Article.content_hash) == sa.bindparam("digest"), col(Article.is_duplicate).is_(False)
    ),
).order_by("rank", "id")

# Shingled known texts kept by an index, so that the seeds and the articles of the
# day, which most lookups verify against, are not re-tokenised every time.
_CACHE_SIZE = 128


def _known(kind: Literal["seed", "article"], id_: int, name: str | None) -> Known:
    return Known(kind, id_, name if kind == "seed" and name else f"article:{id_}")


class DedupIndex:
    """The fingerprint index in the database, and the duplicate decision on top of it.

    What it knows lives in the database, so several workers and processes share one
    index; the object itself holds only its settings and a small cache of shingled
    known texts (checked against the stored text on every use, so never stale).
    """

    def __init__(self, settings: DedupSettings) -> None:
        self.settings = settings
        self._cache: OrderedDict[tuple[str, int], tuple[str, Shingled]] = OrderedDict()
        self._lock = threading.Lock()

    # ---- reading

    def check(self, session: Session, text: str | Shingled) -> Verdict:
        """The verdict on ``text`` against every indexed text; reads, never writes."""
        new = text if isinstance(text, Shingled) else Shingled.of(text)
        if not new.words:
            return NEW
        exact = session.execute(_EXACT, {"digest": new.digest}).first()
        if exact is not None:
            known = _known("seed" if exact.rank == 0 else "article", exact.id, exact.name)
            return Verdict(known, 1.0, 1.0, 1.0, candidates=1)
        sample = new.fingerprints(MAX_QUERY_HASHES)
        if not sample:
            return NEW
        candidates = self._candidates(session, sample)
        if not candidates:
            return NEW
        # The best candidate: a duplicate before a non-duplicate, then the highest score
        # (on a tie, the first in rank: the one sharing most fingerprints).
        compared = [(known, _align(new, shingled, self.settings)) for known, shingled in candidates]
        known, similarity = max(compared, key=lambda c: (c[1].is_duplicate, c[1].score))
        return Verdict(
            duplicate_of=known if similarity.is_duplicate else None,
            similarity=similarity.score,
            known_coverage=similarity.known_coverage,
            new_coverage=similarity.new_coverage,
            candidates=len(candidates),
        )

    def _candidates(self, session: Session, sample: list[int]) -> list[tuple[Known, Shingled]]:
        """The known texts sharing most fingerprints with the new text, best first."""
        ranked = session.execute(
            _CANDIDATES,
            {
                "hashes": sample,
                "min_hits": max(2, math.ceil(MIN_HIT_SHARE * len(sample))),
                "limit": self.settings.max_candidates,
            },
        ).all()
        keys = [("seed", r.seed_id) if r.seed_id is not None else ("article", r.article_id) for r in ranked]
        found: dict[tuple[str, int], tuple[Known, Shingled]] = {}
        for kind, statement in _TEXTS:
            ids = [id_ for k, id_ in keys if k == kind]
            if not ids:
                continue
            for row in session.execute(statement, {"ids": ids}):
                known = _known(kind, row.id, getattr(row, "name", None))
                found[kind, row.id] = (known, self._shingle(kind, row.id, row.text))
        return [found[key] for key in keys if key in found]

    def _shingle(self, kind: str, id_: int, text: str) -> Shingled:
        key = (kind, id_)
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == text:
                self._cache.move_to_end(key)
                return cached[1]
        shingled = Shingled.of(text)
        with self._lock:
            self._cache[key] = (text, shingled)
            self._cache.move_to_end(key)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return shingled

    # ---- writing

    def add(
        self,
        session: Session,
        text: str | Shingled,
        *,
        seed_id: int | None = None,
        article_id: int | None = None,
    ) -> int:
        """Index ``text`` as the seed or article given; returns the fingerprints added.

        Call it only for texts found new, so that a copy of a copy still points to the
        original. The caller commits.
        """
        _one_owner(seed_id, article_id)
        added = 0
        shingled = text if isinstance(text, Shingled) else Shingled.of(text)
        hashes = shingled.head(MAX_INDEX_SHINGLES).fingerprints()
        for start in range(0, len(hashes), _BATCH):
            batch = hashes[start : start + _BATCH]
            found = session.execute(_SATURATED, {"hashes": batch, "max_postings": self.settings.max_postings})
            saturated = set(found.scalars())
            rows = [{"hash": h, "seed_id": seed_id, "article_id": article_id} for h in batch if h not in saturated]
            if rows:
                session.execute(sa.insert(Fingerprint), rows)
            added += len(rows)
        return added

    def remove(self, session: Session, *, seed_id: int | None = None, article_id: int | None = None) -> int:
        """Drop the fingerprints of a seed or an article; returns how many. The caller commits."""
        _one_owner(seed_id, article_id)
        if seed_id is not None:
            owner = col(Fingerprint.seed_id) == seed_id
        else:
            owner = col(Fingerprint.article_id) == article_id
        return session.exec(sa.delete(Fingerprint).where(owner)).rowcount


def _one_owner(seed_id: int | None, article_id: int | None) -> None:
    if (seed_id is None) == (article_id is None):
        raise ValueError("give exactly one of seed_id and article_id")
