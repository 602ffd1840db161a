"""The adaptive interval's estimator (``monitor.scheduling.pace``), on simulated time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import PollSettings
from monitor.scheduling.pace import FRACTION, Pace, interval, observe

POLL = PollSettings.model_validate({"interval": "15m", "min_interval": "5m", "max_interval": "6h"})
START = datetime(2024, 3, 1, tzinfo=UTC)
MINUTE, HOUR = 60.0, 3600.0


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def run(publish_every: float, polls: int) -> tuple[Pace, float, datetime]:
    """Poll a feed publishing every ``publish_every`` minutes at its adaptive interval."""
    pace, now, previous = Pace(), at(0), None
    published = 0.0
    every = interval(pace, now=now, poll=POLL)
    for _ in range(polls):
        new = []
        while published + publish_every <= (now - START).total_seconds() / 60:
            published += publish_every
            new.append(at(published))
        pace = observe(pace, new, now=now, previous_poll=previous, poll=POLL)
        every = interval(pace, now=now, poll=POLL)
        previous, now = now, now + timedelta(seconds=every)
    return pace, every, now


def test_a_feed_with_no_history_is_polled_at_the_default_interval() -> None:
    assert interval(Pace(), now=START, poll=POLL) == 15 * MINUTE


def test_the_first_poll_learns_the_gap_from_the_history_the_feed_lists() -> None:
    history = [at(-60 * n) for n in range(20)]  # hourly, newest first
    pace = observe(Pace(), history, now=at(1), previous_poll=None, poll=POLL)
    assert pace.gap == pytest.approx(HOUR)
    assert pace.last_entry == at(0)
    assert interval(pace, now=at(1), poll=POLL) == pytest.approx(FRACTION * HOUR)


def test_a_nightly_pause_is_not_taken_for_a_slowdown() -> None:
    hourly_by_day = [at(60 * h) for h in (*range(8, 20), *range(24 + 8, 24 + 11))]  # 20:00 to 8:00 quiet
    pace = observe(Pace(), hourly_by_day, now=at(60 * 35), previous_poll=None, poll=POLL)
    assert pace.gap == HOUR
    assert interval(pace, now=at(60 * 35), poll=POLL) == 15 * MINUTE


@pytest.mark.parametrize(
    ("every_minutes", "expected"),
    [(2, 5 * MINUTE), (40, 10 * MINUTE), (60, 15 * MINUTE), (24 * 60, 6 * HOUR)],
)
def test_the_interval_follows_the_publishing_rate_within_the_bounds(every_minutes: float, expected: float) -> None:
    pace, every, _now = run(every_minutes, polls=200)
    # Gaps longer than the longest interval stands for count as that long.
    assert pace.gap == pytest.approx(min(every_minutes * MINUTE, POLL.max_interval / FRACTION), rel=0.35)
    assert every == pytest.approx(expected, rel=0.35)
    assert POLL.min_interval <= every <= POLL.max_interval


def test_a_dormant_feed_drifts_to_the_maximum_and_comes_back_when_it_publishes() -> None:
    pace = observe(Pace(), [at(-20), at(-10), at(0)], now=at(0), previous_poll=None, poll=POLL)
    assert interval(pace, now=at(1), poll=POLL) == POLL.min_interval
    quiet = [interval(pace, now=at(minutes), poll=POLL) for minutes in (60, 240, 720, 5000)]
    assert quiet == sorted(quiet) and quiet[-1] == POLL.max_interval
    woke = observe(pace, [at(4999), at(4998), at(4997)], now=at(5000), previous_poll=at(4640), poll=POLL)
    assert interval(woke, now=at(5000), poll=POLL) < POLL.max_interval


def test_undated_and_backdated_entries_count_from_when_they_appeared() -> None:
    pace = Pace(gaps=(HOUR,), last_entry=at(0))
    # Polls at 60 and 120 minutes; an undated entry and one dated before the newest seen.
    after = observe(pace, [None, at(-500)], now=at(120), previous_poll=at(60), poll=POLL)
    assert after.last_entry == at(90)
    assert after.gaps == (HOUR, 90 * MINUTE, 0.0)  # both seen appearing at 90 minutes


def test_a_date_in_the_future_counts_as_now() -> None:
    pace = observe(Pace(gaps=(HOUR,), last_entry=at(0)), [at(10_000)], now=at(60), previous_poll=at(30), poll=POLL)
    assert pace.last_entry == at(60)


def test_a_feed_that_never_listed_an_entry_drifts_to_the_maximum() -> None:
    pace = observe(Pace(), [], now=at(0), previous_poll=None, poll=POLL)
    assert pace == Pace(last_entry=at(0))
    later = [
        interval(observe(pace, [], now=at(m), previous_poll=at(0), poll=POLL), now=at(m), poll=POLL)
        for m in (10, 200, 2000)
    ]
    assert later == sorted(later) and later[-1] == POLL.max_interval


def test_nothing_new_leaves_the_pace_alone() -> None:
    pace = Pace(gaps=(HOUR,), last_entry=at(0))
    assert observe(pace, [], now=at(30), previous_poll=at(0), poll=POLL) == pace


def test_a_shorter_poll_interval_lowers_the_bound() -> None:
    quick = PollSettings.model_validate({"interval": "2m", "min_interval": "10m", "max_interval": "6h"})
    assert interval(Pace(), now=START, poll=quick) == 2 * MINUTE
    busy = Pace(gaps=(MINUTE,), last_entry=START)
    assert interval(busy, now=START, poll=quick) == 2 * MINUTE
    assert interval(busy, now=START, poll=POLL) == 5 * MINUTE


def test_bounds_are_checked_at_load() -> None:
    with pytest.raises(ValueError, match="min_interval is longer than max_interval"):
        PollSettings.model_validate({"min_interval": "2h", "max_interval": "1h"})
