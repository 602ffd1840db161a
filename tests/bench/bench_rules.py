"""Benchmark: storing a 5,000-word article with 10 and with 1,000 alert rules, both engines.

Per engine: a fresh database made by the project's migrations, an archive of
``--archive`` articles (texts of 150-600 words cut from real article texts: the seed
corpus and the test fixtures), then ``--repeat`` times: store one 5,000-word article
(those texts concatenated to length) with its mentions found by the entity matcher,
evaluate the rules on it (``Percolator.matching``) and roll back — once with the first
10 rules and once with all 1,000. The rules are generated as people write them: mostly
``entity:NAME`` with one to three words ORed, a phrase now and then, an exclusion or
two, ``lang:``/``feed:`` sometimes, over the texts' own vocabulary (common and rare
words alike). Printed: the median time to store the article and the median time the
percolator took (and its fastest run, the least disturbed by other work on the
machine), with 10 and with 1,000 rules side by side, measured alternately, their
difference, and how many rules fired.

    python tests/bench/bench_rules.py [--archive 3000] [--repeat 15] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import html
import os
import random
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.config import DEFAULT_ENTITIES  # noqa: E402
from monitor.db import make_engine, session, upgrade_schema  # noqa: E402
from monitor.models import Article, Feed, Mention  # noqa: E402
from monitor.percolate import Percolator  # noqa: E402
from monitor.pipeline.match import EntityMatcher  # noqa: E402
from monitor.query import parse_query  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ARTICLE_WORDS = 5000
FEEDS = ["Steppe Daily", "The Diplomat", "Tengrinews"]


def _page_text(path: Path) -> str:
    """The paragraphs of an HTML page, tags dropped: enough for words, no extraction needed."""
    page = path.read_text(encoding="utf-8", errors="replace")
    paragraphs = re.findall(r"<p[^>]*>(.*?)</p>", page, flags=re.DOTALL | re.IGNORECASE)
    return html.unescape(re.sub(r"<[^>]+>", " ", " ".join(paragraphs)))


def project_texts() -> list[str]:
    """The seed corpus and the test fixtures' articles."""
    pages = ROOT / "tests" / "fixtures" / "pages"
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").glob("*.txt"))]
    texts += [p.read_text(encoding="utf-8") for p in sorted(pages.glob("*.txt"))]
    texts += [_page_text(p) for p in sorted(pages.glob("*.html"))]
    return [t for t in texts if len(t.split()) > 50]


def corpus_texts() -> list[str]:
    """The real pages of the shared corpus, when it is there ($TEST_CORPUS, else ../shared/corpus)."""
    corpus = Path(os.environ.get("TEST_CORPUS", "") or ROOT.parent / "shared" / "corpus")
    texts = [_page_text(p) for p in sorted((corpus / "pages").glob("*.html"))]
    return [t for t in texts if len(t.split()) > 50]


def long_article(texts: list[str]) -> str:
    words: list[str] = []
    while len(words) < ARTICLE_WORDS:
        for text in texts:
            words += text.split()
    return " ".join(words[:ARTICLE_WORDS])


def vocabulary(texts: list[str]) -> list[str]:
    """The texts' words of four letters or more seen twice or more, most frequent first,
    without the hundred most frequent (nobody is alerted on "which" or "said")."""
    counts = Counter(w for t in texts for w in re.findall(r"[^\W\d_]{4,}", t.lower()))
    return [w for w, n in counts.most_common() if n > 1][100:]


def generate_rules(texts: list[str], count: int, rng: random.Random) -> dict[str, str]:
    words = vocabulary(texts)
    # Common words are written more often than rare ones, but both are.
    weights = [1 / (rank + 10) for rank in range(len(words))]
    phrases = [" ".join(m) for t in texts for m in re.findall(r"\b([A-Za-z]{4,}) ([A-Za-z]{4,})\b", t)] or [
        "security treaty"
    ]
    names = [alias for entity in DEFAULT_ENTITIES for alias in (entity.name, *entity.aliases[:2])]
    rules: dict[str, str] = {}
    while len(rules) < count:
        parts = []
        if rng.random() < 0.8:
            name = rng.choice(names)
            parts.append(f'entity:"{name}"')
        ors = rng.choices(words, weights, k=rng.randint(1, 3))
        if rng.random() < 0.2:
            ors.append(f'"{rng.choice(phrases)}"')
        parts.append(" OR ".join(ors))
        if rng.random() < 0.3:
            parts.append(" OR ".join(rng.choices(words, weights, k=rng.randint(1, 2))))
        parts += [f"-{w}" for w in rng.choices(words, weights, k=rng.choice([0, 0, 1, 2]))]
        if rng.random() < 0.1:
            parts.append(rng.choice(["lang:en", "lang:ru", f'feed:"{rng.choice(FEEDS)}"']))
        rules[f"rule-{len(rules):04d}"] = " ".join(parts)
    return rules


