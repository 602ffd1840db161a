"""Find mentions of tracked entities in article text.

One Aho-Corasick automaton holds every alias of every entity, so matching costs about
the same for three aliases as for thousands. It runs over a *folded* copy of the text;
an offset map leads every hit back to the original, so ``text[m.start:m.end]`` is
always the mention exactly as written.

Folding (applied to aliases and text alike, one character at a time):

- case-insensitive (``casefold``: ``ß`` → ``ss``, ``İ`` → ``i``), accents and other
  combining marks dropped (``Nazarbaïev`` = ``Nazarbaev``, ``й`` = ``и``, ``ё`` = ``е``),
  compatibility forms unfolded (full-width letters, ligatures), dotless ``ı`` = ``i``;
- every run of whitespace (incl. no-break and thin spaces) and dashes becomes one
  space, so ``Alma-Ata``, ``Alma Ata``, ``Alma–Ata`` and ``ALMA-ATA`` are one alias;
- invisible format characters (soft hyphen, zero-width joiners, BOM) are dropped, so
  a hyphenation hint inside a word does not hide it;
- all apostrophes become ``'``.

A hit counts only on word boundaries: the characters around it must not be letters,
digits or ``_``. Apostrophes, hyphens and punctuation are boundaries, so possessives
and clitics match the bare name (``Nazarbayev's``, ``CSTO’s``, Turkish ``Almatı'da``,
``Almaty-based``) while ``Nazarbayeva``, ``Almatov`` or ``CSTOs`` do not. Scripts
written without spaces (Chinese, Japanese, Thai…) need no boundary.

Cyrillic aliases also match their inflected forms, because Russian and Kazakh names
take case endings: for the last word of a Cyrillic alias (four letters or more, not an
all-capital abbreviation such as ``ОДКБ``) the matcher accepts the Russian singular
case endings and the Kazakh case suffixes (``Назарбаева``, ``Назарбаевым``,
``Алма-Аты``, ``Алматыда``); a full name of capitalised masculine words declines as a
whole (``Нурсултана Назарбаева``). Forms a rule cannot guess — a multi-word name whose
first word declines (``Организации Договора …``) — are listed as aliases. The same
word in Latin script gets no endings: in English ``Nazarbayeva`` is another person
(his daughter Dariga). In Russian the genitive ``Назарбаева`` is also her name; the
genitive of the former president is by far the more frequent, so it counts. Plural
and feminine-only forms (``Назарбаевых``, ``Назарбаевой``) and derived words
(``Алматинский``, ``Almatinsky`` — also a district of Astana) do not. Colloquial
``в Алмате`` is not matched: it is also a case of the man's name Алмат.

Hits inside URLs, e-mail addresses and host names (``almaty.kz``) are not mentions in
prose and are skipped. When hits overlap the longest wins; two entities sharing an
alias: the first one configured wins.

One module, past the house's usual size: the automaton, the word boundaries and the
case endings above are one algorithm, and most of the length is the rules' tables.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

import ahocorasick

from monitor.config import EntityConfig

__all__ = ["EntityMatcher", "Match", "fold", "snippet"]


@dataclass(frozen=True)
class Match:
    """One mention: ``text == article_text[start:end]``; ``snippet`` is its context."""

    entity: str
    text: str
    start: int
    end: int
    snippet: str


# ----------------------------------------------------------------------------- folding

_APOSTROPHES = frozenset("'\u2019\u2018\u02bc\u02bb\u02b9\u0060\u00b4\u2032\u201b\uff07")
_DASHES = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2e3a\u2e3b\ufe58\ufe63\uff0d")
# Zero-width space separates words in scripts without spaces; the other invisible
# format characters sit inside words and are dropped.
_SEPARATORS = frozenset("\u200b")
_EXTRA = {"\u0131": "i"}  # dotless i (Turkish, Kazakh Latin): "Almatı" = "Almati"


def _strip_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


@lru_cache(maxsize=8192)
def _fold_char(ch: str) -> str:
    """The folded form of one character: ``""``, ``" "``, or one or more characters.

    Pure and bounded, so the memo is safe to share between threads and matchers.
    """
    if ch in _EXTRA:
        return _EXTRA[ch]
    if ch.isspace() or ch in _DASHES or ch in _SEPARATORS:
        return " "
    if ch in _APOSTROPHES:
        return "'"
    category = unicodedata.category(ch)
    if category == "Cf" or category.startswith("M"):
        return ""
    folded = _strip_marks(_strip_marks(ch).casefold())
    folded = "".join(_EXTRA.get(c, c) for c in folded)
    # Compatibility forms may unfold to spaces or dashes; keep them inside the piece
    # only, so that runs still collapse to one space.
    return folded if folded.isalnum() else " ".join(folded.replace("-", " ").split())


# Below this code point every character is looked up once in a table; the rest (CJK,
# rarer scripts) go through ``_fold_char`` one by one, which is slower but the same.
_TABLE_LIMIT = 0x3000


def _char_class(code_points: list[int]) -> str:
    """A regex character class body for the sorted code points, as ranges."""
    ranges: list[list[int]] = []
    for cp in code_points:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


@cache
def _fold_tables() -> tuple[dict[int, str], re.Pattern[str]]:
    """``str.translate`` table of characters that fold to exactly one character, and a
    pattern for what needs more care: other characters and runs of spaces/dashes.

    Built once per process on first use (a few tens of milliseconds); immutable.
    """
    table: dict[int, str] = {}
    spaces: list[int] = []
    for cp in range(_TABLE_LIMIT):
        folded = _fold_char(chr(cp))
        if len(folded) == 1:
            table[cp] = folded
            if folded == " ":
                spaces.append(cp)
    pattern = re.compile(f"(?P<run>[{_char_class(spaces)}]{{2,}})|[^{_char_class(sorted(table))}]", re.DOTALL)
    return table, pattern


@dataclass(frozen=True)
class _Folded:
    """Folded text, cut into pieces that each start at a known original offset.

    A *linear* piece folded one character to one character; any other piece (a run of
    spaces, ``ß`` → ``ss``) maps every one of its characters to where it started.
    """

    text: str
    starts: list[int]
    origins: list[int]
    linear: list[bool]

    def original(self, index: int) -> int:
        piece = bisect.bisect_right(self.starts, index) - 1
        offset = index - self.starts[piece] if self.linear[piece] else 0
        return self.origins[piece] + offset


def _fold_with_offsets(text: str) -> _Folded:
    """Fold ``text`` and remember where each folded character came from.

    Runs of spaces collapse to one; most text is plain, so it is folded chunk by chunk
    with ``str.translate`` and only the exceptions are handled one at a time.
    """
    table, exceptions = _fold_tables()
    out: list[str] = []
    starts: list[int] = []
    origins: list[int] = []
    linear: list[bool] = []
    length = 0

    def emit(piece: str, origin: int, is_linear: bool) -> None:
        nonlocal length
        if piece[:1] == " " and out and out[-1][-1] == " ":
            piece = piece[1:]
            origin += is_linear
        if piece:
            starts.append(length)
            origins.append(origin)
            linear.append(is_linear)
            out.append(piece)
            length += len(piece)

    position = 0
    for match in exceptions.finditer(text):
        if match.start() > position:
            emit(text[position : match.start()].translate(table), position, True)
        emit(" " if match.group("run") else _fold_char(match.group()), match.start(), False)
        position = match.end()
    if position < len(text):
        emit(text[position:].translate(table), position, True)
    return _Folded("".join(out), starts, origins, linear)


def fold(text: str) -> str:
    """Text as the matcher compares it (for callers that key on aliases)."""
    return _fold_with_offsets(text).text.strip()


# Scripts written without spaces between words: no boundary needed around them.
_UNSPACED = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN")


@lru_cache(maxsize=4096)
def _unspaced(ch: str) -> bool:
    return ord(ch) >= 0x0E00 and unicodedata.name(ch, "").startswith(_UNSPACED)


def _is_word_char(ch: str) -> bool:
    return (ch.isalnum() or ch == "_") and not _unspaced(ch)


# ------------------------------------------------------------------- Cyrillic endings

# Kazakh case suffixes (genitive, dative, accusative, locative, ablative,
# instrumental) in both vowel-harmony series, by the sound they follow; after a vowel
# also the forms that follow a possessive ending (ұйымы-на, ұйымы-нда).
_KAZAKH_AFTER_VOWEL = [
    "ның", "нің", "ға", "ге", "на", "не", "ны", "ні", "да", "де", "нда", "нде", "дан", "ден", "нан", "нен", "мен",
]  # fmt: skip
_KAZAKH_AFTER_CONSONANT = [
    "тың", "тің", "дың", "дің", "қа", "ке", "ға", "ге", "ты", "ті", "ды", "ді", "та", "те", "да", "де", "тан",
    "тен", "дан", "ден", "пен", "бен", "мен",
]  # fmt: skip
# Russian singular case endings of a masculine noun or surname in a consonant
# (Назарбаев-а/-у/-ым/-е, Казахстан-ом) and of a noun in -а (Алма-Ат-ы/-е/-у/-ой).
_RUSSIAN_MASCULINE = ["а", "у", "ом", "ым", "е"]
_RUSSIAN_A_STEM = ["ы", "е", "у", "ой", "ою"]
_VOWELS = frozenset("аәеёиоөуұүыіэюя")
_MIN_INFLECTED = 4


def _is_cyrillic(word: str) -> bool:
    return any("CYRILLIC" in unicodedata.name(c, "") for c in word if c.isalpha())


@dataclass(frozen=True)
class _Form:
    """How one folded alias key may appear: its entity, endings, boundaries."""

    entity: str
    order: int
    endings: frozenset[str]
    bare: bool  # the key alone, without an ending, is a mention
    left_boundary: bool
    right_boundary: bool


def _inflections(alias: str) -> tuple[str, frozenset[str], bool] | None:
    """``(stem, endings, bare)`` when the alias's last word is inflected, else None."""
    words = alias.split()
    last = words[-1] if words else ""  # a hyphenated compound is one word: Алма-Ата
    letters = [c for c in last if c.isalpha()]
    if len(letters) < _MIN_INFLECTED or not _is_cyrillic(last):
        return None
    if all(c.isupper() for c in letters):
        return None  # an abbreviation: ОДКБ, ҰҚШҰ
    folded = fold(alias)
    final = folded[-1:]
    after_a, after_vowel, after_consonant = _ending_sets()
    if final == "а":
        return folded[:-1], after_a, False
    if final in _VOWELS:
        return folded, after_vowel, True
    if final.isalpha() and final not in "ьъ":
        return folded, after_consonant, True
    return None


