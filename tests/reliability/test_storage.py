"""The world's data into the archive: what feeds and files carry is stored once, or skipped with a reason.

Feeds served by a real HTTP server and polled into a real archive (SQLite and
PostgreSQL), their entries carrying a NUL byte in the title, a 3 MB title, 3 kB URLs
(two of them sharing their first 2.9 kB), a 2 MB article with a rare word at its start,
control characters and a lone surrogate in the author, an entry with nothing but
control characters, beside ordinary entries. Then an entry the database itself refuses.
Then ``monitor import`` and ``monitor analyze`` of a file with a NUL byte, invalid
UTF-8, a 100 MB file, a directory, a link to /dev/zero and a named pipe.

Each entry must be stored exactly once, its feed recorded ``ok`` with its validators
saved, a second poll must store nothing again, and the search must find the rare word;
each bad file must cost one line and leave the other files imported.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import resource
import sqlite3
import subprocess
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from monitor.config import Settings
from monitor.db import make_engine, session
from monitor.models import Article, Feed
from monitor.pipeline.ingest import stored_url
from monitor.pipeline.pool import CPUPool
from monitor.scheduling.report import CycleReport
from monitor.scheduling.sync import sync_feeds
from monitor.scheduling.worker import Worker
from monitor.search import SearchFilters, search_articles
from tests.reliability.conftest import Ledger
from tests.support.feeds import FEED_TYPES, Item, article_page, json_feed, rss20, story
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, Response

HTML = {"Content-Type": "text/html; charset=utf-8"}
RARE = "Zyxwarbler"
MONITOR = str(Path(sys.executable).parent / "monitor")
# The command's address space: reading /dev/zero to the end must fail here, not take
# the machine's memory.
COMMAND_MEMORY = 4 << 30


def settings_for(make_settings: Callable[..., Settings], database_url: str, feeds: dict[str, str]) -> Settings:
    return make_settings(
        database_url=database_url,
        poll={"allow_private_networks": True, "timeout": "10s", "per_host": 8, "interval": "10m"},
        feeds=[{"name": name, "url": url} for name, url in feeds.items()],
    )


def poll(settings: Settings, engine: sa.Engine, pool: CPUPool) -> CycleReport:
    sync_feeds(engine, settings.feeds)

    async def cycle() -> CycleReport:
        async with Worker(settings, engine, pool=pool, rng=random.Random(7)) as worker:
            return await worker.poll_cycle()

    return asyncio.run(asyncio.wait_for(cycle(), timeout=120))


def feed_rows(engine: sa.Engine) -> dict[str, Feed]:
    with session(engine) as db:
        return {feed.name: feed for feed in db.exec(select(Feed)).all()}


def articles(engine: sa.Engine) -> list[Article]:
    with session(engine) as db:
        return list(db.exec(select(Article).order_by(Article.id)).all())


def unstorable(value: str | None) -> list[str]:
    return [
        c
        for c in value or ""
        if c not in "\t\n\r" and (unicodedata.category(c) in ("Cc", "Cs") or ord(c) & 0xFFFE == 0xFFFE)
    ]


def serve(server: HTTPServer, path: str, body: str, content_type: str) -> None:
    server.route(path, Response(body=body, headers={"Content-Type": content_type}))


def hostile_feeds(server: HTTPServer) -> tuple[dict[str, str], dict[str, str]]:
    """An RSS and a JSON feed of hostile entries beside ordinary ones, and their pages.

    The entries whose own title must reach the archive have no page (a 404): their
    text is the feed's summary and their title the entry's. Returns the feed bodies by
    path, and the title each stored article starts with, by URL.
    """
    # Parameters already in the canonical (sorted) order, so the page is served at the URL stored.
    long_head = "/wire/archive?" + "&".join(f"p{i:03d}=v{i}" for i in range(300))  # 2.9 kB
    pages = {
        "/wire/ordinary": ("Harbour reopens", story("harbour")),
        long_head + "&story=1": ("Long link one", story("bridge one")),
        long_head + "&story=2": ("Long link two", story("bridge two")),
        "/wire/long-text": ("Birds", f"{RARE} sighted over the lake.\n" + long_text()),
        "/json/c1-author": ("Market prices", story("market")),
        "/json/c0-author": ("Railway works", story("railway")),
        "/json/ordinary": ("Museum opens", story("museum")),
    }
    for path, (title, text) in pages.items():
        serve(server, path, article_page(title, text), HTML["Content-Type"])
    big_title = "Floods " + "rising " * 450_000  # 3 MB
    wire = [
        Item("Harbour reopens", server.url("/wire/ordinary")),
        Item(big_title, server.url("/wire/big-title"), summary=story("floods")),
        Item("Long link one", server.url(long_head + "&story=1")),
        Item("Long link two", server.url(long_head + "&story=2")),
        Item("Birds", server.url("/wire/long-text")),
    ]
    # C1 characters in the JSON feed: feedparser reads those of an XML feed as windows-1252.
    json_items = [
        Item("Market prices", server.url("/json/c1-author"), author="A.\x85 Wri\x9fter"),
        Item("Troops\x00 leave", server.url("/json/nul-title"), summary=story("troops")),
        Item("Railway works", server.url("/json/c0-author"), author="\x01Re\x1bporter \ud800\ufffe"),
        Item("Only control characters", None, summary="\x00\x01\x02", guid="void"),
        Item("Museum opens", server.url("/json/ordinary")),
    ]
    bodies = {"/wire.xml": rss20(wire, link=server.url("/")), "/feed.json": json_feed(json_items)}
    titles = {server.url(path): title for path, (title, _text) in pages.items()}
    titles |= {server.url("/wire/big-title"): "Floods rising rising", server.url("/json/nul-title"): "Troops leave"}
    return bodies, titles


def long_text() -> str:
    """2 MB of distinct words: a tsvector of them would pass PostgreSQL's 1 MB limit."""
    return "\n".join(" ".join(f"w{line}x{n}" for n in range(20)) + "." for line in range(12_000))


