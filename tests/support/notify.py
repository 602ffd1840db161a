"""A real receiver for Apprise's HTTP targets, on 127.0.0.1.

``NotifyReceiver`` keeps every ``POST`` it gets (path, headers, body) and answers the
way the target expects:

- ``json://127.0.0.1:PORT/path`` and ``form://…``: Apprise's generic JSON and form
  posts, answered with an empty 200;
- ``ntfy://127.0.0.1:PORT/topic?mode=private``: ntfy's publish API as Apprise's ntfy
  plugin uses it (a JSON ``{"topic", "title", "message"}`` posted to ``/``), answered as
  ntfy does: the published message as JSON, or ntfy's error object
  (``{"code": 40…, "http": 400, "error": "…"}``) for a topic ntfy would refuse.

It can answer an error status, answer late (``delay``), or be down (``stop``, then
``start`` again on the same port).
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from tests.support.waiting import free_port

# The topics ntfy accepts.
_NTFY_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}


@dataclass
class NotifyReceiver:
    port: int = field(default_factory=free_port)
    status: int = 200  # answer to every request
    delay: float = 0.0  # seconds to wait before answering (after keeping the request)

    def __post_init__(self) -> None:
        self.posts: list[Post] = []  # every request, failed ones included
        self._answered: list[tuple[Post, int]] = []  # ... and the status each got
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._closing = threading.Event()

    def url(self, scheme: str, path: str = "/hook") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    @property
    def ntfy_url(self) -> str:
        return f"ntfy://127.0.0.1:{self.port}/alerts?mode=private"

    def delivered(self, path: str | None = None) -> list[Post]:
        """The requests answered with success (of ``path``, else all)."""
        with self.lock:
            return [p for p, status in self._answered if status < 300 and (path is None or p.path == path)]

    def answer(self, post: Post) -> tuple[int, bytes]:
        if post.path != "/" or not post.headers.get("content-type", "").startswith("application/json"):
            return self.status, b""
        # ntfy's publish-as-JSON endpoint.
        try:
            message = post.json()
        except ValueError:
            return 400, json.dumps({"code": 40001, "http": 400, "error": "invalid request: body not JSON"}).encode()
        if not _NTFY_TOPIC.fullmatch(str(message.get("topic", ""))):
            return 400, json.dumps({"code": 40009, "http": 400, "error": "invalid request: topic invalid"}).encode()
        if self.status >= 300:
            error = {"code": self.status * 100, "http": self.status, "error": "the server is failing"}
            return self.status, json.dumps(error).encode()
        published = {"id": "m1", "time": int(time.time()), "event": "message", **message}
        return 200, json.dumps(published).encode()

    def start(self) -> NotifyReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                post = Post(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                status, answer = receiver.answer(post)
                with receiver.lock:
                    receiver.posts.append(post)
                    receiver._answered.append((post, status))
                if receiver.delay:
                    receiver._closing.wait(receiver.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self._closing.clear()
        self._server = server
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> NotifyReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
