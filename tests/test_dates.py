"""Entry dates: RFC 3339 for JSON Feed, and feedparser's date parsers for everything else.

``text_to_utc`` hands what is not RFC 3339 to feedparser's internal date parser, which
feedparser does not publish; these fail when a feedparser release removes it or reads
the real-world dates below differently from how they have been read so far.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import feedparser
import pytest

from monitor.pipeline.dates import EARLIEST, struct_to_utc, text_to_utc


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# What each has always been read as (feedparser's quirks included: a named zone is
# believed, a date alone is midnight UTC, a year alone is 1 January).
NOT_RFC_3339 = [
    ("Tue, 10 Jun 2003 04:00:00 GMT", utc(2003, 6, 10, 4, 0)),
    ("Tue, 10 Jun 2003 04:00:00 +0200", utc(2003, 6, 10, 2, 0)),
    ("Tue, 10 Jun 2003 04:00:00 +02:00", utc(2003, 6, 10, 2, 0)),
    ("Tue, 10 Jun 2003 04:00:00 GMT+0200", utc(2003, 6, 10, 2, 0)),
    ("10 Jun 2003 04:00:00 -0500", utc(2003, 6, 10, 9, 0)),
    ("Tue, 10 Jun 2003 04:00:00 EST", utc(2003, 6, 10, 9, 0)),
    ("Tue, 10 Jun 2003 04:00:00 PDT", utc(2003, 6, 10, 11, 0)),
    ("Tue, 10 Jun 2003 04:00:00 UT", utc(2003, 6, 10, 4, 0)),
    ("Tue, 10 Jun 2003 04:00 GMT", utc(2003, 6, 10, 4, 0)),
    ("Tue, 10 Jun 03 04:00:00 GMT", utc(2003, 6, 10, 4, 0)),
    ("Tuesday, 10 Jun 2003 04:00:00 GMT", utc(2003, 6, 10, 4, 0)),
    ("Tue, 10 June 2003 04:00:00 GMT", utc(2003, 6, 10, 4, 0)),
    ("Tue, 10 Jun 2003", utc(2003, 6, 10)),
    ("Tue, 02 Jan 2024 10:00:00 +0000 (UTC)", utc(2024, 1, 2, 10, 0)),
    ("8 July 2004", utc(2004, 7, 8)),
    ("Fri, 2006/09/15 08:19:53 EDT", utc(2006, 9, 15, 12, 19, 53)),
    ("Sun Jan  4 16:29:06 PST 2004", utc(2004, 1, 5, 0, 29, 6)),
    ("Sun Jan 4 16:29:06 2004", utc(2004, 1, 4, 16, 29, 6)),
    ("2003-12-31t10:14:55z", utc(2003, 12, 31, 10, 14, 55)),
    ("2004-07-08 23:56:58.0 +0900", utc(2004, 7, 8, 14, 56, 58)),
    ("2003-12", utc(2003, 12, 1)),
    ("2003", utc(2003, 1, 1)),
    ("Κυρ, 11 Ιούλ 2004 12:00:00 EST", utc(2004, 7, 11, 17, 0)),
    ("Thu, 01 Jan 1970 00:00:00 GMT", None),  # a placeholder
    ("Mon, 31 Feb 2003 04:00:00 GMT", None),
    ("July 8, 2004", None),
    ("yesterday", None),
    ("not a date", None),
]

RFC_3339 = [
    ("2003-12-31T10:14:55Z", utc(2003, 12, 31, 10, 14, 55)),
    ("2024-01-02T10:00:00+05:30", utc(2024, 1, 2, 4, 30)),
    ("2024-01-02T10:00:00-08", utc(2024, 1, 2, 18, 0)),
    ("2003-12-31T10:14:55+0100", utc(2003, 12, 31, 9, 14, 55)),
    ("2003-12-31T10:14:55.123456789Z", utc(2003, 12, 31, 10, 14, 55, 123456)),
    ("2003-12-31T10:14Z", utc(2003, 12, 31, 10, 14)),
    (" 2003-12-31T10:14:55Z ", utc(2003, 12, 31, 10, 14, 55)),
    ("2003-12-31 10:14:55", utc(2003, 12, 31, 10, 14, 55)),  # no offset: taken as UTC
    ("2003-12-31", utc(2003, 12, 31)),
    ("20031231", utc(2003, 12, 31)),
    ("0001-01-01T00:00:00Z", None),  # a placeholder
    ("0001-01-01T00:00:00+05:00", None),  # before the first datetime in UTC
    ("9999-12-31T23:00:00-05:00", None),  # after the last one
    ("", None),
    (None, None),
]


def test_feedparser_still_has_the_date_parser_we_call() -> None:
    parse_date = getattr(getattr(feedparser, "datetimes", None), "_parse_date", None)
    assert callable(parse_date), "feedparser.datetimes._parse_date is gone: monitor/pipeline/dates.py needs another way"
    assert parse_date("Tue, 10 Jun 2003 04:00:00 GMT") == time.struct_time((2003, 6, 10, 4, 0, 0, 1, 161, 0))
    assert parse_date("no date") is None


@pytest.mark.parametrize(("text", "expected"), NOT_RFC_3339, ids=[t for t, _ in NOT_RFC_3339])
def test_dates_feedparser_reads_are_read_as_before(text: str, expected: datetime | None) -> None:
    assert text_to_utc(text) == expected


@pytest.mark.parametrize(("text", "expected"), RFC_3339, ids=[str(t) for t, _ in RFC_3339])
def test_rfc_3339_dates(text: str | None, expected: datetime | None) -> None:
    moment = text_to_utc(text)
    assert moment == expected
    assert moment is None or moment.tzinfo == UTC


def test_feedparser_struct_times_become_utc_datetimes_after_the_placeholders() -> None:
    assert struct_to_utc(time.gmtime(1_700_000_000)) == datetime.fromtimestamp(1_700_000_000, UTC)
    assert struct_to_utc(EARLIEST.timetuple()) == EARLIEST
    assert struct_to_utc(time.gmtime(0)) is None
    assert struct_to_utc(None) is None
    assert struct_to_utc(("not", "a", "date")) is None
