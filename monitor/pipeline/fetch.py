"""Fetch feeds and pages over HTTP, safely, and classify every failure once.

``Fetcher`` owns one ``httpx.AsyncClient`` and everything a polite, hostile-input-proof
client needs:

- limits: a global concurrency limit and a per-host one, a redirect limit (redirects are
  followed here, hop by hop, so every hop is checked), a size cap counted on the
  *decoded* stream (``decoding``), so a gzip bomb stops after ``max_bytes``, and one
  deadline (``poll.timeout``) for the whole fetch: name lookups, connections, headers
  and bodies of every hop together, so neither a server trickling a byte at a time nor
  a chain of slow redirects holds a fetch longer. Waiting for a slot is not counted:
  a fetch queued behind a host's other requests has not started;
- safety: only http(s); names are resolved by the fetcher itself and every address is
  checked (loopback, private, link-local, multicast, reserved, unspecified, IPv4-mapped)
  at connection time, on every hop, and the connection goes to the address that was
  checked, so a DNS answer cannot change between check and connect (rebinding). TLS
  still verifies and sends SNI for the host name. The checks live in the network layer
  under the client (``transport``); with a transport of the caller's instead, the same
  checks run on a lookup made before each hop;
- conditional GET (``If-None-Match`` / ``If-Modified-Since``) and the cache hints of the
  answer (``Cache-Control: max-age``, ``Retry-After``);
- a feed's own request headers, user agent and HTTP proxy. Through a proxy, the proxy
  connects: the target's addresses are checked on a lookup made before each hop. The
  ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` variables apply only with
  ``poll.trust_env`` (``environment_proxy``), a feed's own ``proxy`` first.

Every failure leaves as ``FetchError(kind, message)`` with ``kind`` a ``FailureKind``
(``monitor.outcomes``), the HTTP status where a server answered with an error, and a
short human message, so the caller counts, shows and backs off uniformly: ``_classify``
is the one place where httpx's exceptions become failure kinds.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
import socket
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus

import httpcore
import httpx

from monitor.config import PollSettings
from monitor.errors import FetchError
from monitor.headers import parse_max_age, parse_retry_after
from monitor.outcomes import FailureKind
from monitor.pipeline.decoding import content_decoder
from monitor.pipeline.transport import (
    CheckingBackend,
    CheckingTransport,
    Refused,
    Resolver,
    blocked_reason,
    system_resolver,
)

FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, application/json;q=0.8, "
    "text/xml;q=0.8, */*;q=0.5"
)
PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"

_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
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
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._poll = poll
        # The proxy variables, read once here and only when asked for (``poll.trust_env``).
        self._environ: Mapping[str, str] = (os.environ if environ is None else environ) if poll.trust_env else {}
        self._backend = CheckingBackend(
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
        self._limits = limits
        self._client = self._new_client(transport=transport or CheckingTransport(self._backend, limits))
        # One client per proxy in use, made on first use.
        self._proxied: dict[str, httpx.AsyncClient] = {}
        self._slots = asyncio.Semaphore(poll.concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._host_users: dict[str, int] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _new_client(self, **kwargs: object) -> httpx.AsyncClient:
        # Cookies are not kept: one client serves unrelated sites for days.
        jar = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        return httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(self._poll.timeout),
            headers={"User-Agent": self._poll.user_agent, "Accept-Encoding": "gzip, deflate"},
            cookies=jar,
            trust_env=False,
            **kwargs,  # type: ignore[arg-type]
        )

    def _client_for(self, url: httpx.URL, proxy: str | None) -> tuple[httpx.AsyncClient, bool]:
        """The client for a request to ``url`` and whether its addresses need a check first."""
        proxy = proxy or environment_proxy(url, self._environ)
        if proxy is None:
            return self._client, self._precheck
        client = self._proxied.get(proxy)
        if client is None:
            client = self._proxied[proxy] = self._new_client(proxy=proxy, limits=self._limits)
        return client, True

    async def aclose(self) -> None:
        await self._client.aclose()
        for client in self._proxied.values():
            await client.aclose()
        self._proxied.clear()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = FEED_ACCEPT,
        headers: Mapping[str, str] | None = None,
        proxy: str | None = None,
    ) -> FetchResult:
        """GET ``url``, following redirects; raises ``FetchError`` on any failure.

        ``headers`` are sent besides the fetcher's own (a ``User-Agent`` among them
        replaces the default); ``proxy`` is an HTTP proxy's URL.
        """
        headers = {**(headers or {}), "Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = _checked_url(url)
        seen = {str(current)}
        budget = self._poll.timeout
        loop = asyncio.get_running_loop()
        for _hop in range(self._poll.max_redirects + 1):
            # A server is a name and a port: two services on one machine are two servers.
            async with self._slot(f"{current.host}:{current.port or _port(current)}"):
                started = loop.time()
                try:
                    outcome = await self._hop(current, headers, etag, last_modified, budget, proxy)
                finally:
                    budget -= loop.time() - started
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
        """Hold one of the server's slots (``host:port``), then one of the global ones."""
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
        budget: float,
        proxy: str | None,
    ) -> FetchResult | _Redirect:
        """One request and its answer, within what is left of the fetch's ``budget``."""
        client, precheck = self._client_for(url, proxy)
        try:
            if budget <= 0:
                raise TimeoutError
            async with asyncio.timeout(budget):
                if precheck:
                    await self._backend.addresses(url.host)
                request = client.build_request("GET", url, headers=headers)
                response = await client.send(request, stream=True)
                try:
                    return await self._answer(url, response, etag, last_modified)
                finally:
                    await response.aclose()
        except FetchError:
            raise
        except Refused as exc:
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
        decoder = content_decoder(response.headers.get("content-encoding"))
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


def environment_proxy(url: httpx.URL, environ: Mapping[str, str]) -> str | None:
    """The proxy the usual variables give for ``url``: ``HTTPS_PROXY`` or ``HTTP_PROXY`` by
    its scheme (lower-case names first, as curl reads them), unless ``NO_PROXY`` lists its
    host, a domain above it, or ``*``."""

    def variable(name: str) -> str:
        return (environ.get(name.lower()) or environ.get(name.upper()) or "").strip()

    proxy = variable(f"{url.scheme}_proxy")
    if not proxy:
        return None
    host = url.host.lower().strip("[]")
    for listed in variable("no_proxy").split(","):
        entry = listed.strip().lower().removeprefix("*")
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry  # host:port
        name = name.strip("[]")
        if listed.strip() == "*" or (name and (host == name.lstrip(".") or host.endswith("." + name.lstrip(".")))):
            return None
    return proxy if "://" in proxy else f"http://{proxy}"


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
    "environment_proxy",
    "system_resolver",
]
