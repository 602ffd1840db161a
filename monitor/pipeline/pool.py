"""The process pool for the CPU-bound stages: feed parsing and page extraction.

feedparser and trafilatura hold the GIL for milliseconds at a time; in processes they
keep every core busy while the event loop keeps the network busy. The jobs are plain
module-level functions of bytes and strings, so only plain values (and ``FetchError``,
which pickles) cross between processes.

Every job runs under a time limit, because a crafted page can keep trafilatura busy
for minutes. ``concurrent.futures`` cannot stop a job once it runs (its pool can only be
torn down whole, failing every other job with it), so the pool is our own: a fixed
number of processes, each driven over a pipe by one thread of a thread pool. A job that
overruns its limit has its process killed and a fresh one started in its place; the
other processes and their jobs never notice. A process that dies on its own (the OOM
killer, a crash in a C extension) is replaced the same way and its job tried once more.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from typing import Any, TypeVar

from monitor.errors import FetchError
from monitor.outcomes import FailureKind
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


def _extract_job(
    body: bytes, url: str, metadata: bool, selector: str | None = None
) -> tuple[Extracted | None, str | None]:
    try:
        extracted = extract_html(body, url=url, metadata=metadata, selector=selector)
        if extracted is None and selector is not None:
            return None, "selector matched no text"
        return extracted, None
    except Exception as exc:  # a page trafilatura chokes on is a page without text
        return None, f"extraction failed ({type(exc).__name__})"


def _warm_job() -> int:
    return os.getpid()


# ------------------------------------------------------------------ in a pool process


def _init_pool_process(owner: int) -> None:
    """Leave stopping to ``owner``, and exit once it is gone.

    Ctrl-C on a terminal interrupts the whole process group; the worker process shuts
    its pool down itself, so the pool processes ignore it (instead of each printing a
    KeyboardInterrupt traceback). A worker killed outright (SIGKILL, the OOM killer)
    cannot stop its pool, and processes started by a fork server are not its children:
    they watch for it, besides seeing their pipe close.
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


def _serve(pipe: Connection, owner: int) -> None:
    """A pool process's life: run each job that comes down the pipe, send back its outcome."""
    _init_pool_process(owner)
    while True:
        try:
            func, args = pipe.recv()
        except (EOFError, OSError):  # the owner closed its end, or is gone
            return
        try:
            reply: tuple[bool, Any] = (True, func(*args))
        except Exception as exc:
            reply = (False, exc)
        try:
            pipe.send(reply)
        except OSError:
            return
        except Exception as exc:  # a result or an exception that does not pickle
            pipe.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


# --------------------------------------------------------------- in the owner process


class _Overrun(Exception):
    """A job ran past its time limit."""


class ProcessDied(RuntimeError):
    """A pool process went away while it held a job, or the pool was closed under it."""


class _Process:
    """One pool process and the owner's end of its pipe."""

    def __init__(self, context: ForkServerContext, owner: int) -> None:
        ours, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(theirs, owner), name="monitor-pool", daemon=True)
        self._process.start()
        theirs.close()
        self._pipe = ours

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def alive(self) -> bool:
        return self._process.is_alive()

    def call(self, func: Callable[..., T], args: tuple[Any, ...], limit: float | None) -> T:
        """Run one job; ``_Overrun`` past ``limit`` seconds, ``ProcessDied`` if the process goes."""
        try:
            self._pipe.send((func, args))
            if not self._pipe.poll(limit):
                raise _Overrun
            ok, value = self._pipe.recv()
        except (EOFError, OSError) as exc:
            raise ProcessDied(f"pool process {self.pid} died") from exc
        if not ok:
            raise value
        result: T = value
        return result

    def kill(self) -> None:
        self._process.kill()

    def stop(self) -> None:
        """Kill the process, reap it and close the pipe: nothing of it is left."""
        self._process.kill()
        self._process.join(5)
        self._pipe.close()


