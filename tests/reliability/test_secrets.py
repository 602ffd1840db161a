"""Secrets in URLs, against the real commands and a real server: shown nowhere.

A webhook's URL is its credential (user and password, a token in the path or the
query), and so is a feed URL behind a login. Each is used for real here (the webhook
receives its alert, the feed server is asked for the feed), then everything a user or
a collector can see is searched for any piece of it: what the commands print, their
log at INFO and at DEBUG (httpx's own lines included), the database's channel keys and
errors, ``/api/feeds`` of a server without a token. A malformed ``MONITOR_*`` variable
names its key, not its value; ``monitor serve`` on an address other machines reach,
without a token, says so at start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from monitor.config import unnamed_webhook_key
from tests.reliability.conftest import Ledger
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.paths import ROOT
from tests.support.servers import HTTPServer, Response, WebhookReceiver
from tests.support.waiting import free_port, wait_for

MONITOR = str(Path(sys.executable).parent / "monitor")
SIGNING = "whsec_c2lnbmluZy1rZXktb2YtdGhlLXRlc3Q="
# The pieces of the URLs that are secrets; none may show anywhere.
PASSWORD = "pw-Kx81"
PATH_TOKEN = "Zq7RtY2mWp4LsV9nXc3bHd6F"
QUERY_TOKEN = "qt-Jf83Ks92Ld71"
SECRETS = (PASSWORD, PATH_TOKEN, QUERY_TOKEN)


def leaked(*texts: str) -> list[str]:
    """The secrets found in ``texts``."""
    return [secret for secret in SECRETS if any(secret in text for text in texts)]


@pytest.fixture
def site() -> Iterator[HTTPServer]:
    with HTTPServer() as server:
        yield server


@pytest.fixture
def sqlite(fresh_database_url: Callable[[str], str]) -> Iterator[tuple[str, sa.Engine]]:
    url = fresh_database_url("sqlite")
    engine = sa.create_engine(url)
    yield url, engine
    engine.dispose()


def write_config(config_file: Callable[..., Path], database_url: str, **extra: Any) -> Path:
    settings = {
        "database_url": database_url,
        "seeds_dir": str(ROOT / "seeds"),
        "poll": {"allow_private_networks": True, "extract_workers": 1},
        **extra,
    }
    return config_file(json.dumps(settings))


def monitor(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    command = [MONITOR, "--config", str(config), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, env=environment)


def hook_url(port: int, path: str = "/hooks/") -> str:
    return f"http://hook:{PASSWORD}@127.0.0.1:{port}{path}{PATH_TOKEN}?token={QUERY_TOKEN}"


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_monitor_alerts_test_shows_no_part_of_a_webhooks_credentials(
    sqlite: tuple[str, sa.Engine], config_file: Callable[..., Path], ledger: Ledger, level: str
) -> None:
    with ledger.trial("secrets"), WebhookReceiver(secret=SIGNING) as receiver:
        url = hook_url(receiver.port)
        config = write_config(
            config_file, sqlite[0], log_level=level, alerts={"webhooks": [{"url": url, "secret": SIGNING}]}
        )
        human = monitor(config, "alerts", "test")
        as_json = monitor(config, "alerts", "test", "--json")
        assert human.returncode == 0 and as_json.returncode == 0, human.stderr + as_json.stderr
        assert len(receiver.kept) == 2  # the URL was used, credentials and all
        key = unnamed_webhook_key(url)
        assert human.stdout == f"{key}: ok: delivered\n" and json.loads(as_json.stdout)["channel"] == key
        if level == "DEBUG":
            assert "httpx" in human.stderr or "httpcore" in human.stderr  # the lines are there, redacted
        assert leaked(human.stdout, human.stderr, as_json.stdout, as_json.stderr) == []


def test_a_webhooks_credentials_stay_out_of_the_outbox_and_monitor_alerts(
    sqlite: tuple[str, sa.Engine], config_file: Callable[..., Path], site: HTTPServer, ledger: Ledger
) -> None:
    """The webhook redirects elsewhere, to a URL holding another token: the alert fails
    for good, and the reason is kept without either."""
    database_url, engine = sqlite
    site.route(
        "/feed",
        Response(rss20([Item("Almaty summit", site.url("/p/1"))]), headers={"Content-Type": FEED_TYPES["rss20"]}),
    )
    site.route(
        "/p/1",
        Response(article_page("Almaty summit", story("Almaty summit", 8)), headers={"Content-Type": "text/html"}),
    )
    moved = f"https://new.example/services/T0/B0/{PATH_TOKEN}?sig={QUERY_TOKEN}"
    site.route("/services/" + PATH_TOKEN, Response(status=301, headers={"Location": moved}))
    url = hook_url(site.port, "/services/")
    config = write_config(
        config_file,
        database_url,
        feeds=[{"name": "Wire", "url": site.url("/feed")}],
        alerts={"webhooks": [{"url": url, "secret": SIGNING}]},
    )
    with ledger.trial("secrets"):
        poll = monitor(config, "poll")
        assert poll.returncode == 0, poll.stderr
        assert site.hits(f"/services/{PATH_TOKEN}?token={QUERY_TOKEN}")  # delivered to the real URL
        listing = monitor(config, "alerts")
        failed = monitor(config, "alerts", "--status", "failed", "--json")
        key = unnamed_webhook_key(url)
        assert f"{key}: 0 pending, 0 sent, 1 failed" in listing.stdout
        assert "redirected to https://new.example/services/T0/B0/***?sig=***; update the url" in listing.stdout
        assert [a["channel"] for a in json.loads(failed.stdout)["alerts"]] == [key]
        with engine.connect() as connection:
            stored = [
                str(v) for row in connection.execute(sa.text("SELECT channel, last_error FROM alert")) for v in row
            ]
            stored += [str(v) for row in connection.execute(sa.text("SELECT * FROM alert_channel")) for v in row]
        assert leaked(poll.stdout, poll.stderr, listing.stdout, failed.stdout, *stored) == []


def test_a_feeds_credentials_show_neither_in_monitor_feeds_nor_in_the_api(
    sqlite: tuple[str, sa.Engine], config_file: Callable[..., Path], site: HTTPServer, ledger: Ledger
) -> None:
    """The feed redirects to itself: the error names the URL, redacted, wherever it shows."""
    feed_url = f"http://reader:{PASSWORD}@127.0.0.1:{site.port}/feed/{PATH_TOKEN}?access_token={QUERY_TOKEN}"
    site.route(f"/feed/{PATH_TOKEN}", Response(status=302, headers={"Location": feed_url.split(str(site.port))[1]}))
    port = free_port()
    config = write_config(
        config_file, sqlite[0], feeds=[{"name": "Private", "url": feed_url}], serve={"host": "127.0.0.1", "port": port}
    )
    with ledger.trial("secrets"):
        poll = monitor(config, "poll")
        assert "Private: too_many_redirects: redirect loop at http://***@127.0.0.1:" in poll.stdout, poll.stdout
        feeds, feeds_json = monitor(config, "feeds"), monitor(config, "feeds", "--json")
        (row,) = json.loads(feeds_json.stdout)
        assert row["url"] == f"http://***@127.0.0.1:{site.port}/feed/***?access_token=***"
        assert row["error_message"].startswith("redirect loop at http://***@127.0.0.1:")
        server = subprocess.Popen([MONITOR, "--config", str(config), "serve"], stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 30, "monitor serve to answer")
            api = httpx.get(f"http://127.0.0.1:{port}/api/feeds", timeout=10)
        finally:
            server.send_signal(signal.SIGTERM)
            _, serve_log = server.communicate(timeout=30)
        assert api.status_code == 200 and api.json()[0]["url"] == row["url"]
        assert leaked(poll.stdout, poll.stderr, feeds.stdout, feeds_json.stdout, api.text, serve_log) == []


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize(
    "value",
    [
        f"[{{url: 'https://hooks.slack.com/services/T0/B0/{PATH_TOKEN}', secret: {QUERY_TOKEN}",  # cut short
        f"[{{url: 'hooks.slack.com/services/T0/B0/{PATH_TOKEN}', secret: {QUERY_TOKEN}}}]",  # no scheme
        f"[{{url: 'https://hook:{PASSWORD}@hooks.example/', secret: 'whsec_{QUERY_TOKEN}!'}}]",  # not base64
    ],
)
def test_a_malformed_variable_names_its_key_never_its_value(
    sqlite: tuple[str, sa.Engine], config_file: Callable[..., Path], ledger: Ledger, value: str
) -> None:
    config = write_config(config_file, sqlite[0])
    with ledger.trial("secrets"):
        result = monitor(config, "alerts", env={"MONITOR_ALERTS__WEBHOOKS": value})
        assert result.returncode == 2 and result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith("monitor: error: config: ") and (
            "MONITOR_ALERTS__WEBHOOKS" in line or "alerts.webhooks" in line
        )
        assert leaked(result.stderr) == []


@pytest.mark.parametrize(("host", "token", "warned"), [("192.0.2.1", None, True), ("192.0.2.1", "t0ken", False)])
def test_serving_beyond_this_machine_without_a_token_is_said_at_start(
    sqlite: tuple[str, sa.Engine],
    config_file: Callable[..., Path],
    ledger: Ledger,
    host: str,
    token: str | None,
    warned: bool,
) -> None:
    """192.0.2.1 is reserved for documentation: no machine has it, so nothing listens on
    another machine's reach here; the warning comes before the port is bound."""
    config = write_config(config_file, sqlite[0], api_token=token)
    with ledger.trial("secrets"):
        result = monitor(config, "serve", "--host", host, "--port", "0")
        lines = result.stderr.splitlines()
        assert result.returncode == 1 and lines[-1].startswith(f"monitor: error: cannot listen on {host}:0")
        warnings = [line for line in lines if "NO API TOKEN" in line]
        assert len(warnings) == (1 if warned else 0)
        if warned:
            assert f"WARNING monitor.cli.serve: NO API TOKEN: listening on {host} lets anyone" in warnings[0]


def test_serving_this_machine_alone_without_a_token_warns_of_nothing(
    sqlite: tuple[str, sa.Engine], config_file: Callable[..., Path], ledger: Ledger
) -> None:
    port = free_port()
    config = write_config(config_file, sqlite[0])
    with ledger.trial("secrets"):
        server = subprocess.Popen(
            [MONITOR, "--config", str(config), "serve", "--host", "localhost", "--port", str(port)],
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), 30, "monitor serve to answer")
        finally:
            server.send_signal(signal.SIGTERM)
            _, log = server.communicate(timeout=30)
        assert server.returncode == 0 and "serving on http://127.0.0.1" in log and "NO API TOKEN" not in log
