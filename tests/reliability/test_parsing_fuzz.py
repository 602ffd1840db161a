"""Feed parsing fuzzed: a few thousand broken variants of real feeds, each parsed and scanned.

Every feed of ``tests/fixtures/feeds`` (always) and of the real-world corpus (when it is
there) is mutated at random (``tests.support.mutations``: bit flips, truncations, tags
duplicated or removed, random bytes, encodings swapped, declarations changed, markup
left open, deep nesting) and handed to ``parse_feed`` with a content type picked at
random. It must return a ``ParsedFeed`` whose entries keep the parser's promises (a
non-empty key, absolute http(s) links, aware UTC dates) or raise ``FetchError``, never
anything else; ``entry_links`` must return a list or None. The files are fuzzed in
sandboxed children (``tests.support.bounded``) with a memory limit, a time limit per
file and a bound on every single parse.

The run is reproducible: ``RELIABILITY_SEED`` (default 1) seeds every file's mutations,
and a failure names the file, the mutation's number and kinds, and keeps its bytes.
"""

from __future__ import annotations

import os
import random
import time
import traceback
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.errors import FetchError
from monitor.pipeline.parse import ParsedFeed, entry_links, parse_feed
from tests.reliability.conftest import Ledger
from tests.support.bounded import Sandbox
from tests.support.corpus import corpus_files, needs_corpus
from tests.support.mutations import CONTENT_TYPES, mutate
from tests.support.paths import FIXTURES

SEED = int(os.environ.get("RELIABILITY_SEED", "1"))
FEED_URL = "https://news.example.org/feeds/world.xml"
OWN = sorted(path for path in (FIXTURES / "feeds").iterdir() if path.is_file())
CORPUS = corpus_files("feeds/real", "feeds/illformed", "feeds/encoding", "feeds/wellformed")
OWN_MUTATIONS = 60  # per fixture file: ~1400 in all
CORPUS_MUTATIONS = {"real": 16, "illformed": 6, "encoding": 4, "wellformed": 2}  # ~1400 in all
PARSE_LIMIT = 5.0  # seconds for one parse of one mutation
FILE_LIMIT = 120.0  # seconds for all the mutations of one file


def broken_promise(parsed: Any) -> str | None:
    """What is wrong with a parse result, or None."""
    if not isinstance(parsed, ParsedFeed):
        return f"returned {type(parsed).__name__}, not a ParsedFeed"
    if parsed.link is not None and not parsed.link.startswith(("http://", "https://")):
        return f"feed link {parsed.link[:100]!r} is not absolute http(s)"
    for entry in parsed.entries:
        if not isinstance(entry.key, str) or not entry.key or len(entry.key) > 500:
            return f"entry key {entry.key!r:.100}"
        if entry.url is not None and not entry.url.startswith(("http://", "https://")):
            return f"entry link {entry.url[:100]!r} is not absolute http(s)"
        if entry.published_at is not None and entry.published_at.utcoffset() != timedelta(0):
            return f"entry date {entry.published_at!r} is not aware UTC"
        for name in ("title", "summary", "content", "author"):
            if not isinstance(getattr(entry, name), str | None):
                return f"entry {name} is a {type(getattr(entry, name)).__name__}"
    return None


def fuzz_file(path: str, count: int, seed: int, keep: str) -> dict[str, Any]:
    """Parse ``count`` mutations of the file at ``path`` (in a sandboxed child)."""
    source = Path(path)
    data = source.read_bytes()
    rng = random.Random(f"{seed}:{source.parent.name}/{source.name}")
    outcomes: Counter[str] = Counter()
    slowest = (0.0, "")
    failures: list[str] = []
    for number in range(count):
        body, kinds = mutate(data, rng)
        content_type = rng.choice(CONTENT_TYPES)
        what = f"{source.name} #{number} ({'+'.join(kinds)}, content type {content_type!r}, seed {seed})"
        problem = None
        started = time.monotonic()
        try:
            parsed = parse_feed(body, url=FEED_URL, content_type=content_type)
            problem = broken_promise(parsed)
            outcomes["parsed"] += 1
        except FetchError as exc:
            outcomes[exc.kind.value] += 1
        except Exception:
            problem = "parse_feed raised " + traceback.format_exc(limit=-3)
        try:
            links = entry_links(body, url=FEED_URL)
            if links is not None and not isinstance(links, list):
                problem = problem or f"entry_links returned {type(links).__name__}"
        except Exception:
            problem = problem or "entry_links raised " + traceback.format_exc(limit=-3)
        elapsed = time.monotonic() - started
        slowest = max(slowest, (elapsed, what))
        if elapsed > PARSE_LIMIT:
            problem = problem or f"took {elapsed:.1f}s"
        if problem:
            kept = Path(keep) / f"{source.name}.{number}.bin"
            kept.write_bytes(body)
            failures.append(f"{what}: {problem} (bytes in {kept})")
    return {"count": count, "outcomes": outcomes, "slowest": slowest, "failures": failures}


