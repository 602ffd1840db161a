"""The search language, time values and cursors: pure functions, no database."""

from __future__ import annotations

import base64
import json
import unicodedata
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import DEFAULT_ENTITIES, EntityConfig
from monitor.errors import QueryError
from monitor.query import (
    MAX_QUERY_DEPTH,
    MAX_QUERY_LENGTH,
    EntityNames,
    Field,
    FieldName,
    Operand,
    Phrase,
    Query,
    parse_query,
)
from monitor.search import MAX_CURSOR_LENGTH, decode_cursor, encode_cursor
from monitor.timespec import EARLIEST, LATEST, parse_time

NOW = datetime(2022, 1, 10, 12, 30, tzinfo=UTC)


def words(*items: str) -> Phrase:
    return Phrase(tuple(items))


def entity(value: str) -> Field:
    return Field(FieldName.ENTITY, value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Almaty", Query(((words("almaty"),),))),
        ("Almaty protests", Query(((words("almaty"),), (words("protests"),)))),
        ('"security treaty"', Query(((words("security", "treaty"),),))),
        ("Almaty OR Алматы", Query(((words("almaty"), words("алматы")),))),
        # OR binds tighter than the implicit AND.
        (
            "protests Almaty OR Алматы",
            Query(((words("protests"),), (words("almaty"), words("алматы")))),
        ),
        ("a OR b OR c", Query(((words("a"), words("b"), words("c")),))),
        ("CSTO -Tokayev", Query(((words("csto"),),), (words("tokayev"),))),
        ('CSTO -"state media"', Query(((words("csto"),),), (words("state", "media"),))),
        # Lower-case "or" is a word; quoted OR too.
        ("war or peace", Query(((words("war"),), (words("or"),), (words("peace"),)))),
        # Inner punctuation splits a word into a phrase, as the index tokenizers do.
        ("Alma-Ata", Query(((words("alma", "ata"),),))),
        ("12:30 Almaty:", Query(((words("12", "30"),), (words("almaty"),)))),
        # Backend operator characters are plain separators.
        ("Almaty* ^CSTO (gas)", Query(((words("almaty"),), (words("csto"),), (words("gas"),)))),
        ("NEAR(a b)", Query(((words("near"),), (words("a"),), (words("b"),)))),
        # Parentheses group; a group alone in its place is the same as no group.
        ("(a OR b) c", Query(((words("a"), words("b")), (words("c"),)))),
        ("a (b -c)", Query(((words("a"),), (words("b"),)), (words("c"),))),
        ("((a))", Query(((words("a"),),))),
        ("a OR (b c)", Query(((words("a"), Query(((words("b"),), (words("c"),)))),))),
        ("a -(b OR c)", Query(((words("a"),),), (Query(((words("b"), words("c")),)),))),
        ("a -(b)", Query(((words("a"),),), (words("b"),))),
        ('(a OR "b c")-d', Query(((words("a"), words("b", "c")),), (words("d"),))),
        # Field terms, quoted or not, excluded or OR-ed like words.
        ("entity:Almaty", Query(((entity("Almaty"),),))),
        ('Entity:"Alma-Ata"', Query(((entity("Alma-Ata"),),))),
        (
            'feed:"The Diplomat" lang:en',
            Query(((Field(FieldName.FEED, "The Diplomat"),), (Field(FieldName.LANG, "en"),))),
        ),
        (
            "entity:Almaty protest OR unrest OR troops -football",
            Query(((entity("Almaty"),), (words("protest"), words("unrest"), words("troops"))), (words("football"),)),
        ),
        ("a -entity:CSTO", Query(((words("a"),),), (entity("CSTO"),))),
        ("(entity:CSTO OR ОДКБ)", Query(((entity("CSTO"), words("одкб")),))),
        ("lang:pt_BR", Query(((Field(FieldName.LANG, "pt_BR"),),))),
        ("feed:Tengrinews)x(", None),
        ("a AND b NOT c", Query(tuple((words(w),) for w in ("a", "and", "b", "not", "c")))),
        ("ОДКБ   Назарбаев", Query(((words("одкб"),), (words("назарбаев"),)))),
        ("a a", Query(((words("a"),), (words("a"),)))),
        ("x - y", Query(((words("x"),), (words("y"),)))),
        ("a - OR b", Query(((words("a"), words("b")),))),
    ],
)
def test_parse_query(text: str, expected: Query | None) -> None:
    if expected is None:
        with pytest.raises(QueryError, match="unbalanced parentheses"):
            parse_query(text)
        return
    assert parse_query(text) == expected
    assert parse_query(str(expected)) == expected


