"""The archive's query language and time filters: user input in, plain values out.

The query language is small and owned here, never handed to the database as typed:

    Almaty protests          both words (in any order)
    "security treaty"        the phrase
    Almaty OR Алматы         either; OR binds tighter than the space, so
                             ``protests Almaty OR Алматы`` = protests AND (Almaty OR Алматы)
    -Tokayev  -"state media" without the word / the phrase

Words are the runs of letters and digits of any script; everything else is a
separator, so ``Alma-Ata`` or ``title:foo`` become the phrases "alma ata" and
"title foo", and operator characters of the backends (``* ^ ( ) : NEAR``) are plain
text. ``parse_query`` turns the text into a ``Query`` (or raises ``QueryError`` with a
one-line reason); the ``Query`` renders itself to an FTS5 MATCH expression (SQLite) and
to a tsquery (PostgreSQL) built only from those words. ``parse_time`` reads the times
of ``--since``/``--until`` and their API counterparts.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from monitor.config import MAX_DURATION_TEXT, parse_duration
from monitor.errors import QueryError
from monitor.times import as_utc

MAX_QUERY_LENGTH = 1000
MAX_QUERY_OPERANDS = 50
MAX_TIME_LENGTH = 100
# The times a filter may name: the epoch to the last day ``datetime`` can hold in UTC.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


# ---------------------------------------------------------------------- query language


@dataclass(frozen=True)
class Phrase:
    """Words that must appear next to each other, in order (one word is a phrase too)."""

    words: tuple[str, ...]

    def to_fts5(self) -> str:
        # Words hold only letters, digits and marks; the escape is belt and braces.
        return '"' + " ".join(self.words).replace('"', '""') + '"'

    def to_tsquery(self) -> str:
        quoted = ("'" + w.replace("\\", "\\\\").replace("'", "''") + "'" for w in self.words)
        return " <-> ".join(quoted)

    def __str__(self) -> str:
        return '"' + " ".join(self.words) + '"' if len(self.words) > 1 else self.words[0]


@dataclass(frozen=True)
class Query:
    """All of ``groups`` (each: any of its phrases), none of ``excluded``."""

    groups: tuple[tuple[Phrase, ...], ...]
    excluded: tuple[Phrase, ...] = ()

    def to_fts5(self) -> str:
        """An FTS5 MATCH expression."""
        parts = [_join(group, " OR ", Phrase.to_fts5) for group in self.groups]
        expression = " AND ".join(parts)
        if self.excluded:
            expression = f"({expression})" + "".join(f" NOT {phrase.to_fts5()}" for phrase in self.excluded)
        return expression

    def to_tsquery(self) -> str:
        """Text for ``to_tsquery(config, …)``, which stems each quoted word."""
        parts = [_join(group, " | ", Phrase.to_tsquery) for group in self.groups]
        parts += [f"!({phrase.to_tsquery()})" for phrase in self.excluded]
        return " & ".join(parts)

    def __str__(self) -> str:
        parts = [" OR ".join(str(p) for p in group) for group in self.groups]
        parts += [f"-{phrase}" for phrase in self.excluded]
        return " ".join(parts)


def _join(phrases: Sequence[Phrase], operator: str, render: Callable[[Phrase], str]) -> str:
    if len(phrases) == 1:
        return render(phrases[0])
    return "(" + operator.join(render(p) for p in phrases) + ")"


@dataclass(frozen=True)
class _Operand:
    phrase: Phrase
    negated: bool


_OR = "OR"
_UNBALANCED = 'query: unbalanced quote: a phrase opened with " is not closed'
_Token = _Operand | str


def _is_word_char(char: str) -> bool:
    # Letters, digits and combining marks, as the unicode61 tokenizer counts them.
    return unicodedata.category(char)[0] in "LNM"


def _words(text: str) -> tuple[str, ...]:
    """The runs of letters and digits in ``text``, lower-cased."""
    words: list[str] = []
    current: list[str] = []
    for char in text + " ":
        if _is_word_char(char):
            current.append(char)
            continue
        if current:
            word = "".join(current)
            if any(unicodedata.category(c)[0] in "LN" for c in word):
                words.append(word.lower())
            current = []
    return tuple(words)


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        negated = text[i] == "-" and i + 1 < n and not text[i + 1].isspace()
        if negated:
            i += 1
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QueryError(_UNBALANCED)
            words = _words(text[i + 1 : end])
            if not words:
                raise QueryError('query: empty phrase "": put words between the quotes')
            tokens.append(_Operand(Phrase(words), negated))
            i = end + 1
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] != '"':
            j += 1
        raw, i = text[i:j], j
        if raw == _OR and not negated:
            tokens.append(_OR)
        elif words := _words(raw):
            tokens.append(_Operand(Phrase(words), negated))
        # else: punctuation only (``*``, ``(``, ``^``…): nothing to search for.
    return tokens


def parse_query(text: str) -> Query:
    """Parse the search language; ``QueryError`` with a one-line reason if malformed."""
    if not isinstance(text, str):
        raise QueryError("query: expected text")
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(f"query: too long ({len(text)} characters, at most {MAX_QUERY_LENGTH})")
    if text.count('"') % 2:
        raise QueryError(_UNBALANCED)
    tokens = _lex(text)
    if not tokens:
        raise QueryError("query: no words to search for" if text.strip() else "query: the query is empty")
    groups: list[tuple[Phrase, ...]] = []
    excluded: list[Phrase] = []
    i = 0
    while i < len(tokens):
        group, i = _clause(tokens, i)
        if isinstance(group, Phrase):
            excluded.append(group)
        else:
            groups.append(group)
    if not groups:
        raise QueryError("query: only exclusions: add a word or phrase to look for (as in: Almaty -Tokayev)")
    if sum(len(g) for g in groups) + len(excluded) > MAX_QUERY_OPERANDS:
        raise QueryError(f"query: too many words or phrases (at most {MAX_QUERY_OPERANDS})")
    return Query(tuple(groups), tuple(dict.fromkeys(excluded)))


def _clause(tokens: list[_Token], i: int) -> tuple[tuple[Phrase, ...] | Phrase, int]:
    """One clause from ``tokens[i]``: an exclusion, or a word/phrase with its ORs."""
    first = _operand_at(tokens, i)
    if first.negated:
        if i + 1 < len(tokens) and tokens[i + 1] == _OR:
            raise _excluded_in_or()
        return first.phrase, i + 1
    group = [first.phrase]
    i += 1
    while i < len(tokens) and tokens[i] == _OR:
        following = _operand_at(tokens, i + 1)
        if following.negated:
            raise _excluded_in_or()
        group.append(following.phrase)
        i += 2
    return tuple(dict.fromkeys(group)), i


def _operand_at(tokens: list[_Token], i: int) -> _Operand:
    token = tokens[i] if i < len(tokens) else None
    if not isinstance(token, _Operand):
        raise QueryError("query: OR must stand between two words or phrases (as in: Almaty OR Алматы)")
    return token


def _excluded_in_or() -> QueryError:
    return QueryError("query: an excluded word (-word) cannot be part of an OR")


# ------------------------------------------------------------------------------ times

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DURATION_RE = re.compile(r"(\d+(\.\d+)?\s*[a-z]+)+")


def parse_time(text: str, *, now: datetime, end: bool = False) -> datetime:
    """A UTC time from a date, an ISO datetime, ``now``/``today``/``yesterday`` or a
    duration ago (``7d``, ``12h``, ``30m``, ``2w``, ``1d12h``).

    With ``end`` (for an upper bound) a bare date or day means the end of that day, so
    ``--until 2022-01-06`` includes the 6th. The time must fall within 1970..9999 (UTC).
    Raises ``QueryError``.
    """
    value = text.strip().lower() if isinstance(text, str) else ""
    now = as_utc(now)
    if not value:
        raise QueryError("time: empty value" + _TIME_HINT)
    if len(value) > MAX_TIME_LENGTH:
        raise QueryError(f"time: too long ({len(value)} characters, at most {MAX_TIME_LENGTH})" + _TIME_HINT)
    return _within_range(text, _parse_time(text, value, now, end))


def _parse_time(text: str, value: str, now: datetime, end: bool) -> datetime:
    day = _named_day(value, now)
    if day is None and _DATE_RE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise QueryError(f"time: {text!r} is not a valid date" + _TIME_HINT) from None
    if day is not None:
        start = datetime.combine(day, time.min, tzinfo=UTC)
        return start + timedelta(days=1, microseconds=-1) if end else start
    if value == "now":
        return now
    if _DURATION_RE.fullmatch(value):
        return _time_ago(text, value, now)
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise QueryError(f"time: {text!r} is not a time" + _TIME_HINT) from None
    try:
        return as_utc(moment)
    except OverflowError:
        # 0001-01-01T00:00:00+05:00 is a valid time whose UTC is before year 1.
        raise QueryError(f"time: {text!r} is out of range: {_RANGE}") from None


_RANGE = "times from 1970-01-01 to 9999-12-31 (UTC) can be searched"


def _within_range(text: str, moment: datetime) -> datetime:
    if not EARLIEST <= moment <= LATEST:
        raise QueryError(f"time: {text.strip()!r} is out of range: {_RANGE}")
    return moment


_TIME_HINT = " (use a date like 2022-01-06, an ISO time like 2022-01-06T10:00:00Z, or a duration ago like 7d or 12h)"


def _named_day(value: str, now: datetime) -> date | None:
    if value == "today":
        return now.date()
    if value == "yesterday":
        return now.date() - timedelta(days=1)
    return None


def _time_ago(text: str, value: str, now: datetime) -> datetime:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        if MAX_DURATION_TEXT in str(exc):
            raise QueryError(f"time: {text.strip()!r} is more than {MAX_DURATION_TEXT} ago" + _TIME_HINT) from None
        raise QueryError(f"time: {text!r} is not a duration" + _TIME_HINT) from None
    try:
        return now - timedelta(seconds=seconds)
    except OverflowError:
        raise QueryError(f"time: {text.strip()!r} ago is out of range: {_RANGE}") from None


__all__ = [
    "EARLIEST",
    "LATEST",
    "MAX_QUERY_LENGTH",
    "MAX_QUERY_OPERANDS",
    "MAX_TIME_LENGTH",
    "Phrase",
    "Query",
    "parse_query",
    "parse_time",
]
