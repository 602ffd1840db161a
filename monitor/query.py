"""The archive's query language: user input in, plain values out.

The query language is small and owned here, never handed to the database as typed:

    Almaty protests          both words (in any order)
    "security treaty"        the phrase
    Almaty OR Алматы         either; OR binds tighter than the space, so
                             ``protests Almaty OR Алматы`` = protests AND (Almaty OR Алматы)
    -Tokayev  -"state media" without the word / the phrase
    (protest OR unrest) -(football OR hockey)
                             parentheses group; a group can be excluded too
    entity:Almaty            articles mentioning a tracked entity, by its name or any
    entity:"Alma-Ata"        alias, case-insensitively
    feed:"The Diplomat"      articles of the feed with this name
    lang:en                  articles in this language: en, en-US, en_GB…

Words are the runs of letters and digits of any script; everything else is a
separator, so ``Alma-Ata`` becomes the phrase "alma ata", and operator characters of
the backends (``* ^ : NEAR``) are plain text. A field term is ``name:value`` with no
space after the colon; an unknown field is an error naming the fields that exist
(quote the text to search for the words: ``"https://example.org"``).

``parse_query`` turns the text into a ``Query`` (or raises ``QueryError`` with a
one-line reason). A ``Query`` is all of its ``groups`` (each: any of its operands)
and none of its ``excluded``; an operand is a ``Phrase``, a ``Field`` term or a
parenthesised ``Query``. Queries made only of phrases render themselves to an FTS5
MATCH expression (SQLite) and to a tsquery (PostgreSQL) built only from those words;
``monitor.search`` turns field terms into SQL conditions. Entity names are resolved
against the tracked entities by ``EntityNames``, outside the parser, so that a query
can be parsed before the configuration is known.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from monitor.config import EntityConfig
from monitor.errors import QueryError

MAX_QUERY_LENGTH = 1000
MAX_QUERY_OPERANDS = 50
MAX_QUERY_DEPTH = 8  # nested parentheses
MAX_NAME_LENGTH = 500
MAX_LANGUAGE_LENGTH = 35  # BCP 47 tags in practice


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


class FieldName(StrEnum):
    ENTITY = "entity"
    FEED = "feed"
    LANG = "lang"


@dataclass(frozen=True)
class Field:
    """A field term: ``entity:NAME``, ``feed:NAME`` or ``lang:CODE`` (the value as typed)."""

    name: FieldName
    value: str

    def __str__(self) -> str:
        plain = self.value and not any(c.isspace() or c in '()"' for c in self.value)
        return f"{self.name}:{self.value}" if plain else f'{self.name}:"{self.value}"'


@dataclass(frozen=True)
class Query:
    """All of ``groups`` (each: any of its operands), none of ``excluded``."""

    groups: tuple[tuple[Operand, ...], ...]
    excluded: tuple[Operand, ...] = ()

    def is_text(self) -> bool:
        """Only words and phrases (no field term anywhere): one full-text expression."""
        return all(is_text(operand) for operand in self.operands())

    def operands(self) -> Iterator[Operand]:
        """The operands of this level: every group's, then the excluded ones."""
        for group in self.groups:
            yield from group
        yield from self.excluded

    def to_fts5(self) -> str:
        """An FTS5 MATCH expression; for text-only queries (``is_text``)."""
        parts = [_join(group, " OR ", _fts5) for group in self.groups]
        expression = " AND ".join(parts)
        if self.excluded:
            expression = f"({expression})" + "".join(f" NOT {_fts5(operand)}" for operand in self.excluded)
        return expression

    def to_tsquery(self) -> str:
        """Text for ``to_tsquery(config, …)``, which stems each quoted word; for text-only queries."""
        parts = [_join(group, " | ", _tsquery) for group in self.groups]
        parts += [f"!({_tsquery(operand)})" for operand in self.excluded]
        return " & ".join(parts)

    def __str__(self) -> str:
        parts = [" OR ".join(_str(p) for p in group) for group in self.groups]
        parts += [f"-{_str(operand)}" for operand in self.excluded]
        return " ".join(parts)


Operand = Phrase | Field | Query


def is_text(operand: Operand) -> bool:
    if isinstance(operand, Query):
        return operand.is_text()
    return isinstance(operand, Phrase)


def fields(operand: Operand) -> Iterator[Field]:
    """Every field term in ``operand``, excluded ones included."""
    if isinstance(operand, Field):
        yield operand
    elif isinstance(operand, Query):
        for inner in operand.operands():
            yield from fields(inner)


def _fts5(operand: Operand) -> str:
    if isinstance(operand, Phrase):
        return operand.to_fts5()
    if isinstance(operand, Query):
        return f"({operand.to_fts5()})"
    raise TypeError(f"{operand} has no full-text form")


