"""Which saved queries (alert rules) a stored article matches: search run backwards.

``Percolator(queries, entities).matching(session, article_id)`` names the queries that
``search_articles`` (with ``include_duplicates``) would list the article for, in the
caller's open transaction (the article and its mentions flushed, maybe not
committed); nothing here commits.

Like a percolator, the rules are indexed rather than looped over, in three steps:

1. **The article's facts**, from the database itself: its full-text terms as the
   search index holds them (SQLite: the article's indexed title and text run through
   the FTS5 table's own tokenizer, in a temporary contentless FTS5 table, read back
   through ``fts5vocab``; PostgreSQL: the lexemes of its stored ``search_document``),
   the entities it mentions, its feed and its language. The rules' words are turned
   into terms the same way, once per engine, so stemming and accent folding are the
   database's and never guessed here.
2. **Candidates.** Each rule is indexed under what it cannot fire without: for each
   of its top-level groups, the terms, entities, feeds or languages one of which must
   be there (``protest OR unrest`` needs the term of protest or of unrest). A rule is a
   candidate only when every such group has one present; anything that cannot be
   narrowed (a word with no term) narrows nothing, so no rule that would fire is
   dropped.
3. **The exact answer** for each candidate: the query is evaluated on the facts in
   three-valued logic (true, false, unknown), which is exact for single terms, field
   terms and their AND, OR and NOT. Only what the facts cannot settle — a phrase of
   several terms that are all present (their order is in the index, not the facts), a
   word without a term, a language that is not ASCII — is asked of the database with
   search's own condition (``monitor.search.query_condition``) restricted to this one
   article, so the cost stays per article, never per archive.

A query naming a feed that does not exist fires nothing, as search refuses it; an
unknown entity is refused when the rules are made. ``tests/test_percolate*.py`` check
firing against search membership on both engines, on generated queries and archives.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.config import EntityConfig
from monitor.models import Article, Feed, Mention
from monitor.query import EntityNames, Field, FieldName, Operand, Phrase, Query, fields
from monitor.search import PG_CONFIG, PG_DOCUMENT, find_feed_id, query_condition, resolve_query

_SQLITE_TOKENIZER_RE = re.compile(r"tokenize\s*=\s*'([^']*)'", re.IGNORECASE)
_SQLITE_DEFAULT_TOKENIZER = "porter unicode61 remove_diacritics 2"
_SCRATCH = "monitor_percolate_terms"  # temp tables, one per SQLite connection


class Percolator:
    """The queries by name, their entities resolved once; ``QueryError`` for an unknown entity."""

    def __init__(self, queries: Mapping[str, Query], entities: Sequence[EntityConfig]) -> None:
        names = EntityNames(entities)
        self._rules = [_Rule(name, resolve_query(query, names)) for name, query in queries.items()]
        self._indexes: dict[str, _Index] = {}

    def matching(self, session: Session, article_id: int) -> list[str]:
        """The names of the queries the stored article matches, in the order given."""
        dialect = session.get_bind().dialect.name
        index = self._indexes.get(dialect)
        if index is None:
            index = self._indexes[dialect] = _Index.build(self._rules, _Tokenizer(session, dialect))
        facts = _facts(session, dialect, article_id)
        if facts is None:
            return []
        feeds = _Feeds(session)
        fired = []
        for position in index.candidates(facts):
            rule = self._rules[position]
            if any(feeds.id(name) is None for name in rule.feeds):
                continue  # search refuses a query naming no feed: it lists nothing
            answer = _Evaluation(index.terms, facts, feeds).query(rule.query)
            if answer is _Truth.UNKNOWN:
                answer = _ask_database(session, dialect, rule.query, article_id, feeds)
            if answer is _Truth.TRUE:
                fired.append(rule.name)
        return fired


@dataclass(frozen=True)
class _Rule:
    name: str
    query: Query
    feeds: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        names = (f.value for f in fields(self.query) if f.name is FieldName.FEED)
        object.__setattr__(self, "feeds", tuple(dict.fromkeys(names)))


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class _Facts:
    """What the rules are evaluated on: the article as search sees it."""

    terms: frozenset[str]
    entities: frozenset[str]
    feed_id: int | None
    feed: str | None
    language: str | None


def _facts(session: Session, dialect: str, article_id: int) -> _Facts | None:
    row = session.exec(
        select(Article.feed_id, Feed.name, Article.language)
        .outerjoin(Feed, col(Feed.id) == col(Article.feed_id))
        .where(col(Article.id) == article_id)
    ).first()
    if row is None:
        return None
    feed_id, feed, language = row
    entities = session.exec(select(Mention.entity).where(col(Mention.article_id) == article_id).distinct()).all()
    terms = (
        _sqlite_article_terms(session, article_id) if dialect == "sqlite" else _pg_article_terms(session, article_id)
    )
    return _Facts(frozenset(terms), frozenset(entities), feed_id, feed, language)


def _sqlite_scratch(session: Session) -> None:
    """A temporary contentless FTS5 table with the search index's tokenizer, and its vocabularies."""
    statement = sa.text("SELECT sql FROM sqlite_master WHERE name = 'article_fts'")
    found = _SQLITE_TOKENIZER_RE.search(session.execute(statement).scalar() or "")
    tokenizer = found.group(1) if found else _SQLITE_DEFAULT_TOKENIZER
    options = f"content='', tokenize='{tokenizer}'"
    for sql in (
        f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{_SCRATCH} USING fts5(title, text, {options})",
        f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{_SCRATCH}_rows USING fts5vocab(temp, {_SCRATCH}, 'row')",
        f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.{_SCRATCH}_instances USING fts5vocab(temp, {_SCRATCH}, 'instance')",
    ):
        session.execute(sa.text(sql))


