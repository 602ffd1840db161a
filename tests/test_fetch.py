"""The fetcher against a real HTTP server on 127.0.0.1: limits, safety, failure kinds.

Only the internet is simulated: a resolver maps test names to addresses, and, for the
address-safety tests, a network backend carries connections meant for a public-looking
address to the local server.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpcore
import httpx
import pytest

from monitor.config import PollSettings
from monitor.errors import FetchError
from monitor.pipeline.fetch import (
    FEED_ACCEPT,
    FailureKind,
    Fetcher,
    FetchResult,
    blocked_reason,
)
from tests.support.raw import RawServer, read_head
from tests.support.servers import HTTPServer, Request, Response
from tests.support.tarpit import Tarpit
from tests.support.waiting import free_port

RSS = b"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title></channel></rss>"
PUBLIC_IP = "93.184.216.34"  # what "news.test" resolves to in the safety tests


def poll(**overrides: Any) -> PollSettings:
    values: dict[str, Any] = {"allow_private_networks": True, "timeout": 5}
    values.update(overrides)
    return PollSettings(**values)


def fetch(url: str, settings: PollSettings | None = None, **kwargs: Any) -> FetchResult:
    """One fetch with a fresh Fetcher (``resolver``/``network_backend`` go to it)."""
    options = {k: kwargs.pop(k) for k in ("resolver", "network_backend") if k in kwargs}

    async def run() -> FetchResult:
        async with Fetcher(settings or poll(), **options) as fetcher:
            return await fetcher.fetch(url, **kwargs)

    return asyncio.run(run())


def failure(url: str, settings: PollSettings | None = None, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetch(url, settings, **kwargs)
    return caught.value


def static_resolver(table: dict[str, list[str]]) -> Callable[[str], Any]:
    async def resolve(host: str) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


class LocalInternet(httpcore.AsyncNetworkBackend):
    """Connects every checked public address to the local server; records the targets."""

    def __init__(self) -> None:
        self.connected: list[str] = []
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.connected.append(host)
        return await self._inner.connect_tcp("127.0.0.1", port, *args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# --------------------------------------------------------------------------- success


def test_fetch_returns_body_validators_and_sends_user_agent(server: HTTPServer) -> None:
    server.route(
        "/feed.xml",
        Response(
            body=RSS,
            headers={
                "Content-Type": "application/rss+xml; charset=utf-8",
                "ETag": '"v1"',
                "Last-Modified": "Wed, 05 Jan 2022 10:00:00 GMT",
                "Cache-Control": "public, max-age=300",
            },
        ),
    )
    result = fetch(server.url("/feed.xml"), poll(user_agent="probe/1.0 (+https://x.example)"))
    assert result.status == 200 and not result.not_modified
    assert result.body == RSS
    assert result.url == server.url("/feed.xml")
    assert result.content_type == "application/rss+xml; charset=utf-8"
    assert (result.etag, result.last_modified) == ('"v1"', "Wed, 05 Jan 2022 10:00:00 GMT")
    assert result.max_age == 300
    (request,) = server.hits("/feed.xml")
    assert request.header("user-agent") == "probe/1.0 (+https://x.example)"
    assert request.header("accept") == FEED_ACCEPT
    assert request.header("if-none-match") is None


def test_conditional_get_sends_validators_and_maps_304(server: HTTPServer) -> None:
    def conditional(request: Request) -> Response:
        if request.header("if-none-match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(body=RSS, headers={"ETag": '"v1"'})

    server.route("/feed.xml", conditional)
    stamp = "Wed, 05 Jan 2022 10:00:00 GMT"
    result = fetch(server.url("/feed.xml"), etag='"v1"', last_modified=stamp)
    assert result.status == 304 and result.not_modified and result.body is None
    # The validators stay known even when the 304 repeats only some of them.
    assert (result.etag, result.last_modified) == ('"v1"', stamp)
    (request,) = server.hits("/feed.xml")
    assert request.header("if-none-match") == '"v1"'
    assert request.header("if-modified-since") == stamp


def test_redirects_are_followed_and_final_url_reported(server: HTTPServer) -> None:
    server.route("/old", Response(status=301, headers={"Location": "/middle"}))
    server.route("/middle", Response(status=302, headers={"Location": server.url("/new")}))
    server.route("/new", Response(body=RSS))
    result = fetch(server.url("/old"))
    assert result.url == server.url("/new") and result.body == RSS


@pytest.mark.parametrize("wrapping", ["gzip", "zlib-deflate", "raw-deflate"])
def test_compressed_bodies_are_decoded(server: HTTPServer, wrapping: str) -> None:
    wbits = {"gzip": 31, "zlib-deflate": 15, "raw-deflate": -15}[wrapping]
    compressor = zlib.compressobj(wbits=wbits)
    encoded = compressor.compress(RSS * 50) + compressor.flush()
    encoding = "gzip" if wrapping == "gzip" else "deflate"
    server.route("/z", Response(body=encoded, headers={"Content-Encoding": encoding}))
    assert fetch(server.url("/z")).body == RSS * 50
    assert "gzip" in (server.hits("/z")[0].header("accept-encoding") or "")


# --------------------------------------------------------------------------- HTTP status


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (404, FailureKind.HTTP_4XX, "HTTP 404 Not Found"),
        (410, FailureKind.HTTP_4XX, "HTTP 410 Gone"),
        (403, FailureKind.HTTP_4XX, "HTTP 403 Forbidden"),
        (500, FailureKind.HTTP_5XX, "HTTP 500 Internal Server Error"),
        (502, FailureKind.HTTP_5XX, "HTTP 502 Bad Gateway"),
    ],
)
def test_error_statuses_are_classified(server: HTTPServer, status: int, kind: FailureKind, message: str) -> None:
    server.route("/x", Response(body=b"no", status=status))
    error = failure(server.url("/x"))
    assert (error.kind, error.args[0], error.retry_after) == (kind, message, None)


def test_503_with_retry_after_seconds(server: HTTPServer) -> None:
    server.route("/x", Response(status=503, headers={"Retry-After": "120"}))
    error = failure(server.url("/x"))
    assert (error.kind, error.retry_after) == (FailureKind.HTTP_5XX, 120)


def test_429_with_retry_after_seconds(server: HTTPServer) -> None:
    server.route("/x", Response(status=429, headers={"Retry-After": "30"}))
    error = failure(server.url("/x"))
    assert (error.kind, error.args[0], error.retry_after) == (
        FailureKind.HTTP_429,
        "HTTP 429 Too Many Requests",
        30,
    )


def test_429_with_retry_after_http_date(server: HTTPServer) -> None:
    later = datetime.now(UTC) + timedelta(minutes=10)
    server.route("/x", Response(status=429, headers={"Retry-After": format_datetime(later, True)}))
    error = failure(server.url("/x"))
    assert error.kind == FailureKind.HTTP_429
    assert error.retry_after is not None and 590 <= error.retry_after <= 600


# --------------------------------------------------------------------------- network


def test_connection_refused_on_closed_port() -> None:
    error = failure(f"http://127.0.0.1:{free_port()}/feed.xml")
    assert error.kind == FailureKind.CONNECT
    assert "refused" in error.args[0]


def test_slow_answer_times_out(server: HTTPServer) -> None:
    server.route("/slow", Response(body=RSS, delay=3))
    started = time.monotonic()
    error = failure(server.url("/slow"), poll(timeout="0.5s"))
    assert (error.kind, error.args[0]) == (FailureKind.TIMEOUT, "timed out after 0.5s")
    assert time.monotonic() - started < 2.5


def test_body_that_stalls_times_out(server: HTTPServer) -> None:
    server.route("/stall", Response(body=RSS * 10, delay=3, stall_after=100))
    assert failure(server.url("/stall"), poll(timeout="0.5s")).kind == FailureKind.TIMEOUT


def test_a_server_trickling_bytes_holds_a_fetch_no_longer_than_the_timeout() -> None:
    # Headers a byte at a time, each byte well within any per-read timeout, never ending.
    with Tarpit(trickle=b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"x" * 200, every=0.1) as pit:
        started = time.monotonic()
        error = failure(pit.url("/page"), poll(timeout="1s"))
        took = time.monotonic() - started
    assert (error.kind, error.args[0]) == (FailureKind.TIMEOUT, "timed out after 1s")
    assert took < 3, took


def test_the_timeout_bounds_a_chain_of_slow_redirects_as_a_whole(server: HTTPServer) -> None:
    # Each hop answers within the timeout; together they take three times as long.
    for hop in range(5):
        server.route(f"/r{hop}", Response(status=302, headers={"Location": f"/r{hop + 1}"}, delay=0.6))
    server.route("/r5", Response(body=RSS))
    started = time.monotonic()
    error = failure(server.url("/r0"), poll(timeout="1s"))
    took = time.monotonic() - started
    assert (error.kind, error.args[0]) == (FailureKind.TIMEOUT, "timed out after 1s")
    assert took < 2.5, took
    assert len(server.hits("/r2")) == 0  # the second hop ran out; no third was tried
    assert fetch(server.url("/r0"), poll(timeout="5s")).body == RSS


@pytest.mark.parametrize("answer", [None, []])
def test_unresolvable_name_is_dns(server: HTTPServer, answer: list[str] | None) -> None:
    table = {} if answer is None else {"gone.test": answer}
    error = failure(f"http://gone.test:{server.port}/", resolver=static_resolver(table))
    assert error.kind == FailureKind.DNS
    assert "gone.test" in error.args[0]
    assert server.requests == []


def test_resolver_decides_where_names_connect(server: HTTPServer) -> None:
    server.route("/feed.xml", Response(body=RSS))
    resolver = static_resolver({"feeds.test": ["127.0.0.1"]})
    result = fetch(f"http://feeds.test:{server.port}/feed.xml", resolver=resolver)
    assert result.body == RSS
    assert server.hits("/feed.xml")[0].header("host") == f"feeds.test:{server.port}"


def test_tls_failure_is_tls(server: HTTPServer) -> None:
    # A plain-HTTP server answering a TLS handshake: a genuine handshake failure.
    error = failure(f"https://127.0.0.1:{server.port}/")
    assert error.kind == FailureKind.TLS


# --------------------------------------------------------------------------- size


def test_large_content_length_is_refused_before_the_body(server: HTTPServer) -> None:
    # The body would only come after 3 s: refusing on the header must not wait for it.
    server.route("/big", Response(body=b"x" * 20_000, delay=3, stall_after=0))
    started = time.monotonic()
    error = failure(server.url("/big"), poll(max_bytes=10_000))
    assert (error.kind, error.args[0]) == (FailureKind.TOO_LARGE, "body larger than 10000 bytes")
    assert time.monotonic() - started < 2


def test_large_body_without_length_is_cut_off(server: HTTPServer) -> None:
    server.route("/big", Response(body=b"x" * 300_000, chunked=True))
    assert failure(server.url("/big"), poll(max_bytes=100_000)).kind == FailureKind.TOO_LARGE


def test_body_at_the_limit_passes(server: HTTPServer) -> None:
    server.route("/exact", Response(body=b"x" * 100_000, chunked=True))
    assert len(fetch(server.url("/exact"), poll(max_bytes=100_000)).body or b"") == 100_000


def _gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, wbits=31)
    block = bytes(1_000_000)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + compressor.flush()


def test_gzip_bomb_stops_after_max_bytes_of_output(server: HTTPServer) -> None:
    bomb = _gzip_of_zeros(50_000_000)
    assert len(bomb) < 100_000  # ~50 KB on the wire, 50 MB decoded
    server.route("/bomb", Response(body=bomb, headers={"Content-Encoding": "gzip"}))
    tracemalloc.start()
    started = time.monotonic()
    try:
        error = failure(server.url("/bomb"), poll(max_bytes=1_000_000))
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.kind == FailureKind.TOO_LARGE
    # Decoding it all would take ~50 MB and far longer; the cap stops at ~1 MB.
    assert peak < 8_000_000, f"peak {peak} bytes"
    assert elapsed < 3


# --------------------------------------------------------------------------- redirects


def test_redirect_loop(server: HTTPServer) -> None:
    server.route("/a", Response(status=302, headers={"Location": "/b"}))
    server.route("/b", Response(status=302, headers={"Location": "/a"}))
    error = failure(server.url("/a"))
    assert error.kind == FailureKind.TOO_MANY_REDIRECTS
    assert len(server.requests) <= 6


def test_too_many_redirects(server: HTTPServer) -> None:
    for hop in range(5):
        server.route(f"/r{hop}", Response(status=307, headers={"Location": f"/r{hop + 1}"}))
    server.route("/r5", Response(body=RSS))
    assert fetch(server.url("/r0"), poll(max_redirects=5)).body == RSS
    error = failure(server.url("/r0"), poll(max_redirects=4))
    assert (error.kind, error.args[0]) == (FailureKind.TOO_MANY_REDIRECTS, "more than 4 redirects")


def test_redirect_to_file_url_is_refused(server: HTTPServer) -> None:
    server.route("/r", Response(status=302, headers={"Location": "file:///etc/passwd"}))
    error = failure(server.url("/r"))
    assert error.kind == FailureKind.BLOCKED
    assert "file" in error.args[0]


# --------------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
     "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
     "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1",
     "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::", "64:ff9b::a00:1",
     "fe80::1%eth0"],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    assert blocked_reason(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(address) is None


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:{port}/secret", "http://169.254.169.254/latest/meta-data/",
     "http://[::1]:{port}/secret", "http://[::ffff:127.0.0.1]:{port}/secret",
     "http://internal.test:{port}/secret", "http://0.0.0.0:{port}/secret"],
)  # fmt: skip
def test_redirect_to_private_address_is_refused(server: HTTPServer, target: str) -> None:
    location = target.format(port=server.port)
    server.route("/feed.xml", Response(status=302, headers={"Location": location}))
    server.route("/secret", Response(body=b"credentials"))
    internet = LocalInternet()
    resolver = static_resolver({"news.test": [PUBLIC_IP], "internal.test": ["10.0.0.7"]})
    error = failure(
        f"http://news.test:{server.port}/feed.xml",
        poll(allow_private_networks=False),
        resolver=resolver,
        network_backend=internet,
    )
    assert error.kind == FailureKind.BLOCKED
    assert len(server.hits("/feed.xml")) == 1 and server.hits("/secret") == []
    # The connection went to the address that was checked, not to a fresh lookup.
    assert internet.connected == [PUBLIC_IP]


def test_public_redirect_is_followed_when_private_is_refused(server: HTTPServer) -> None:
    server.route("/feed.xml", Response(status=302, headers={"Location": "/moved.xml"}))
    server.route("/moved.xml", Response(body=RSS))
    internet = LocalInternet()
    result = fetch(
        f"http://news.test:{server.port}/feed.xml",
        poll(allow_private_networks=False),
        resolver=static_resolver({"news.test": [PUBLIC_IP]}),
        network_backend=internet,
    )
    assert result.body == RSS and result.url == f"http://news.test:{server.port}/moved.xml"
    assert set(internet.connected) == {PUBLIC_IP}


def test_name_with_one_private_address_connects_only_to_public_ones(server: HTTPServer) -> None:
    server.route("/feed.xml", Response(body=RSS))
    internet = LocalInternet()
    fetch(
        f"http://mixed.test:{server.port}/feed.xml",
        poll(allow_private_networks=False),
        resolver=static_resolver({"mixed.test": ["127.0.0.1", PUBLIC_IP]}),
        network_backend=internet,
    )
    assert internet.connected == [PUBLIC_IP]


def test_loopback_feed_is_refused_unless_allowed(server: HTTPServer) -> None:
    server.route("/feed.xml", Response(body=RSS))
    error = failure(server.url("/feed.xml"), poll(allow_private_networks=False))
    assert error.kind == FailureKind.BLOCKED and "loopback" in error.args[0]
    assert server.requests == []
    assert fetch(server.url("/feed.xml"), poll(allow_private_networks=True)).body == RSS


@pytest.mark.parametrize(
    ("url", "kind"),
    [("file:///etc/passwd", FailureKind.BLOCKED), ("ftp://example.org/feed", FailureKind.BLOCKED),
     ("gopher://example.org/", FailureKind.BLOCKED), ("not a url", FailureKind.INVALID_URL),
     ("/relative/feed.xml", FailureKind.INVALID_URL), ("http://", FailureKind.INVALID_URL),
     ("http://example.org:99999/", FailureKind.INVALID_URL)],
)  # fmt: skip
def test_unfetchable_urls(url: str, kind: FailureKind) -> None:
    assert failure(url).kind == kind


# --------------------------------------------------------------------------- concurrency


def test_per_host_limit_holds_while_other_hosts_proceed(server: HTTPServer) -> None:
    lock = threading.Lock()
    active: dict[str, int] = {}
    peak: dict[str, int] = {}
    finished: dict[str, list[float]] = {}

    def slow(request: Request) -> Response:
        host = (request.header("host") or "").split(":")[0]
        with lock:
            active[host] = active.get(host, 0) + 1
            peak[host] = max(peak.get(host, 0), active[host])
        time.sleep(0.25)
        with lock:
            active[host] -= 1
            finished.setdefault(host, []).append(time.monotonic())
        return Response(body=RSS)

    server.route("/feed.xml", slow)
    resolver = static_resolver({"busy.test": ["127.0.0.1"], "calm.test": ["127.0.0.1"]})

    async def run() -> None:
        async with Fetcher(poll(per_host=2, concurrency=10), resolver=resolver) as fetcher:
            busy = [fetcher.fetch(f"http://busy.test:{server.port}/feed.xml") for _ in range(6)]
            calm = fetcher.fetch(f"http://calm.test:{server.port}/feed.xml")
            await asyncio.gather(*busy, calm)

    asyncio.run(run())
    assert peak["busy.test"] == 2
    assert len(finished["busy.test"]) == 6
    # The other host was not queued behind the busy one's six requests.
    assert finished["calm.test"][0] < sorted(finished["busy.test"])[2]


def test_a_server_that_never_answers_holds_its_own_slots_only(server: HTTPServer) -> None:
    # Two servers on one address: the per-host limit is per name and port.
    server.route("/feed.xml", Response(body=RSS))

    async def run(pit: Tarpit) -> tuple[list[Any], float, int]:
        async with Fetcher(poll(per_host=1, timeout="2s")) as fetcher:
            stuck = [asyncio.ensure_future(fetcher.fetch(pit.url(f"/{n}"))) for n in range(2)]
            await asyncio.sleep(0.2)  # the tarpit holds its one slot now, a fetch queued behind
            started = time.monotonic()
            await fetcher.fetch(server.url("/feed.xml"))
            took, held = time.monotonic() - started, pit.connections
            return await asyncio.gather(*stuck, return_exceptions=True), took, held

    with Tarpit() as pit:
        stuck, took, held = asyncio.run(run(pit))
    assert took < 1 and held == 1, (took, held)
    assert [e.kind for e in stuck] == [FailureKind.TIMEOUT] * 2


def test_global_concurrency_limit(server: HTTPServer) -> None:
    lock = threading.Lock()
    state = {"active": 0, "peak": 0}

    def slow(request: Request) -> Response:
        with lock:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
        time.sleep(0.15)
        with lock:
            state["active"] -= 1
        return Response(body=RSS)

    server.route("/feed.xml", slow)
    names = [f"h{i}.test" for i in range(6)]
    resolver = static_resolver({name: ["127.0.0.1"] for name in names})

    async def run() -> None:
        async with Fetcher(poll(per_host=2, concurrency=3), resolver=resolver) as fetcher:
            await asyncio.gather(*(fetcher.fetch(f"http://{n}:{server.port}/feed.xml") for n in names))

    asyncio.run(run())
    assert state["peak"] == 3


def test_custom_transport_still_gets_address_checks(server: HTTPServer) -> None:
    server.route("/feed.xml", Response(body=RSS))

    async def run(settings: PollSettings) -> FetchResult:
        transport = httpx.AsyncHTTPTransport()
        async with Fetcher(settings, transport=transport) as fetcher:
            return await fetcher.fetch(server.url("/feed.xml"))

    with pytest.raises(FetchError) as caught:
        asyncio.run(run(poll(allow_private_networks=False)))
    assert caught.value.kind == FailureKind.BLOCKED and server.requests == []
    assert asyncio.run(run(poll())).body == RSS


# ------------------------------------------------------------------ kept-alive connections


class KeepAliveServer(RawServer):
    """Answers every request of a connection; ``close_idle`` drops each one after its answer."""

    def __init__(self, *, close_idle: bool = False, status: int = 200, body: bytes = RSS) -> None:
        super().__init__(self._answer)
        self.close_idle = close_idle
        self.status, self.body = status, body

    def _answer(self, connection: socket.socket) -> None:
        buffer = b""
        while True:
            head, buffer = read_head(connection, buffer)
            if head is None:
                return
            status = b"HTTP/1.1 %d Whatever\r\nContent-Type: application/rss+xml\r\n" % self.status
            if self.status == 304:
                connection.sendall(status + b'ETag: "v1"\r\n\r\n')
            else:
                connection.sendall(status + b"Content-Length: %d\r\n\r\n%s" % (len(self.body), self.body))
            if self.close_idle:  # as a server whose keep-alive timeout is shorter
                return


@pytest.mark.parametrize(("close_idle", "connections"), [(False, 1), (True, 3)])
def test_idle_connections_are_reused_unless_the_server_closed_them(close_idle: bool, connections: int) -> None:
    async def three_fetches(url: str) -> list[bytes | None]:
        async with Fetcher(poll()) as fetcher:
            bodies = []
            for _ in range(3):
                bodies.append((await fetcher.fetch(url)).body)
                await asyncio.sleep(0.1)  # let a closing server's FIN arrive
            return bodies

    with KeepAliveServer(close_idle=close_idle) as server:
        assert asyncio.run(three_fetches(server.url)) == [RSS] * 3
    assert server.connections == connections


@pytest.mark.parametrize(
    ("status", "body", "connections"),
    [
        (304, b"", 1),
        (404, b"<html>not here</html>", 1),
        (503, b"<html>busy</html>", 1),
        (404, b"x" * 200_000, 3),  # a long error page is not read: its connection closes
    ],
)
def test_answers_without_a_wanted_body_keep_their_connection(status: int, body: bytes, connections: int) -> None:
    async def three_fetches(url: str) -> list[str]:
        async with Fetcher(poll()) as fetcher:
            outcomes = []
            for _ in range(3):
                try:
                    result = await fetcher.fetch(url, etag='"v1"')
                    outcomes.append(f"{result.status} {result.etag}")
                except FetchError as error:
                    outcomes.append(error.kind)
            return outcomes

    with KeepAliveServer(status=status, body=body) as server:
        outcomes = asyncio.run(three_fetches(server.url))
    assert outcomes == [{304: '304 "v1"', 404: "http_4xx", 503: "http_5xx"}[status]] * 3
    assert server.connections == connections
