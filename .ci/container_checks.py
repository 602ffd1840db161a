"""The built image, run as users run it, with podman (called by .ci/container-test).

    python .ci/container_checks.py IMAGE

Every server the containers talk to is on this machine's 127.0.0.1: the feed server
here, and PostgreSQL. A container on the host's network reaches them there; one with a
network namespace of its own (slirp4netns with allow_host_loopback) reaches the host's
loopback as 10.0.2.2, and publishes its API on 127.0.0.1 only.

1. One container, the default command, host network: healthy, /healthz on the port the
   image exposes, polls a feed of this machine, `monitor search` inside finds the
   articles, not root, JSON logs, `podman stop` in under 10 s with exit code 0.
2. A new container on the same volume, its API published: the archive is still there,
   and it goes on polling.
3. README.md's backup of the SQLite volume, restored into a new volume.
4. SIGTERM in the middle of a poll: exit 0 within the grace period.
   A configuration error: one line, a non-zero exit.
5. compose.yaml (podman-compose): healthy, polling, its restart policy and volume.
6. compose.postgres.yaml (podman-compose): three monitors on one PostgreSQL database
   share 60 feeds; every feed fetched once, every article stored once.

Ends on one line "container: N passed, M failed"; the exit code is 1 when M > 0.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story  # noqa: E402
from tests.support.servers import HTTPServer, Response  # noqa: E402
from tests.support.waiting import free_port  # noqa: E402

HOST_LOOPBACK = "10.0.2.2"  # the host's 127.0.0.1, seen from a slirp4netns namespace
OWN_NAMESPACE = "slirp4netns:allow_host_loopback=true"
PREFIX = "nm-ci-"
# Not the project name of compose.postgres.yaml, so that a deployment here is left alone.
COMPOSE_PROJECT = f"{PREFIX}compose"
PODMAN_COMPOSE = os.environ.get("PODMAN_COMPOSE", "podman-compose")

results: list[tuple[str, bool]] = []
figures: dict[str, str] = {}


# --------------------------------------------------------------------------- helpers


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], check=False, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {result.returncode}: {result.stderr.strip()[-2000:]}")
    return result


def inspect(container: str, template: str) -> str:
    return podman("inspect", container, "--format", template).stdout.strip()


def record(name: str, condition: bool, detail: str = "") -> None:
    results.append((name, condition))
    print(f"  {'ok  ' if condition else 'FAIL'} {name}{f' ({detail})' if detail else ''}", flush=True)


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.5) -> float | None:
    """Seconds until ``condition()`` was true, or None after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with contextlib.suppress(Exception):
            if condition():
                return time.monotonic() - start
        time.sleep(interval)
    return None


def healthy(container: str) -> bool:
    # Podman runs health checks from systemd timers; where there is no systemd (CI
    # machines, containers) this runs the image's check now and records its result.
    return podman("healthcheck", "run", container, check=False).returncode == 0


# Straight to 127.0.0.1, whatever proxy the environment names.
http = httpx.Client(timeout=5, trust_env=False)


def get_json(url: str) -> Any:
    response = http.get(url)
    response.raise_for_status()
    return response.json()