def _tsquery(operand: Operand) -> str:
    if isinstance(operand, Phrase):
        return operand.to_tsquery()
    if isinstance(operand, Query):
        return f"({operand.to_tsquery()})"
    raise TypeError(f"{operand} has no full-text form")


def _str(operand: Operand) -> str:
    return f"({operand})" if isinstance(operand, Query) else str(operand)


def _join(operands: Sequence[Operand], operator: str, render: Callable[[Operand], str]) -> str:
    if len(operands) == 1:
        return render(operands[0])
    return "(" + operator.join(render(p) for p in operands) + ")"


# ------------------------------------------------------------------------------ lexer


@dataclass(frozen=True)
class _Operand:
    operand: Phrase | Field
    negated: bool


@dataclass(frozen=True)
class _Open:
    negated: bool


_OR = "OR"
_CLOSE = ")"
_Token = _Operand | _Open | str

_UNBALANCED = 'query: unbalanced quote: a phrase opened with " is not closed'
_FIELDS = ", ".join(f"{name}:" for name in FieldName)
_FIELD_NAMES = frozenset(FieldName)
# ``name:value`` with no space after the colon; ASCII names only, so that ``12:30`` or
# Cyrillic text with a colon stay words.
_FIELD_RE = re.compile(r"([A-Za-z]+):")
_LANGUAGE_RE = re.compile(r"[A-Za-z0-9]+([-_][A-Za-z0-9]+)*")


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


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The text between the quote at ``text[i]`` and the next one, and the index after it."""
    end = text.find('"', i + 1)
    if end < 0:
        raise QueryError(_UNBALANCED)
    return text[i + 1 : end], end + 1


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
        if text[i] == "(":
            tokens.append(_Open(negated))
            i += 1
            continue
        if text[i] == ")":
            tokens.append(_CLOSE)
            i += 1
            continue
        if text[i] == '"':
            inner, i = _quoted(text, i)
            words = _words(inner)
            if not words:
                raise QueryError('query: empty phrase "": put words between the quotes')
            tokens.append(_Operand(Phrase(words), negated))
            continue
        field = _FIELD_RE.match(text, i)
        if field and field.end() < n and not text[field.end()].isspace() and text[field.end()] != ")":
            term, i = _field(text, field.group(1), field.end())
            tokens.append(_Operand(term, negated))
            continue
        if field and field.group(1).lower() in _FIELD_NAMES:
            _field_value(FieldName(field.group(1).lower()), "")  # ``entity: Almaty``: says how
        j = i
        while j < n and not text[j].isspace() and text[j] not in '"()':
            j += 1
        raw, i = text[i:j], j
        if raw == _OR and not negated:
            tokens.append(_OR)
        elif words := _words(raw):
            tokens.append(_Operand(Phrase(words), negated))
        # else: punctuation only (``*``, ``^``, a trailing ``:``…): nothing to search for.
    return tokens


def _field(text: str, name: str, i: int) -> tuple[Field, int]:
    """The field term ``name:`` whose value starts at ``text[i]``, and the index after it."""
    try:
        field_name = FieldName(name.lower())
    except ValueError:
        raise QueryError(
            f"query: unknown field {name[:30]!r}: the fields are {_FIELDS} "
            f'(to search for the words, quote them: "{name[:30]}:…")'
        ) from None
    if text[i] == '"':
        value, i = _quoted(text, i)
    else:
        j = i
        while j < len(text) and not text[j].isspace() and text[j] not in '"()':
            j += 1
        value, i = text[i:j], j
    return Field(field_name, _field_value(field_name, value)), i


def _field_value(name: FieldName, value: str) -> str:
    value = value.strip()
    example = "lang:en" if name is FieldName.LANG else f'{name}:"The Name"'
    if not value:
        raise QueryError(f"query: {name}: needs a value right after the colon (as in {example})")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value) or len(value) > MAX_NAME_LENGTH:
        raise QueryError(f"query: {name}:{value[:60]!r} is not a valid {name} name")
    if name is FieldName.LANG and (len(value) > MAX_LANGUAGE_LENGTH or not _LANGUAGE_RE.fullmatch(value)):
        raise QueryError(f"query: lang:{value[:60]!r} is not a language code (as in lang:en or lang:pt-BR)")
    return value


# ----------------------------------------------------------------------------- parser


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
    parser = _Parser(tokens)
    query = parser.conjunction(depth=0)
    if count_operands(query) > MAX_QUERY_OPERANDS:
        raise QueryError(f"query: too many words, phrases or fields (at most {MAX_QUERY_OPERANDS})")
    return query


def count_operands(operand: Operand) -> int:
    if isinstance(operand, Query):
        return sum(count_operands(inner) for inner in operand.operands())
    return 1


class _Parser:
    """Recursive descent over the tokens: a conjunction of OR groups and exclusions."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def conjunction(self, depth: int) -> Query:
        groups: list[tuple[Operand, ...]] = []
        excluded: list[Operand] = []
        while (token := self.peek()) is not None:
            if token == _CLOSE:
                if depth == 0:
                    raise QueryError("query: unbalanced parentheses: a ) has no ( before it")
                break
            operand, negated = self.operand(depth)
            if negated:
                if self.peek() == _OR:
                    raise _excluded_in_or()
                excluded.append(operand)
                continue
            group = [operand]
            while self.peek() == _OR:
                self.i += 1
                following, negated = self.operand(depth)
                if negated:
                    raise _excluded_in_or()
                group.append(following)
            if len(group) == 1 and isinstance(operand, Query):
                # ``a (b -c)`` is ``a b -c``: one level fewer for the same meaning.
                groups += operand.groups
                excluded += operand.excluded
            else:
                groups.append(tuple(dict.fromkeys(group)))
        if depth > 0:
            if self.peek() != _CLOSE:
                raise QueryError("query: unbalanced parentheses: a ( is not closed")
            self.i += 1
            if not groups and not excluded:
                raise QueryError("query: empty parentheses: put words between ( and )")
            if not groups:
                raise QueryError("query: a group of only exclusions: add a word or phrase to look for, as in (a -b)")
        elif not groups:
            raise QueryError("query: only exclusions: add a word or phrase to look for (as in: Almaty -Tokayev)")
        return Query(tuple(groups), tuple(dict.fromkeys(excluded)))

    def operand(self, depth: int) -> tuple[Operand, bool]:
        token = self.peek()
        if isinstance(token, _Operand):
            self.i += 1
            return token.operand, token.negated
        if isinstance(token, _Open):
            if depth >= MAX_QUERY_DEPTH:
                raise QueryError(f"query: parentheses nested too deep (at most {MAX_QUERY_DEPTH} levels)")
            self.i += 1
            return _simplified(self.conjunction(depth + 1)), token.negated
        raise QueryError("query: OR must stand between two words or phrases (as in: Almaty OR Алматы)")


