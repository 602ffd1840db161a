"""One process for a container: `monitor run --serve`, its logs, its errors, as real processes."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from monitor.cli.logs import JSONFormatter, TextFormatter
from monitor.cli.serve import listen
from monitor.models import Article
from tests.support.feeds import FEED_TYPES, Item, article_page, rss20, story
from tests.support.paths import SEEDS_DIR
from tests.support.servers import HTTPServer, Response
from tests.support.waiting import free_port, wait_for

MONITOR = str(Path(sys.executable).parent / "monitor")
UTC_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    with HTTPServer() as server:
        items = [Item(f"Story {n}", server.url(f"/p/{n}")) for n in range(3)]
        server.route("/feed", Response(rss20(items), headers={"Content-Type": FEED_TYPES["rss20"]}))
        for n in range(3):
            page = article_page(f"Story {n}", story(f"Almaty story {n}", 8))
            server.route(f"/p/{n}", Response(page, headers={"Content-Type": "text/html"}))
        yield server


def write_config(config_file: Callable[..., Path], database_url: str, server: HTTPServer, **extra: object) -> Path:
    settings = {
        "database_url": database_url,
        "seeds_dir": str(SEEDS_DIR),
        "poll": {"allow_private_networks": True, "extract_workers": 1, "tick": "0.3s", "shutdown_grace": "3s"},
        "feeds": [{"name": "Wire", "url": server.url("/feed"), "interval": "10m"}],
        **extra,
    }
    return config_file(json.dumps(settings))


def stored(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(Article)).scalar_one())
    finally:
        engine.dispose()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1, trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


def run(config: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [MONITOR, "--config", str(config), "run", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def stop(process: subprocess.Popen[str]) -> tuple[int, str, float]:
    """SIGTERM; the exit code, stderr and the seconds it took to exit."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        _out, err = process.communicate(timeout=20)
    finally:
        process.kill()
    return process.returncode, err, time.monotonic() - started


@pytest.mark.parametrize("switch", ["--serve", "serve.with_daemon"])
def test_the_daemon_and_the_api_in_one_process_stop_together_on_sigterm(
    switch: str, fresh_database_url: Callable[[str], str], config_file: Callable[..., Path], server: HTTPServer
) -> None:
    url, port = fresh_database_url("sqlite"), free_port()
    serve = {"host": "127.0.0.1", "port": port} | ({"with_daemon": True} if switch != "--serve" else {})
    config = write_config(config_file, url, server, serve=serve)
    process = run(config, *([switch] if switch == "--serve" else []))
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 30, "/healthz")
        wait_for(lambda: stored(url) == 3, 60, "the feed's three articles")
        listed = httpx.get(f"http://127.0.0.1:{port}/api/articles", timeout=5, trust_env=False).json()
        code, log, took = stop(process)
    finally:
        process.kill()
    assert sorted(item["url"] for item in listed["items"]) == sorted(server.url(f"/p/{n}") for n in range(3))
    assert code == 0, log
    assert took < 8, took
    assert "Traceback" not in log
    # Both stopped: the daemon said so, and so did the server after it.
    assert "monitor.scheduling.daemon: stopped" in log and "Application shutdown complete" in log
    assert not answers(f"http://127.0.0.1:{port}/healthz")


def test_sigint_stops_both_as_well(
    fresh_database_url: Callable[[str], str], config_file: Callable[..., Path], server: HTTPServer
) -> None:
    url, port = fresh_database_url("sqlite"), free_port()
    config = write_config(config_file, url, server)
    process = run(config, "--serve", "--host", "127.0.0.1", "--port", str(port))
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz"), 30, "/healthz")
        process.send_signal(signal.SIGINT)
        _out, log = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log