@pytest.mark.timeout(300)
def test_hostile_entries_are_stored_once_and_never_block_their_feed(
    make_settings: Callable[..., Settings],
    database_url: str,
    engine: sa.Engine,
    server: HTTPServer,
    pool: CPUPool,
    ledger: Ledger,
) -> None:
    bodies, titles = hostile_feeds(server)
    serve(server, "/wire.xml", bodies["/wire.xml"], FEED_TYPES["rss20"])
    serve(server, "/feed.json", bodies["/feed.json"], FEED_TYPES["json"])
    settings = settings_for(
        make_settings, database_url, {"Wire": server.url("/wire.xml"), "Json": server.url("/feed.json")}
    )

    report = poll(settings, engine, pool)

    assert (report.polled, report.ok, report.failed) == (2, 2, 0), report.errors
    assert (report.new_entries, report.stored, report.skipped) == (10, 9, 1)
    feeds = feed_rows(engine)
    for path, name in (("/wire.xml", "Wire"), ("/feed.json", "Json")):
        feed = feeds[name]
        assert (feed.status, feed.error_count, feed.error_kind) == ("ok", 0, None)
        assert feed.body_hash == hashlib.sha256(bodies[path].encode()).hexdigest()  # validators saved
    stored = articles(engine)
    by_url = {article.url: article for article in stored}
    assert len(stored) == len(titles) == 9  # once each; the two long URLs apart
    assert {stored_url(url) for url in titles} == set(by_url)
    for url, title in titles.items():
        article = by_url[stored_url(url)]
        assert article.title is not None and article.title.startswith(title)
        assert len(article.url) <= 2000 and len(article.title) <= 1000
        assert not unstorable(article.title) and not unstorable(article.author) and not unstorable(article.text)
    long_text_article = by_url[server.url("/wire/long-text")]
    assert len(long_text_article.text) > 2_000_000
    assert by_url[server.url("/json/c0-author")].author == "Reporter"
    assert by_url[server.url("/json/c1-author")].author == "A. Writer"  # NEL: a space, here
    big_title = by_url[server.url("/wire/big-title")].title
    assert big_title is not None and big_title.endswith("rising…")

    # The same entries again in a changed document: each recognised, none stored twice.
    for path, content_type in (("/wire.xml", "rss20"), ("/feed.json", "json")):
        serve(server, path, bodies[path].replace("News", "News, updated", 1), FEED_TYPES[content_type])
    again = poll(settings, engine, pool)
    assert (again.ok, again.stored, again.new_entries, again.skipped) == (2, 0, 1, 1)
    assert len(articles(engine)) == 9

    with session(engine) as db:
        found = search_articles(db, SearchFilters(query=RARE.lower())).items
    assert [item.url for item in found] == [server.url("/wire/long-text")]
    ledger.record("store", tried=10, survived=10, lost=0, duplicated=0)


