"""The monitor's exception tree.

Every error a user can cause or meet derives from ``MonitorError``; the command line
turns any of them into one line on stderr and a non-zero exit, never a traceback.

    MonitorError
    ├── ConfigError        the configuration file or an override is invalid
    ├── QueryError         a search query or filter is malformed
    ├── InputError         a local file given to a command cannot be used
    ├── DatabaseError      the database is unreachable or its schema is not current
    └── FetchError         a feed or page could not be had (carries a ``kind``)

Third-party exceptions (httpx, SQLAlchemy, pydantic, feedparser) are translated into
these at the boundary where they are raised, so callers only handle this tree.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error the monitor reports to its user."""

    exit_code = 1


class ConfigError(MonitorError):
    """The configuration is invalid; the message names the key and the problem."""

    exit_code = 2


class QueryError(MonitorError):
    """A search query or search filter is malformed."""

    exit_code = 2


class InputError(MonitorError):
    """A local file given on the command line cannot be read or used."""

    exit_code = 2


class DatabaseError(MonitorError):
    """The database cannot be reached, or its schema is missing or out of date."""


class FetchError(MonitorError):
    """A feed or page could not be fetched.

    ``kind`` is one of a small fixed set (see ``monitor.pipeline.fetch.FailureKind``)
    so failures can be counted, shown and backed off uniformly.
    """

    def __init__(self, kind: str, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after

    def __str__(self) -> str:  # pragma: no cover - trivial
        return f"{self.kind}: {self.args[0]}"
