"""Telling a database outage once: a line when it starts, a line when it ends.

While the database is away every job of the daemon fails, every tick; a traceback each
time would bury the log (thousands of lines a minute) and say nothing new. A failure
that is an outage (``monitor.db.is_outage``) is told once with its cause, and its end
with how long it lasted; any other failure is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import time

from monitor.db import is_outage, outage_reason

log = logging.getLogger(__name__)


class OutageLog:
    def __init__(self) -> None:
        self.since: float | None = None

    def failed(self, what: str, exc: Exception) -> None:
        """``what`` failed with ``exc``: told unless the outage is told already."""
        if not is_outage(exc):
            log.error("%s", what, exc_info=exc)
            return
        if self.since is None:
            self.since = time.monotonic()
            log.error("%s: the database is unreachable: %s; trying again", what, outage_reason(exc))

    def succeeded(self) -> None:
        """A job reached the database: the end of an outage, if there was one."""
        if self.since is not None:
            log.warning("the database answers again, after %.0fs", time.monotonic() - self.since)
            self.since = None


__all__ = ["OutageLog"]