def build_archive(engine: sa.Engine, texts: list[str], count: int, matcher: EntityMatcher) -> None:
    rng = random.Random(2)
    words = [t.split() for t in texts]
    start = datetime(2022, 1, 1, tzinfo=UTC)
    with session(engine) as db:
        feeds = []
        for name in FEEDS:
            feed = Feed(name=name, url=f"https://{name.lower().replace(' ', '-')}.example/rss")
            db.add(feed)
            db.flush()
            feeds.append(feed.id)
        for i in range(count):
            source = rng.choice(words)
            length = rng.randint(150, 600)
            offset = rng.randrange(max(1, len(source) - length))
            text = " ".join(source[offset : offset + length])
            article = Article(
                url=f"https://archive.example/{i}",
                title=" ".join(source[offset : offset + 8]),
                text=text,
                language=rng.choice(["en", "en-US", "ru", None]),
                feed_id=rng.choice(feeds),
                published_at=start + timedelta(hours=i),
                fetched_at=start + timedelta(hours=i),
                content_hash=uuid.uuid4().hex,
            )
            db.add(article)
            db.flush()
            for match in matcher.find(text):
                db.add(
                    Mention(
                        article_id=article.id,
                        entity=match.entity,
                        text=match.text[:500],
                        start=match.start,
                        end=match.end,
                        snippet=match.snippet[:1000],
                    )
                )
        db.commit()


def store_once(
    engine: sa.Engine, text: str, matcher: EntityMatcher, percolator: Percolator
) -> tuple[float, float, int]:
    """Store the article with its mentions, evaluate the rules, roll back: (total ms, rules ms, fired)."""
    with session(engine) as db:
        started = time.perf_counter()
        feed_id = db.exec(sa.select(Feed.id).where(Feed.name == FEEDS[0])).scalar_one()  # type: ignore[call-overload]
        article = Article(
            url=f"https://news.example/{uuid.uuid4().hex}",
            title="Protests in Almaty as the CSTO sends troops",
            text=text,
            language="en",
            feed_id=feed_id,
            fetched_at=datetime.now(UTC),
            content_hash=uuid.uuid4().hex,
        )
        db.add(article)
        db.flush()
        assert article.id is not None
        for match in matcher.find(text):
            db.add(
                Mention(
                    article_id=article.id,
                    entity=match.entity,
                    text=match.text[:500],
                    start=match.start,
                    end=match.end,
                    snippet=match.snippet[:1000],
                )
            )
        db.flush()
        rules_started = time.perf_counter()
        fired = percolator.matching(db, article.id)
        finished = time.perf_counter()
        db.rollback()
    return (finished - started) * 1000, (finished - rules_started) * 1000, len(fired)


def engine_for(kind: str, pg_url: str, workdir: Path) -> tuple[sa.Engine, sa.Engine | None, str | None]:
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{workdir / 'rules.db'}")
        upgrade_schema(engine)
        return engine, None, None
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"monitor_bench_rules_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False))
    upgrade_schema(engine)
    return engine, admin, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=DEFAULT_PG)
    args = parser.parse_args()

    own = project_texts()
    texts = own + corpus_texts()
    article = long_article(own)
    matcher = EntityMatcher(DEFAULT_ENTITIES)
    rules = generate_rules(texts, 1000, random.Random(3))
    queries = {name: parse_query(text) for name, text in rules.items()}
    few = dict(list(queries.items())[:10])
    print(
        f"article: {len(article.split())} words, {len(matcher.find(article))} mentions; "
        f"archive: {args.archive} articles from {len(texts)} texts; rules: e.g. {list(rules.values())[:3]}"
    )
    print(f"{'engine':<11} {'rules':>6} {'store p50 ms':>13} {'rules p50 ms':>13} {'rules min ms':>13} {'fired':>6}")
    for kind in args.engines.split(","):
        with tempfile.TemporaryDirectory() as workdir:
            engine, admin, name = engine_for(kind, args.postgres, Path(workdir))
            try:
                build_archive(engine, texts, args.archive, matcher)
                percolators = {"10": Percolator(few, DEFAULT_ENTITIES), "1000": Percolator(queries, DEFAULT_ENTITIES)}
                runs: dict[str, list[tuple[float, float, int]]] = {label: [] for label in percolators}
                for percolator in percolators.values():
                    store_once(engine, article, matcher, percolator)  # warm-up: the rules' words indexed
                # Alternating, so that a busy machine weighs on both alike.
                for _ in range(args.repeat):
                    for label, percolator in percolators.items():
                        runs[label].append(store_once(engine, article, matcher, percolator))
                medians = {}
                for label, measured in runs.items():
                    total = statistics.median(r[0] for r in measured)
                    percolating = statistics.median(r[1] for r in measured)
                    fastest = min(r[1] for r in measured)
                    medians[label] = (total, percolating, fastest)
                    print(
                        f"{kind:<11} {label:>6} {total:13.1f} {percolating:13.2f} {fastest:13.2f} {measured[0][2]:6d}"
                    )
                added = [medians["1000"][i] - medians["10"][i] for i in range(3)]
                print(
                    f"{kind:<11} {'diff':>6} {added[0]:13.1f} {added[1]:13.2f} {added[2]:13.2f}"
                    "   (target: 1,000 rules add <= 5 ms)"
                )
            finally:
                engine.dispose()
                if admin is not None:
                    with admin.connect() as connection:
                        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    admin.dispose()


if __name__ == "__main__":
    main()