@cache
def _ending_sets() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """Folded endings after a stem in -а (which the ending replaces), a vowel, a
    consonant."""
    after_a = [*_RUSSIAN_A_STEM, "а", *("а" + s for s in _KAZAKH_AFTER_VOWEL)]
    after_consonant = [*_RUSSIAN_MASCULINE, *_KAZAKH_AFTER_CONSONANT]
    return (
        frozenset(map(fold, after_a)),
        frozenset(map(fold, _KAZAKH_AFTER_VOWEL)),
        frozenset(map(fold, after_consonant)),
    )


def _full_name_cases(alias: str) -> list[str]:
    """Russian cases of a full name in which every word declines: Нурсултана Назарбаева.

    Only for aliases of two or more capitalised Cyrillic words that all end in a
    consonant (masculine names); other multi-word aliases decline their head noun in
    ways a rule cannot guess, so their forms are listed in the config instead.
    """
    words = alias.split()
    if len(words) < 2 or not all(map(_masculine_name_word, words)):
        return []
    surname = ("ев", "ов", "ёв", "ин", "ын")
    instrumental = ["ым" if w.endswith(surname) else "ом" for w in words]
    cases = [["а"] * len(words), ["у"] * len(words), instrumental, ["е"] * len(words)]
    return [" ".join(w + e for w, e in zip(words, ends, strict=True)) for ends in cases]


