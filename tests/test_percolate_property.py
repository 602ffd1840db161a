"""Generated queries on generated archives: a rule fires exactly when search lists the article.

Each example builds a small archive inside one transaction (feeds, articles with
titles, texts, languages and mentions), asks ``search_articles`` for every query and
the ``Percolator`` for every article, compares, and rolls back. The words come from a
small vocabulary with stem variants (protest, protests, protesters), accents (café,
cafe), Cyrillic with case endings, CJK and digits, so the engines' stemming and
folding are what decides.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from monitor.config import EntityConfig
from monitor.db import session
from monitor.errors import QueryError
from monitor.models import Article, Feed, Mention
from monitor.percolate import Percolator
from monitor.query import parse_query
from monitor.search import SearchFilters, search_articles

VOCABULARY = [
    "protest",
    "protests",
    "protesters",
    "protesting",
    "security",
    "secure",
    "treaty",
    "treaties",
    "running",
    "run",
    "the",
    "café",
    "cafe",
    "CAFÉS",
    "Алматы",
    "Алматыда",
    "протест",
    "東京",
    "2022",
    "troops",
    "football",
    "ұйым",
]
ENTITIES = [
    EntityConfig(name="Almaty", aliases=["Almaty", "Alma-Ata", "Алматы"]),
    EntityConfig(name="CSTO", aliases=["CSTO", "ОДКБ"]),
    EntityConfig(name="Nazarbayev"),
]
ENTITY_SPELLINGS = ["Almaty", "almaty", '"Alma-Ata"', "алматы", "CSTO", "одкб", "Nazarbayev"]
FEEDS = ["Steppe Daily", "The Diplomat"]
FEED_SPELLINGS = ['"Steppe Daily"', '"the diplomat"', "Nowhere"]
LANGUAGES = [None, "en", "en-US", "EN_gb", "ru", "kk", "e"]
LANGUAGE_TERMS = ["en", "en-us", "ru", "EN_GB", "e"]

words = st.sampled_from(VOCABULARY)


def texts(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    return st.lists(words, min_size=min_size, max_size=max_size).map(" ".join)


articles = st.lists(
    st.fixed_dictionaries(
        {
            "title": st.one_of(st.none(), texts(1, 3)),
            "text": texts(1, 12),
            "feed": st.sampled_from([None, *FEEDS]),
            "language": st.sampled_from(LANGUAGES),
            "entities": st.lists(st.sampled_from([e.name for e in ENTITIES]), max_size=2, unique=True),
            "duplicate": st.booleans(),
        }
    ),
    min_size=1,
    max_size=6,
)

operands = st.one_of(
    words,
    st.lists(words, min_size=2, max_size=3).map(lambda ws: '"' + " ".join(ws) + '"'),
    st.sampled_from(ENTITY_SPELLINGS).map(lambda name: f"entity:{name}"),
    st.sampled_from(FEED_SPELLINGS).map(lambda name: f"feed:{name}"),
    st.sampled_from(LANGUAGE_TERMS).map(lambda code: f"lang:{code}"),
)


def _conjunction(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    ors = st.lists(inner, min_size=1, max_size=3).map(" OR ".join)
    excluded = st.lists(inner.map(lambda text: "-" + text), max_size=2)
    return st.tuples(st.lists(ors, min_size=1, max_size=3), excluded).map(lambda t: " ".join(t[0] + t[1]))


groups = st.recursive(operands, lambda inner: _conjunction(inner).map(lambda text: f"({text})"), max_leaves=6)
queries = _conjunction(groups)


def _store(db: Any, generated: list[dict[str, Any]]) -> list[int]:
    feed_ids = {}
    for name in FEEDS:
        feed = Feed(name=name, url=f"https://{name.replace(' ', '-').lower()}.example/rss")
        db.add(feed)
        db.flush()
        feed_ids[name] = feed.id
    ids = []
    for number, item in enumerate(generated):
        article = Article(
            url=f"https://news.example/{number}",
            title=item["title"],
            text=item["text"],
            language=item["language"],
            feed_id=feed_ids.get(item["feed"]),
            content_hash=str(number).ljust(64, "0"),
            is_duplicate=item["duplicate"],
        )
        db.add(article)
        db.flush()
        for entity in item["entities"]:
            db.add(Mention(article_id=article.id, entity=entity, text=entity, start=0, end=1, snippet=entity))
        ids.append(article.id)
    db.flush()
    return ids


def _listed(db: Any, query: str) -> set[int]:
    filters = SearchFilters(query=query, include_duplicates=True, limit=500)
    try:
        return {item.id for item in search_articles(db, filters, entities=ENTITIES).items}
    except QueryError:
        return set()  # a feed nobody has: search refuses the query, so it lists nothing


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=articles, texts_of_queries=st.lists(queries, min_size=1, max_size=4))
def test_rules_fire_exactly_on_what_search_lists(
    engine: sa.Engine, generated: list[dict[str, Any]], texts_of_queries: list[str]
) -> None:
    parsed = {}
    for number, text in enumerate(texts_of_queries):
        try:
            parsed[f"rule{number}"] = parse_query(text)
        except QueryError:
            continue
    assume(parsed)
    percolator = Percolator(parsed, ENTITIES)
    with session(engine) as db:
        try:
            ids = _store(db, generated)
            listed = {name: _listed(db, str(query)) for name, query in parsed.items()}
            for article_id in ids:
                expected = [name for name in parsed if article_id in listed[name]]
                assert percolator.matching(db, article_id) == expected, (
                    article_id,
                    {n: str(q) for n, q in parsed.items()},
                )
        finally:
            db.rollback()
