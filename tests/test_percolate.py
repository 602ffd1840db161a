"""Alert rules evaluated on one stored article: firing is search membership, on both engines."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from monitor.config import DEFAULT_ENTITIES, EntityConfig
from monitor.db import session
from monitor.errors import QueryError
from monitor.models import Article, Mention
from monitor.percolate import Percolator
from monitor.query import parse_query
from tests.test_search import Archive, build_archive

QUERIES = [
    "Almaty",
    "protest",
    "security treaty",
    '"security treaty"',
    "Nazarbayev OR gas",
    "security -Nazarbayev",
    "Протесты -ОДКБ",
    "cafe zurich",
    "the",
    "entity:Almaty",
    'entity:"alma-ata" protest',
    "entity:Almaty -entity:CSTO",
    'prices -feed:"Example World"',
    'feed:"steppe daily"',
    "lang:en",
    "prices -lang:en",
    "(protest OR leaves) -(ОДКБ OR tokayev)",
    "(entity:CSTO OR gas) -(prices lang:en)",
    "feed:Nowhere OR gas",
    "-feed:Nowhere gas",
]


@pytest.fixture
def rules() -> Percolator:
    return Percolator({text: parse_query(text) for text in QUERIES}, DEFAULT_ENTITIES)


def listed(archive: Archive, query: str) -> set[int]:
    try:
        page = archive.search(query=query, include_duplicates=True, limit=500)
    except QueryError:
        return set()  # an unknown feed: search lists nothing
    return {item.id for item in page.items}


def test_an_article_fires_exactly_the_rules_search_lists_it_for(engine: sa.Engine, rules: Percolator) -> None:
    archive = build_archive(engine)
    expected = {
        article_id: [q for q in QUERIES if article_id in listed(archive, q)] for article_id in archive.ids.values()
    }
    with session(engine) as db:
        fired = {article_id: rules.matching(db, article_id) for article_id in archive.ids.values()}
    assert fired == expected
    assert any(fired.values()) and not all(len(names) == len(QUERIES) for names in fired.values())


def test_rules_see_the_callers_uncommitted_article_and_commit_nothing(engine: sa.Engine) -> None:
    rules = Percolator(
        {"almaty-unrest": parse_query("entity:Almaty protest OR unrest -football"), "csto": parse_query("entity:CSTO")},
        DEFAULT_ENTITIES,
    )
    with session(engine) as db:
        article = Article(
            url="https://news.example/new",
            title="Unrest in Alma-Ata",
            text="Unrest spread through Alma-Ata overnight.",
            content_hash="n" * 64,
        )
        db.add(article)
        db.flush()
        assert article.id is not None
        db.add(Mention(article_id=article.id, entity="Almaty", text="Alma-Ata", start=10, end=18, snippet="…"))
        db.flush()
        assert rules.matching(db, article.id) == ["almaty-unrest"]
        db.rollback()
    with session(engine) as db:
        assert db.exec(sa.select(sa.func.count()).select_from(Article)).one()[0] == 0  # type: ignore[call-overload]


def test_an_unknown_entity_is_refused_when_the_rules_are_made() -> None:
    with pytest.raises(QueryError, match="did you mean Almaty"):
        Percolator({"r": parse_query("entity:Almatty")}, DEFAULT_ENTITIES)
    with pytest.raises(QueryError, match="not a tracked entity"):
        Percolator({"r": parse_query("a -(b OR entity:Astana)")}, [EntityConfig(name="Almaty")])