def _sqlite_article_terms(session: Session, article_id: int) -> list[str]:
    # What article_fts indexes for this article (the view holds the head of the text).
    _sqlite_scratch(session)
    session.execute(
        sa.text(
            f"INSERT INTO temp.{_SCRATCH}(rowid, title, text) "
            "SELECT id, title, text FROM article_fts_content WHERE id = :id"
        ),
        {"id": article_id},
    )
    terms = session.execute(sa.text(f"SELECT term FROM temp.{_SCRATCH}_rows")).scalars().all()
    session.execute(sa.text(f"INSERT INTO temp.{_SCRATCH}({_SCRATCH}) VALUES ('delete-all')"))
    return list(terms)


def _pg_article_terms(session: Session, article_id: int) -> list[str]:
    statement = sa.text(
        f"SELECT lexeme FROM article, unnest({PG_DOCUMENT}) AS document(lexeme, positions, weights) "
        "WHERE article.id = :id"
    )
    return list(session.execute(statement, {"id": article_id}).scalars().all())


# ------------------------------------------------------------- the rules' words as terms


class _Tokenizer:
    """Words to the terms the engine's full-text search makes of them."""

    def __init__(self, session: Session, dialect: str) -> None:
        self.session = session
        self.dialect = dialect

    def terms(self, words: Sequence[str]) -> dict[str, tuple[str, ...]]:
        if not words:
            return {}
        if self.dialect == "sqlite":
            return self._sqlite(words)
        return self._pg(words)

    def _sqlite(self, words: Sequence[str]) -> dict[str, tuple[str, ...]]:
        _sqlite_scratch(self.session)
        insert = sa.text(f"INSERT INTO temp.{_SCRATCH}(rowid, title, text) VALUES (:rowid, '', :word)")
        self.session.execute(insert, [{"rowid": i, "word": w} for i, w in enumerate(words, 1)])
        rows = self.session.execute(sa.text(f'SELECT doc, term, "offset" FROM temp.{_SCRATCH}_instances')).all()
        self.session.execute(sa.text(f"INSERT INTO temp.{_SCRATCH}({_SCRATCH}) VALUES ('delete-all')"))
        found: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for doc, term, offset in rows:
            found[doc].append((offset, term))
        return {w: tuple(term for _, term in sorted(found[i])) for i, w in enumerate(words, 1)}

    def _pg(self, words: Sequence[str]) -> dict[str, tuple[str, ...]]:
        statement = sa.text(
            "SELECT word, array(SELECT lexeme FROM unnest(to_tsvector(CAST(:config AS regconfig), word))) "
            "FROM unnest(CAST(:words AS text[])) AS word"
        )
        rows = self.session.execute(statement, {"config": PG_CONFIG, "words": list(words)}).all()
        return {word: tuple(lexemes) for word, lexemes in rows}


