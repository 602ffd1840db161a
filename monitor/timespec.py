"""The times of the archive's filters (``--since``/``--until`` and their API
counterparts): user input in, a UTC time out, or ``QueryError`` with a one-line reason."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from monitor.config import MAX_DURATION_TEXT, parse_duration
from monitor.errors import QueryError
from monitor.times import as_utc

MAX_TIME_LENGTH = 100
# The times a filter may name: the epoch to the last day ``datetime`` can hold in UTC.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DURATION_RE = re.compile(r"(\d+(\.\d+)?\s*[a-z]+)+")


def parse_time(text: str, *, now: datetime, end: bool = False) -> datetime:
    """A UTC time from a date, an ISO datetime, ``now``/``today``/``yesterday`` or a
    duration ago (``7d``, ``12h``, ``30m``, ``2w``, ``1d12h``).

    With ``end`` (for an upper bound) a bare date or day means the end of that day, so
    ``--until 2022-01-06`` includes the 6th. The time must fall within 1970..9999 (UTC).
    Raises ``QueryError``.
    """
    value = text.strip().lower() if isinstance(text, str) else ""
    now = as_utc(now)
    if not value:
        raise QueryError("time: empty value" + _TIME_HINT)
    if len(value) > MAX_TIME_LENGTH:
        raise QueryError(f"time: too long ({len(value)} characters, at most {MAX_TIME_LENGTH})" + _TIME_HINT)
    return _within_range(text, _parse_time(text, value, now, end))


def _parse_time(text: str, value: str, now: datetime, end: bool) -> datetime:
    day = _named_day(value, now)
    if day is None and _DATE_RE.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise QueryError(f"time: {text!r} is not a valid date" + _TIME_HINT) from None
    if day is not None:
        start = datetime.combine(day, time.min, tzinfo=UTC)
        return start + timedelta(days=1, microseconds=-1) if end else start
    if value == "now":
        return now
    if _DURATION_RE.fullmatch(value):
        return _time_ago(text, value, now)
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise QueryError(f"time: {text!r} is not a time" + _TIME_HINT) from None
    try:
        return as_utc(moment)
    except OverflowError:
        # 0001-01-01T00:00:00+05:00 is a valid time whose UTC is before year 1.
        raise QueryError(f"time: {text!r} is out of range: {_RANGE}") from None


_RANGE = "times from 1970-01-01 to 9999-12-31 (UTC) can be searched"


def _within_range(text: str, moment: datetime) -> datetime:
    if not EARLIEST <= moment <= LATEST:
        raise QueryError(f"time: {text.strip()!r} is out of range: {_RANGE}")
    return moment


_TIME_HINT = " (use a date like 2022-01-06, an ISO time like 2022-01-06T10:00:00Z, or a duration ago like 7d or 12h)"


def _named_day(value: str, now: datetime) -> date | None:
    if value == "today":
        return now.date()
    if value == "yesterday":
        return now.date() - timedelta(days=1)
    return None


def _time_ago(text: str, value: str, now: datetime) -> datetime:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        if MAX_DURATION_TEXT in str(exc):
            raise QueryError(f"time: {text.strip()!r} is more than {MAX_DURATION_TEXT} ago" + _TIME_HINT) from None
        raise QueryError(f"time: {text!r} is not a duration" + _TIME_HINT) from None
    try:
        return now - timedelta(seconds=seconds)
    except OverflowError:
        raise QueryError(f"time: {text.strip()!r} ago is out of range: {_RANGE}") from None


__all__ = ["EARLIEST", "LATEST", "MAX_TIME_LENGTH", "parse_time"]
