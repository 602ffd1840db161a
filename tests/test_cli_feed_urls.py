"""``monitor feed-urls``: the feeds' URLs it prints open those feeds (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from monitor.api import create_app
from monitor.config import Settings
from monitor.feed_tokens import MENTIONS
from tests.test_reader_feeds import RULES, TOKEN, UNREST, entry_ids, store


@pytest.fixture
def ruled(make_settings: Callable[..., Settings], database_url: str) -> Callable[..., Settings]:
    def make(**extra: Any) -> Settings:
        return make_settings(database_url=database_url, rules=RULES, **extra)

    return make


def test_monitor_feed_urls_prints_urls_that_open_their_feeds(
    run_cli: Callable[..., Any],
    config_file: Callable[..., Path],
    database_url: str,
    engine: sa.Engine,
    ruled: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = store(engine, ruled())
    rules = "".join(f"  - name: {r['name']}\n    query: '{r['query']}'\n" for r in RULES)
    config = str(config_file(f"database_url: '{database_url}'\nrules:\n{rules}"))
    monkeypatch.setenv("MONITOR_API_TOKEN", TOKEN)
    result = run_cli("feed-urls", "--config", config, "--base", "https://monitor.example.org/")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Mentions of every tracked entity"
    assert f"rule almaty-unrest: {UNREST}" in lines
    urls = [line.strip() for line in lines if line.startswith("  https://monitor.example.org/feeds/token/")]
    assert len(urls) == 3 and TOKEN not in result.output
    listed = json.loads(run_cli("feed-urls", "--config", config, "--json").output)
    assert [item["feed"] for item in listed] == [MENTIONS, "rules/almaty-unrest", "rules/csto"]
    assert listed[2]["url"].startswith("http://127.0.0.1:8080/feeds/token/")  # serve.host and serve.port

    with TestClient(create_app(ruled(api_token=TOKEN), engine)) as reader:
        for url in urls:
            assert reader.get(url.removeprefix("https://monitor.example.org")).status_code == 200, url
        unrest = reader.get(urls[1].removeprefix("https://monitor.example.org"))
        assert entry_ids(unrest.content) == [ids["troops"], ids["protest"]]

    bad = run_cli("feed-urls", "--config", config, "--base", "monitor.example.org")
    assert bad.exit_code == 1
    assert bad.output.strip().splitlines() == [
        "monitor: error: --base: 'monitor.example.org' is not an http(s) URL such as https://monitor.example.org"
    ]