def _simplified(query: Query) -> Operand:
    """``(gas)`` is ``gas``."""
    if len(query.groups) == 1 and len(query.groups[0]) == 1 and not query.excluded:
        return query.groups[0][0]
    return query


def _excluded_in_or() -> QueryError:
    return QueryError("query: an excluded word (-word) cannot be part of an OR")


# --------------------------------------------------------------------- entity names


def fold_name(name: str) -> str:
    """A name as names are compared: case, accents, dashes and spacing ignored."""
    decomposed = unicodedata.normalize("NFKD", name.strip())
    kept = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    spaced = "".join(" " if c.isspace() or unicodedata.category(c) == "Pd" else c for c in kept)
    return " ".join(spaced.casefold().split())


class EntityNames:
    """The tracked entities by every alias: ``resolve("alma-ata")`` is ``"Almaty"``."""

    def __init__(self, entities: Sequence[EntityConfig]) -> None:
        self._by_alias: dict[str, str] = {}
        self._spelling: dict[str, str] = {}
        for entity in entities:
            for alias in [entity.name, *entity.aliases]:
                key = fold_name(alias)
                if key and key not in self._by_alias:  # the first entity configured wins
                    self._by_alias[key] = entity.name
                    self._spelling[key] = alias
        self.names = list(dict.fromkeys(entity.name for entity in entities))

    def resolve(self, name: str, *, label: str = "entity") -> str:
        """The name of the entity that has ``name`` as its name or alias; ``QueryError`` if none."""
        if not isinstance(name, str) or not name.strip():
            raise QueryError(f"{label}: empty name")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in name) or len(name) > MAX_NAME_LENGTH:
            raise QueryError(f"{label}: {name[:60]!r} is not a valid name")
        key = fold_name(name)
        if key in self._by_alias:
            return self._by_alias[key]
        close = difflib.get_close_matches(key, list(self._by_alias), n=1, cutoff=0.6)
        if close:
            hint = f"did you mean {self._spelling[close[0]]}?"
        elif self.names:
            shown = ", ".join(self.names[:8]) + (", …" if len(self.names) > 8 else "")
            hint = f"tracked: {shown}"
        else:
            hint = "no entities are tracked"
        raise QueryError(f"{label}: {name.strip()[:60]!r} is not a tracked entity ({hint})")


__all__ = [
    "MAX_QUERY_DEPTH",
    "MAX_QUERY_LENGTH",
    "MAX_QUERY_OPERANDS",
    "EntityNames",
    "Field",
    "FieldName",
    "Operand",
    "Phrase",
    "Query",
    "fields",
    "fold_name",
    "is_text",
    "parse_query",
]