class _Processes:
    """``size`` pool processes, each driven by one thread; a job queues for a free one.

    A thread takes a process from ``_idle`` for each job and puts it back after, so with
    as many threads as processes a job never waits for a process, only for a thread.
    Processes start on first use (``warm`` starts them all).
    """

    def __init__(self, size: int, context: ForkServerContext, owner: int) -> None:
        self._context = context
        self._owner = owner
        self._idle: queue.SimpleQueue[_Process | None] = queue.SimpleQueue()
        for _ in range(size):
            self._idle.put(None)
        self._live: set[_Process] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._threads = ThreadPoolExecutor(size, thread_name_prefix="monitor-pool")
        self.size = size

    def submit(self, func: Callable[..., T], args: tuple[Any, ...], limit: float | None) -> Future[T]:
        return self._threads.submit(self._call, func, args, limit)

    def warm(self) -> list[int]:
        """Start every process and wait until each has run a job; their pids."""
        taken = [self._idle.get() for _ in range(self.size)]
        try:
            return [self._warm(taken, index) for index in range(self.size)]
        finally:
            for slot in taken:
                self._idle.put(slot)

    def _warm(self, taken: list[_Process | None], index: int) -> int:
        process = taken[index] or self._spawn()
        taken[index] = process
        try:
            return process.call(_warm_job, (), None)
        except ProcessDied:
            self._retire(process)
            taken[index] = None
            raise

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._live if p.pid is not None]

    def _call(self, func: Callable[..., T], args: tuple[Any, ...], limit: float | None) -> T:
        process = self._idle.get()
        try:
            if process is not None and not process.alive():  # died while idle
                self._retire(process)
                process = None
            if process is None:
                process = self._spawn()
                return process.call(func, args, limit)
            try:
                return process.call(func, args, limit)
            except ProcessDied:
                # A process killed while idle can still look alive for a moment (a
                # SIGKILL just sent, not yet reaped): that is no fault of this job.
                self._retire(process)
                process = self._spawn()
                return process.call(func, args, limit)
        except (_Overrun, ProcessDied):
            if process is not None:
                self._retire(process)
            process = None  # a new one starts with the next job
            raise
        finally:
            self._idle.put(process)

    def _spawn(self) -> _Process:
        with self._lock:
            if self._closed:
                raise ProcessDied("the process pool is closed")
            process = _Process(self._context, self._owner)
            self._live.add(process)
            return process

    def _retire(self, process: _Process) -> None:
        with self._lock:
            self._live.discard(process)
        process.stop()

    def close(self) -> None:
        """Kill every process; jobs still running fail with ``ProcessDied``, queued ones are cancelled."""
        with self._lock:
            self._closed = True
            live, self._live = list(self._live), set()
        for process in live:
            process.kill()  # a thread waiting on it sees its pipe close and reaps it
        self._threads.shutdown(wait=False, cancel_futures=True)
        while True:
            try:
                idle = self._idle.get_nowait()
            except queue.Empty:
                break
            if idle is not None:
                idle.stop()


# A feed whose parsing overruns: its refresh as a whole ran out of time.
_SLOW_FEED = FailureKind.DEADLINE


class CPUPool:
    """The process pool for parsing and extraction, created once per worker process.

    ``workers=0`` means one process per CPU core. Processes are started by a fork
    server (never forked from the threaded worker itself) that has the pipeline modules
    imported already. Starting it takes seconds (imports), and the first job would
    block while it happens, so it starts in a background thread and calls wait for it
    without blocking the event loop. ``limit`` on a call is its time limit in seconds.
    """

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._pool: _Processes | None = None
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
        pool: _Processes | None = None
        try:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            pool = _Processes(self.workers, context, os.getpid())
            pool.warm()
        except ProcessDied:
            log.warning("a pool process died while starting; it is replaced on first use")
        except Exception:
            log.exception("cannot start the process pool")
            if pool is not None:
                pool.close()
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

    def pids(self) -> list[int]:
        """The pool's processes running now."""
        pool = self._pool
        return pool.pids() if pool is not None else []

    async def _processes(self) -> _Processes:
        self.start()
        if not self._ready.is_set():
            await asyncio.to_thread(self._ready.wait)
        pool = self._pool
        if pool is None:
            self._ready.clear()  # try again on the next call
            raise RuntimeError("the process pool could not be started")
        return pool

    async def _run(
        self, func: Callable[..., T], args: tuple[Any, ...], limit: float | None, what: str, kind: FailureKind
    ) -> T:
        """``func(*args)`` in a pool process; past ``limit`` a ``FetchError(kind)`` naming ``what``."""
        for attempt in (1, 2):
            try:
                return await asyncio.wrap_future((await self._processes()).submit(func, args, limit))
            except _Overrun:
                log.warning("%s took longer than %gs; its process was replaced", what, limit)
                raise FetchError(kind, f"{what} took longer than {limit:g}s") from None
            except ProcessDied:
                if attempt == 2:
                    raise
                log.warning("a pool process died during %s; trying once more in a new one", what)
        raise AssertionError("unreachable")

    async def parse(
        self, body: bytes, *, url: str, content_type: str | None, limit: float | None = None
    ) -> tuple[ParsedFeed, list[str | None]]:
        """The parsed feed and each entry's canonical URL; raises ``FetchError``."""
        return await self._run(_parse_job, (body, url, content_type), limit, "parsing the feed", _SLOW_FEED)

    async def scan(self, body: bytes, *, url: str, limit: float | None = None) -> list[str] | None:
        return await self._run(_scan_job, (body, url), limit, "scanning the feed", _SLOW_FEED)

    async def extract(
        self,
        body: bytes,
        *,
        url: str,
        metadata: bool = True,
        selector: str | None = None,
        limit: float | None = None,
    ) -> tuple[Extracted | None, str | None]:
        """The page's text (of the ``selector``'s elements if given), or why there is none;
        ``FetchError`` (``extract_timeout``) past ``limit``."""
        try:
            what = f"extracting {url[:200]}"
            args = (body, url, metadata, selector)
            return await self._run(_extract_job, args, limit, what, FailureKind.EXTRACT_TIMEOUT)
        except ProcessDied:
            return None, "extraction failed (process died)"

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
            if not self._starting:
                self._ready.clear()
        if pool is not None:
            pool.close()


__all__ = ["CPUPool", "ProcessDied"]
