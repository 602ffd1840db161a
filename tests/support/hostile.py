"""Hostile bodies, made in the test: compression bombs, endless and trickling answers.

``gzip_bomb(size)`` is gzip of ``size`` zero bytes; zeros compress about 1000:1, so a
4 GiB bomb is 4 MB on the wire. It is a gzip file of 1 GiB members (as ``cat a.gz
b.gz`` makes one), each compressed once per test session, never stored.

``StreamServer`` is an HTTP server on 127.0.0.1 whose answers are made as they are sent,
from a ``Stream``: a body of any length without holding it (``repeat(b"x", 200 MB)``,
endless), sent at a chosen pace, with or without a Content-Length, chunked or ended by
closing the connection, and headers that may themselves trickle or never end. Every
answer stops when the client hangs up, when the server stops, and after ``limit``
seconds at most, so a test always ends.
"""

from __future__ import annotations

import functools
import itertools
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

GIB = 1 << 30
_BLOCK = bytes(1 << 24)


@functools.cache
def _gzip_of_zeros(size: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    whole, rest = divmod(size, len(_BLOCK))
    parts = [compressor.compress(_BLOCK) for _ in range(whole)]
    parts.append(compressor.compress(_BLOCK[:rest]))
    return b"".join(parts) + compressor.flush()


def gzip_bomb(size: int) -> bytes:
    """gzip of ``size`` zero bytes, in members of at most 1 GiB."""
    members, rest = divmod(size, GIB)
    return _gzip_of_zeros(GIB) * members + (_gzip_of_zeros(rest) if rest else b"")


def gzip(data: bytes) -> bytes:
    return zlib.compress(data, 9, wbits=31)


def repeat(piece: bytes, total: int | None = None) -> Callable[[], Iterator[bytes]]:
    """Chunks of ``piece`` adding up to ``total`` bytes, or forever."""

    def chunks() -> Iterator[bytes]:
        if total is None:
            yield from itertools.repeat(piece)
            return
        whole, rest = divmod(total, len(piece))
        yield from itertools.repeat(piece, whole)
        if rest:
            yield piece[:rest]

    return chunks


def endless_gzip() -> Iterator[bytes]:
    """A gzip stream of zeros that never ends (each chunk ~1 KB, ~1 MB decoded)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    while True:
        yield compressor.compress(block) + compressor.flush(zlib.Z_SYNC_FLUSH)


@dataclass
class Stream:
    """One answer, made as it is sent.

    ``body`` makes the body's chunks; ``length`` is sent as Content-Length when given,
    whatever the body holds; otherwise the body is chunked (``chunked``) or ended by
    closing the connection. ``pace`` seconds pass before each chunk. ``head`` replaces
    the status line and headers with raw bytes, sent ``head_pace`` seconds apart each
    (a head that never ends: ``head=None`` and ``endless_head=True``).
    """

    body: Callable[[], Iterable[bytes]] = lambda: iter(())
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None
    chunked: bool = False
    pace: float = 0.0
    head: bytes | None = None
    head_pace: float = 0.0
    endless_head: bool = False


class StreamServer:
    """HTTP/1.1 on a free loopback port; one connection, one answer, then close."""

    def __init__(self, *, limit: float = 60.0) -> None:
        self.limit = limit
        self._routes: dict[str, Stream] = {}
        self.requests: list[str] = []
        self.sent: dict[str, int] = {}  # body bytes written per path
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, stream: Stream) -> None:
        self._routes[path] = stream

    def start(self) -> StreamServer:
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._closing.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> StreamServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._spawn(self._serve, connection)

    def _serve(self, connection: socket.socket) -> None:
        deadline = time.monotonic() + self.limit
        with connection:
            connection.settimeout(5)
            try:
                path = self._read_request(connection)
                if path is None:
                    return
                stream = self._routes.get(path.split("?")[0])
                if stream is None:
                    connection.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    return
                self._answer(connection, path, stream, deadline)
            except OSError:
                pass  # the client hung up: size caps and timeouts at work

    def _read_request(self, connection: socket.socket) -> str | None:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = connection.recv(65536)
            if not piece or len(data) > 1 << 20:
                return None
            data += piece
        path = data.split(b"\r\n", 1)[0].split(b" ")[1].decode("ascii", "replace")
        with self._lock:
            self.requests.append(path)
        return path

    def _waiting(self, seconds: float, deadline: float) -> bool:
        """Wait; False when the server stops or the answer's time is up."""
        if seconds:
            self._closing.wait(seconds)
        return not self._closing.is_set() and time.monotonic() < deadline

    def _answer(self, connection: socket.socket, path: str, stream: Stream, deadline: float) -> None:
        if stream.endless_head or stream.head is not None:
            head: Iterable[bytes]
            if stream.endless_head:
                start = b"HTTP/1.1 200 OK\r\nX-Filler: "
                head = itertools.chain([start], itertools.repeat(b"a" * 1024))
            else:
                assert stream.head is not None
                head = (bytes([b]) for b in stream.head) if stream.head_pace else [stream.head]
            for piece in head:
                if not self._waiting(stream.head_pace, deadline):
                    return
                connection.sendall(piece)
        else:
            lines = [f"HTTP/1.1 {stream.status} X", "Connection: close"]
            if stream.length is not None:
                lines.append(f"Content-Length: {stream.length}")
            elif stream.chunked:
                lines.append("Transfer-Encoding: chunked")
            lines += [f"{name}: {value}" for name, value in stream.headers.items()]
            connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for chunk in stream.body():
            if not self._waiting(stream.pace, deadline):
                return
            connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if stream.chunked else chunk)
            with self._lock:
                self.sent[path] = self.sent.get(path, 0) + len(chunk)
        if stream.chunked:
            connection.sendall(b"0\r\n\r\n")


__all__ = ["GIB", "Stream", "StreamServer", "endless_gzip", "gzip", "gzip_bomb", "repeat"]
