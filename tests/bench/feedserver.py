"""An asyncio feed server for the polling benchmark, run in its own process.

    python tests/bench/feedserver.py PORT PAGES_DIR

Routes (all answers are built once, up front, so the server is never the bottleneck):

- ``/feed/{n}``: feed ``n`` of known entries (20 items), answered after ``latency``;
  its ``lastBuildDate`` carries the cycle number so each cycle's body differs. With
  ``mode=conditional`` a request carrying ``If-None-Match`` gets a 304.
- ``/new/{n}``: feed ``n`` of new entries pointing at ``/page/{i}``.
- ``/page/{i}``: article page ``i`` — the corpus pages in turn, each copy made
  distinct by an edition line.
- ``/control?mode=…&cycle=…&latency=…``: switch behaviour between cycles.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.feeds import Item, rss20

ENTRIES = 20
FEEDS = 1000


def known_url(n: int, k: int) -> str:
    return f"https://news{n % 50}.example.org/{n}/story-{k}.html"


def known_feed(n: int, cycle: int) -> bytes:
    items = [
        Item(
            f"Story {k} of feed {n}",
            known_url(n, k),
            summary=f"Summary of story {k} from feed {n}, a sentence or two long.",
        )
        for k in range(ENTRIES)
    ]
    return rss20(items, title=f"Feed {n}", build=f"cycle {cycle}").encode()


def new_feed(base: str, n: int, first_page: int, batch: int) -> bytes:
    items = [
        Item(f"Page {i}", f"{base}/page/{i}", summary=f"Summary of page {i}.")
        for i in range(first_page + n * ENTRIES, first_page + (n + 1) * ENTRIES)
    ]
    return rss20(items[:batch], title=f"New {n}").encode()


def corpus_pages(pages_dir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(pages_dir.glob("*.html"))]


def page(pages: list[bytes], i: int) -> bytes:
    """Corpus page ``i mod len(pages)``, made distinct by a line naming its edition."""
    html = pages[i % len(pages)]
    marker = f"<p>Edition {i}: reprinted for the archive.</p>".encode()
    at = html.lower().find(b"</body>")
    return html[:at] + marker + html[at:] if at >= 0 else html + marker


def app(pages_dir: Path):  # type: ignore[no-untyped-def]
    import asyncio

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    state = {"mode": "steady", "cycle": 0, "latency": 0.1, "first_page": 0}
    pages = corpus_pages(pages_dir)
    cache: dict[tuple[int, int], bytes] = {}
    rss = "application/rss+xml"

    async def feed(request: Request) -> Response:
        n = int(request.path_params["n"])
        await asyncio.sleep(state["latency"])
        if state["mode"] == "conditional" and request.headers.get("if-none-match"):
            return Response(status_code=304, headers={"ETag": f'"{n}"'})
        key = (n, state["cycle"])
        if key not in cache:
            cache.clear() if len(cache) > 5000 else None
            cache[key] = known_feed(n, state["cycle"])
        return Response(cache[key], media_type=rss, headers={"ETag": f'"{n}"'})

    async def new(request: Request) -> Response:
        n = int(request.path_params["n"])
        base = f"{request.url.scheme}://{request.url.netloc}"
        return Response(new_feed(base, n, state["first_page"], ENTRIES), media_type=rss)

    async def article(request: Request) -> Response:
        return Response(page(pages, int(request.path_params["i"])), media_type="text/html")

    async def control(request: Request) -> Response:
        for key in ("mode",):
            if key in request.query_params:
                state[key] = request.query_params[key]
        for key in ("cycle", "first_page"):
            if key in request.query_params:
                state[key] = int(request.query_params[key])
        if "latency" in request.query_params:
            state["latency"] = float(request.query_params["latency"])
        return Response("ok")

    return Starlette(
        routes=[
            Route("/feed/{n}", feed),
            Route("/new/{n}", new),
            Route("/page/{i}", article),
            Route("/control", control),
        ]
    )


if __name__ == "__main__":
    import uvicorn

    port, pages_dir = int(sys.argv[1]), Path(sys.argv[2])
    uvicorn.run(app(pages_dir), host="127.0.0.1", port=port, log_level="warning", access_log=False, backlog=2048)
