"""For the HTTP API's tests: an archive of many rows, forged cursors, an endless
statement, and the app on a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI

from monitor.db import session
from monitor.models import Article, Mention
from tests.support.waiting import free_port, wait_for

# Counts to 10^8 on either engine: a minute of work, unless something stops it.
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) SELECT count(*) FROM c"
WORDS = ["almaty", "troops", "weather", "report", "peacekeepers"]
WORDS += ["treaty", "security", "summit", "government", "minister"]


def cursor_of(payload: Any) -> str:
    """A cursor as a client could forge one: base64 of any JSON."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def fill(engine: sa.Engine, count: int, words: int = 5) -> None:
    """``count`` articles of ``words`` words each, every one mentioning Almaty."""
    start = datetime(2022, 1, 1, tzinfo=UTC)
    rows = [
        {
            "url": f"https://news.example.org/{i}",
            "title": f"Story {i}",
            "text": " ".join(WORDS[(i + j) % len(WORDS)] for j in range(words)),
            "content_hash": f"hash-{i}",
            "published_at": start + timedelta(minutes=i),
            "fetched_at": start,
            "is_duplicate": False,
        }
        for i in range(count)
    ]
    with session(engine) as db:
        db.execute(sa.insert(Article), rows)
        ids = db.execute(sa.select(Article.id)).scalars().all()  # type: ignore[call-overload]
        db.execute(
            sa.insert(Mention),
            [
                {"article_id": i, "entity": "Almaty", "text": "almaty", "start": 0, "end": 6, "snippet": "…"}
                for i in ids
            ],
        )
        db.commit()


@contextmanager
def serving(app: FastAPI) -> Iterator[httpx.Client]:
    """``app`` on a real uvicorn server, and a client of it; stopped on the way out."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(up, 20, f"{base} to come up", interval=0.1)
        with httpx.Client(base_url=base, timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=15)
    assert not thread.is_alive(), "the server did not stop"