@pytest.fixture
def refusing_engine(database_url: str) -> Iterator[sa.Engine]:
    """The test database, set to refuse one entry's data as a data error.

    PostgreSQL: the author column narrowed to 20 characters (22001, value too long).
    SQLite, which enforces no column length: any string over 50 kB (SQLITE_TOOBIG).
    """
    engine = make_engine(database_url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE article ALTER COLUMN author TYPE varchar(20)"))
    else:

        @sa.event.listens_for(engine, "connect")
        def _limit(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 50_000)

    yield engine
    engine.dispose()


@pytest.mark.timeout(120)
def test_an_entry_the_database_refuses_is_skipped_and_recorded(
    make_settings: Callable[..., Settings],
    database_url: str,
    refusing_engine: sa.Engine,
    server: HTTPServer,
    pool: CPUPool,
    ledger: Ledger,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = refusing_engine
    refused_text = story("refused", sentences=14) + "\n" + "Long words go on. " * 5000  # 90 kB
    serve(server, "/a", article_page("First", story("first")), HTML["Content-Type"])
    serve(server, "/refused", article_page("Refused", refused_text), HTML["Content-Type"])
    serve(server, "/c", article_page("Third", story("third")), HTML["Content-Type"])
    items = [
        Item("First", server.url("/a")),
        Item("Refused", server.url("/refused"), author="An author with a name too long for the column"),
        Item("Third", server.url("/c")),
    ]
    body = rss20(items, link=server.url("/"))
    serve(server, "/feed.xml", body, FEED_TYPES["rss20"])
    settings = settings_for(make_settings, database_url, {"Wire": server.url("/feed.xml")})

    with caplog.at_level(logging.WARNING, logger="monitor.pipeline.refresh"):
        report = poll(settings, engine, pool)

    assert (report.ok, report.failed, report.stored, report.skipped) == (1, 0, 2, 1), report.errors
    assert sorted(a.url for a in articles(engine)) == [server.url("/a"), server.url("/c")]
    feed = feed_rows(engine)["Wire"]
    assert (feed.status, feed.error_count) == ("ok", 0)
    assert feed.body_hash == hashlib.sha256(body.encode()).hexdigest()
    (line,) = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert server.url("/refused") in line and "refused by the database" in line
    # Recorded and not retried while the feed is unchanged; the feed is not held back.
    again = poll(settings, engine, pool)
    assert (again.unchanged, again.failed, again.stored) == (1, 0, 0)
    ledger.record("store", tried=1, survived=1, lost=0, duplicated=0)


# ------------------------------------------------------------------------------ import


def hostile_files(directory: Path) -> tuple[list[Path], list[Path]]:
    """Files to import: those that must be stored, and those that must each cost one line."""
    good = directory / "good.txt"
    good.write_text("Almaty airport reopens\n\n" + story("airport"), encoding="utf-8")
    nul = directory / "nul.txt"
    nul.write_bytes(b"Railway\x00 works resume\n\n" + story("railway").encode() + b"\x00\x01")
    folder = directory / "folder"
    folder.mkdir()
    inner = folder / "inner.html"
    inner.write_text(article_page("Museum opens", story("museum")), encoding="utf-8")
    (folder / "sub.txt").mkdir()  # a directory named like a file: not a file to read
    zero = folder / "zero.txt"
    zero.symlink_to("/dev/zero")
    bad = directory / "latin1.txt"
    bad.write_bytes("Café ouvert\n\nLe café est ouvert.".encode("latin-1"))
    huge = directory / "huge.txt"
    with huge.open("wb") as file:
        file.truncate(100_000_000)  # sparse: 100 MB without writing them
    fifo = directory / "pipe.txt"
    os.mkfifo(fifo)
    return [good, nul, inner], [bad, huge, zero, fifo]


def run_monitor(*args: str) -> subprocess.CompletedProcess[str]:
    """``monitor`` as a user runs it, in its own process, bounded in time and memory."""

    def bounded() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (COMMAND_MEMORY, COMMAND_MEMORY))

    return subprocess.run([MONITOR, *args], capture_output=True, text=True, timeout=90, preexec_fn=bounded, check=False)


@pytest.mark.timeout(240)
@pytest.mark.parametrize("command", ["import", "analyze"])
def test_import_and_analyze_of_hostile_files(
    command: str,
    config_file: Callable[..., Path],
    database_url: str,
    tmp_path: Path,
    ledger: Ledger,
) -> None:
    config = config_file(f"database_url: {database_url}\nseeds_dir: {SEEDS_DIR}\nfeeds: []\n")
    directory = tmp_path / "files"
    directory.mkdir()
    good, bad = hostile_files(directory)
    paths = [str(directory / "good.txt"), str(directory / "nul.txt"), str(directory / "folder")]
    paths += [str(directory / "latin1.txt"), str(directory / "huge.txt"), str(directory / "pipe.txt")]

    result = run_monitor(command, *paths, "--json", "--config", str(config))

    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("monitor: error:")]
    assert len(errors) == len(bad) + 1  # one per file, and the summary
    assert all(len(line) < 300 for line in errors)
    for path, reason in zip(bad, ["not UTF-8", "larger than", "not a regular file", "not a regular file"], strict=True):
        assert [line for line in errors if str(path) in line and reason in line], (path, errors)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    done = [line for line in lines if "error" not in line]
    assert sorted(Path(line["path"]).name for line in done) == sorted(p.name for p in good)
    if command == "analyze":
        ledger.record("import", tried=len(good) + len(bad), survived=len(good) + len(bad))
        return
    engine = make_engine(database_url)
    stored = articles(engine)
    assert sorted(a.url for a in stored) == sorted(p.resolve().as_uri() for p in good)
    assert all(not unstorable(a.text) and not unstorable(a.title) for a in stored)
    assert {a.title for a in stored} >= {"Railway works resume", "Almaty airport reopens"}
    again = run_monitor(command, *paths, "--config", str(config))
    assert "0 new, 0 duplicate(s), 3 already stored, 4 failed" in again.stdout
    assert len(articles(engine)) == len(good)
    engine.dispose()
    ledger.record("import", tried=len(good) + len(bad), survived=len(good) + len(bad), lost=0, duplicated=0)
