"""Retry-After and Cache-Control, read with one policy for feeds and webhooks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.headers import MAX_SERVER_WAIT, parse_max_age, parse_retry_after

NOW = datetime(2022, 1, 5, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 120 ", 120.0),
        ("Wed, 05 Jan 2022 10:02:00 GMT", 120.0),
        ("Wed, 05 Jan 2022 09:00:00 GMT", 0.0),  # a date in the past: now
        ("soon", None),
        ("", None),
        (None, None),
        ("-5", None),
        ("99999999", MAX_SERVER_WAIT),
        ("999999999999999999999999", MAX_SERVER_WAIT),
        ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_SERVER_WAIT),
    ],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=60", 60.0),
        ("public, max-age=3600, must-revalidate", 3600.0),
        ('max-age="90"', 90.0),
        ("MAX-AGE=30", 30.0),
        ("no-cache", None),
        ("s-maxage=10", None),
        ("max-age=soon", None),
        (None, None),
        ("max-age=315360000", MAX_SERVER_WAIT),  # ten years: a mistake, not a wish
        ("max-age=999999999999999999999", MAX_SERVER_WAIT),
    ],
)
def test_max_age(header: str | None, expected: float | None) -> None:
    assert parse_max_age(header) == expected
