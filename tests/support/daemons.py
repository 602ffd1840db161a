"""Real ``monitor`` processes for tests: start a daemon, kill it hard, stop it politely;
and the site, configuration and counts that tests of the daemon share.

    with Daemon(config) as daemon:     # `monitor --config … run`, its log kept in a file
        wait_for(...)
        daemon.kill()                  # SIGKILL: no clean-up at all
    log = daemon.log()

A daemon still running when the block ends is killed, and so are the processes it
started (the extraction pool), so a failing test leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from monitor.models import Article
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, Response, WebhookReceiver
from tests.support.waiting import wait_for

MONITOR = str(Path(sys.executable).parent / "monitor")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Daemon:
    """``monitor --config CONFIG run`` in the background, its stderr in a file."""

    def __init__(self, config: Path, *args: str) -> None:
        self._log = tempfile.NamedTemporaryFile("w+", prefix="monitor-run-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [MONITOR, "--config", str(config), *args, "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
        )
        self.helpers: list[int] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; the pool's processes are left to notice."""
        self.helpers = descendants(self.pid)
        self.process.kill()
        self.process.wait(timeout=10)

    def helpers_gone(self, timeout: float = 15) -> None:
        """Wait for the processes the killed daemon had started to exit by themselves."""
        wait_for(lambda: not any(alive(pid) for pid in self.helpers), timeout, "the daemon's pool to exit")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, and the exit code."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None:
            print(f"--- log of monitor run (pid {self.pid}) ---\n{self.log()[-5000:]}")
        left = descendants(self.pid) if self.running() else []
        if self.running():
            self.process.kill()
            self.process.wait(timeout=10)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


# ------------------------------------------------------------------ what daemons work on


def site(server: HTTPServer, feed: str, pages: int, *, delay: float = 0.0, first: int = 0) -> list[str]:
    """A feed at ``feed`` of stories ``first``… that mention Almaty (each page answered
    after ``delay`` s); the URLs of its stories."""
    numbers = range(first + pages)
    urls = [server.url(f"{feed}/p/{n}") for n in numbers]
    items = [Item(f"Story {feed} {n}", url) for n, url in zip(numbers, urls, strict=True)]
    server.route(feed, Response(rss20(items), headers={"Content-Type": FEED_TYPES["rss20"]}))
    for n in numbers:
        body = article_page(f"Story {feed} {n}", story(f"Almaty {feed.strip('/')} {n}", 8))
        server.route(f"{feed}/p/{n}", Response(body, headers={"Content-Type": "text/html"}, delay=delay))
    return urls[first:]


def write_config(
    config_file: Callable[..., Path],
    database_url: str,
    feeds: dict[str, str],
    receiver: WebhookReceiver,
    **poll: Any,
) -> Path:
    """A configuration of ``feeds`` (name → URL) alerting ``receiver``, quick to poll and stop."""
    settings = {
        "database_url": database_url,
        "seeds_dir": str(SEEDS_DIR),
        "poll": {"allow_private_networks": True, "extract_workers": 1, "tick": "0.3s", "shutdown_grace": "3s", **poll},
        "feeds": [{"name": name, "url": url, "interval": poll.get("interval", "10m")} for name, url in feeds.items()],
        "alerts": {"webhooks": [{"name": "desk", **receiver.settings()}]},
    }
    return config_file(json.dumps(settings))


def count(engine: sa.Engine, what: Any, *where: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(what).where(*where)).scalar_one())


def stored_urls(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(Article.url)).scalars())


def alerted_urls(receiver: WebhookReceiver) -> list[str]:
    """The article of each delivery the receiver kept (one per ``webhook-id``)."""
    with receiver.lock:
        return [payload["data"]["article"]["url"] for payload in receiver.kept.values()]


def losses(expected: list[str], got: list[str]) -> tuple[int, int]:
    """How many of ``expected`` are missing from ``got``, and how many ``got`` repeats."""
    return len(set(expected) - set(got)), len(got) - len(set(got))


__all__ = [
    "MONITOR", "Daemon", "alerted_urls", "alive", "count", "descendants", "losses", "site", "stored_urls",
    "write_config",
]  # fmt: skip
