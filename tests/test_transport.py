"""The network layer under the fetcher, against raw HTTP/1.1 servers on 127.0.0.1.

These hold what ``monitor.pipeline.transport`` takes from httpx and httpcore, so that a
new release of either that changes it fails here first: httpcore's pool still asks its
streams ``get_extra_info("is_readable")`` (and ours answer it), connections are kept
alive and reused, bodies stream, httpcore's exceptions come out as httpx's, and closing
the transport closes its connections.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from typing import Any

import httpcore
import httpx
import pytest

from monitor.outcomes import FailureKind
from monitor.pipeline.transport import CheckingBackend, CheckingTransport, Refused
from tests.support.raw import RawServer as Server
from tests.support.raw import read_head

BODY = b"<rss version='2.0'><channel><title>T</title></channel></rss>"


def answer(body: bytes = BODY, *, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: %d\r\n\r\n%s" % (size, body)


def keep_alive(connection: socket.socket) -> None:
    buffer = b""
    while True:
        head, buffer = read_head(connection, buffer)
        if head is None:
            return
        connection.sendall(answer())


def one_answer(connection: socket.socket) -> None:
    """Answers one request, then closes: a server whose keep-alive timeout is short."""
    if read_head(connection)[0] is not None:
        connection.sendall(answer())


async def no_names(host: str) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def transport(inner: httpcore.AsyncNetworkBackend | None = None) -> CheckingTransport:
    backend = CheckingBackend(no_names, allow_private=True, timeout=5, inner=inner)
    return CheckingTransport(backend, httpx.Limits(max_connections=10, max_keepalive_connections=10))


def client(inner: httpcore.AsyncNetworkBackend | None = None, timeout: float = 5) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport(inner), timeout=httpx.Timeout(timeout))


class RecordingStream(httpcore.AsyncNetworkStream):
    """A stream that notes every ``get_extra_info`` question it is asked."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, asked: list[str]) -> None:
        self._inner, self._asked = inner, asked

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return RecordingStream(await self._inner.start_tls(ssl_context, server_hostname, timeout), self._asked)

    def get_extra_info(self, info: str) -> Any:
        self._asked.append(info)
        return self._inner.get_extra_info(info)


class RecordingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.asked: list[str] = []
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return RecordingStream(await self._inner.connect_tcp(host, port, *args, **kwargs), self.asked)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class FailingBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise self.error

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# --------------------------------------------------------------- what httpcore's pool does


def test_httpcore_pool_asks_idle_streams_whether_they_are_readable() -> None:
    """``_Stream`` answers this question cheaply; it is only worth it while it is asked."""

    async def two_requests(url: str, backend: RecordingBackend) -> None:
        async with httpcore.AsyncConnectionPool(network_backend=backend) as pool:
            for _ in range(2):
                assert (await pool.request("GET", url)).status == 200

    backend = RecordingBackend()
    with Server(keep_alive) as server:
        asyncio.run(two_requests(server.url, backend))
    assert "is_readable" in backend.asked
    assert server.connections == 1


def test_our_streams_answer_is_readable_themselves_and_rightly() -> None:
    async def probe(port: int, closed: threading.Event) -> tuple[bool, bool]:
        backend = CheckingBackend(no_names, allow_private=True, timeout=5)
        stream = await backend.connect_tcp("127.0.0.1", port)
        try:
            idle = stream.get_extra_info("is_readable")
            closed.set()
            await asyncio.sleep(0.2)  # let the server's FIN arrive
            return idle, stream.get_extra_info("is_readable")
        finally:
            await stream.aclose()

    closed = threading.Event()
    with Server(lambda connection: closed.wait(5)) as server:
        idle, after_close = asyncio.run(probe(server.port, closed))
    assert (idle, after_close) == (False, True)

    recording = RecordingBackend()

    async def three_requests(url: str) -> None:
        async with client(recording) as http:
            for _ in range(3):
                assert (await http.get(url)).content == BODY

    with Server(keep_alive) as server:
        asyncio.run(three_requests(server.url))
    assert "is_readable" not in recording.asked  # answered by our stream, not passed on


# --------------------------------------------------------------------------- keep-alive


def test_sequential_requests_reuse_one_connection() -> None:
    async def requests(url: str, n: int) -> list[bytes]:
        async with client() as http:
            return [(await http.get(url)).content for _ in range(n)]

    with Server(keep_alive) as server:
        assert asyncio.run(requests(server.url, 10)) == [BODY] * 10
    assert server.connections == 1


