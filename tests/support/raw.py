"""A raw HTTP/1.1 server on 127.0.0.1 for tests that need the bytes on the wire as they are.

``RawServer(serve)`` runs ``serve(connection)`` in a thread per connection and counts the
connections, so a test can tell whether a client kept its connection alive.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


def read_head(connection: socket.socket, buffer: bytes = b"") -> tuple[bytes | None, bytes]:
    """The next request head and what was read past it; None when the client hung up."""
    while b"\r\n\r\n" not in buffer:
        data = connection.recv(65536)
        if not data:
            return None, b""
        buffer += data
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return head, rest


class RawServer:
    """Serves each connection with ``serve(connection)`` in a thread of its own; counts them."""

    def __init__(self, serve: Callable[[socket.socket], object]) -> None:
        self.connections = 0
        self._serve = serve
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/feed.xml"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(connection,), daemon=True).start()

    def _run(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError), connection:  # a client may hang up mid-answer
            self._serve(connection)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._listener.close()
