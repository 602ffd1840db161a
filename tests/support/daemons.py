"""Real ``monitor`` processes for tests: start a daemon, kill it hard, stop it politely.

    with Daemon(config) as daemon:     # `monitor --config … run`, its log kept in a file
        wait_for(...)
        daemon.kill()                  # SIGKILL: no clean-up at all
    log = daemon.log()

A daemon still running when the block ends is killed, and so are the processes it
started (the extraction pool), so a failing test leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.support.waiting import wait_for

MONITOR = str(Path(sys.executable).parent / "monitor")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Daemon:
    """``monitor --config CONFIG run`` in the background, its stderr in a file."""

    def __init__(self, config: Path, *args: str) -> None:
        self._log = tempfile.NamedTemporaryFile("w+", prefix="monitor-run-", suffix=".log", delete=False)  # noqa: SIM115
        self.process = subprocess.Popen(
            [MONITOR, "--config", str(config), *args, "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            text=True,
        )
        self.helpers: list[int] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return Path(self._log.name).read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; the pool's processes are left to notice."""
        self.helpers = descendants(self.pid)
        self.process.kill()
        self.process.wait(timeout=10)

    def helpers_gone(self, timeout: float = 15) -> None:
        """Wait for the processes the killed daemon had started to exit by themselves."""
        wait_for(lambda: not any(alive(pid) for pid in self.helpers), timeout, "the daemon's pool to exit")

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, and the exit code."""
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is not None:
            print(f"--- log of monitor run (pid {self.pid}) ---\n{self.log()[-5000:]}")
        left = descendants(self.pid) if self.running() else []
        if self.running():
            self.process.kill()
            self.process.wait(timeout=10)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)


__all__ = ["MONITOR", "Daemon", "alive", "descendants"]