def api_urls(base: str) -> list[str]:
    """The URL of every article the API lists (all pages)."""
    urls, cursor = [], None
    while True:
        page = get_json(f"{base}/api/articles?limit=100" + (f"&cursor={cursor}" if cursor else ""))
        urls += [item["url"] for item in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return urls


def site(server: HTTPServer, name: str, stories: int, host: str, *, first: int = 0) -> tuple[str, list[str]]:
    """A feed at /NAME/feed whose stories link to ``host`` (the address the monitor uses);
    the feed's URL and its stories' URLs, both as the monitor sees them."""
    base = f"http://{host}:{server.port}/{name}"
    numbers = range(first, first + stories)
    urls = [f"{base}/p/{n}" for n in numbers]
    items = [Item(f"Story {name} {n}", url) for n, url in zip(numbers, urls, strict=True)]
    server.route(f"/{name}/feed", Response(rss20(items), headers={"Content-Type": FEED_TYPES["rss20"]}))
    for n in numbers:
        page = article_page(f"Story {name} {n}", story(f"Almaty {name} {n}", 8))
        server.route(f"/{name}/p/{n}", Response(page, headers={"Content-Type": "text/html"}))
    return f"{base}/feed", urls


def feeds_env(feeds: dict[str, str], interval: str = "1h") -> str:
    return json.dumps([{"name": name, "url": url, "interval": interval} for name, url in feeds.items()])


def port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def phase(title: str) -> Iterator[None]:
    print(f"\n{title}", flush=True)
    try:
        yield
    except Exception as exc:
        traceback.print_exc()
        record(f"{title}: ran to the end", False, str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__)


def logs(container: str) -> tuple[str, str]:
    result = podman("logs", container, check=False)
    return result.stdout, result.stderr


def remove(*containers: str) -> None:
    """The containers, and the anonymous volumes the image's VOLUME gave them."""
    for container in containers:
        podman("rm", "--force", "--volumes", "--time", "0", container, check=False)


# ------------------------------------------------------------------------ the checks


def single_container(image: str, server: HTTPServer, volume: str) -> list[str]:
    name = f"{PREFIX}single"
    exposed = json.loads(podman("image", "inspect", image, "--format", "{{json .Config.ExposedPorts}}").stdout)
    port = int(next(iter(exposed)).split("/")[0])
    record("the image exposes one port", len(exposed) == 1, ", ".join(exposed))
    # On the host's network the API would listen on every address of the machine:
    # 127.0.0.1 only, on the exposed port when it is free here.
    if not port_is_free(port):
        print(f"  (port {port} is taken on this machine: the API gets another)")
        port = free_port()
    feed, urls = site(server, "wire", 5, "127.0.0.1")
    started = time.monotonic()
    podman(
        "run", "-d", "--name", name, "--network", "host", "-v", f"{volume}:/app/data",
        "-e", f"MONITOR_FEEDS={feeds_env({'Wire': feed})}",
        "-e", "MONITOR_POLL__ALLOW_PRIVATE_NETWORKS=true",
        "-e", "MONITOR_SERVE__HOST=127.0.0.1",
        "-e", f"MONITOR_SERVE__PORT={port}",
        "-e", "MONITOR_LOG_FORMAT=json",
        image,
    )  # fmt: skip
    took = wait_until(lambda: healthy(name), 120)
    record("becomes healthy", took is not None, f"{time.monotonic() - started:.1f} s after podman run")
    figures["start to healthy (single, SQLite)"] = f"{time.monotonic() - started:.1f} s"
    record("the health state is recorded", inspect(name, "{{.State.Health.Status}}") == "healthy")
    base = f"http://127.0.0.1:{port}"
    record("/healthz answers 200 on the exposed port", http.get(f"{base}/healthz").status_code == 200)
    stored = wait_until(lambda: sorted(api_urls(base)) == sorted(urls), 90)
    record("polls the feed and stores its articles", stored is not None, f"{len(urls)} articles")
    record(
        "fetched the feed once (interval 1h)", len(server.hits("/wire/feed")) == 1, f"{len(server.hits('/wire/feed'))}"
    )
    found = podman("exec", name, "monitor", "search", "Almaty", "--json").stdout
    record("`monitor search` in the container finds them", sorted(a["url"] for a in json.loads(found)) == sorted(urls))
    uid = podman("exec", name, "id", "-u").stdout.strip()
    user = inspect(name, "{{.Config.User}}")
    record("runs as a non-root user", uid not in ("", "0") and user not in ("", "0", "root"), f"uid {uid}, USER {user}")
    _out, err = logs(name)
    lines = [line for line in err.splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines if line.startswith("{")]
    record(
        "MONITOR_LOG_FORMAT=json: one JSON object per log line",
        bool(lines) and len(parsed) == len(lines) and all(p["time"].endswith("Z") for p in parsed),
        f"{len(parsed)} of {len(lines)} lines",
    )
    polls = [p for p in parsed if p.get("feed") == "Wire" and "feed_id" in p]
    record("a poll's log line has the feed as fields", bool(polls) and polls[0].get("stored") == len(urls))
    stopped = time.monotonic()
    podman("stop", "--time", "10", name, timeout=30)
    took_stop = time.monotonic() - stopped
    code = inspect(name, "{{.State.ExitCode}}")
    figures["podman stop (single)"] = f"{took_stop:.1f} s"
    record("`podman stop` ends it within 10 s", took_stop < 10, f"{took_stop:.1f} s")
    record("exit code 0 after SIGTERM", code == "0", f"exit {code}")
    remove(name)
    return urls


def restarted_on_the_volume(image: str, server: HTTPServer, volume: str, archived: list[str]) -> list[str]:
    name = f"{PREFIX}restarted"
    port = free_port()
    # Stories linked as this container reaches them: two more for the archive.
    feed, urls = site(server, "wire2", 2, HOST_LOOPBACK)
    started = time.monotonic()
    podman(
        "run", "-d", "--name", name, "--network", OWN_NAMESPACE, "-p", f"127.0.0.1:{port}:8080",
        "-v", f"{volume}:/app/data",
        "-e", f"MONITOR_FEEDS={feeds_env({'Wire 2': feed})}",
        "-e", "MONITOR_POLL__ALLOW_PRIVATE_NETWORKS=true",
        image,
    )  # fmt: skip
    took = wait_until(lambda: healthy(name), 120)
    record("a new container on the same volume becomes healthy", took is not None)
    figures["start to healthy (existing volume)"] = f"{time.monotonic() - started:.1f} s"
    base = f"http://127.0.0.1:{port}"
    record("/healthz answers through the published port", http.get(f"{base}/healthz").status_code == 200)
    everything = sorted(archived + urls)
    done = wait_until(lambda: sorted(api_urls(base)) == everything, 90)
    listed = api_urls(base)
    record(
        "/api/articles through the published port: the archive kept, new stories added, each once",
        done is not None,
        f"{len(listed)} listed, {len(set(listed))} distinct, {len(everything)} expected",
    )
    podman("stop", "--time", "10", name, timeout=30)
    record("stops with exit code 0", inspect(name, "{{.State.ExitCode}}") == "0")
    remove(name)
    return everything


def stop_mid_poll(image: str, server: HTTPServer) -> None:
    """SIGTERM while pages are being fetched: the monitor, not a signal to its whole
    process group, stops its extraction processes; exit 0 within the grace period."""
    name, port = f"{PREFIX}midpoll", free_port()
    feed, _urls = site(server, "slow", 4, "127.0.0.1")
    for n in range(4):
        page = article_page(f"Story slow {n}", story(f"Almaty slow {n}", 8))
        server.route(f"/slow/p/{n}", Response(page, headers={"Content-Type": "text/html"}, delay=30))
    podman(
        "run", "-d", "--name", name, "--network", "host",
        "-e", f"MONITOR_FEEDS={feeds_env({'Slow': feed})}",
        "-e", "MONITOR_POLL__ALLOW_PRIVATE_NETWORKS=true",
        "-e", "MONITOR_POLL__SHUTDOWN_GRACE=3s",
        "-e", "MONITOR_SERVE__HOST=127.0.0.1", "-e", f"MONITOR_SERVE__PORT={port}",
        image,
    )  # fmt: skip
    try:
        busy = wait_until(lambda: all(server.hits(f"/slow/p/{n}") for n in range(4)), 60)
        record("fetching slow pages", busy is not None)
        stopped = time.monotonic()
        podman("stop", "--time", "10", name, timeout=30)
        took = time.monotonic() - stopped
        code = inspect(name, "{{.State.ExitCode}}")
        _out, err = logs(name)
        record(
            "stopped mid-poll within the grace period, exit code 0",
            took < 8 and code == "0",
            f"{took:.1f} s, exit {code}",
        )
        record("... with no traceback", "Traceback" not in err, err[-500:] if "Traceback" in err else "")
    finally:
        remove(name)


BACKUP = (
    "import sqlite3; d = sqlite3.connect('data/backup.db'); sqlite3.connect('data/monitor.db').backup(d); d.close()"
)
RESTORE = (
    "import sqlite3; d = sqlite3.connect('data/monitor.db'); "
    "sqlite3.connect('file:/backup.db?immutable=1', uri=True).backup(d); d.close()"
)


def backup_and_restore(image: str, volume: str, archived: list[str], scratch: Path) -> None:
    """README.md's backup and restore of the SQLite volume, command for command."""
    name, restored = f"{PREFIX}backup", f"{volume}-restored"
    podman("run", "-d", "--name", name, "-e", "MONITOR_FEEDS=[]", "-v", f"{volume}:/app/data", image)
    record("running, for the backup", wait_until(lambda: healthy(name), 120) is not None)
    podman("exec", name, "python", "-c", BACKUP)
    copy = scratch / "monitor-backup.db"
    podman("cp", f"{name}:/app/data/backup.db", str(copy))
    podman("exec", name, "rm", "data/backup.db")
    remove(name)
    copy.chmod(0o644)
    try:
        podman(
            "run", "--rm", "-v", f"{restored}:/app/data", "-v", f"{copy}:/backup.db:ro", image, "python", "-c", RESTORE
        )
        port = free_port()
        podman(
            "run", "-d", "--name", name, "-e", "MONITOR_FEEDS=[]", "-p", f"127.0.0.1:{port}:8080",
            "-v", f"{restored}:/app/data", image,
        )  # fmt: skip
        record("a container on the restored volume becomes healthy", wait_until(lambda: healthy(name), 120) is not None)
        listed = api_urls(f"http://127.0.0.1:{port}")
        record("the restored archive has every article", sorted(listed) == sorted(archived), f"{len(listed)} listed")
    finally:
        remove(name)
        podman("volume", "rm", "--force", restored, check=False)


def config_error(image: str) -> None:
    name = f"{PREFIX}badconfig"
    podman("run", "-d", "--name", name, "-e", "MONITOR_FEEDS=[]", "-e", "MONITOR_POLL__CONCURRENCY=lots", image)
    code = podman("wait", name, timeout=60).stdout.strip()
    out, err = logs(name)
    lines = [line for line in (out + err).splitlines() if line.strip()]
    record("an invalid MONITOR_* override: exit non-zero", code not in ("", "0"), f"exit {code}")
    record(
        "... and one line naming the key",
        len(lines) == 1 and lines[0].startswith("monitor: error: config: poll.concurrency"),
        " | ".join(lines)[:300],
    )
    remove(name)


def compose(project: str, files: list[str], env: dict[str, str], *args: str, timeout: float = 300) -> None:
    command = [PODMAN_COMPOSE, "-p", project]
    for name in files:
        command += ["-f", str(ROOT / name)]
    result = subprocess.run(
        [*command, *args], check=False, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(f"podman-compose {' '.join(args)}: exit {result.returncode}: {result.stderr[-2000:]}")


def project_containers(project: str) -> list[str]:
    return podman(
        "ps", "--filter", f"label=io.podman.compose.project={project}", "--format", "{{.Names}}"
    ).stdout.split()


def compose_single(image: str, server: HTTPServer) -> None:
    project, files = f"{PREFIX}single-compose", ["compose.yaml", ".ci/compose.single.ci.yaml"]
    feed, urls = site(server, "solo", 3, HOST_LOOPBACK)
    port = free_port()
    env = {"MONITOR_IMAGE": image, "MONITOR_PORT": f"127.0.0.1:{port}", "MONITOR_FEEDS": feeds_env({"Solo": feed})}
    names: list[str] = []
    try:
        compose(project, files, env, "up", "-d")
        names = project_containers(project)
        record("one container up", len(names) == 1, ", ".join(names))
        record("it becomes healthy (compose's health check)", wait_until(lambda: healthy(names[0]), 120) is not None)
        base = f"http://127.0.0.1:{port}"
        record("/healthz answers through the published port", http.get(f"{base}/healthz").status_code == 200)
        stored = wait_until(lambda: sorted(api_urls(base)) == sorted(urls), 90)
        record("polls MONITOR_FEEDS and stores the articles", stored is not None)
        policy = inspect(names[0], "{{.HostConfig.RestartPolicy.Name}}")
        record("restart policy unless-stopped", policy == "unless-stopped", policy)
        mounts = inspect(names[0], "{{range .Mounts}}{{.Name}}={{.Destination}} {{end}}").split()
        record("the named volume at /app/data", f"{project}_monitor-data=/app/data" in mounts, " ".join(mounts))
        compose(project, files, env, "stop", "--timeout", "10", timeout=60)
        record("stops with exit code 0", inspect(names[0], "{{.State.ExitCode}}") == "0")
    finally:
        remove(*names)
        with contextlib.suppress(Exception):
            compose(project, files, env, "down", "--volumes", "--timeout", "0", timeout=120)


def compose_scale_out(image: str, server: HTTPServer, admin_url: str) -> None:
    database = f"monitor_ci_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
    url = sa.engine.make_url(admin_url).set(database=database)
    inside = url.set(host=HOST_LOOPBACK).render_as_string(hide_password=False)
    feeds, expected = {}, []
    for n in range(60):
        feed, urls = site(server, f"s{n}", 3, HOST_LOOPBACK)
        feeds[f"Site {n}"] = feed
        expected += urls
    api_port = free_port()
    env = {
        "MONITOR_IMAGE": image,
        "POSTGRES_PASSWORD": "unused",  # the scale-out runs on this machine's server here
        "CI_DATABASE_URL": inside,
        "CI_FEEDS": feeds_env(feeds),
        "MONITOR_PORT": f"127.0.0.1:{api_port}",  # published on this machine's loopback only
    }
    files = ["compose.postgres.yaml", ".ci/compose.ci.yaml"]

    engine = sa.create_engine(url)
    names: list[str] = []
    try:
        started = time.monotonic()
        compose(COMPOSE_PROJECT, files, env, "up", "-d", "monitor", "worker")
        names = project_containers(COMPOSE_PROJECT)
        record("three monitors up", len(names) == 3, ", ".join(sorted(names)))
        took = wait_until(lambda: all(healthy(n) for n in names), 180, interval=1)
        record("all three healthy", took is not None)
        figures["compose up to three healthy (PostgreSQL)"] = f"{time.monotonic() - started:.1f} s"
        record(
            "the published API answers",
            http.get(f"http://127.0.0.1:{api_port}/healthz").status_code == 200,
        )

        def articles() -> list[str]:
            with engine.connect() as connection:
                return list(connection.execute(sa.text("SELECT url FROM article")).scalars())

        done = wait_until(lambda: set(articles()) >= set(expected), 240, interval=1)
        stored = articles()
        figures["compose scale-out"] = (
            f"{len(feeds)} feeds, {len(stored)} articles stored ({len(set(stored))} distinct) in "
            f"{time.monotonic() - started:.0f} s"
        )
        record("every article stored", done is not None, f"{len(set(stored) & set(expected))} of {len(expected)}")
        record("... each once", len(stored) == len(set(stored)), f"{len(stored)} rows")
        fetches = [len(server.hits(f"/s{n}/feed")) for n in range(60)]
        record("every feed fetched exactly once", set(fetches) == {1}, f"fetches per feed: {sorted(set(fetches))}")
        polled_by = {}
        for name in names:
            _out, err = logs(name)
            polled_by[name] = sum(1 for line in err.splitlines() if ": ok, " in line and "feed 'Site " in line)
        figures["feeds polled per monitor"] = ", ".join(f"{n}: {c}" for n, c in sorted(polled_by.items()))
        record("the feeds were shared among the monitors", sum(polled_by.values()) == 60 and all(polled_by.values()))
        stopped = time.monotonic()
        compose(COMPOSE_PROJECT, files, env, "stop", "--timeout", "10", timeout=120)
        figures["compose stop (three monitors)"] = f"{time.monotonic() - stopped:.1f} s"
        codes = [inspect(name, "{{.State.ExitCode}}") for name in names]
        record("all three exit 0 on SIGTERM", codes == ["0"] * 3, ", ".join(codes))
    finally:
        remove(*names)
        with contextlib.suppress(Exception):
            compose(COMPOSE_PROJECT, files, env, "down", "--timeout", "0", timeout=120)
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def main() -> int:
    image = sys.argv[1]
    admin_url = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    volume = f"{PREFIX}data-{uuid.uuid4().hex[:6]}"
    with HTTPServer() as server:
        try:
            archived: list[str] = []
            with phase("One container, the default command, on the host's network"):
                archived = single_container(image, server, volume)
            if archived:
                with phase("A new container on the same volume, its API published"):
                    archived = restarted_on_the_volume(image, server, volume, archived)
                with phase("Backup and restore of the SQLite volume"), tempfile.TemporaryDirectory() as scratch:
                    backup_and_restore(image, volume, archived, Path(scratch))
            with phase("SIGTERM in the middle of a poll"):
                stop_mid_poll(image, server)
            with phase("A configuration error"):
                config_error(image)
            if shutil.which(PODMAN_COMPOSE) or Path(PODMAN_COMPOSE).exists():
                with phase("compose.yaml: one container, SQLite in a named volume"):
                    compose_single(image, server)
                with phase("compose.postgres.yaml: three monitors on one PostgreSQL database"):
                    compose_scale_out(image, server, admin_url)
            else:
                record("podman-compose is installed", False, PODMAN_COMPOSE)
        finally:
            remove(*(f"{PREFIX}{n}" for n in ("single", "restarted", "backup", "midpoll", "badconfig")))
            podman("volume", "rm", "--force", volume, check=False)
    print("\nFigures:")
    for what, value in figures.items():
        print(f"  {what}: {value}")
    passed = sum(1 for _name, ok in results if ok)
    failed = len(results) - passed
    print(f"container: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