# --------------------------------------------------------------------------- the index

# An atom is something an article has or not: ("t", term), ("e", entity), ("f", feed
# name folded), ("l", primary language subtag).
_Atom = tuple[str, str]


@dataclass
class _Index:
    terms: dict[str, tuple[str, ...]]  # each rule word -> its terms
    postings: dict[_Atom, list[tuple[int, int]]]  # atom -> (rule, clause) it satisfies
    clauses: list[int]  # per rule: how many clauses must be satisfied
    always: list[int]  # rules nothing narrows

    @classmethod
    def build(cls, rules: Sequence[_Rule], tokenizer: _Tokenizer) -> _Index:
        words = sorted({w for rule in rules for phrase in _phrases(rule.query) for w in phrase.words})
        index = cls(tokenizer.terms(words), defaultdict(list), [], [])
        for position, rule in enumerate(rules):
            clauses = index._clauses(rule.query)
            index.clauses.append(len(clauses))
            if not clauses:
                index.always.append(position)
            for number, atoms in enumerate(clauses):
                for atom in atoms:
                    index.postings[atom].append((position, number))
        return index

    def candidates(self, facts: _Facts) -> list[int]:
        """The rules whose every clause has an atom the article has, in rule order."""
        satisfied: dict[int, set[int]] = defaultdict(set)
        for atom in _atoms(facts):
            for position, number in self.postings.get(atom, ()):
                satisfied[position].add(number)
        found = [p for p, numbers in satisfied.items() if len(numbers) == self.clauses[p]]
        return sorted(found + self.always)

    def _clauses(self, query: Query) -> list[frozenset[_Atom]]:
        """Sets of atoms, one of each of which the article must have for ``query`` to hold."""
        clauses: list[frozenset[_Atom]] = []
        for group in query.groups:
            if len(group) == 1 and isinstance(group[0], Phrase):
                # Every term of a phrase must be there: a clause for each.
                terms = self._phrase_terms(group[0])
                clauses += [frozenset({("t", t)}) for t in terms or ()]
                continue
            clause = self._any_of(group)
            if clause is not None:
                clauses.append(clause)
        return clauses

    def _any_of(self, operands: Iterable[Operand]) -> frozenset[_Atom] | None:
        atoms: set[_Atom] = set()
        for operand in operands:
            found = self._needs(operand)
            if found is None:
                return None  # this operand could hold without any atom we know of
            atoms |= found
        return frozenset(atoms)

    def _needs(self, operand: Operand) -> frozenset[_Atom] | None:
        """Atoms one of which ``operand`` cannot hold without (None: not known)."""
        if isinstance(operand, Phrase):
            terms = self._phrase_terms(operand)
            return frozenset({("t", max(terms, key=len))}) if terms else None
        if isinstance(operand, Field):
            return frozenset({_field_atom(operand)})
        clauses = self._clauses(operand)
        return min(clauses, key=len) if clauses else None

    def _phrase_terms(self, phrase: Phrase) -> tuple[str, ...] | None:
        """The terms of the phrase's words; None if a word has none (nothing is known then)."""
        terms: list[str] = []
        for word in phrase.words:
            found = self.terms.get(word, ())
            if not found:
                return None
            terms += found
        return tuple(terms)


def _phrases(operand: Operand) -> Iterable[Phrase]:
    if isinstance(operand, Phrase):
        yield operand
    elif isinstance(operand, Query):
        for inner in operand.operands():
            yield from _phrases(inner)


