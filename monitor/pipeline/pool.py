"""The process pool for the CPU-bound stages: feed parsing and page extraction.

feedparser and trafilatura hold the GIL for milliseconds at a time; in processes they
keep every core busy while the event loop keeps the network busy. The jobs are plain
module-level functions of bytes and strings, so only plain values (and ``FetchError``,
which pickles) cross between processes.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from monitor.pipeline.extract import Extracted, extract_html
from monitor.pipeline.parse import ParsedFeed, entry_links, parse_feed
from monitor.pipeline.urls import canonical_url

log = logging.getLogger(__name__)

T = TypeVar("T")


def _parse_job(body: bytes, url: str, content_type: str | None) -> tuple[ParsedFeed, list[str | None]]:
    """Parse and canonicalise in a pool process; a ``FetchError`` crosses back as it is."""
    document = parse_feed(body, url=url, content_type=content_type)
    urls = [canonical_url(e.url, base=url) if e.url else None for e in document.entries]
    return document, urls


def _scan_job(body: bytes, url: str) -> list[str] | None:
    """The canonical URLs of a well-formed feed's entries, or None when unsure."""
    links = entry_links(body, url=url)
    if links is None:
        return None
    canonical = [canonical_url(link, base=url) for link in links]
    return None if None in canonical else [link for link in canonical if link is not None]


def _extract_job(body: bytes, url: str, metadata: bool) -> tuple[Extracted | None, str | None]:
    try:
        return extract_html(body, url=url, metadata=metadata), None
    except Exception as exc:  # a page trafilatura chokes on is a page without text
        return None, f"extraction failed ({type(exc).__name__})"


def _init_pool_process(owner: int) -> None:
    """Pool process initialiser: leave stopping to ``owner``, and exit once it is gone.

    Ctrl-C on a terminal interrupts the whole process group; the worker process shuts
    its pool down itself, so the pool processes ignore it (instead of each printing a
    KeyboardInterrupt traceback). A worker killed outright (SIGKILL, the OOM killer)
    cannot stop its pool, and pool processes started by a fork server never notice on
    their own: they would wait for work forever, so they watch for it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(owner, 0)
            except (ProcessLookupError, PermissionError):  # gone, or its pid another user's now
                os._exit(0)

    threading.Thread(target=watch, name="monitor-follow-owner", daemon=True).start()


def _warm_job() -> int:
    time.sleep(0.05)  # long enough that concurrent calls need distinct processes
    return os.getpid()


class CPUPool:
    """The process pool for parsing and extraction, created once per worker process.

    ``workers=0`` means one process per CPU core. Processes are started by a fork
    server (never forked from the threaded worker itself) that has the pipeline modules
    imported already. Starting it takes seconds (imports), and the first submission
    would block while it happens, so it starts in a background thread and calls wait
    for it without blocking the event loop. A pool broken by a killed child is replaced.
    """

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._starting = False

    def start(self) -> None:
        """Start the processes in the background (idempotent)."""
        with self._lock:
            if self._pool is not None or self._starting:
                return
            self._starting = True
        threading.Thread(target=self._start, name="monitor-pool-start", daemon=True).start()

    def _start(self) -> None:
        pool: ProcessPoolExecutor | None = None
        try:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=context, initializer=_init_pool_process, initargs=(os.getpid(),)
            )
            for future in [pool.submit(_warm_job) for _ in range(self.workers * 2)]:
                future.result()
        except BrokenProcessPool:
            log.warning("the process pool broke while starting; it is replaced on first use")
        except Exception:
            log.exception("cannot start the process pool")
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            pool = None
        finally:
            # Waiters are released whatever happened; without a pool they raise.
            with self._lock:
                self._pool, self._starting = pool, False
            self._ready.set()

    def warm_up(self) -> None:
        """Start the processes and wait until they run."""
        self.start()
        self._ready.wait()

    async def _executor(self) -> ProcessPoolExecutor:
        self.start()
        if not self._ready.is_set():
            await asyncio.to_thread(self._ready.wait)
        pool = self._pool
        if pool is None:
            self._ready.clear()  # try again on the next call
            raise RuntimeError("the process pool could not be started")
        return pool

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(await self._executor(), func, *args)
        except BrokenProcessPool:
            log.warning("the process pool broke (a process died); starting a new one")
            self.close()
            return await loop.run_in_executor(await self._executor(), func, *args)

    async def parse(self, body: bytes, *, url: str, content_type: str | None) -> tuple[ParsedFeed, list[str | None]]:
        """The parsed feed and each entry's canonical URL; raises ``FetchError``."""
        return await self._run(_parse_job, body, url, content_type)

    async def scan(self, body: bytes, *, url: str) -> list[str] | None:
        return await self._run(_scan_job, body, url)

    async def extract(self, body: bytes, *, url: str, metadata: bool = True) -> tuple[Extracted | None, str | None]:
        return await self._run(_extract_job, body, url, metadata)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            if not self._starting:
                self._ready.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["CPUPool"]
