"""Run code that might hang or eat the memory in child processes with limits, so a test ends.

    with Sandbox(memory=1 << 30) as sandbox:
        result = sandbox.run(parse_one, body, timeout=10)

The children come from a fork server (clean processes, not forks of a test process with
server threads) and each gets an address-space limit (``RLIMIT_AS``): a runaway
allocation fails there as ``MemoryError``, not on the machine. A call that does not
return within ``timeout`` seconds kills the children and fails the test, naming what
was running. The function and its arguments must pickle (a module-level function).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import resource
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _limit_memory(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class Sandbox:
    def __init__(self, *, processes: int = 1, memory: int = 1 << 30) -> None:
        context = multiprocessing.get_context("forkserver")
        self.processes = processes
        self._pool: multiprocessing.pool.Pool = context.Pool(
            processes, initializer=_limit_memory, initargs=(memory,), maxtasksperchild=None
        )

    def run(self, func: Callable[..., T], *args: Any, timeout: float, what: str = "") -> T:
        """``func(*args)`` in a child; its exception is raised here, a hang fails the test."""
        return self.wait(self.submit(func, *args), timeout=timeout, what=what or func.__name__)

    def submit(self, func: Callable[..., T], *args: Any) -> multiprocessing.pool.AsyncResult[T]:
        return self._pool.apply_async(func, args)

    def wait(self, result: multiprocessing.pool.AsyncResult[T], *, timeout: float, what: str) -> T:
        try:
            return result.get(timeout)
        except multiprocessing.TimeoutError:
            self.close()
            raise AssertionError(f"{what} did not finish within {timeout:g}s") from None

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Sandbox"]
