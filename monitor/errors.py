"""The monitor's exception tree.

Every error a user can cause or meet derives from ``MonitorError``; the command line
turns any of them into one line on stderr and a non-zero exit, never a traceback.

    MonitorError
    ├── ConfigError        the configuration file or an override is invalid
    ├── QueryError         a search query or filter is malformed
    ├── InputError         a local file given to a command cannot be used
    ├── FeedSourceError    a feed cannot be added, changed or removed as asked
    ├── DatabaseError      the database is unreachable or its schema is not current
    ├── FetchError         a feed or page could not be had (carries a ``FailureKind``)
    └── DeliveryError      an alert channel did not take a message (carries a ``DeliveryFailure``)

Third-party exceptions (httpx, SQLAlchemy, pydantic, feedparser) are translated into
these at the boundary where they are raised, so callers only handle this tree.

The messages of fetch and delivery failures are stored, listed and logged: any URL in
one is redacted when the error is made (``monitor.redact``), so a feed's password or a
webhook's token never reaches the database, the API or a terminal through them.
"""

from __future__ import annotations

from typing import Any

from monitor.outcomes import DeliveryFailure, FailureKind
from monitor.redact import redact_text


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


class FeedSourceError(MonitorError):
    """A feed cannot be added, changed or removed as asked.

    ``problem`` says which way: ``not_found`` (no such feed), ``conflict`` (the feed or
    its name exists already, or it belongs to the configuration file), ``invalid``.
    """

    exit_code = 2

    def __init__(self, message: str, *, problem: str = "invalid") -> None:
        super().__init__(redact_text(message))
        self.problem = problem


class DatabaseError(MonitorError):
    """The database cannot be reached, or its schema is missing or out of date."""


class FetchError(MonitorError):
    """A feed or page could not be fetched, parsed or processed.

    ``kind`` says why, from a small fixed set, so failures are counted, shown and backed
    off uniformly; ``status`` is the HTTP status when a server answered with an error;
    ``retry_after`` the seconds a server asked to wait. It pickles, so it crosses the
    process pool as it is.
    """

    def __init__(
        self,
        kind: FailureKind | str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        message = redact_text(message)
        super().__init__(message)
        self.kind = FailureKind(kind)
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_fetch_error, (self.kind.value, self.message, self.status, self.retry_after))

    @property
    def problem(self) -> str:
        """``http_404`` rather than ``http_4xx`` where the status is known: more telling in a note."""
        return f"http_{self.status}" if self.status is not None else self.kind.value

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


def _rebuild_fetch_error(kind: str, message: str, status: int | None, retry_after: float | None) -> FetchError:
    return FetchError(kind, message, status=status, retry_after=retry_after)


class DeliveryError(MonitorError):
    """An alert channel did not take a message; ``kind`` says whether to try again."""

    def __init__(self, kind: DeliveryFailure | str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(redact_text(message))
        self.kind = DeliveryFailure(kind)
        self.retry_after = retry_after