def test_rendering_to_fts5_and_tsquery() -> None:
    query = parse_query('"security treaty" Almaty OR Алматы -Tokayev -"state media"')
    assert query.to_fts5() == ('("security treaty" AND ("almaty" OR "алматы")) NOT "tokayev" NOT "state media"')
    assert query.to_tsquery() == (
        "'security' <-> 'treaty' & ('almaty' | 'алматы') & !('tokayev') & !('state' <-> 'media')"
    )
    assert str(query) == '"security treaty" almaty OR алматы -tokayev -"state media"'


def test_rendering_of_groups() -> None:
    query = parse_query('a (b OR (c d)) -(e OR "f g")')
    assert query.to_fts5() == '("a" AND ("b" OR ("c" AND "d"))) NOT (("e" OR "f g"))'
    assert query.to_tsquery() == "'a' & ('b' | ('c' & 'd')) & !((('e' | 'f' <-> 'g')))"
    assert str(query) == 'a b OR (c d) -(e OR "f g")'
    assert query.is_text()
    assert not parse_query("a OR entity:x").is_text()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Almaty", "Almaty"),
        ("almaty", "Almaty"),
        ("ALMA-ATA", "Almaty"),
        ("alma ata", "Almaty"),
        ("Алматы", "Almaty"),
        ("одкб", "CSTO"),
        ("collective security treaty organization", "CSTO"),
        (" Nazarbaïev ", "Nazarbayev"),
    ],
)
def test_entity_names_resolve_names_and_aliases(name: str, expected: str) -> None:
    assert EntityNames(DEFAULT_ENTITIES).resolve(name) == expected


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Almatty", "'Almatty' is not a tracked entity (did you mean Almaty?)"),
        ("Astana", "is not a tracked entity"),
        ("", "empty name"),
        ("a\x00b", "not a valid name"),
    ],
)
def test_unknown_entity_is_an_error_with_a_suggestion(name: str, reason: str) -> None:
    with pytest.raises(QueryError) as caught:
        EntityNames(DEFAULT_ENTITIES).resolve(name)
    assert reason in str(caught.value) and "\n" not in str(caught.value)


def test_unknown_entity_without_anything_close_lists_the_tracked_ones() -> None:
    names = EntityNames([EntityConfig(name="Almaty"), EntityConfig(name="CSTO")])
    with pytest.raises(QueryError, match=r"'Zzzz' is not a tracked entity \(tracked: Almaty, CSTO\)"):
        names.resolve("Zzzz")


MALFORMED = {
    '"unbalanced': "unbalanced quote",
    'Almaty "security treaty': "unbalanced quote",
    '"': "unbalanced quote",
    '"""': "unbalanced quote",
    '-"x': "unbalanced quote",
    '""': "empty phrase",
    '"   "': "empty phrase",
    'a "*!?" b': "empty phrase",
    "Almaty OR": "OR must stand between",
    "OR Almaty": "OR must stand between",
    "a OR OR b": "OR must stand between",
    "OR": "OR must stand between",
    "OR OR": "OR must stand between",
    "a OR *": "OR must stand between",
    "a OR -b": "excluded word",
    "-a OR b": "excluded word",
    "-Tokayev": "only exclusions",
    '-a -"b c"': "only exclusions",
    "": "empty",
    "   ": "empty",
    "*": "no words",
    "* ^ ( ) : -": "empty parentheses",
    "* ^ : -": "no words",
    "(a": "a ( is not closed",
    "(a OR (b c)": "a ( is not closed",
    "a)": "a ) has no ( before it",
    ")(": "a ) has no ( before it",
    "a () b": "empty parentheses",
    "a ( * ) b": "empty parentheses",
    "a (-b)": "a group of only exclusions",
    "(-b) OR a": "a group of only exclusions",
    "-(a b)": "only exclusions",
    "-entity:CSTO": "only exclusions",
    "(a) OR": "OR must stand between",
    "(OR a)": "OR must stand between",
    "a OR -(b)": "excluded word",
    "(" * (MAX_QUERY_DEPTH + 1) + "a" + ")" * (MAX_QUERY_DEPTH + 1): "nested too deep",
    "title:Almaty": "unknown field 'title': the fields are entity:, feed:, lang:",
    "https://example.org": "unknown field 'https'",
    "a:* | b": "unknown field 'a'",
    "entity: Almaty": "entity: needs a value",
    'entity:"" x': "entity: needs a value",
    'feed:"  "': "feed: needs a value",
    "lang:e+n": "not a language code",
    "lang:" + "e" * 40: "not a language code",
    'entity:"a\x01b"': "not a valid entity name",
    "entity:" + "x" * 501: "not a valid entity name",
    "'; --": "no words",
    "\x00": "no words",
    "\ud800": "no words",
    "x" * (MAX_QUERY_LENGTH + 1): "too long",
    "word " * 300: "too long",
    '"a" ' * 60: "too many",
}


