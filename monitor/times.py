"""Time as the monitor stores and shows it: aware UTC, written ``2022-01-06T10:00:00Z``."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one (as SQLite gives back) is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """``2022-01-06T10:00:00Z``: UTC, whole seconds."""
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso(moment: datetime | None) -> str | None:
    """``iso_utc`` of a moment that may be missing."""
    return None if moment is None else iso_utc(moment)


def shown_time(moment: datetime, zone: tzinfo = UTC) -> str:
    """For people: ``2022-01-06 10:00 UTC``, or in ``zone`` with its name (``… 16:00 UTC+06``, ``… 11:00 CET``).

    Never a bare local time: the zone is always written.
    """
    local = as_utc(moment).astimezone(zone)
    label = local.tzname() or "UTC"
    if label[0] in "+-":  # zones without an abbreviation (Asia/Almaty: "+05")
        label = "UTC" + label
    return local.strftime("%Y-%m-%d %H:%M ") + label


__all__ = ["as_utc", "iso", "iso_utc", "shown_time", "utcnow"]