def _masculine_name_word(word: str) -> bool:
    final = fold(word)[-1:]
    return (
        word[:1].isupper()
        and len(word) >= 3
        and _is_cyrillic(word)
        and final.isalpha()
        and final not in _VOWELS
        and final not in "ьъ"
    )


def _forms(entity: str, order: int, alias: str) -> list[tuple[str, _Form]]:
    """Automaton keys of one alias, each with how it may appear in text."""
    forms = []
    for index, variant in enumerate([alias, *_full_name_cases(alias)]):
        key = fold(variant)
        if not key:
            continue
        stem_key, endings, bare = key, frozenset[str](), True
        # The declined full names are complete words; only the alias itself takes endings.
        inflected = _inflections(variant) if index == 0 else None
        if inflected is not None:
            stem_key, endings, bare = inflected
        boundaries = _is_word_char(key[0]), _is_word_char(key[-1])
        forms.append((stem_key, _Form(entity, order, endings, bare, *boundaries)))
    return forms


# ------------------------------------------------------------------------ non-prose

# Each branch starts where a token starts, so a long word is not re-scanned from
# every one of its letters.
_NON_PROSE = re.compile(
    r"""(?<![\w.+\-])
    (?: [a-z][a-z0-9+.\-]*://[^\s<>"'()\[\]]+                       # URLs
      | www\.[^\s<>"'()\[\]]+
      | [\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+                             # e-mail addresses
      | (?:[\w\-]+\.)+(?-i:kz|ru|com|org|net|info|gov|edu|int|io|eu|uz|kg|tj|tm|by|ua
           |am|az|ge|cn|tr|de|fr|uk|us)\b(?:/[^\s<>"'()\[\]]*)?          # bare host names
    )""",
    re.IGNORECASE | re.VERBOSE,
)