@pytest.mark.parametrize(("text", "reason"), list(MALFORMED.items()), ids=repr)
def test_malformed_query_is_a_clear_one_line_error(text: str, reason: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    message = str(caught.value)
    assert message.startswith("query: ")
    assert reason in message
    assert "\n" not in message and len(message) < 200
    # The message can always be printed (no lone surrogates echoed back).
    message.encode("utf-8")


# Odd input that still means a search for words: it must parse, render, and (in
# test_search.py) run on both engines.
ODD_BUT_VALID = [
    "NEAR(Almaty CSTO, 5)",
    "Almaty*",
    "^Almaty",
    "{title text}: Almaty",
    "(Almaty OR CSTO) -(gas)",
    "Almaty AND CSTO",
    "NOT Almaty",
    "'; DROP TABLE article; --",
    "Almaty' OR '1'='1",
    "a :* | b & !c <-> d",
    '"a" * "b" + c',
    "\\ Almaty \\'",
    "Almaty\x00CSTO",
    "a\ud800b",
    "İstanbul café Zürich",
    "e\u0301cole",
    "😀 Almaty",
    "ـــ٣ 中文 ᾅ",
    "x" * MAX_QUERY_LENGTH,
    " OR ".join(["Almaty"] * 25),
]


def phrases_of(operand: Operand) -> list[Phrase]:
    if isinstance(operand, Phrase):
        return [operand]
    if isinstance(operand, Query):
        return [p for inner in operand.operands() for p in phrases_of(inner)]
    return []


@pytest.mark.parametrize("text", ODD_BUT_VALID, ids=repr)
def test_odd_input_parses_into_words_only(text: str) -> None:
    query = parse_query(text)
    for phrase in phrases_of(query):
        for word in phrase.words:
            # Only letters, digits and marks reach the backends.
            assert word and all(unicodedata.category(c)[0] in "LNM" for c in word)
            assert not set(word) & set("\"'*^():{}+-|&!<>\\;\x00")
    query.to_fts5()
    query.to_tsquery()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-01-06", datetime(2022, 1, 6, tzinfo=UTC)),
        ("2022-01-06T10:00:00Z", datetime(2022, 1, 6, 10, tzinfo=UTC)),
        ("2022-01-06T10:00:00z", datetime(2022, 1, 6, 10, tzinfo=UTC)),
        ("2022-01-06T10:00:00+02:00", datetime(2022, 1, 6, 8, tzinfo=UTC)),
        ("2022-01-06 10:00", datetime(2022, 1, 6, 10, tzinfo=UTC)),
        ("7d", NOW - timedelta(days=7)),
        ("12h", NOW - timedelta(hours=12)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2)),
        ("1d12h", NOW - timedelta(days=1, hours=12)),
        (" 7D ", NOW - timedelta(days=7)),
        ("now", NOW),
        ("today", datetime(2022, 1, 10, tzinfo=UTC)),
        ("yesterday", datetime(2022, 1, 9, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


def test_a_bare_date_as_upper_bound_includes_the_whole_day() -> None:
    end = parse_time("2022-01-06", now=NOW, end=True)
    assert end == datetime(2022, 1, 7, tzinfo=UTC) - timedelta(microseconds=1)
    assert parse_time("2022-01-06T10:00:00Z", now=NOW, end=True) == datetime(2022, 1, 6, 10, tzinfo=UTC)
    assert parse_time("today", now=NOW, end=True).date() == NOW.date()


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "abc",
        "2022-13-01",
        "2022-01-32",
        "2022-01-06T25:00",
        "7x",
        "-7d",
        "7",
        "7.5",
        "7 days",
        "1e9d",
        "99999999999999d",
        "100000000d",
        "d7",
        "2022/01/06",
        "\x00",
        "\ud800",
    ],
    ids=repr,
)
def test_bad_time_is_a_query_error(text: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_time(text, now=NOW)
    message = str(caught.value)
    assert message.startswith("time: ") and "\n" not in message
    assert "7d" in message  # says what would work


def test_cursor_round_trip() -> None:
    moment = datetime(2022, 1, 6, 10, 0, 0, 123456, tzinfo=UTC)
    cursor = encode_cursor(moment, 42)
    assert cursor.isascii() and "=" not in cursor
    assert decode_cursor(cursor) == (moment, 42)


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!",
        "bnVsbA",
        "WzFd",
        "WyJ4IiwgMV0",
        "WyIyMDIyLTAxLTA2IiwgIngiXQ",
        "WyIyMDIyLTAxLTA2IiwgdHJ1ZV0",
        "W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW10",
        "\ud800",
    ],
)
def test_invalid_cursor_is_a_query_error(cursor: str) -> None:
    with pytest.raises(QueryError, match="invalid cursor"):
        decode_cursor(cursor)


