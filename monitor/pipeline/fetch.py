"""Fetch feeds and pages over HTTP, safely, and classify every failure once.

``Fetcher`` owns one ``httpx.AsyncClient`` and everything a polite, hostile-input-proof
client needs:

- limits: a global concurrency limit and a per-host one, a per-hop deadline, a redirect
  limit (redirects are followed here, hop by hop, so every hop is checked) and a size
  cap counted on the *decoded* stream, so a gzip bomb stops after ``max_bytes``;
- safety: only http(s); names are resolved by the fetcher itself and every address is
  checked (loopback, private, link-local, multicast, reserved, unspecified, IPv4-mapped)
  at connection time, on every hop, and the connection goes to the address that was
  checked, so a DNS answer cannot change between check and connect (rebinding). TLS
  still verifies and sends SNI for the host name;
- conditional GET (``If-None-Match`` / ``If-Modified-Since``) and the cache hints of the
  answer (``Cache-Control: max-age``, ``Retry-After``).

Every failure leaves as ``FetchError(kind, message)`` with ``kind`` a ``FailureKind``
(``monitor.outcomes``), the HTTP status where a server answered with an error, and a
short human message, so the caller counts, shows and backs off uniformly.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import ipaddress
import select
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import httpcore
import httpx

from monitor.config import PollSettings
from monitor.errors import FetchError
from monitor.headers import parse_max_age, parse_retry_after
from monitor.outcomes import FailureKind

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, application/json;q=0.8, "
    "text/xml;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"

Resolver = Callable[[str], Awaitable[list[str]]]

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
# Decoded output is produced in pieces of at most this size, so memory stays bounded
# whatever the compression ratio.
_DECODE_PIECE = 64 * 1024
# The most of an unwanted body (an error page, a redirect's) read to keep its connection.
_DISCARD_LIMIT = 64 * 1024


@dataclass(frozen=True)
class FetchResult:
    url: str  # final URL after redirects
    status: int  # 200..299, or 304
    body: bytes | None  # None on 304
    content_type: str | None
    etag: str | None
    last_modified: str | None
    max_age: float | None  # from Cache-Control max-age (seconds), None if absent

    @property
    def not_modified(self) -> bool:
        return self.status == 304


# --------------------------------------------------------------------------- addresses


def blocked_reason(address: str) -> str | None:
    """Why connecting to this IP address is refused, or None when it is public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv6 form can carry an IPv4 address the kernel will route to (mapped,
        # 6to4, NAT64); judge the IPv4 address it carries.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return blocked_reason(str(embedded))
    for label, flag in (
        ("loopback", ip.is_loopback),
        ("unspecified", ip.is_unspecified),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
        ("site-local", getattr(ip, "is_site_local", False)),
        ("not globally routable", not ip.is_global),
    ):
        if flag:
            return label
    return None


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


async def system_resolver(host: str) -> list[str]:
    """The addresses of ``host`` from the operating system's resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _Refused(Exception):
    """Raised inside the connection layer; becomes a FetchError in ``fetch``."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _CheckingBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and connects to the checked address: one place, no rebinding.

    httpcore still does TLS with ``server_hostname`` set to the URL's host, so SNI and
    certificate verification concern the name, not the pinned address.
    """

    def __init__(
        self,
        resolver: Resolver,
        allow_private: bool,
        timeout: float,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolver = resolver
        self._allow_private = allow_private
        self._timeout = timeout
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.addresses(host)
        last_error: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
                return _Stream(stream)
            except httpcore.ConnectError as exc:  # try the next address of the name
                last_error = exc
        assert last_error is not None
        raise last_error

    async def addresses(self, host: str) -> list[str]:
        """The allowed addresses of ``host``; raises ``_Refused`` when there are none."""
        host = host.strip("[]")
        if _is_ip(host):
            addresses = [host]
        else:
            addresses = await self._resolve(host)
        if self._allow_private:
            return addresses
        allowed = [a for a in addresses if blocked_reason(a) is None]
        if not allowed:
            reason = blocked_reason(addresses[0])
            shown = host if host == addresses[0] else f"{host} ({addresses[0]})"
            raise _Refused(FailureKind.BLOCKED, f"refused to connect to {shown}: {reason} address")
        return allowed

    async def _resolve(self, host: str) -> list[str]:
        try:
            async with asyncio.timeout(self._timeout):
                addresses = [a for a in await self._resolver(host) if a]
        except TimeoutError:
            raise _Refused(FailureKind.TIMEOUT, f"name lookup of {host} timed out") from None
        except (OSError, UnicodeError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise _Refused(FailureKind.DNS, f"cannot resolve {host}: {detail}") from None
        if not addresses:
            raise _Refused(FailureKind.DNS, f"cannot resolve {host}: no address")
        return addresses

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise _Refused(FailureKind.BLOCKED, "unix sockets are not fetched")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Stream(httpcore.AsyncNetworkStream):
    """A connection's stream that answers the pool's "is it readable?" cheaply.

    httpcore's pool asks every idle connection whether its socket is readable (closed
    by the server) each time it schedules a request; anyio answers by rebuilding the
    socket's attribute table, a ``getpeername()`` included, which put that question at
    the top of a steady poll's profile. The socket is looked up once here instead.
    """

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            fd = self._socket.fileno()
            if fd < 0:
                return True  # closed: the next read would say so
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(0))
        return self._inner.get_extra_info(info)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class _CheckingTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with a connection pool that connects through the checker."""

    def __init__(self, backend: _CheckingBackend, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


# --------------------------------------------------------------------------- decoding


class _BoundedDecoder:
    """Undoes Content-Encoding piece by piece, never producing more than asked for."""

    def __init__(self, encodings: list[str]) -> None:
        unknown = [e for e in encodings if e not in ("gzip", "x-gzip", "deflate")]
        if unknown:
            raise FetchError(FailureKind.PARSE_ERROR, f"unsupported Content-Encoding {unknown[0]}")
        # Applied in reverse order of how the sender applied them.
        self._stages = [_ZlibStage(e) for e in reversed(encodings)]

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of ``data``, lazily: the caller may stop at any piece."""
        pieces: Iterator[bytes] = iter((data,))
        for stage in self._stages:
            pieces = _through(stage, pieces)
        return pieces


def _through(stage: _ZlibStage, pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from stage.feed(piece)


class _ZlibStage:
    def __init__(self, encoding: str) -> None:
        self._deflate = encoding == "deflate"
        self._object: Any = None

    def _new_object(self, data: bytes) -> Any:
        if not self._deflate:
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # "deflate" is zlib-wrapped per the RFC, raw deflate in practice as often.
        header = data[:2]
        looks_zlib = len(header) == 2 and header[0] & 0x0F == 8 and int.from_bytes(header) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if looks_zlib else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> Iterator[bytes]:
        # A full piece may leave output pending inside zlib even when all input was
        # consumed, so go on until a call returns less than a full piece.
        more = bool(data)
        while more:
            if self._object is None:
                self._object = self._new_object(data)
            try:
                piece = self._object.decompress(data, _DECODE_PIECE)
            except zlib.error as exc:
                raise FetchError(FailureKind.PARSE_ERROR, f"corrupt compressed body: {exc}") from None
            if piece:
                yield piece
            data = self._object.unconsumed_tail
            more = bool(data) or len(piece) == _DECODE_PIECE
            if self._object.eof:
                # Concatenated gzip members; trailing garbage after them is ignored.
                rest = self._object.unused_data
                self._object = None
                data = rest if rest[:2] == b"\x1f\x8b" else b""
                more = bool(data)


# --------------------------------------------------------------------------- headers


def _status_error(response: httpx.Response) -> FetchError:
    status = response.status_code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = response.reason_phrase or ""
    message = f"HTTP {status} {phrase}".strip()
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        kind = FailureKind.HTTP_429
    elif status >= 500:
        kind = FailureKind.HTTP_5XX
    else:
        kind = FailureKind.HTTP_4XX
    return FetchError(kind, message, status=status, retry_after=retry_after)


# --------------------------------------------------------------------------- fetcher


@dataclass(frozen=True)
class _Redirect:
    location: httpx.URL


class Fetcher:
    """Fetches URLs under the poll settings; ``async with Fetcher(settings.poll) as f``.

    ``resolver`` maps a host name to addresses, replacing the system's DNS.
    ``network_backend`` opens the TCP connections to the addresses once they have been
    checked (tests route public-looking addresses to a local server with it).
    ``transport`` replaces the whole network layer; the address checks then apply to a
    lookup made before each hop instead of at connection time.
    """

    def __init__(
        self,
        poll: PollSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._poll = poll
        self._backend = _CheckingBackend(
            resolver or system_resolver,
            poll.allow_private_networks,
            poll.timeout,
            network_backend,
        )
        self._precheck = transport is not None
        limits = httpx.Limits(
            max_connections=poll.concurrency,
            max_keepalive_connections=min(poll.concurrency, 50),
        )
        # Cookies are not kept: one client serves unrelated sites for days.
        jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self._client = httpx.AsyncClient(
            transport=transport or _CheckingTransport(self._backend, limits),
            follow_redirects=False,
            timeout=httpx.Timeout(poll.timeout),
            headers={"User-Agent": poll.user_agent, "Accept-Encoding": "gzip, deflate"},
            cookies=jar,
            trust_env=False,
        )
        self._slots = asyncio.Semaphore(poll.concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._host_users: dict[str, int] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
    ) -> FetchResult:
        """GET ``url``, following redirects; raises ``FetchError`` on any failure."""
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = _checked_url(url)
        seen = {str(current)}
        for _hop in range(self._poll.max_redirects + 1):
            async with self._slot(current.host):
                outcome = await self._hop(current, headers, etag, last_modified)
            if isinstance(outcome, FetchResult):
                return outcome
            current = outcome.location
            if str(current) in seen:
                raise FetchError(FailureKind.TOO_MANY_REDIRECTS, f"redirect loop at {current}")
            seen.add(str(current))
        raise FetchError(
            FailureKind.TOO_MANY_REDIRECTS,
            f"more than {self._poll.max_redirects} redirects",
        )

    @asynccontextmanager
    async def _slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's slots, then one of the global ones."""
        host_slot = self._host_slots.get(host)
        if host_slot is None:
            host_slot = self._host_slots[host] = asyncio.Semaphore(self._poll.per_host)
        self._host_users[host] = self._host_users.get(host, 0) + 1
        try:
            async with host_slot, self._slots:
                yield
        finally:
            self._host_users[host] -= 1
            if not self._host_users[host]:  # forget idle hosts: the map stays small
                del self._host_users[host], self._host_slots[host]

    async def _hop(
        self,
        url: httpx.URL,
        headers: dict[str, str],
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult | _Redirect:
        try:
            async with asyncio.timeout(self._poll.timeout):
                if self._precheck:
                    await self._backend.addresses(url.host)
                request = self._client.build_request("GET", url, headers=headers)
                response = await self._client.send(request, stream=True)
                try:
                    return await self._answer(url, response, etag, last_modified)
                finally:
                    await response.aclose()
        except FetchError:
            raise
        except _Refused as exc:
            raise FetchError(exc.kind, str(exc)) from None
        except (TimeoutError, httpx.TimeoutException):
            raise FetchError(FailureKind.TIMEOUT, f"timed out after {self._poll.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise _classify(exc, url) from None

    async def _answer(
        self,
        url: httpx.URL,
        response: httpx.Response,
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult | _Redirect:
        status = response.status_code
        if not 200 <= status < 300:
            # No body wanted; reading a short one lets the connection serve the next
            # request (closing a response half-read closes its connection).
            await _discard(response)
        if status in _REDIRECT_STATUSES and response.headers.get("location"):
            return _Redirect(_redirect_target(url, response.headers["location"]))
        if status == 304:
            return self._result(url, response, None, etag, last_modified)
        if not 200 <= status < 300:
            raise _status_error(response)
        body = await self._read_body(response)
        return self._result(url, response, body, etag, last_modified)

    def _result(
        self,
        url: httpx.URL,
        response: httpx.Response,
        body: bytes | None,
        etag: str | None,
        last_modified: str | None,
    ) -> FetchResult:
        headers = response.headers
        # A 304 may omit the validators; the ones sent are still the current ones.
        fallback = body is None
        return FetchResult(
            url=str(url),
            status=response.status_code,
            body=body,
            content_type=headers.get("content-type"),
            etag=headers.get("etag") or (etag if fallback else None),
            last_modified=headers.get("last-modified") or (last_modified if fallback else None),
            max_age=parse_max_age(headers.get("cache-control")),
        )

    async def _read_body(self, response: httpx.Response) -> bytes:
        limit = self._poll.max_bytes
        too_large = FetchError(FailureKind.TOO_LARGE, f"body larger than {limit} bytes")
        declared = response.headers.get("content-length", "")
        if declared.strip().isdigit() and int(declared) > limit:
            raise too_large
        encodings = [
            e.strip().lower()
            for e in response.headers.get("content-encoding", "").split(",")
            if e.strip() and e.strip().lower() != "identity"
        ]
        decoder = _BoundedDecoder(encodings) if encodings else None
        pieces: list[bytes] = []
        size = raw_size = 0
        async for chunk in response.aiter_raw():
            raw_size += len(chunk)
            if raw_size > limit:
                raise too_large
            for piece in decoder.feed(chunk) if decoder else [chunk]:
                size += len(piece)
                if size > limit:
                    raise too_large
                pieces.append(piece)
        return b"".join(pieces)


async def _discard(response: httpx.Response) -> None:
    """Read and drop a body of at most ``_DISCARD_LIMIT`` bytes; a longer one is left."""
    read = 0
    async for chunk in response.aiter_raw():
        read += len(chunk)
        if read > _DISCARD_LIMIT:
            return  # not worth reading on: the connection is closed instead


def _checked_url(url: str | httpx.URL) -> httpx.URL:
    """Parse a URL to fetch; only absolute http(s) URLs with a host pass."""
    try:
        parsed = httpx.URL(url.strip() if isinstance(url, str) else url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        shown = str(url)[:200]
        raise FetchError(FailureKind.INVALID_URL, f"invalid URL {shown!r}: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        shown = f"{parsed.scheme}:" if parsed.scheme else str(url)[:200]
        if not parsed.scheme:
            raise FetchError(FailureKind.INVALID_URL, f"not an absolute URL: {shown}")
        raise FetchError(FailureKind.BLOCKED, f"only http and https URLs are fetched, not {shown}")
    if not parsed.host:
        raise FetchError(FailureKind.INVALID_URL, f"URL without a host: {str(url)[:200]}")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise FetchError(FailureKind.INVALID_URL, f"invalid port in {str(url)[:200]}")
    return parsed.copy_with(fragment=None)


def _redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    try:
        target = current.join(location.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError(FailureKind.INVALID_URL, f"invalid redirect to {location[:200]!r}: {exc}") from None
    return _checked_url(target)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _classify(exc: httpx.HTTPError, url: httpx.URL) -> FetchError:
    """The one place where httpx's exceptions become failure kinds."""
    chain = _chain(exc)
    detail = str(exc) or type(exc).__name__
    if any(isinstance(e, ssl.SSLError | ssl.CertificateError) for e in chain) or "SSL" in detail:
        reason = next(
            (
                getattr(e, "reason", None) or getattr(e, "verify_message", None)
                for e in chain
                if isinstance(e, ssl.SSLError)
            ),
            None,
        )
        return FetchError(FailureKind.TLS, f"TLS error with {url.host}: {reason or detail}")
    if any(isinstance(e, socket.gaierror) for e in chain):
        return FetchError(FailureKind.DNS, f"cannot resolve {url.host}")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return FetchError(FailureKind.BLOCKED, f"unsupported URL: {detail}")
    if isinstance(exc, httpx.InvalidURL):
        return FetchError(FailureKind.INVALID_URL, f"invalid URL: {detail}")
    if isinstance(exc, httpx.ConnectError):
        refused = any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in detail
        message = "connection refused" if refused else f"cannot connect: {detail}"
        return FetchError(FailureKind.CONNECT, f"{message} ({url.host}:{url.port or _port(url)})")
    if isinstance(exc, httpx.DecodingError):
        return FetchError(FailureKind.PARSE_ERROR, f"cannot decode the body: {detail}")
    if isinstance(exc, httpx.TooManyRedirects):
        return FetchError(FailureKind.TOO_MANY_REDIRECTS, detail)
    # Dropped connections, protocol violations: the server could not be talked to.
    return FetchError(FailureKind.CONNECT, f"connection failed: {detail}"[:300])


def _port(url: httpx.URL) -> int:
    return 443 if url.scheme == "https" else 80


__all__ = [
    "FEED_ACCEPT",
    "PAGE_ACCEPT",
    "FetchResult",
    "Fetcher",
    "blocked_reason",
    "system_resolver",
]
