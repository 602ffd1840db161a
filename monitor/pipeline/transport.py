"""The fetcher's network layer: every connection checked where it is made.

``CheckingTransport`` is an ``httpx.AsyncBaseTransport`` over an
``httpcore.AsyncConnectionPool`` whose network backend is a ``CheckingBackend``. Each TCP
connection the pool opens, for the first request to a host and for every redirect hop,
goes through ``CheckingBackend.connect_tcp``: the host name is resolved there with the
fetcher's resolver, its addresses are checked (``blocked_reason``) and the connection is
made to an address that passed, never to a fresh lookup, so a DNS answer cannot change
between check and connect (rebinding). httpcore still does TLS with the URL's host as
``server_hostname``: SNI and certificate verification concern the name, not the address.

Invariants:

- no connection is made to an address ``blocked_reason`` refuses, unless private networks
  are allowed; a refusal leaves as ``Refused`` (kind and message), untouched on its way
  through the pool and the transport;
- httpcore's exceptions leave as their httpx counterparts (``httpcore.ConnectTimeout`` as
  ``httpx.ConnectTimeout``, and so on, the most specific one), whether raised while
  sending or while the body streams, so callers deal in httpx's exceptions only;
- a body streams: it is read from the socket as the caller iterates, never ahead;
- connections are kept alive and reused, and closed with the transport.

Everything here is the documented API of httpx (``AsyncBaseTransport``,
``AsyncByteStream``, ``Request``/``Response``, ``create_ssl_context``) and httpcore (the
pool, ``AsyncNetworkBackend``, ``AsyncNetworkStream``, its exception classes). One thing
is relied on beyond it, for speed only: httpcore's pool tells whether an idle HTTP/1.1
connection was closed by the server by asking its stream
``get_extra_info("is_readable")``, which ``_Stream`` answers cheaply. Were the pool to
stop asking, connections would still be reused and checked, only more slowly;
``tests/test_transport.py`` fails when that question is no longer asked, when bodies stop
streaming, when exceptions stop being mapped and when connections stop being reused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import select
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

import httpcore
import httpx

from monitor.outcomes import FailureKind

Resolver = Callable[[str], Awaitable[list[str]]]

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


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


class Refused(Exception):
    """A connection the checks would not make; the fetcher turns it into a ``FetchError``."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------- connections


class CheckingBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks and connects to the checked address: one place, no rebinding.

    ``inner`` opens the TCP connections once the addresses have been checked (httpcore's
    anyio backend unless given).
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
        """The allowed addresses of ``host``; raises ``Refused`` when there are none."""
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
            raise Refused(FailureKind.BLOCKED, f"refused to connect to {shown}: {reason} address")
        return allowed

    async def _resolve(self, host: str) -> list[str]:
        try:
            async with asyncio.timeout(self._timeout):
                addresses = [a for a in await self._resolver(host) if a]
        except TimeoutError:
            raise Refused(FailureKind.TIMEOUT, f"name lookup of {host} timed out") from None
        except (OSError, UnicodeError) as exc:
            detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise Refused(FailureKind.DNS, f"cannot resolve {host}: {detail}") from None
        if not addresses:
            raise Refused(FailureKind.DNS, f"cannot resolve {host}: no address")
        return addresses

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover
        raise Refused(FailureKind.BLOCKED, "unix sockets are not fetched")

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


# --------------------------------------------------------------------------- transport


class CheckingTransport(httpx.AsyncBaseTransport):
    """httpx requests over an httpcore connection pool that connects through ``backend``.

    What ``httpx.AsyncHTTPTransport`` does for HTTP/1.1 without proxies, with the pool's
    network backend ours: requests and responses translated between the two libraries'
    models, the body streamed, httpcore's exceptions raised as httpx's. Environment
    settings (proxies, CA bundles) are not consulted.
    """

    def __init__(self, backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        url = request.url
        outgoing = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            answer = await self._pool.handle_async_request(outgoing)
        except Exception as exc:
            mapped = _as_httpx(exc)
            if mapped is None:
                raise
            raise mapped from exc
        assert isinstance(answer.stream, AsyncIterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_ResponseStream(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    """httpcore's response body as httpx reads it, with httpcore's exceptions mapped."""

    def __init__(self, inner: AsyncIterable[bytes]) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._inner:
                yield part
        except Exception as exc:
            mapped = _as_httpx(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        close = getattr(self._inner, "aclose", None)
        if close is not None:
            await close()  # returns the connection to the pool, or closes it


_HTTPX_EXCEPTIONS: dict[type[Exception], type[httpx.HTTPError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


def _as_httpx(exc: Exception) -> httpx.HTTPError | None:
    """The httpx exception for an httpcore one (its most specific class), else None."""
    for cls in type(exc).__mro__:
        target = _HTTPX_EXCEPTIONS.get(cls)
        if target is not None:
            return target(str(exc))
    return None


__all__ = [
    "CheckingBackend",
    "CheckingTransport",
    "Refused",
    "Resolver",
    "blocked_reason",
    "system_resolver",
]
