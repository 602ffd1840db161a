"""Which saved queries (alert rules) a stored article matches: search run backwards.

``Percolator(queries, entities).matching(session, article_id)`` names the queries that
``search_articles`` (with ``include_duplicates``) would list the article for, in the
caller's open transaction (the article and its mentions flushed, maybe not
committed); nothing here commits.

Like a percolator, the rules are indexed rather than looped over, in three steps:

1. **The article's facts**, from the database itself: its full-text terms as the
   search index holds them (SQLite: the article's indexed title and text run through
   the FTS5 table's own tokenizer, in a temporary contentless FTS5 table, read back
   through ``fts5vocab``; PostgreSQL: the lexemes of its stored search document), with
   the positions of the terms the rules' phrases use, the entities it mentions, its
   feed and its language. The rules' words are turned into terms the same way, once
   per engine, so stemming and accent folding are the database's, never guessed here.
2. **Candidates.** Each rule is indexed under what it cannot fire without: for each
   of its top-level groups, the terms, entities, feeds or languages one of which must
   be there (``protest OR unrest`` needs the term of protest or of unrest). A rule is a
   candidate only when every such group has one present; anything that cannot be
   narrowed (a word with no term) narrows nothing, so no rule that would fire is
   dropped.
3. **The exact answer** for each candidate: its query, compiled once, is evaluated on
   the facts in three-valued logic (true, false, unknown): terms, phrases (terms one
   after another, in one column on SQLite), field terms and their AND, OR and NOT.
   Only what the facts cannot settle — a word without a term, a language that is not
   ASCII (the engines lower-case it differently), a phrase past PostgreSQL's last
   position — is asked of the database with search's own condition
   (``monitor.conditions.query_condition``) restricted to this one article, so the cost
   stays per article, never per archive.

A query naming a feed that does not exist fires nothing, as search refuses it; an
unknown entity is refused when the rules are made. ``tests/test_percolate*.py`` check
firing against search membership on both engines, on generated queries and archives.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, col, select

from monitor.conditions import PG_CONFIG, PG_DOCUMENT, pick_feed_id, query_condition, resolve_query
from monitor.config import EntityConfig
from monitor.models import Article, Feed, Mention
from monitor.query import EntityNames, Field, FieldName, Operand, Phrase, Query, fields

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
        facts = _facts(session, dialect, article_id, index.phrase_terms)
        if facts is None:
            return []
        return self._fired(session, index, facts, article_id)

    def _fired(self, session: Session, index: _Index, facts: _Facts, article_id: int) -> list[str]:
        feeds = _Feeds(session)
        fired = []
        for position in index.candidates(facts):
            rule = self._rules[position]
            if any(feeds.id(name) is None for name in rule.feeds):
                continue  # search refuses a query naming no feed: it lists nothing
            answer = index.tests[position](facts, feeds)
            if answer == UNKNOWN:
                answer = TRUE if index.exact(position, rule, feeds, session, article_id) else FALSE
            if answer == TRUE:
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
    positions: _Positions


class _Positions:
    """Where the terms of the rules' phrases stand in the article.

    A position is (column, offset): FTS5 counts tokens per column (title, text) and
    matches a phrase within one; PostgreSQL's document is one run (column 0).
    """

    def __init__(self, dialect: str, places: Mapping[str, Iterable[tuple[int, int]]]) -> None:
        self.dialect = dialect
        self.known = {term: frozenset(found) for term, found in places.items()}

    def phrase(self, terms: Sequence[str]) -> int:
        """Whether the terms stand one after another: TRUE or FALSE (UNKNOWN past PostgreSQL's
        last position, where it piles positions up)."""
        places = [self.known.get(t, frozenset()) for t in terms]
        if self.dialect != "sqlite" and any(offset >= _PG_LAST_POSITION for p in places for _, offset in p):
            return UNKNOWN
        for column, offset in places[0]:
            if all((column, offset + k) in places[k] for k in range(1, len(places))):
                return TRUE
        return FALSE


# PostgreSQL stores positions up to 16383; later words all stand at 16383.
_PG_LAST_POSITION = 16383


def _facts(session: Session, dialect: str, article_id: int, phrase_terms: frozenset[str]) -> _Facts | None:
    row = session.exec(
        select(Article.feed_id, Feed.name, Article.language)
        .outerjoin(Feed, col(Feed.id) == col(Article.feed_id))
        .where(col(Article.id) == article_id)
    ).first()
    if row is None:
        return None
    feed_id, feed, language = row
    entities = session.exec(select(Mention.entity).where(col(Mention.article_id) == article_id).distinct()).all()
    read = _sqlite_article_terms if dialect == "sqlite" else _pg_article_terms
    terms, places = read(session, article_id, phrase_terms)
    return _Facts(frozenset(terms), frozenset(entities), feed_id, feed, language, _Positions(dialect, places))


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


_Places = dict[str, list[tuple[int, int]]]


def _sqlite_article_terms(session: Session, article_id: int, phrase_terms: frozenset[str]) -> tuple[list[str], _Places]:
    """The article's terms as article_fts holds them (the view has the head of the text),
    and where the terms of phrases stand (read only when some rule has a phrase)."""
    _sqlite_scratch(session)
    session.execute(
        sa.text(
            f"INSERT INTO temp.{_SCRATCH}(rowid, title, text) "
            "SELECT id, title, text FROM article_fts_content WHERE id = :id"
        ),
        {"id": article_id},
    )
    places: _Places = defaultdict(list)
    if phrase_terms:
        rows = session.execute(sa.text(f'SELECT term, col, "offset" FROM temp.{_SCRATCH}_instances')).all()
        terms = list({term for term, _, _ in rows})
        for term, column, offset in rows:
            if term in phrase_terms:
                places[term].append((0 if column == "title" else 1, offset))
    else:
        terms = list(session.execute(sa.text(f"SELECT term FROM temp.{_SCRATCH}_rows")).scalars().all())
    session.execute(sa.text(f"INSERT INTO temp.{_SCRATCH}({_SCRATCH}) VALUES ('delete-all')"))
    return terms, places


def _pg_article_terms(session: Session, article_id: int, phrase_terms: frozenset[str]) -> tuple[list[str], _Places]:
    """The lexemes of the article's search document, and where those of phrases stand."""
    statement = sa.text(
        "SELECT lexeme, CASE WHEN lexeme = ANY(CAST(:phrase_terms AS text[])) THEN positions END "
        f"FROM article, unnest({PG_DOCUMENT}) AS document(lexeme, positions, weights) WHERE article.id = :id"
    )
    rows = session.execute(statement, {"id": article_id, "phrase_terms": sorted(phrase_terms)}).all()
    places: _Places = {lexeme: [(0, p) for p in positions] for lexeme, positions in rows if positions is not None}
    return [lexeme for lexeme, _ in rows], places


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
        # Each lexeme as often as and where it stands in the word, as a phrase needs them.
        statement = sa.text(
            "SELECT word, array(SELECT document.lexeme FROM unnest(to_tsvector(CAST(:config AS regconfig), word)) "
            "AS document(lexeme, positions, weights), unnest(document.positions) AS position ORDER BY position) "
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
    tests: list[_Test]  # per rule: its query compiled (``_compiled``)
    phrase_terms: frozenset[str] = frozenset()  # the terms of phrases of several terms
    indexed_terms: frozenset[str] | None = None  # the terms some rule is indexed under
    dialect: str = ""
    # Per rule and the ids its feed names resolve to: the statement asking the database.
    statements: dict[tuple[int, tuple[int | None, ...]], sa.Select[int]] = field(default_factory=dict)

    @classmethod
    def build(cls, rules: Sequence[_Rule], tokenizer: _Tokenizer) -> _Index:
        words = sorted({w for rule in rules for phrase in _phrases(rule.query) for w in phrase.words})
        index = cls(tokenizer.terms(words), defaultdict(list), [], [], [], dialect=tokenizer.dialect)
        in_phrases = (_phrase_terms(p, index.terms) for rule in rules for p in _phrases(rule.query))
        index.phrase_terms = frozenset(t for terms in in_phrases if len(terms) > 1 for t in terms)
        for position, rule in enumerate(rules):
            index.tests.append(_compiled_query(rule.query, index.terms))
            clauses = index._clauses(rule.query)
            index.clauses.append(len(clauses))
            if not clauses:
                index.always.append(position)
            for number, atoms in enumerate(clauses):
                for atom in atoms:
                    index.postings[atom].append((position, number))
        return index

    def exact(self, position: int, rule: _Rule, feeds: _Feeds, session: Session, article_id: int) -> bool:
        """What search says of the article for this rule; the statement made once and kept,
        so that SQLAlchemy's cache of compiled statements serves the next article."""
        key = (position, tuple(feeds.id(name) for name in rule.feeds))
        statement = self.statements.get(key)
        if statement is None:
            statement = self.statements[key] = _exact_statement(rule.query, self.dialect, feeds)
        return session.execute(statement, {_ARTICLE: article_id}).first() is not None

    def candidates(self, facts: _Facts) -> list[int]:
        """The rules whose every clause has an atom the article has, in rule order."""
        if self.indexed_terms is None:
            self.indexed_terms = frozenset(term for kind, term in self.postings if kind == "t")
        satisfied: dict[int, int] = defaultdict(int)  # rule -> bit mask of its satisfied clauses
        atoms = [("t", term) for term in facts.terms & self.indexed_terms]
        for atom in [*atoms, *_other_atoms(facts)]:
            for position, number in self.postings.get(atom, ()):
                satisfied[position] |= 1 << number
        found = [p for p, mask in satisfied.items() if mask == (1 << self.clauses[p]) - 1]
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


def _phrase_terms(phrase: Phrase, terms: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(t for word in phrase.words for t in terms.get(word, ()))


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


def _other_atoms(facts: _Facts) -> Iterable[_Atom]:
    """The article's atoms besides its terms."""
    yield from (("e", entity) for entity in facts.entities)
    if facts.feed is not None:
        yield ("f", facts.feed.casefold())
    if facts.language:
        yield ("l", _primary_language(facts.language))


# ---------------------------------------------------------------------- the evaluation

# Kleene's three truth values as numbers: AND is min, OR is max, NOT is 2 - x.
FALSE, UNKNOWN, TRUE = 0, 1, 2


class _Feeds:
    """Feed names to ids as search resolves them, asked once per name and article."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.rows: list[tuple[int | None, str]] | None = None
        self.known: dict[str, int | None] = {}

    def id(self, name: str) -> int | None:
        if name not in self.known:
            if self.rows is None:  # one read of the (small) feed table per article
                self.rows = [(i, n) for i, n in self.session.exec(select(Feed.id, Feed.name)).all()]
            self.known[name] = pick_feed_id(self.rows, name)
        return self.known[name]


_Test = Callable[[_Facts, _Feeds], int]


def _compiled(operand: Operand, terms: Mapping[str, tuple[str, ...]]) -> _Test:
    """``operand`` as a function of an article's facts to FALSE, UNKNOWN or TRUE.

    Exact for single terms and field terms; UNKNOWN where only the database can tell
    (a phrase of several terms all present, a word without a term, a language that is
    not ASCII, which the engines lower-case differently).
    """
    if isinstance(operand, Query):
        return _compiled_query(operand, terms)
    if isinstance(operand, Phrase):
        return _compiled_phrase(operand, terms)
    value = operand.value
    if operand.name is FieldName.ENTITY:
        return lambda facts, _: TRUE if value in facts.entities else FALSE
    if operand.name is FieldName.FEED:
        return lambda facts, feeds: TRUE if facts.feed_id is not None and feeds.id(value) == facts.feed_id else FALSE
    wanted = value.lower().replace("_", "-")
    prefix = wanted + "-"

    def language(facts: _Facts, _: _Feeds) -> int:
        stored = facts.language
        if stored is None:
            return FALSE
        if not stored.isascii():
            return UNKNOWN
        stored = stored.lower().replace("_", "-")
        return TRUE if stored == wanted or stored.startswith(prefix) else FALSE

    return language


def _compiled_phrase(phrase: Phrase, terms: Mapping[str, tuple[str, ...]]) -> _Test:
    found: list[str] = []
    for word in phrase.words:
        if not terms.get(word):
            return lambda facts, _: UNKNOWN  # a word without a term: the engine's own affair
        found += terms[word]
    if len(found) == 1:
        term = found[0]
        return lambda facts, _: TRUE if term in facts.terms else FALSE
    # Several terms: all there, and one after another.
    needed = frozenset(found)
    return lambda facts, _: facts.positions.phrase(found) if needed <= facts.terms else FALSE


def _compiled_query(query: Query, terms: Mapping[str, tuple[str, ...]]) -> _Test:
    groups = [[_compiled(o, terms) for o in group] for group in query.groups]
    excluded = [_compiled(o, terms) for o in query.excluded]

    def test(facts: _Facts, feeds: _Feeds) -> int:
        result = TRUE
        for group in groups:
            best = FALSE
            for operand in group:
                best = max(best, operand(facts, feeds))
                if best == TRUE:
                    break
            result = min(result, best)
            if result == FALSE:
                return FALSE
        for operand in excluded:
            result = min(result, TRUE - operand(facts, feeds))
            if result == FALSE:
                return FALSE
        return result

    return test


_ARTICLE = "percolated_article_id"


def _exact_statement(query: Query, dialect: str, feeds: _Feeds) -> sa.Select[int]:
    """Search's own condition restricted to one article (bound as ``_ARTICLE``)."""
    article_id = sa.bindparam(_ARTICLE, type_=sa.Integer)
    condition = query_condition(query, dialect=dialect, feed_id=feeds.id, article_id=article_id)
    return sa.select(sa.literal(1)).select_from(Article).where(col(Article.id) == article_id, condition)


__all__ = ["Percolator"]
