"""A simulated internet for the fetcher's address checks, with every byte staying on 127.0.0.1.

The fetcher takes a ``resolver`` (host name → addresses) and a ``network_backend`` (opens
the TCP connection to an address once it has been checked). Here:

- ``Names`` is a resolver with a table of invented names (``news.test`` → a public
  address); numeric hosts (``2130706433``, ``0x7f.1``) and ``localhost`` go to the
  system's resolver, which answers them without asking any DNS server; any other name
  fails as unknown, so no lookup ever leaves the machine;
- ``LocalInternet`` is a network backend that records the address each connection was
  meant for and connects it to 127.0.0.1 on the same port, so a "public" site is a local
  test server, and a connection the checks should have refused lands on that server too,
  where the test sees it;
- ``DNSServer`` is a small DNS server on 127.0.0.1 (UDP) answering from a script per
  name, one answer per query, with a TTL of 0 (DNS rebinding), and ``dns_resolver``
  a resolver that asks it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import httpcore

from monitor.pipeline.transport import system_resolver

# What invented public names resolve to. Routed to 127.0.0.1 by LocalInternet: never
# contacted.
PUBLIC_IP = "93.184.216.34"
OTHER_PUBLIC_IP = "151.101.1.69"


def _is_numeric(host: str) -> bool:
    """A host the system resolver answers from its own parsing (inet_aton, IPv6 text)."""
    try:
        socket.inet_aton(host)
        return True
    except OSError:
        pass
    try:
        ipaddress.IPv6Address(host.split("%", 1)[0])
        return True
    except ValueError:
        return False


class Names:
    """A resolver: invented names from a table, numeric hosts and localhost from the system."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = dict(table or {})
        self.asked: list[str] = []

    async def __call__(self, host: str) -> list[str]:
        self.asked.append(host)
        if host in self.table:
            return list(self.table[host])
        if host == "localhost" or _is_numeric(host):
            return await system_resolver(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


class LocalInternet(httpcore.AsyncNetworkBackend):
    """Connects every address the fetcher checked to 127.0.0.1; records the addresses."""

    def __init__(self) -> None:
        self.connected: list[str] = []
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        self.connected.append(host)
        return await self._inner.connect_tcp("127.0.0.1", port, *args, **kwargs)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# ------------------------------------------------------------------------------ DNS

_A, _AAAA, _IN = 1, 28, 1


def _encode_name(name: str) -> bytes:
    labels = name.rstrip(".").split(".")
    return b"".join(bytes([len(label)]) + label.encode("ascii") for label in labels) + b"\x00"


def _read_name(packet: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii"))
        offset += 1 + length
    return ".".join(labels), offset + 1


def dns_query(ident: int, name: str, qtype: int) -> bytes:
    header = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0)  # recursion desired
    return header + _encode_name(name) + struct.pack("!HH", qtype, _IN)


def dns_answers(packet: bytes, ident: int) -> list[str]:
    """The A and AAAA addresses of an answer to query ``ident``."""
    got, flags, questions, answers, _ns, _extra = struct.unpack("!HHHHHH", packet[:12])
    if got != ident or not flags & 0x8000:
        raise socket.gaierror(socket.EAI_FAIL, "not an answer to the query")
    if flags & 0x000F == 3:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    offset = 12
    for _ in range(questions):
        _name, offset = _read_name(packet, offset)
        offset += 4
    found = []
    for _ in range(answers):
        if packet[offset] & 0xC0 == 0xC0:
            offset += 2
        else:
            _name, offset = _read_name(packet, offset)
        rtype, _rclass, _ttl, length = struct.unpack("!HHIH", packet[offset : offset + 10])
        offset += 10
        data = packet[offset : offset + length]
        offset += length
        if rtype == _A:
            found.append(socket.inet_ntop(socket.AF_INET, data))
        elif rtype == _AAAA:
            found.append(socket.inet_ntop(socket.AF_INET6, data))
    return found


class DNSServer:
    """A DNS server on 127.0.0.1 (UDP) that answers each query for a name from its script.

    ``script[name]`` is a list of answers (each a list of addresses); the n-th A query for
    the name gets the n-th answer, and the last one once the script is used up. Every
    answer has a TTL of 0. ``queries`` lists the names asked, in order.
    """

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = script
        self.queries: list[str] = []
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def start(self) -> DNSServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def __enter__(self) -> DNSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                packet, client = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self._socket.sendto(self._answer(packet), client)

    def _answer(self, packet: bytes) -> bytes:
        ident, _flags, _questions = struct.unpack("!HHH", packet[:6])
        name, end = _read_name(packet, 12)
        qtype, _qclass = struct.unpack("!HH", packet[end : end + 4])
        question = packet[12 : end + 4]
        addresses: list[str] = []
        known = name in self.script
        if known and qtype == _A:
            with self._lock:
                self.queries.append(name)
                n = self._served.get(name, 0)
                self._served[name] = n + 1
            answers = self.script[name]
            addresses = answers[min(n, len(answers) - 1)]
        records = b""
        for address in addresses:
            data = socket.inet_pton(socket.AF_INET, address)
            records += struct.pack("!HHHIH", 0xC00C, _A, _IN, 0, len(data)) + data
        flags = 0x8180 if known else 0x8183  # an answer, recursion available; NXDOMAIN
        return struct.pack("!HHHHHH", ident, flags, 1, len(addresses), 0, 0) + question + records


def dns_resolver(port: int, *, timeout: float = 2.0) -> Callable[[str], Awaitable[list[str]]]:
    """A resolver that asks the DNS server on 127.0.0.1:``port`` every time (no cache)."""
    counter = iter(range(1, 65536))

    def ask(host: str) -> list[str]:
        ident = next(counter)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(timeout)
            sock.sendto(dns_query(ident, host, _A), ("127.0.0.1", port))
            packet, _ = sock.recvfrom(4096)
        return dns_answers(packet, ident)

    async def resolve(host: str) -> list[str]:
        return await asyncio.to_thread(ask, host)

    return resolve


__all__ = ["OTHER_PUBLIC_IP", "PUBLIC_IP", "DNSServer", "LocalInternet", "Names", "dns_resolver"]
