"""Bodies that would eat the memory or the time of a naive client, as feed and as page.

Gzip bombs of 1 GiB and 4 GiB of zeros (1 MB and 4 MB on the wire), gzip applied twice
(``Content-Encoding: gzip, gzip``: 7 KB for 4 GiB), an endless gzip stream, endless and
200 MB bodies with and without a length, a body or a head that trickles a byte at a time
(no single read ever times out), a head that never ends. The fetcher must stop each one
with a ``FetchError`` (``too_large`` at ``poll.max_bytes`` of *decoded* bytes, ``timeout``
at ``poll.timeout`` for the whole hop), quickly and in bounded memory. Then the same
bodies in a real poll, as feeds and as article pages: each hostile feed is recorded as
failed with its kind, each hostile page falls back to the feed's own text and says so,
and the healthy feed and page beside them are stored as usual.
"""

from __future__ import annotations

import asyncio
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.config import PollSettings
from monitor.errors import FetchError
from monitor.models import Article, Feed
from monitor.outcomes import FailureKind
from monitor.pipeline.fetch import Fetcher
from tests.reliability.conftest import Ledger
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.hostile import GIB, Stream, StreamServer, endless_gzip, gzip, gzip_bomb, repeat
from tests.support.paths import SEEDS_DIR

MAX_BYTES = 5_000_000  # the default poll.max_bytes
TIMEOUT = 1.0
HTML = {"Content-Type": "text/html; charset=utf-8"}


def pieces(data: bytes, size: int = 65536) -> Callable[[], Iterator[bytes]]:
    return lambda: (data[i : i + size] for i in range(0, len(data), size))


def hostile_streams() -> dict[str, tuple[Stream, FailureKind]]:
    """Each hostile answer and the failure it must come to."""
    bomb_1g, bomb_4g = gzip_bomb(GIB), gzip_bomb(4 * GIB)
    twice = gzip(bomb_4g)
    gzip_header = {"Content-Encoding": "gzip"}
    too_large, timeout = FailureKind.TOO_LARGE, FailureKind.TIMEOUT
    return {
        "gzip-1gib": (Stream(pieces(bomb_1g), length=len(bomb_1g), headers=gzip_header), too_large),
        "gzip-4gib": (Stream(pieces(bomb_4g), chunked=True, headers=gzip_header), too_large),
        "gzip-twice-4gib": (
            Stream(pieces(twice), length=len(twice), headers={"Content-Encoding": "gzip, gzip"}),
            too_large,
        ),
        "gzip-endless": (Stream(endless_gzip, chunked=True, headers=gzip_header), too_large),
        "endless": (Stream(repeat(b"<p>news</p>" * 6000)), too_large),
        "endless-chunked": (Stream(repeat(b"<p>news</p>" * 6000), chunked=True), too_large),
        "200mb-declared": (Stream(repeat(b"<p>news</p>" * 6000, 200_000_000), length=200_000_000), too_large),
        "200mb-undeclared": (Stream(repeat(b"<p>news</p>" * 6000, 200_000_000)), too_large),
        "trickle-body": (Stream(repeat(b"<"), pace=0.1, headers=HTML), timeout),
        "trickle-head": (Stream(head=b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 200, head_pace=0.02), timeout),
    }


CASES = [
    "gzip-1gib",
    "gzip-4gib",
    "gzip-twice-4gib",
    "gzip-endless",
    "endless",
    "endless-chunked",
    "200mb-declared",
    "200mb-undeclared",
    "trickle-body",
    "trickle-head",
]


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[StreamServer, dict[str, FailureKind]]]:
    with StreamServer(limit=30) as server:
        kinds = {}
        for name, (stream, kind) in hostile_streams().items():
            server.route(f"/{name}", stream)
            kinds[name] = kind
        server.route("/endless-head", Stream(endless_head=True))
        yield server, kinds


def fetch_failure(url: str) -> tuple[FetchError, float, int]:
    """The failure of one fetch, how long it took, and the peak of memory allocated."""

    async def run() -> None:
        poll = PollSettings(allow_private_networks=True, timeout=TIMEOUT, max_bytes=MAX_BYTES)
        async with Fetcher(poll) as fetcher:
            await fetcher.fetch(url)

    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(FetchError) as caught:
            asyncio.run(run())
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return caught.value, elapsed, peak


