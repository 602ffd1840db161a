"""The command line against hostile text and hostile input: one line, never a traceback,
and nothing that acts on the terminal.

Titles, feed names and error pages carry escape sequences (clear the screen, retitle the
window, hide a line), 8-bit controls, bells and carriage returns; every command that
prints them for people (``poll``, ``feeds``, ``search``, ``alerts``, and the log on
stderr) prints the text without them, while ``--json`` keeps the stored text exact.
A configuration file that is not UTF-8, a database URL whose port is no number and an
alert id past any integer a database holds each end in one line naming the problem.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import Ledger
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.paths import ROOT
from tests.support.servers import HTTPServer, Response

MONITOR = str(Path(sys.executable).parent / "monitor")
# What a terminal acts on: C0 controls but tab and line feed, DEL, C1 controls.
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SIGNING = "whsec_c2lnbmluZy1rZXktb2YtdGhlLXRlc3Q="


def monitor(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MONITOR, "--config", str(config), *args], capture_output=True, text=True, timeout=90)


def one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one line of a failed command's stderr (asserted: no traceback, no output)."""
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("monitor: error: ")
    return line


@pytest.fixture
def site() -> Iterator[HTTPServer]:
    with HTTPServer() as server:
        yield server


def test_escape_sequences_in_stored_text_reach_no_terminal(
    fresh_database_url: Callable[[str], str],
    config_file: Callable[..., Path],
    site: HTTPServer,
    tmp_path: Path,
    ledger: Ledger,
) -> None:
    hostile_title = "Almaty summit\u009b2J \u0085opens &amp;#x1b;[2J"  # 8-bit CSI, NEL, ESC in escaped HTML
    site.route(
        "/feed", Response(rss20([Item(hostile_title, site.url("/p/1"))]), headers={"Content-Type": FEED_TYPES["rss20"]})
    )
    site.route(
        "/p/1", Response(article_page(hostile_title, story("Almaty summit", 8)), headers={"Content-Type": "text/html"})
    )
    # The webhook fails with an error page full of escapes, kept as the alert's last error.
    site.route("/hook", Response("\x1b[2J\x1b[31mdown\x1b]0;owned\x07 for maintenance\r", status=500))
    settings = {
        "database_url": fresh_database_url("sqlite"),
        "seeds_dir": str(ROOT / "seeds"),
        "poll": {"allow_private_networks": True, "extract_workers": 1},
        "feeds": [{"name": "Wire\x1b]0;owned\x07\x1b[8m\u009b2J", "url": site.url("/feed")}],
        "alerts": {"webhooks": [{"name": "ops", "url": site.url("/hook"), "secret": SIGNING, "timeout": 2}]},
    }
    config = config_file(json.dumps(settings))
    clipping = tmp_path / "clipping.txt"
    clipping.write_text(
        "\x1b]0;pwned\x07Almaty \x1b[31mtroops\x1b[0m leave\n\n" + story("Almaty troops", 6), encoding="utf-8"
    )
    with ledger.trial("cli"):
        shown = {
            "poll": monitor(config, "poll"),
            "import": monitor(config, "import", str(clipping)),
            "feeds": monitor(config, "feeds"),
            "search": monitor(config, "search", "Almaty"),
            "alerts": monitor(config, "alerts"),
        }
        for name, result in shown.items():
            assert result.returncode == 0, (name, result.stderr)
            assert not CONTROLS.search(result.stdout + result.stderr), (name, result.stdout, result.stderr)
        assert "Wire" in shown["feeds"].stdout and "Almaty troops leave" in shown["search"].stdout
        assert "Almaty summit" in shown["search"].stdout
        assert "last error: HTTP 500 Internal Server Error: down for maintenance" in shown["alerts"].stdout
        # JSON keeps the text exact, its C0 controls escaped by JSON itself.
        listed = monitor(config, "feeds", "--json")
        assert [feed["name"] for feed in json.loads(listed.stdout)] == [settings["feeds"][0]["name"]]
        assert "\x1b" not in listed.stdout and "\\u001b" in listed.stdout


def test_a_configuration_file_that_is_not_utf8_is_one_line(config_file: Callable[..., Path], ledger: Ledger) -> None:
    config = config_file("")
    config.write_bytes(b"feeds:\n  - {name: caf\xe9, url: 'https://a.example/'}\n")
    with ledger.trial("cli"):
        line = one_line_error(monitor(config, "feeds"), 2)
        assert line == f"monitor: error: config: {config}: not UTF-8 text (byte 0xe9 at line 2, column 15)"


@pytest.mark.parametrize("url", ["postgresql+psycopg://u:secret@h:abc/db", "postgresql://u:secret@h:/db"])
def test_a_database_port_that_is_no_number_is_one_line(
    config_file: Callable[..., Path], ledger: Ledger, url: str
) -> None:
    config = config_file(json.dumps({"database_url": url}))
    with ledger.trial("cli"):
        line = one_line_error(monitor(config, "feeds"), 2)
        assert line == "monitor: error: config: database_url: the port is not a number"


def test_an_alert_id_past_any_database_integer_is_one_line(
    database_url: str, config_file: Callable[..., Path], ledger: Ledger
) -> None:
    config = config_file(json.dumps({"database_url": database_url}))
    with ledger.trial("cli"):
        line = one_line_error(monitor(config, "alerts", "retry", "--id", "99999999999999999999"), 2)
        assert line.startswith("monitor: error: --id 99999999999999999999: no alert has this id")
        # The largest id an alert can have is an id like any other (none such here); one more is none.
        largest = monitor(config, "alerts", "retry", "--id", str(2**31 - 1))
        assert (largest.returncode, largest.stdout) == (0, "re-queued 0 failed alert(s)\n"), largest.stderr
        assert "no alert has this id" in one_line_error(monitor(config, "alerts", "retry", "--id", str(2**31)), 2)
        # A limit past every alert lists them all.
        listing = monitor(config, "alerts", "--limit", "99999999999999999999")
        assert listing.returncode == 0 and listing.stdout.endswith("no alerts\n"), listing.stderr
