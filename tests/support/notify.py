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
``start`` again on the same port): what ``PostReceiver`` gives every receiver.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from tests.support.servers import Post, PostReceiver, Reply
from tests.support.waiting import free_port

# The topics ntfy accepts.
_NTFY_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")


@dataclass
class NotifyReceiver(PostReceiver):
    port: int = field(default_factory=free_port)
    status: int = 200  # answer to every request
    delay: float = 0.0  # seconds to wait before answering (after keeping the request)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.posts: list[Post] = []  # every request, failed ones included
        self._answered: list[tuple[Post, int]] = []  # ... and the status each got

    def url(self, scheme: str, path: str = "/hook") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    @property
    def ntfy_url(self) -> str:
        return f"ntfy://127.0.0.1:{self.port}/alerts?mode=private"

    def delivered(self, path: str | None = None) -> list[Post]:
        """The requests answered with success (of ``path``, else all)."""
        with self.lock:
            return [p for p, status in self._answered if status < 300 and (path is None or p.path == path)]

    def reply(self, post: Post) -> Reply:
        status, answer = self.answer(post)
        with self.lock:
            self.posts.append(post)
            self._answered.append((post, status))
        return Reply(status, {"Content-Type": "application/json"}, answer)

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
