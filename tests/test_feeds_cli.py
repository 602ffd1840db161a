"""`monitor feeds add|remove|pause|resume|import|export` against a local site (both engines)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from monitor.sources.opml import read_opml
from tests.support.feeds import FEED_TYPES, Item, rss20
from tests.support.paths import ROOT, SEEDS_DIR
from tests.support.servers import HTTPServer, Response

OPML = ROOT / "tests" / "fixtures" / "opml"
Run = Callable[..., Any]


@pytest.fixture
def config(config_file: Callable[..., Path], database_url: str) -> Path:
    settings = {
        "database_url": database_url,
        "seeds_dir": str(SEEDS_DIR),
        "poll": {"allow_private_networks": True, "timeout": "5s"},
        "feeds": [{"name": "Configured", "url": "https://configured.example/rss", "tags": ["world"]}],
    }
    return config_file(json.dumps(settings))


def monitor(run_cli: Run, config: Path, *args: str) -> Any:
    return run_cli("--config", str(config), *args)


def listed(run_cli: Run, config: Path, *flags: str) -> dict[str, dict[str, Any]]:
    result = monitor(run_cli, config, "feeds", "--json", *flags)
    assert result.exit_code == 0, result.output
    return {f["name"]: f for f in json.loads(result.output)}


def serve_site(server: HTTPServer) -> None:
    items = [Item("First", server.url("/p/1")), Item("Second", server.url("/p/2"))]
    server.route(
        "/",
        Response(
            '<html><head><link rel="alternate" type="application/rss+xml" href="/feed.xml">'
            '<link rel="alternate" type="application/rss+xml" href="/comments.xml"></head><body>Home</body></html>',
            headers={"Content-Type": "text/html"},
        ),
    )
    server.route("/feed.xml", Response(rss20(items, title="Local Site"), headers={"Content-Type": FEED_TYPES["rss20"]}))


def test_add_a_site_shows_what_was_found_and_stores_the_feed(run_cli: Run, config: Path, server: HTTPServer) -> None:
    serve_site(server)

    result = monitor(run_cli, config, "feeds", "add", server.url("/"), "--tag", "local", "--interval", "10m")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "found: Local Site (rss20): 2 entries, last entry 2024-01-06 10:00 UTC",
        f"feed URL: {server.url('/feed.xml')} (linked from the page)",
        "other feeds the page names (add them by their URL):",
        f"  {server.url('/comments.xml')}",
        "added feed 'Local Site' (id 1); a running daemon polls it within 5s",
    ]
    feeds = listed(run_cli, config)
    assert {n: (f["origin"], f["tags"], f["paused"]) for n, f in feeds.items()} == {
        "Configured": ("config", ["world"], False),
        "Local Site": ("added", ["local"], False),
    }
    table = monitor(run_cli, config, "feeds").output
    assert "ORIGIN" in table and "└ tags: local" in table

    again = monitor(run_cli, config, "feeds", "add", server.url("/feed.xml"))
    assert again.exit_code == 2
    assert again.output == f"monitor: error: {server.url('/feed.xml')} is already added as feed 'Local Site'\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["feeds", "add", "/"], "not_a_feed: cannot add {url}: no feed found at {url}: not a feed (an HTML page)"),
        (["feeds", "add", "https://configured.example/rss"], "is in the configuration file as feed 'Configured'"),
        (["feeds", "remove", "Configured"], "feed 'Configured' comes from the configuration file"),
        (["feeds", "pause", "Nope"], "no feed named 'Nope'"),
        (["feeds", "add", "/", "--interval", "soon"], "Invalid value for '--interval'"),
        (["feeds", "import", "/nonexistent.opml"], "/nonexistent.opml: cannot read"),
    ],
)
def test_errors_are_one_line(run_cli: Run, config: Path, server: HTTPServer, args: list[str], message: str) -> None:
    server.route("/", Response("<html><body>no feed here</body></html>", headers={"Content-Type": "text/html"}))
    url = server.url("/")
    args = [url if a == "/" else a for a in args]
    result = monitor(run_cli, config, *args)
    assert result.exit_code != 0
    assert message.format(url=url) in result.output
    assert "Traceback" not in result.output


def test_a_private_address_is_refused_by_default(
    run_cli: Run, config_file: Callable[..., Path], database_url: str, server: HTTPServer
) -> None:
    serve_site(server)
    config = config_file(json.dumps({"database_url": database_url, "seeds_dir": str(SEEDS_DIR)}))
    result = monitor(run_cli, config, "feeds", "add", server.url("/"))
    assert result.exit_code == 1
    assert result.output == (
        f"monitor: error: blocked: cannot add {server.url('/')}: refused to connect to 127.0.0.1: loopback address "
        "(poll.allow_private_networks is false)\n"
    )
    assert not server.requests


def test_pause_resume_and_remove(run_cli: Run, config: Path, server: HTTPServer) -> None:
    serve_site(server)
    assert monitor(run_cli, config, "feeds", "add", server.url("/feed.xml"), "--name", "Mine").exit_code == 0

    assert monitor(run_cli, config, "feeds", "pause", "Mine").output == "paused feed 'Mine'\n"
    assert monitor(run_cli, config, "feeds", "pause", "Configured").exit_code == 0
    feeds = listed(run_cli, config)
    assert feeds["Mine"]["paused"] and feeds["Configured"]["paused"] and feeds["Mine"]["next_poll_at"] is None
    assert "paused" in monitor(run_cli, config, "status").output

    assert monitor(run_cli, config, "feeds", "resume", "Mine").output == "resumed feed 'Mine'\n"
    assert not listed(run_cli, config)["Mine"]["paused"]

    assert monitor(run_cli, config, "feeds", "remove", "Mine").output == "removed feed 'Mine'\n"
    assert set(listed(run_cli, config)) == {"Configured"}


def test_a_hundred_feed_opml_file_imports_once_and_exports_back_the_same(
    run_cli: Run, config: Path, tmp_path: Path
) -> None:
    source = OPML / "miniflux-100.opml"

    first = monitor(run_cli, config, "feeds", "import", str(source))
    again = monitor(run_cli, config, "feeds", "import", str(source))
    exported = monitor(run_cli, config, "feeds", "export", "--output", str(tmp_path / "out.opml"))

    assert first.output == f"{source}: 100 feed(s) added, 0 already known, 0 skipped\n"
    assert again.output == f"{source}: 0 feed(s) added, 100 already known, 0 skipped\n"
    assert exported.output == f"wrote 101 feed(s) to {tmp_path / 'out.opml'}\n"

    def shape(data: bytes) -> set[tuple[str, str | None, str | None, tuple[str, ...]]]:
        return {(f.url, f.title, f.site_url, tuple(f.tags)) for f in read_opml(data)}

    back = shape((tmp_path / "out.opml").read_bytes())
    assert back - shape(source.read_bytes()) == {("https://configured.example/rss", "Configured", None, ("world",))}
    assert shape(source.read_bytes()) <= back
    assert listed(run_cli, config)["Central Asia source 01"]["tags"] == ["Central Asia"]


@pytest.mark.parametrize("name", ["miniflux.opml", "freshrss.opml"])
def test_reader_exports_round_trip(run_cli: Run, config: Path, name: str) -> None:
    source = OPML / name
    assert monitor(run_cli, config, "feeds", "import", str(source)).exit_code == 0
    exported = monitor(run_cli, config, "feeds", "export").output.encode("utf-8")
    wanted = {(f.url, f.title, tuple(f.tags)) for f in read_opml(source.read_bytes()) if f.is_feed}
    assert wanted <= {(f.url, f.title, tuple(f.tags)) for f in read_opml(exported)}


def test_bad_opml_is_one_line_and_adds_nothing(run_cli: Run, config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.opml"
    bad.write_text("<opml><body><outline text='x' xmlUrl='https://x.example/'>", encoding="utf-8")
    result = monitor(run_cli, config, "feeds", "import", str(bad))
    assert result.exit_code == 2
    assert result.output.startswith(f"monitor: error: {bad}: not OPML (invalid XML: ")
    assert result.output.count("\n") == 1
    assert set(listed(run_cli, config)) == {"Configured"}
