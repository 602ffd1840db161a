"""A tarpit on 127.0.0.1: a raw TCP server that takes connections and answers never, or barely.

    with Tarpit() as pit:                     # accepts, reads, never writes a byte
        url = pit.url("/story/1")
    with Tarpit(trickle=b"HTTP/1.1 200 OK\\r\\n", every=1.0) as pit:
        ...                                   # one byte a second, and never the end

Every connection is kept open until the tarpit stops, so a client is held for as long
as it is willing to wait. ``connections`` counts the connections accepted.
"""

from __future__ import annotations

import socket
import threading


class Tarpit:
    def __init__(self, *, trickle: bytes = b"", every: float = 1.0) -> None:
        self._trickle = trickle
        self._every = every
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1024)
        self._listener.settimeout(0.1)
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.connections = 0

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Tarpit:
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            held, self._held = self._held, []
        for connection in held:
            connection.close()
        self._listener.close()

    def __enter__(self) -> Tarpit:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._held.append(connection)
                self.connections += 1
            if self._trickle:
                self._spawn(self._drip, connection)

    def _drip(self, connection: socket.socket) -> None:
        """Send the trickle a byte at a time, ``every`` seconds apart; the line stays held."""
        for index in range(len(self._trickle)):
            if self._stop.wait(self._every):
                return
            try:
                connection.sendall(self._trickle[index : index + 1])
            except OSError:
                return