def test_a_connection_the_server_closed_is_not_reused() -> None:
    async def requests(url: str, n: int) -> list[bytes]:
        bodies = []
        async with client() as http:
            for _ in range(n):
                bodies.append((await http.get(url)).content)
                await asyncio.sleep(0.1)  # let the server's FIN arrive
        return bodies

    with Server(one_answer) as server:
        assert asyncio.run(requests(server.url, 3)) == [BODY] * 3
    assert server.connections == 3


def test_closing_the_transport_closes_its_connections() -> None:
    hung_up = threading.Event()

    def serve(connection: socket.socket) -> None:
        keep_alive(connection)
        hung_up.set()

    async def request_then_close(url: str) -> bool:
        http = client()
        assert (await http.get(url)).content == BODY
        seen_before = hung_up.is_set()
        await http.aclose()
        return seen_before

    with Server(serve) as server:
        assert asyncio.run(request_then_close(server.url)) is False
        assert hung_up.wait(5)


# --------------------------------------------------------------------------- streaming


def test_the_body_streams_as_it_arrives() -> None:
    first, rest = b"a" * 1000, b"b" * 1000
    go_on = threading.Event()

    def serve(connection: socket.socket) -> None:
        read_head(connection)
        connection.sendall(answer(first, length=len(first) + len(rest)))
        go_on.wait(5)
        connection.sendall(rest)

    async def read(url: str) -> tuple[bytes, bytes]:
        async with client() as http, http.stream("GET", url) as response:
            chunks = response.aiter_raw()
            early = await asyncio.wait_for(anext(chunks), 2)  # before the server sends the rest
            go_on.set()
            return early, b"".join([chunk async for chunk in chunks])

    with Server(serve) as server:
        early, late = asyncio.run(read(server.url))
    assert early == first and late == rest


# --------------------------------------------------------------------------- exceptions


def test_a_silent_server_is_an_httpx_read_timeout() -> None:
    done = threading.Event()

    async def request(url: str) -> None:
        async with client(timeout=0.3) as http:
            await http.get(url)

    with Server(lambda connection: done.wait(5)) as server, pytest.raises(httpx.ReadTimeout):
        started = time.monotonic()
        try:
            asyncio.run(request(server.url))
        finally:
            done.set()
            assert time.monotonic() - started < 3


def test_a_body_cut_short_is_an_httpx_error_while_streaming() -> None:
    def serve(connection: socket.socket) -> None:
        read_head(connection)
        connection.sendall(answer(b"x" * 10, length=100))

    async def request(url: str) -> None:
        async with client() as http, http.stream("GET", url) as response:
            assert response.status_code == 200  # the failure comes with the body
            await response.aread()

    with Server(serve) as server, pytest.raises(httpx.RemoteProtocolError):
        asyncio.run(request(server.url))


def test_a_refused_connection_is_an_httpx_connect_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]  # closed below: nothing listens there

    async def request() -> None:
        async with client() as http:
            await http.get(f"http://127.0.0.1:{port}/feed.xml")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(request())


# Every exception httpcore exports, but the pool's own signal to try another connection,
# which never leaves it (raised from a backend, the pool would retry for ever).
HTTPCORE_EXCEPTIONS = sorted(
    (
        getattr(httpcore, name)
        for name in httpcore.__all__
        if isinstance(getattr(httpcore, name), type)
        and issubclass(getattr(httpcore, name), Exception)
        and name != "ConnectionNotAvailable"
    ),
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize("error", HTTPCORE_EXCEPTIONS, ids=lambda cls: cls.__name__)
def test_every_httpcore_exception_leaves_as_its_httpx_namesake(error: type[Exception]) -> None:
    async def request() -> None:
        async with client(FailingBackend(error("boom"))) as http:
            await http.get("http://127.0.0.1:9/feed.xml")

    with pytest.raises(httpx.HTTPError) as caught:
        asyncio.run(request())
    assert type(caught.value).__name__ == error.__name__
    assert str(caught.value) == "boom" and isinstance(caught.value.__cause__, error)


def test_a_refusal_passes_through_unchanged() -> None:
    refusal = Refused(FailureKind.BLOCKED, "refused to connect to 10.0.0.7: private address")

    async def request() -> None:
        async with client(FailingBackend(refusal)) as http:
            await http.get("http://127.0.0.1:9/feed.xml")

    with pytest.raises(Refused) as caught:
        asyncio.run(request())
    assert caught.value is refusal