_TOKEN_REACH = 500  # how far a URL may stretch either side of a hit


def _in_non_prose(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` lies inside a URL, e-mail address or host name.

    Only the whitespace-delimited token around a hit is examined, so the cost grows
    with the number of hits, not with the length of the text.
    """
    low = start
    while low > 0 and start - low < _TOKEN_REACH and not text[low - 1].isspace():
        low -= 1
    high = end
    while high < len(text) and high - end < _TOKEN_REACH and not text[high].isspace():
        high += 1
    if high - low == end - start:
        return False
    return any(m.start() < end and start < m.end() for m in _NON_PROSE.finditer(text, low, high))


# ----------------------------------------------------------------------------- matcher


class EntityMatcher:
    """Built once from the configured entities; ``find`` is pure and thread-safe."""

    def __init__(self, entities: Sequence[EntityConfig], *, context: int = 80) -> None:
        self._names = [e.name for e in entities]
        self._context = context
        forms: dict[str, list[_Form]] = {}
        for order, entity in enumerate(entities):
            for alias in [entity.name, *entity.aliases]:
                for key, form in _forms(entity.name, order, alias):
                    known = forms.setdefault(key, [])
                    if form not in known:
                        known.append(form)
        self._automaton: ahocorasick.Automaton | None = None
        if forms:
            automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY)
            for key, key_forms in forms.items():
                ordered = tuple(sorted(key_forms, key=lambda f: f.order))
                automaton.add_word(key, (len(key), ordered))
            automaton.make_automaton()
            self._automaton = automaton
        self._max_ending = max((len(e) for fs in forms.values() for f in fs for e in f.endings), default=0)

    @property
    def entity_names(self) -> list[str]:
        return list(self._names)

    def find(self, text: str) -> list[Match]:
        """Every mention in ``text``, sorted by start, none overlapping another."""
        if self._automaton is None or not text:
            return []
        folded_text = _fold_with_offsets(text)
        folded = folded_text.text
        candidates: list[tuple[int, int, int, str]] = []
        for last, (length, forms) in self._automaton.iter(folded):
            hit = self._accept(folded, last + 1 - length, last + 1, forms)
            if hit is not None:
                end, form = hit
                start, stop = _original_span(text, folded_text, last + 1 - length, end)
                if not _in_non_prose(text, start, stop):
                    candidates.append((start, stop, form.order, form.entity))
        chosen = _longest_first(candidates)
        return [Match(e, text[s:t], s, t, snippet(text, s, t, context=self._context)) for s, t, e in chosen]

    def _accept(self, folded: str, start: int, end: int, forms: tuple[_Form, ...]) -> tuple[int, _Form] | None:
        """The folded end of the hit (with its ending) and its form, or None."""
        before_is_word = start > 0 and _is_word_char(folded[start - 1])
        word_end = end
        limit = min(len(folded), end + self._max_ending + 1)
        while word_end < limit and _is_word_char(folded[word_end]):
            word_end += 1
        for form in forms:
            if form.left_boundary and before_is_word:
                continue
            if not form.right_boundary:
                return end, form
            if word_end == end:
                if form.bare:
                    return end, form
            elif folded[end:word_end] in form.endings and (
                word_end == len(folded) or not _is_word_char(folded[word_end])
            ):
                return word_end, form
        return None


def _original_span(text: str, folded: _Folded, start: int, end: int) -> tuple[int, int]:
    """Map a folded span back; include combining marks that belong to its last letter."""
    first = folded.original(start)
    stop = folded.original(end - 1) + 1
    while stop < len(text) and unicodedata.combining(text[stop]):
        stop += 1
    return first, stop


def _longest_first(candidates: list[tuple[int, int, int, str]]) -> list[tuple[int, int, str]]:
    """Non-overlapping hits, the longest first; ties go to the earlier, then the
    first-configured entity."""
    # Taken spans never overlap, so sorted starts and ends stay in step.
    starts: list[int] = []
    ends: list[int] = []
    chosen: list[tuple[int, int, str]] = []
    for start, end, _order, entity in sorted(set(candidates), key=lambda c: (c[0] - c[1], c[0], c[2])):
        at = bisect.bisect_right(starts, start)
        if (at > 0 and ends[at - 1] > start) or (at < len(starts) and starts[at] < end):
            continue
        starts.insert(at, start)
        ends.insert(at, end)
        chosen.append((start, end, entity))
    return sorted(chosen)


# ---------------------------------------------------------------------------- snippets

# Soft hyphens and byte-order marks are artefacts of the source; joiners stay (emoji).
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\ufeff"))


def snippet(text: str, start: int, end: int, *, context: int = 80) -> str:
    """About ``context`` characters each side of ``text[start:end]``, cut between
    words, whitespace collapsed; ``…`` marks a cut."""
    low = max(0, start - context)
    if low > 0 and not text[low - 1].isspace():
        gap = re.search(r"\s", text[low:start])
        low = low + gap.end() if gap else low
    high = min(len(text), end + context)
    if high < len(text) and not text[high].isspace():
        gaps = [m.start() for m in re.finditer(r"\s", text[end:high])]
        high = end + gaps[-1] if gaps else high
    body = " ".join(text[low:high].translate(_INVISIBLE).split())
    before = "… " if low > 0 and not text[:low].isspace() else ""
    after = " …" if high < len(text) and not text[high:].isspace() else ""
    return before + body + after
