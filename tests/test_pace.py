"""The adaptive interval's estimator (``monitor.scheduling.pace``), on simulated time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.config import PollSettings
from monitor.scheduling.pace import FRACTION, HALF_LIFE, Pace, interval, observe

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


# ------------------------------------------------------------------- publishing hours


def working_days(days: int) -> Pace:
    """A feed that publishes on the hour from 8:00 to 18:00 UTC, seen through ``days`` days."""
    history = [START + timedelta(days=day, hours=hour) for day in range(days) for hour in range(8, 19)]
    return observe(Pace(), history, now=history[-1], previous_poll=None, poll=POLL)


def day_at(day: int, hour: int, minute: int = 0) -> datetime:
    return START + timedelta(days=day, hours=hour, minutes=minute)


def test_a_day_publisher_learns_its_working_hours() -> None:
    pace = working_days(3)
    assert pace.usual_hours == frozenset(range(8, 19))
    assert pace.gap == HOUR


def test_after_a_quiet_night_a_day_publisher_is_asked_at_its_day_pace() -> None:
    pace = working_days(3)  # the newest entry: day 2 at 18:00
    # The night is no silence: at 8:10 it is asked every quarter of an hour, as by day
    # (counting the night, it would wait a quarter of 14 hours: 3.5 hours).
    assert interval(pace, now=day_at(3, 8, 10), poll=POLL) == FRACTION * HOUR


def test_a_day_publisher_backs_off_in_its_quiet_hours_until_its_morning() -> None:
    pace = working_days(3)
    assert interval(pace, now=day_at(2, 23), poll=POLL) == FRACTION * 5 * HOUR  # 5 hours quiet
    # At 6:00 a quarter of its silence would be three hours: it is back for 8:00.
    assert interval(pace, now=day_at(3, 6), poll=POLL) == 2 * HOUR
    assert interval(pace, now=day_at(3, 7, 55), poll=POLL) == POLL.min_interval


def test_a_missed_story_is_no_slowdown_but_a_silent_working_day_is() -> None:
    pace = observe(
        working_days(3), [day_at(3, hour) for hour in range(8, 11)], now=day_at(3, 10), previous_poll=None, poll=POLL
    )
    # Nothing at 11:00: still its day pace at 11:50.
    assert interval(pace, now=day_at(3, 11, 50), poll=POLL) == FRACTION * HOUR
    # Nothing since: the longer its silence in its working hours, the less it is asked.
    silent = [interval(pace, now=day_at(day, 17), poll=POLL) for day in (3, 4, 5, 6)]
    assert silent[0] > FRACTION * HOUR and silent == sorted(silent) and silent[-1] == POLL.max_interval


def test_the_hours_count_clock_hours_not_entries_and_fade_by_the_week() -> None:
    burst = [day_at(0, 9, minute) for minute in range(8)]  # eight press releases from 9:00 to 9:07
    pace = observe(Pace(), burst, now=day_at(0, 10), previous_poll=None, poll=POLL)
    assert pace.hours[9] == 1.0 and sum(pace.hours) == 1.0
    a_week_later = START + timedelta(seconds=HALF_LIFE, hours=9)
    later = observe(pace, [a_week_later], now=a_week_later, previous_poll=day_at(0, 10), poll=POLL)
    assert later.hours[9] == 1.5  # half of the first, and the new one


def test_the_hours_are_hours_of_the_day_in_utc() -> None:
    moscow = timezone(timedelta(hours=3))
    pace = observe(
        Pace(), [datetime(2024, 3, 1, 9, 30, tzinfo=moscow)], now=day_at(1, 0), previous_poll=None, poll=POLL
    )
    assert pace.usual_hours == {6}


def test_a_pace_without_hours_counts_every_hour_as_usual() -> None:
    # As stored before the hours were kept: every silence counts, the night's too.
    pace = Pace(gaps=(HOUR,), last_entry=day_at(2, 18))
    assert pace.usual_hours == frozenset(range(24))
    assert interval(pace, now=day_at(3, 8, 10), poll=POLL) == pytest.approx(FRACTION * (14 * HOUR + 10 * MINUTE - HOUR))


def test_bounds_are_checked_at_load() -> None:
    with pytest.raises(ValueError, match="min_interval is longer than max_interval"):
        PollSettings.model_validate({"min_interval": "2h", "max_interval": "1h"})