def _field_atom(term: Field) -> _Atom:
    if term.name is FieldName.ENTITY:
        return ("e", term.value)
    if term.name is FieldName.FEED:
        return ("f", term.value.casefold())
    return ("l", _primary_language(term.value))


def _primary_language(code: str) -> str:
    return code.lower().replace("_", "-").split("-")[0]


def _atoms(facts: _Facts) -> Iterable[_Atom]:
    yield from (("t", term) for term in facts.terms)
    yield from (("e", entity) for entity in facts.entities)
    if facts.feed is not None:
        yield ("f", facts.feed.casefold())
    if facts.language:
        yield ("l", _primary_language(facts.language))


# ---------------------------------------------------------------------- the evaluation


class _Truth(Enum):
    FALSE = 0
    UNKNOWN = 1
    TRUE = 2


class _Feeds:
    """Feed names to ids as search resolves them, asked once per name and article."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.known: dict[str, int | None] = {}

    def id(self, name: str) -> int | None:
        if name not in self.known:
            self.known[name] = find_feed_id(self.session, name)
        return self.known[name]


@dataclass(frozen=True)
class _Evaluation:
    """A query on an article's facts in three-valued logic (Kleene's)."""

    terms: dict[str, tuple[str, ...]]
    facts: _Facts
    feeds: _Feeds

    def query(self, query: Query) -> _Truth:
        result = _Truth.TRUE
        for group in query.groups:
            result = min(result, max((self.operand(o) for o in group), key=_value), key=_value)
            if result is _Truth.FALSE:
                return result
        for operand in query.excluded:
            result = min(result, _negated(self.operand(operand)), key=_value)
            if result is _Truth.FALSE:
                return result
        return result

    def operand(self, operand: Operand) -> _Truth:
        if isinstance(operand, Query):
            return self.query(operand)
        if isinstance(operand, Phrase):
            return self.phrase(operand)
        if operand.name is FieldName.ENTITY:
            return _truth(operand.value in self.facts.entities)
        if operand.name is FieldName.FEED:
            feed_id = self.feeds.id(operand.value)
            return _truth(feed_id is not None and feed_id == self.facts.feed_id)
        return self.language(operand.value)

    def phrase(self, phrase: Phrase) -> _Truth:
        terms: list[str] = []
        for word in phrase.words:
            found = self.terms.get(word, ())
            if not found:
                return _Truth.UNKNOWN  # a word without a term: what the engine does is its own
            terms += found
        if any(term not in self.facts.terms for term in terms):
            return _Truth.FALSE
        # One term: it is there. Several: the index knows whether they stand in order.
        return _Truth.TRUE if len(terms) == 1 else _Truth.UNKNOWN

    def language(self, code: str) -> _Truth:
        stored = self.facts.language
        if stored is None:
            return _Truth.FALSE
        if not stored.isascii():
            return _Truth.UNKNOWN  # the engines lower-case non-ASCII differently
        stored = stored.lower().replace("_", "-")
        wanted = code.lower().replace("_", "-")
        return _truth(stored == wanted or stored.startswith(wanted + "-"))


def _value(truth: _Truth) -> int:
    return truth.value


def _truth(value: bool) -> _Truth:
    return _Truth.TRUE if value else _Truth.FALSE


def _negated(truth: _Truth) -> _Truth:
    return _Truth(2 - truth.value)


def _ask_database(session: Session, dialect: str, query: Query, article_id: int, feeds: _Feeds) -> _Truth:
    """Search's own condition, restricted to the one article."""

    def feed_id(name: str) -> int | None:
        return feeds.id(name)

    condition = query_condition(query, dialect=dialect, feed_id=feed_id, article_id=article_id)
    statement = select(sa.literal(1)).select_from(Article).where(col(Article.id) == article_id, condition)
    return _truth(session.exec(statement).first() is not None)


__all__ = ["Percolator"]
