"""Getting the archive out: ``monitor export``, ``GET /api/export``, ``monitor search``
past one page (``--limit`` of any size, ``--cursor``).

Every test runs on SQLite and PostgreSQL; the exports are compared with what
``monitor search`` lists for the same query, and read back with the json and csv
modules. The memory test exports 100,000 articles in a ``monitor export`` process and
holds its peak resident memory to a fixed bound above that of a tiny export.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from monitor.api import create_app
from monitor.config import Settings
from monitor.db import session
from monitor.export import CSV_COLUMNS
from monitor.models import Article, Feed, Mention
from tests.support.api import serving
from tests.support.daemons import MONITOR

START = datetime(2022, 1, 1, tzinfo=UTC)
# A text that CSV and JSON must carry unchanged: separators, quotes, line breaks, scripts.
AWKWARD = 'Almaty, "the city"; line one\nline two\r\nАлматы — 阿拉木图\ttab'


def _store(engine: sa.Engine, count: int, *, text: Callable[[int], str], chunk: int = 5000) -> None:
    """``count`` articles of one feed, one a minute; every third mentions Almaty; every
    tenth is a copy of the one before it."""
    with session(engine) as db:
        db.add(Feed(id=1, name="Steppe Daily", url="https://steppe.example/rss"))
        db.commit()
    for first in range(1, count + 1, chunk):
        ids = range(first, min(first + chunk, count + 1))
        rows = [
            {
                "id": i,
                "url": f"https://steppe.example/{i}",
                "title": f"Story {i}",
                "text": text(i),
                "content_hash": f"hash-{i}",
                "published_at": START + timedelta(minutes=i),
                "fetched_at": START + timedelta(minutes=i),
                "feed_id": 1,
                "is_duplicate": i % 10 == 0,
                "duplicate_of_article_id": i - 1 if i % 10 == 0 else None,
                "similarity": 0.95 if i % 10 == 0 else None,
            }
            for i in ids
        ]
        mentions = [
            {"article_id": i, "entity": "Almaty", "text": "Almaty", "start": 0, "end": 6, "snippet": "Almaty …"}
            for i in ids
            if i % 3 == 0
        ]
        with session(engine) as db:
            db.execute(sa.insert(Article), rows)
            if mentions:
                db.execute(sa.insert(Mention), mentions)
            db.commit()


def _text(i: int) -> str:
    words = ["Almaty curfew", "troops", "weather report", "summit"][i % 4]
    return f"{words} {i}. {AWKWARD}"


@pytest.fixture
def config(engine: sa.Engine, database_url: str, config_file: Callable[..., Path]) -> Path:
    return config_file(f"database_url: '{database_url}'\n")


def _searched(run_cli: Callable[..., Any], config: Path, *args: str) -> list[int]:
    result = run_cli("search", *args, "--limit", "100000", "--json", "--config", str(config))
    assert result.exit_code == 0, result.output
    return [item["id"] for item in json.loads(result.stdout)]


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("curfew",),
        ("--entity", "almaty", "--since", "2022-01-01T02:00:00Z"),
        ("troops OR summit", "--include-duplicates", "--feed", "steppe daily"),
    ],
    ids=["all", "word", "entity-since", "or-duplicates-feed"],
)
def test_export_lists_what_search_lists_whole(
    engine: sa.Engine, config: Path, run_cli: Callable[..., Any], tmp_path: Path, args: tuple[str, ...]
) -> None:
    _store(engine, 1234, text=_text)
    searched = _searched(run_cli, config, *args)
    assert searched

    result = run_cli("export", *args, "--config", str(config))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == searched
    assert f"exported {len(searched)} articles" in result.stderr

    out = tmp_path / "out.csv"
    result = run_cli("export", *args, "--format", "csv", "--output", str(out), "--config", str(config))
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as stream:
        reader = csv.DictReader(stream)
        assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
        rows = list(reader)
    assert [int(row["id"]) for row in rows] == searched
    assert not list(tmp_path.glob("*.part"))

    for record, row in zip(records, rows, strict=True):
        i = record["id"]
        assert record["text"] == row["text"] == _text(i)
        assert record["feed"] == row["feed"] == "Steppe Daily"
        assert record["published_at"] == row["published_at"] == (START + timedelta(minutes=i)).isoformat()[:19] + "Z"
        mentions = [{"entity": "Almaty", "text": "Almaty", "start": 0, "end": 6}] if i % 3 == 0 else []
        assert record["mentions"] == json.loads(row["mentions"]) == mentions
        assert record["entities"] == (["Almaty"] if i % 3 == 0 else [])
        assert row["entities"] == ("Almaty" if i % 3 == 0 else "")
        copy_of = f"article:{i - 1}" if i % 10 == 0 else None
        assert record["duplicate_of"] == copy_of and row["duplicate_of"] == (copy_of or "")
        copies = [i + 1] if (i + 1) % 10 == 0 and i + 1 <= 1234 else []
        assert record["copies"] == copies and row["copies"] == " ".join(map(str, copies))


def test_export_refuses_bad_input_in_one_line_and_leaves_no_file(
    engine: sa.Engine, config: Path, run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    _store(engine, 10, text=_text)
    out = tmp_path / "out.jsonl"
    for args in (['"unclosed'], ["--feed", "nowhere"], ["--since", "yesterday-ish"]):
        result = run_cli("export", *args, "--output", str(out), "--config", str(config))
        assert result.exit_code != 0
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.output
        assert not out.exists() and not list(tmp_path.glob("*.part"))
    result = run_cli("export", "--format", "csv", "nothing-matches-this", "--config", str(config))
    assert result.exit_code == 0
    assert result.stdout.strip() == ",".join(CSV_COLUMNS)


def test_search_pages_past_one_page_and_continues_from_its_cursor(
    engine: sa.Engine, config: Path, run_cli: Callable[..., Any]
) -> None:
    _store(engine, 1234, text=_text)
    everything = _searched(run_cli, config)
    assert len(everything) == 1234 - 123  # copies left out

    first = run_cli("search", "--limit", "1050", "--json", "--config", str(config))
    assert first.exit_code == 0, first.output
    assert [item["id"] for item in json.loads(first.stdout)] == everything[:1050]
    cursor = first.stderr.strip().removeprefix("next cursor: ")
    assert cursor and " " not in cursor

    rest = run_cli("search", "--cursor", cursor, "--limit", "5000", "--json", "--config", str(config))
    assert [item["id"] for item in json.loads(rest.stdout)] == everything[1050:]
    assert "next cursor" not in rest.stderr

    listed = run_cli("search", "--limit", "3", "--config", str(config))
    assert listed.stdout.rstrip().splitlines()[-1].startswith("3 articles; more match: --cursor ")
    more = listed.stdout.rstrip().split("--cursor ")[-1]
    after = run_cli("search", "--cursor", more, "--limit", "2", "--json", "--config", str(config))
    assert [item["id"] for item in json.loads(after.stdout)] == everything[3:5]
    assert run_cli("search", "--limit", "0", "--config", str(config)).exit_code != 0


def test_api_export_streams_the_same_articles_behind_the_token(
    engine: sa.Engine, make_settings: Callable[..., Settings], database_url: str, run_cli: Callable[..., Any]
) -> None:
    _store(engine, 1234, text=_text)
    settings = make_settings(database_url=database_url, api_token="s3cret")
    auth = {"Authorization": "Bearer s3cret"}
    with serving(create_app(settings, engine)) as client:
        assert client.get("/api/export").status_code == 401
        params = {"q": "troops OR summit", "include_duplicates": "true"}
        response = client.get("/api/export", params=params, headers=auth)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        records = [json.loads(line) for line in response.text.splitlines()]
        listed, cursor = [], None
        while True:
            page = client.get("/api/articles", params={**params, "limit": 500, "cursor": cursor or ""}, headers=auth)
            listed += [item["id"] for item in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        assert [r["id"] for r in records] == listed and len(listed) == 617
        assert all(r["text"] == _text(r["id"]) for r in records)

        as_csv = client.get("/api/export", params={**params, "format": "csv"}, headers=auth)
        assert as_csv.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(as_csv.text, newline="")))
        assert [int(row["id"]) for row in rows] == listed

        bad = client.get("/api/export", params={"q": '"unclosed'}, headers=auth)
        assert bad.status_code == 400 and "quote" in bad.text


# The peak resident memory of ``monitor export`` in a child process, in KiB.
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)
MEMORY_BOUND_KIB = 40 * 1024


def _peak_kib(config: Path, *args: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, MONITOR, "--config", str(config), "export", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_export_of_100000_articles_stays_within_a_fixed_memory_bound(
    engine: sa.Engine, config: Path, tmp_path: Path
) -> None:
    # A hundred thousand articles on SQLite; on PostgreSQL, whose export reads the same
    # keyset pages, a fifth of them with texts five times as long: as much to export, in
    # half the time of the suite (the generated tsvector makes every insert dear).
    count, repeat = (100_000, 30) if engine.dialect.name == "sqlite" else (20_000, 200)
    _store(engine, count, text=lambda i: f"{_text(i)} " + "steppe wind " * repeat, chunk=10_000)
    small = _peak_kib(config, "--until", "2022-01-01T00:20:00Z", "--output", str(tmp_path / "small.jsonl"))
    out = tmp_path / "all.jsonl"
    full = _peak_kib(config, "--include-duplicates", "--output", str(out))
    with out.open(encoding="utf-8") as stream:
        exported = sum(1 for _ in stream)
    assert exported == count
    # Holding the records (or the output) would take several times the bound.
    assert out.stat().st_size > 50 * 2**20
    assert full - small < MEMORY_BOUND_KIB, f"peak {full} KiB against {small} KiB for a tiny export"
