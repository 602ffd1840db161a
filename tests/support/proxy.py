"""A TCP proxy on 127.0.0.1 that a test can cut and restore: a server's outage, simulated.

    with TCPProxy(5432) as proxy:            # 127.0.0.1:proxy.port → 127.0.0.1:5432
        ...                                  # point the client at proxy.port
        proxy.cut()                          # open connections dropped, new ones refused
        proxy.restore()                      # listening again, on the same port

Only the proxy goes down: the server behind it keeps running for everyone else. ``cut``
closes both ends of every connection (the client sees it reset or closed, as when a
server dies) and stops listening (new connections are refused, as with a server down).
"""

from __future__ import annotations

import select
import socket
import threading

from tests.support.waiting import free_port


class TCPProxy:
    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.connections = 0  # accepted in all
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> TCPProxy:
        self.restore()
        return self

    def restore(self) -> None:
        """Listen again (on the same port)."""
        if self._listener is not None:
            return
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.1)
        self._listener = listener
        self._spawn(self._accept, listener)

    def cut(self) -> None:
        """Stop listening and drop every open connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for end in pair:
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                end.close()

    def stop(self) -> None:
        self._stopped.set()
        self.cut()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> TCPProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped.is_set() and self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut while connecting
                    client.close()
                    upstream.close()
                    return
                self._pairs.append((client, upstream))
                self.connections += 1
            self._spawn(self._pump, client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        ends = [client, upstream]
        try:
            while not self._stopped.is_set():
                readable, _, _ = select.select(ends, [], [], 0.2)
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is client else client).sendall(data)
        except (OSError, ValueError):
            pass  # cut: the sockets were closed under us
        finally:
            with self._lock:
                if (client, upstream) in self._pairs:
                    self._pairs.remove((client, upstream))
            client.close()
            upstream.close()


__all__ = ["TCPProxy"]