@pytest.fixture(scope="module")
def sandbox() -> Any:
    with Sandbox(processes=2, memory=1 << 30) as running:
        yield running


def fuzz(sandbox: Sandbox, files: list[tuple[Path, int]], keep: Path) -> tuple[int, list[str], Counter[str]]:
    """Fuzz every file; the mutations tried, the failures, the outcomes by kind."""
    pending = [(path, sandbox.submit(fuzz_file, str(path), count, SEED, str(keep))) for path, count in files]
    tried, failures, outcomes = 0, [], Counter[str]()
    for path, result in pending:
        report = sandbox.wait(result, timeout=FILE_LIMIT, what=f"fuzzing {path.name}")
        tried += report["count"]
        outcomes.update(report["outcomes"])
        failures.extend(report["failures"])
    return tried, failures, outcomes


def test_mutated_fixture_feeds_parse_or_fail_cleanly(sandbox: Sandbox, ledger: Ledger, tmp_path: Path) -> None:
    tried, failures, outcomes = fuzz(sandbox, [(path, OWN_MUTATIONS) for path in OWN], tmp_path)
    ledger.record("parse", tried=tried, survived=tried - len(failures))
    assert failures == [], "\n".join(failures[:20])
    # The mutations reach both sides: many still parse, many are refused.
    refused = sum(n for kind, n in outcomes.items() if kind != "parsed")
    assert outcomes["parsed"] > tried // 10 and refused > tried // 10


@needs_corpus("feeds")
def test_mutated_corpus_feeds_parse_or_fail_cleanly(sandbox: Sandbox, ledger: Ledger, tmp_path: Path) -> None:
    files = [(path, CORPUS_MUTATIONS.get(path.parent.name, 3)) for path in CORPUS]
    tried, failures, _ = fuzz(sandbox, files, tmp_path)
    ledger.record("parse", tried=tried, survived=tried - len(failures))
    assert failures == [], "\n".join(failures[:20])


# ------------------------------------------------------------- what the fuzzing found

RSS_WITH = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Desk</title>'
    "<link>https://news.example.org/</link><item><title>Story</title>"
    "<link>https://news.example.org/story</link><description>{}</description></item></channel></rss>"
)
CONTROL_CHARACTERS = {
    # Well-formed XML: the escaped HTML holds a character reference to U+0001.
    "rss-character-reference": RSS_WITH.format("&lt;p&gt;One&amp;#1;two&lt;/p&gt;").encode(),
    # Ill-formed but readable (feedparser's loose parser takes it): a raw vertical tab.
    "rss-raw-control": RSS_WITH.format("&lt;p&gt;One\x0btwo&lt;/p&gt;").encode(),
    "json-feed": (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "Desk", "items": [{"id": "1", '
        b'"url": "https://news.example.org/story", "content_html": "<p>One\\u0001two</p>"}]}'
    ),
}


@pytest.mark.parametrize("case", list(CONTROL_CHARACTERS))
def test_control_character_in_html_of_an_entry(ledger: Ledger, case: str) -> None:
    """One stray control character in one entry's HTML must not fail the whole feed."""
    with ledger.trial("parse"):
        parsed = parse_feed(CONTROL_CHARACTERS[case], url=FEED_URL)
        (entry,) = parsed.entries
        assert entry.url == "https://news.example.org/story"
        # The character goes; the words around it stay.
        assert (entry.content or entry.summary) in ("Onetwo", "One two")
