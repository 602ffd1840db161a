"""Benchmark: what ``GET /api/articles`` of a real ``monitor serve`` adds to the search itself.

A user's view: one httpx client, one kept-alive connection, against ``monitor serve`` on
127.0.0.1, p50 and p95 over ``--repeat`` requests (after one warm-up) of a trivial
endpoint (``/healthz``) and of one newest-first page of ``/api/articles`` for no query,
a common word and an entity; beside them the same search through ``search_articles``
in this process (the route's own work without the server), on SQLite and PostgreSQL.

    python tests/bench/bench_api.py [--articles 5000] [--repeat 30] [--compare DIR]

The archive is ``bench_search.py``'s, built once and cached (``.bench/search-<N>.db``,
PostgreSQL database ``monitor_bench_<N>``); a few thousand articles keep the search
itself small, so what remains is the server's cost. ``--compare DIR`` starts a second
server from DIR (another checkout, e.g. ``git archive`` of an older commit) on the same
archive; the requests go to both servers in turn, so both columns meet the same machine.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from monitor.db import make_engine, session, upgrade_schema  # noqa: E402
from monitor.search import SearchFilters, search_articles  # noqa: E402
from tests.bench.bench_search import (  # noqa: E402
    DEFAULT_PG,
    Generator,
    build_postgres,
    build_sqlite,
    postgres_database,
    sqlite_built,
)
from tests.support.waiting import free_port  # noqa: E402


@dataclass(frozen=True)
class Shape:
    name: str
    path: str
    params: dict[str, Any]
    filters: SearchFilters | None  # None: no search behind it


SHAPES = (
    Shape("/healthz", "/healthz", {}, None),
    Shape("no query", "/api/articles", {}, SearchFilters()),
    Shape("common word", "/api/articles", {"q": "the"}, SearchFilters(query="the")),
    Shape("entity", "/api/articles", {"entity": "Almaty"}, SearchFilters(entities=("Almaty",))),
)


def _archive(args: argparse.Namespace) -> dict[str, str]:
    generator = Generator(args.articles)
    targets: dict[str, str] = {}
    engines = args.engines.split(",")
    if "sqlite" in engines:
        path = args.cache / f"search-{args.articles}.db"
        if not sqlite_built(path, args.articles):
            build_sqlite(path, generator)
        targets["SQLite"] = f"sqlite:///{path}"
    if "postgresql" in engines:
        url, fill = postgres_database(args.postgres, args.articles, rebuild=False)
        if fill:
            build_postgres(url, generator)
        targets["PostgreSQL"] = url
    for url in targets.values():
        engine = make_engine(url)
        upgrade_schema(engine)
        engine.dispose()
    return targets


@contextlib.contextmanager
def serving(tree: Path, url: str, work: Path) -> Iterator[httpx.Client]:
    """A ``monitor serve`` of ``tree``'s code on ``url``, and a client kept alive to it."""
    config = work / f"serve-{abs(hash((tree, url)))}.yaml"
    config.write_text(f"database_url: '{url}'\nseeds_dir: '{ROOT / 'seeds'}'\n", encoding="utf-8")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONITOR_")}
    env["PYTHONPATH"] = str(tree)
    monitor = [sys.executable, "-c", "import sys; from monitor.cli import main; sys.exit(main())"]
    server = subprocess.Popen(
        [*monitor, "--config", str(config), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=work,  # not the checkout: the current directory would come before PYTHONPATH
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60, trust_env=False) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if client.get("/healthz").status_code == 200:
                        break
                if server.poll() is not None:
                    sys.exit(f"monitor serve of {tree} exited with {server.returncode}")
                time.sleep(0.1)
            yield client
    finally:
        server.terminate()
        server.wait(timeout=30)


def _ms(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) * 1000


def _figures(times: list[float]) -> str:
    ordered = sorted(times)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[math.ceil(0.95 * len(ordered)) - 1]
    return f"{p50:6.1f} {p95:6.1f}"


def measure(url: str, trees: dict[str, Path], repeat: int, work: Path) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per request, by column and shape; the columns take turns request by request."""
    engine = make_engine(url)
    times: dict[str, dict[str, list[float]]] = {column: {} for column in [*trees, "search_articles"]}
    with contextlib.ExitStack() as stack:
        clients = {column: stack.enter_context(serving(tree, url, work)) for column, tree in trees.items()}
        for shape in SHAPES:
            runs: dict[str, Callable[[], object]] = {}
            for column, client in clients.items():

                def get(client: httpx.Client = client, shape: Shape = shape) -> None:
                    client.get(shape.path, params=shape.params).raise_for_status()

                runs[column] = get
            if shape.filters is not None:

                def search(filters: SearchFilters = shape.filters) -> None:
                    with session(engine) as db:
                        search_articles(db, filters)

                runs["search_articles"] = search
            for run in runs.values():
                run()  # warm-up
            for n in range(repeat):
                order = list(runs.items())
                for column, run in order if n % 2 == 0 else order[::-1]:
                    times[column].setdefault(shape.name, []).append(_ms(run))
    engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=30, help="timed requests per shape and column (default 30)")
    parser.add_argument("--compare", type=Path, metavar="DIR", help="another checkout to serve beside this one")
    parser.add_argument("--postgres", default=DEFAULT_PG, help="server URL (a database of it, never its own)")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--cache", type=Path, default=ROOT / ".bench")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    trees = {"HTTP": ROOT}
    if args.compare:
        trees = {"HTTP before": args.compare.resolve(), "HTTP after": ROOT}
    targets = _archive(args)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        results = {label: measure(url, trees, args.repeat, Path(tmp)) for label, url in targets.items()}

    print(
        f"\n{args.articles:,} articles; p50 / p95 in ms over {args.repeat} requests, one kept-alive "
        f"connection; load average {load:.1f} at the start"
    )
    for label, times in results.items():
        columns = list(times)
        print(f"\n{label:16}" + "".join(f"{column:>18}" for column in columns))
        for shape in SHAPES:
            cells = [_figures(times[c][shape.name]) if shape.name in times[c] else "" for c in columns]
            print(f"{shape.name:16}" + "".join(f"{cell:>18}" for cell in cells))


if __name__ == "__main__":
    main()