# ------------------------------------------------------------------- bounds on input


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("0001-01-01T00:00:00+05:00", "out of range"),  # before year 1 once in UTC
        ("9999-12-31T23:00:00-05:00", "out of range"),  # after 9999 once in UTC
        ("1969-12-31", "out of range"),
        ("1969-12-31T23:59:59Z", "out of range"),
        ("0001-01-01", "out of range"),
        ("5000w", "out of range"),  # 96 years before NOW
        ("999999999999w", "100 years"),
        ("99999999999999999999d", "100 years"),
        ("1" * 101, "too long"),
    ],
)
def test_a_time_out_of_range_is_a_query_error(text: str, reason: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_time(text, now=NOW)
    message = str(caught.value)
    assert message.startswith("time: ") and reason in message and "\n" not in message


def test_the_range_of_times_reaches_from_1970_to_9999() -> None:
    assert parse_time("1970-01-01", now=NOW) == EARLIEST
    assert parse_time("9999-12-31", now=NOW, end=True) == LATEST
    assert parse_time("9999-12-31T23:59:59+00:00", now=NOW) < LATEST


@pytest.mark.parametrize(
    "payload",
    [
        ["0001-01-01T00:00:00+05:00", 1],  # a valid time that overflows in UTC
        ["2022-01-06T10:00:00+00:00", 2**63],
        ["2022-01-06T10:00:00+00:00", 2**70],
        ["2022-01-06T10:00:00+00:00", -1],
        ["2022-01-06T10:00:00+00:00", int("9" * 50)],
    ],
    ids=repr,
)
def test_a_cursor_out_of_range_is_a_query_error(payload: list[object]) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    with pytest.raises(QueryError) as caught:
        decode_cursor(cursor)
    assert str(caught.value).startswith("cursor: invalid cursor (")


def test_an_overlong_cursor_is_refused_before_decoding() -> None:
    long_cursor = encode_cursor(datetime(2022, 1, 6, tzinfo=UTC), 1) + "A" * MAX_CURSOR_LENGTH
    with pytest.raises(QueryError, match="longer than"):
        decode_cursor(long_cursor)


# --------------------------------------------------------- the parser, any text at all

# Text as users type it, and as attackers do: words, ORs, exclusions and phrases in
# any arrangement, built of odd characters (case-changing letters, combining marks,
# punctuation, surrogates, controls); and plain random text.
_CHARS = st.one_of(
    st.sampled_from([*"abz09-.:*", "İ", "ß", "ﬁ", "\u0301", "Ω", "字", "٣", "ǅ", "\x00", "\ud800"]),
    st.characters(codec=None),
)
_WORDS = st.text(_CHARS, min_size=1, max_size=8)
_TOKENS = st.one_of(
    _WORDS,
    st.just("OR"),
    _WORDS.map(lambda w: "-" + w),
    st.lists(_WORDS, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"'),
    st.lists(_WORDS, min_size=1, max_size=3).map(lambda ws: '-"' + " ".join(ws) + '"'),
    st.sampled_from(["(", ")", "-(", "entity:", "feed:", "lang:", "-lang:", 'feed:"']),
    st.tuples(st.sampled_from(["entity:", "-feed:", "lang:"]), _WORDS).map("".join),
)
query_texts = st.one_of(
    st.lists(_TOKENS, max_size=30).map(" ".join).filter(lambda text: len(text) <= 400),
    st.text(st.one_of(_CHARS, st.sampled_from('" -O()')), max_size=400),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query_texts)
def test_any_text_parses_to_a_query_or_a_query_error(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as exc:
        assert str(exc).startswith("query: ") and "\n" not in str(exc)
        return
    # What the query renders to reads back as the same query.
    assert parse_query(str(query)) == query
    if query.is_text():
        query.to_fts5()
        query.to_tsquery()


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec=None), max_size=120))
def test_any_text_is_a_time_or_a_query_error(text: str) -> None:
    try:
        moment = parse_time(text, now=NOW)
    except QueryError as exc:
        assert str(exc).startswith("time: ") and "\n" not in str(exc)
        return
    assert EARLIEST <= moment <= LATEST and moment.tzinfo is not None