@pytest.mark.parametrize("case", CASES)
def test_hostile_body_is_cut_off_in_bounded_time_and_memory(
    hostile: tuple[StreamServer, dict[str, FailureKind]], ledger: Ledger, case: str
) -> None:
    server, kinds = hostile
    with ledger.trial("fetch"):
        error, elapsed, peak = fetch_failure(server.url(f"/{case}"))
        assert error.kind == kinds[case], error
        bound = TIMEOUT + 2 if kinds[case] == FailureKind.TIMEOUT else 3
        assert elapsed < bound, f"took {elapsed:.1f}s"
        # The cap holds what was read (5 MB) and little more; decoding it all would take GiBs.
        assert peak < 4 * MAX_BYTES, f"peak {peak} bytes"


def test_head_that_never_ends_is_refused(hostile: tuple[StreamServer, dict[str, FailureKind]], ledger: Ledger) -> None:
    server, _ = hostile
    with ledger.trial("fetch"):
        error, elapsed, peak = fetch_failure(server.url("/endless-head"))
        assert error.kind == FailureKind.CONNECT and "too long" in error.message
        assert elapsed < 3 and peak < 4 * MAX_BYTES


# ------------------------------------------------------------------- the same in a poll

POLL_FEEDS = ["gzip-1gib", "gzip-twice-4gib", "endless", "200mb-declared", "trickle-body"]
POLL_PAGES = ["gzip-1gib", "gzip-4gib", "gzip-twice-4gib", "gzip-endless", "endless-chunked", "trickle-body"]


def test_a_poll_records_hostile_feeds_and_falls_back_from_hostile_pages(
    fresh_database_url: Callable[[str], str],
    config_file: Callable[..., Path],
    run_cli: Callable[..., Any],
    ledger: Ledger,
) -> None:
    url = fresh_database_url("sqlite")
    with StreamServer(limit=30) as server:
        streams = hostile_streams()
        for name in POLL_FEEDS:
            server.route(f"/feed/{name}", streams[name][0])
        for name in POLL_PAGES:
            server.route(f"/page/{name}", streams[name][0])
        items = [
            Item(f"Story {name}", server.url(f"/page/{name}"), summary=f"Summary of the {name} story.")
            for name in [*POLL_PAGES, "fine"]
        ]
        feed = rss20(items).encode()
        page = article_page("Story fine", story("Almaty fine", 8)).encode()
        server.route(
            "/feed/fine", Stream(lambda: [feed], length=len(feed), headers={"Content-Type": FEED_TYPES["rss20"]})
        )
        server.route("/page/fine", Stream(lambda: [page], length=len(page), headers=HTML))
        settings = {
            "database_url": url,
            "seeds_dir": str(SEEDS_DIR),
            "poll": {"allow_private_networks": True, "timeout": f"{TIMEOUT}s", "per_host": 20, "extract_workers": 1},
            "feeds": [{"name": name, "url": server.url(f"/feed/{name}")} for name in [*POLL_FEEDS, "fine"]],
        }
        config = config_file(json.dumps(settings))
        with ledger.trial("poll", tried=len(POLL_FEEDS) + len(POLL_PAGES)):
            started = time.monotonic()
            result = run_cli("--config", str(config), "poll", "--json")
            elapsed = time.monotonic() - started
            assert result.exit_code == 0, result.output
            report = json.loads(result.stdout)
            assert report["feeds"] == {"polled": 6, "ok": 1, "not_modified": 0, "unchanged": 0, "failed": 5}
            assert {e["feed"]: e["kind"] for e in report["errors"]} == {n: streams[n][1] for n in POLL_FEEDS}
            assert report["articles"]["stored"] == len(POLL_PAGES) + 1
            assert report["articles"]["from_feed_content"] == len(POLL_PAGES)
            assert elapsed < 30, f"the poll took {elapsed:.0f}s"
            engine = sa.create_engine(url)
            with engine.connect() as connection:
                feeds = dict(connection.execute(sa.select(Feed.name, Feed.error_kind)).all())
                articles = {
                    row.url.rsplit("/", 1)[1]: row
                    for row in connection.execute(sa.select(Article.url, Article.text, Article.extraction_note))
                }
            engine.dispose()
            assert feeds == {**{n: streams[n][1].value for n in POLL_FEEDS}, "fine": None}
            assert articles["fine"].extraction_note is None and "Almaty fine" in articles["fine"].text
            for name in POLL_PAGES:
                kind = streams[name][1].value
                assert articles[name].extraction_note == f"page {kind}; feed content used", name
                assert articles[name].text == f"Summary of the {name} story."