def test_a_taken_port_is_one_line_and_the_daemon_never_starts(
    fresh_database_url: Callable[[str], str], config_file: Callable[..., Path], server: HTTPServer
) -> None:
    url = fresh_database_url("sqlite")
    config = write_config(config_file, url, server)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [MONITOR, "--config", str(config), "run", "--serve", "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("monitor: error")]
    assert errors == [f"monitor: error: cannot listen on 127.0.0.1:{port}: Address already in use"], result.stderr
    assert "Traceback" not in result.stderr
    assert server.hits("/feed") == []  # nothing polled


def test_the_servers_connections_send_without_waiting_for_acknowledgements() -> None:
    """Nagle's algorithm is off on every connection the API's socket accepts (TCP_NODELAY),
    as uvicorn's event loop accepts them: an answer written in two parts (headers, body)
    must not wait for the client's delayed acknowledgement of the first."""

    async def accepted_nodelay() -> int:
        loop = asyncio.get_running_loop()
        option: asyncio.Future[int] = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                option.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        sock = listen("127.0.0.1", 0)
        async with await loop.create_server(Probe, sock=sock):
            _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            try:
                return await asyncio.wait_for(option, timeout=10)
            finally:
                writer.close()

    assert asyncio.run(accepted_nodelay()) != 0


def test_json_logs_one_object_per_line_with_the_feed_as_fields(
    fresh_database_url: Callable[[str], str], config_file: Callable[..., Path], server: HTTPServer
) -> None:
    url = fresh_database_url("sqlite")
    config = write_config(config_file, url, server, log_format="json")
    process = run(config)
    try:
        wait_for(lambda: stored(url) == 3, 60, "the feed's three articles")
        code, log, _took = stop(process)
    finally:
        process.kill()
    assert code == 0, log
    entries = [json.loads(line) for line in log.splitlines()]  # every line is one object
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"]) for e in entries)
    (poll,) = [e for e in entries if e.get("feed") == "Wire"]
    assert poll["message"].startswith("feed 'Wire': ok") and poll["logger"] == "monitor.scheduling.worker"
    assert (poll["status"], poll["stored"], poll["new_entries"], poll["level"]) == ("ok", 3, 3, "INFO")
    assert isinstance(poll["feed_id"], int) and poll["worker"]


def test_text_logs_carry_the_time_in_utc(
    fresh_database_url: Callable[[str], str], config_file: Callable[..., Path], server: HTTPServer
) -> None:
    url = fresh_database_url("sqlite")
    config = write_config(config_file, url, server)
    process = run(config, env={"TZ": "Asia/Almaty", "PATH": "/usr/bin:/bin"})
    try:
        wait_for(lambda: stored(url) == 3, 60, "the feed's three articles")
        code, log, _took = stop(process)
    finally:
        process.kill()
    assert code == 0, log
    lines = log.splitlines()
    assert lines and all(UTC_STAMP.match(line) for line in lines), log
    stamp = time.strptime(lines[-1][:19], "%Y-%m-%dT%H:%M:%S")
    assert abs(time.mktime(stamp) - time.mktime(time.gmtime())) < 120  # UTC, not Almaty's +05:00


def test_the_formatters_keep_tracebacks_and_extra_fields() -> None:
    import logging

    try:
        raise ValueError("boom\non two lines")
    except ValueError:
        record = logging.getLogger("monitor.x").makeRecord(
            "monitor.x", logging.ERROR, __file__, 1, "feed %s failed", ("Wire",), sys.exc_info(), extra={"feed_id": 7}
        )
    line = JSONFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["message"], entry["feed_id"], entry["level"]) == ("feed Wire failed", 7, "ERROR")
    assert "ValueError: boom" in entry["exception"]
    assert UTC_STAMP.match(TextFormatter().format(record))


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("MONITOR_LOG_FORMAT", "xml", "log_format"),
        ("MONITOR_LOG_LEVEL", "loud", "log_level"),
        ("MONITOR_SERVE__WITH_DAEMON", "perhaps", "serve.with_daemon"),
    ],
)
def test_a_bad_override_fails_fast_in_one_line(variable: str, value: str, key: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [MONITOR, "run", "--serve"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", variable: value, "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path}/m.db"},
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"monitor: error: config: {key}: "), (
        result.stderr
    )
