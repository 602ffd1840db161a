"""A real HTTP server on 127.0.0.1 for tests: feeds, pages, failures.

Routes are set per path, either as a fixed ``Response`` or as a callable that gets the
``Request`` and returns one, so a test can script conditional GETs, flaky sources,
redirects or slow answers. Every request is logged for assertions.

    with HTTPServer() as server:
        server.route("/feed.xml", Response(body=rss, headers={"Content-Type": "application/rss+xml"}))
        url = server.url("/feed.xml")
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    at: float = field(default_factory=time.monotonic)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    body: bytes | str = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    # Send this many bytes, then stall for ``delay`` (for read timeouts mid-body).
    stall_after: int | None = None
    # Send the body in chunks (Transfer-Encoding: chunked), without a Content-Length.
    chunked: bool = False

    def encoded(self) -> bytes:
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


Handler = Callable[[Request], Response]


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (size caps, timeouts under test) are no error here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class HTTPServer:
    """A threaded HTTP/1.1 server on a free loopback port, run in the background."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._routes: dict[str, Response | Handler] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                server._serve(self, "GET")

            def do_HEAD(self) -> None:
                server._serve(self, "HEAD")

            def do_POST(self) -> None:
                server._serve(self, "POST")

        self._server = _QuietServer((host, 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, response: Response | Handler) -> None:
        self._routes[path] = response

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> HTTPServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        request = Request(method, handler.path, {k.lower(): v for k, v in handler.headers.items()})
        with self._lock:
            self.requests.append(request)
        route = self._routes.get(handler.path) or self._routes.get(handler.path.split("?")[0])
        if route is None:
            response = Response(b"not found", status=404)
        elif callable(route):
            response = route(request)
        else:
            response = route
        body = response.encoded()
        if response.delay and response.stall_after is None:
            time.sleep(response.delay)
        try:
            handler.send_response(response.status)
            length = {"Transfer-Encoding": "chunked"} if response.chunked else {"Content-Length": str(len(body))}
            headers = {**length, **response.headers}
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if method == "HEAD" or response.status == 304:
                return
            if response.chunked:
                self._write_chunked(handler, body)
            elif response.stall_after is not None:
                handler.wfile.write(body[: response.stall_after])
                handler.wfile.flush()
                time.sleep(response.delay)
                handler.wfile.write(body[response.stall_after :])
            else:
                handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeouts, size caps): expected in these tests

    @staticmethod
    def _write_chunked(handler: BaseHTTPRequestHandler, body: bytes, size: int = 65536) -> None:
        for start in range(0, len(body), size):
            piece = body[start : start + size]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        handler.wfile.write(b"0\r\n\r\n")
