"""Adaptive polling: each feed asked about as often as it publishes, in the hours it does.

A feed's *pace* is what its entries have shown:

- ``gap``: the usual time between two of its entries, the median of the last ``KEPT``
  gaps (robust to the night's pause of a feed that publishes by day, which a moving
  average would take for a slowdown);
- ``last_entry``: the date of the newest entry seen;
- ``hours``: when it publishes, by hour of the day in UTC: how many clock hours of each
  it published in, fading with a half-life of ``HALF_LIFE`` so that a new timetable
  shows within a week or two. Its *usual hours* are those it published in at least
  ``USUAL`` as often as in its busiest; while nothing is known, every hour is one.

Each successful poll feeds it the entries that were new: their own dates, where the
feed gives them and they are after the newest entry seen (a date in the future counts as
now; one before the newest seen, or none, counts as the middle of the time since the
previous poll, when the entry must have appeared); on the first poll, the whole history
the feed lists seeds it.

The interval is ``FRACTION`` of the gap expected next, clamped to
``[poll.min_interval, poll.max_interval]``. What is expected depends on the hour:

- in one of the feed's usual hours, its usual gap; or, once its silence *in its usual
  hours* is more than twice that, the part of the silence past one usual gap (it has
  slowed down, or stopped). The night's pause of a feed that publishes by day is no
  silence, so at 8:10 after a quiet night it is asked at its day pace again, not a
  quarter of the night later; nor is one story missed by an hourly feed a slowdown;
- outside them, the larger of the usual gap and all the time since its newest entry:
  the feed is asked less and less through its quiet hours, but never later than the
  start of its next usual hour, when publishing resumes.

A busy feed is asked often, a daily blog a few times a day, a dormant feed drifts to
the maximum and comes back as soon as it publishes again. A feed's explicit
``interval`` is never adapted; nor is a feed without any history yet
(``poll.interval``). Server hints (Retry-After, Cache-Control max-age) still come on top
(``backoff``).

Pure: the clock comes in as an argument, so tests and the simulation benchmark
(``tests/bench/bench_adaptive.py``) run it on simulated time.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.config import PollSettings
from monitor.times import as_utc

# Gaps kept per feed: a change of pace shows within half as many entries.
KEPT = 9
# The interval as a share of the expected gap: about four polls per entry, so the delay
# from publication to storage stays a small part of the feed's own rhythm (an hourly
# feed is asked every quarter of an hour, as with a fixed 15m; a daily one every 3h).
FRACTION = 0.25
# How fast the publishing hours forget: after a week, an hour's count weighs half. Long
# enough to see through a quiet weekend, short enough to follow a new timetable (or a
# clock change, the hours being in UTC).
HALF_LIFE = 7 * 86400.0
# An hour is one of the feed's usual hours when the feed published in it at least a
# quarter as often as in its busiest: a day publisher's working day, not the odd story
# at night. An hour seen once is usual until the busiest has been seen four times, so a
# feed's first days do not take the hours its short history missed for quiet ones.
USUAL = 0.25

_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_EVERY_HOUR = frozenset(range(24))


@dataclass(frozen=True)
class Pace:
    gaps: tuple[float, ...] = ()  # seconds between two entries, the latest last
    last_entry: datetime | None = None  # the newest entry seen (its date, or when it appeared)
    hours: tuple[float, ...] = ()  # by hour of the day (UTC): clock hours it published in, faded; () unknown

    @property
    def gap(self) -> float | None:
        """The usual time between two entries: the median of the gaps kept."""
        return statistics.median(self.gaps) if self.gaps else None

    @property
    def usual_hours(self) -> frozenset[int]:
        """The hours of the day (UTC) in which the feed usually publishes; all, while unknown."""
        busiest = max(self.hours, default=0.0)
        if busiest <= 0:
            return _EVERY_HOUR
        return frozenset(hour for hour, count in enumerate(self.hours) if count >= USUAL * busiest)


def observe(
    pace: Pace,
    new_dates: Sequence[datetime | None],
    *,
    now: datetime,
    previous_poll: datetime | None,
    poll: PollSettings,
) -> Pace:
    """The pace after a poll that found entries dated ``new_dates`` (None: undated) new.

    A feed that has never listed an entry counts its silence from its first poll, so
    that it drifts to ``poll.max_interval`` as a dormant one does.
    """
    if not new_dates:
        return pace if pace.last_entry is not None else Pace(gaps=pace.gaps, last_entry=now, hours=pace.hours)
    # A gap past what the longest interval stands for says only "long": counted at that,
    # a feed back from months of silence is not taken for one publishing every month.
    longest = poll.max_interval / FRACTION
    # Where a date cannot be trusted, the entry appeared since the previous poll.
    appeared = now - (now - previous_poll) / 2 if previous_poll is not None and previous_poll < now else now
    arrivals = sorted(as_utc(_arrival(date, pace.last_entry, now, appeared)) for date in new_dates)
    gaps, last, hours = list(pace.gaps), pace.last_entry, list(pace.hours) or [0.0] * 24
    for arrival in arrivals:
        if last is not None:
            gaps.append(round(min(max((arrival - last).total_seconds(), 0.0), longest), 1))
        hours = _count_hour(hours, arrival, last)
        last = arrival if last is None else max(last, arrival)
    return Pace(gaps=tuple(gaps[-KEPT:]), last_entry=last, hours=tuple(round(count, 3) for count in hours))


def _arrival(date: datetime | None, last_entry: datetime | None, now: datetime, appeared: datetime) -> datetime:
    if date is None:
        return appeared
    if last_entry is not None and date <= last_entry:
        return appeared  # backdated, or a date the feed only now lists
    return min(date, now)


def _count_hour(hours: list[float], arrival: datetime, last: datetime | None) -> list[float]:
    """``hours`` after an entry at ``arrival``: its clock hour counted once, however many entries it holds.

    Counting clock hours rather than entries, a press office's burst of eight releases
    weighs as much as one story: the hours say *when* the feed publishes, the gaps how much.
    """
    if last is not None and _clock_hour(arrival) <= _clock_hour(last):
        return hours
    # Faded from clock hour to clock hour, so the fading adds up to the time that passed.
    elapsed = (_clock_hour(arrival) - _clock_hour(last)).total_seconds() if last is not None else 0.0
    fade = 0.5 ** (elapsed / HALF_LIFE)
    faded = [count * fade for count in hours]
    faded[arrival.hour] += 1.0
    return faded


def _clock_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def interval(pace: Pace, *, now: datetime, poll: PollSettings) -> float:
    """Seconds until the next poll of a feed at ``pace`` (its own interval aside).

    A ``poll.interval`` shorter than ``poll.min_interval`` lowers the bound to it: who
    asked for every feed every five minutes gets the busy ones as often.
    """
    lowest = min(poll.min_interval, poll.interval)
    if pace.gap is None and pace.last_entry is None:
        return min(poll.interval, poll.max_interval)
    now, gap, usual = as_utc(now), pace.gap or 0.0, pace.usual_hours
    since = as_utc(pace.last_entry) if pace.last_entry is not None else now
    if now.hour in usual:
        # Only a feed overdue by a whole gap in the hours it publishes in has slowed down.
        wait = FRACTION * max(gap, _silence_in(usual, since, now) - gap)
    else:
        # Its quiet hours: less and less often, but back when its usual hours begin.
        wait = FRACTION * max(gap, (now - since).total_seconds())
        wait = min(wait, _until_usual(now, usual))
    return min(max(wait, lowest), poll.max_interval)


def _silence_in(hours: frozenset[int], since: datetime, now: datetime) -> float:
    """Seconds from ``since`` to ``now`` that fall in ``hours`` of the day."""
    if since >= now:
        return 0.0
    days = (now - since) // _DAY
    seconds = days * len(hours) * 3600.0
    moment = since + days * _DAY
    while moment < now:  # less than a day left: at most 25 clock hours
        end = min(_clock_hour(moment) + _HOUR, now)
        if moment.hour in hours:
            seconds += (end - moment).total_seconds()
        moment = end
    return seconds


def _until_usual(now: datetime, usual: frozenset[int]) -> float:
    """Seconds from ``now`` to the start of the next of the ``usual`` hours."""
    start = _clock_hour(now)
    ahead = next(hours for hours in range(1, 25) if (start + hours * _HOUR).hour in usual)
    return (start + ahead * _HOUR - now).total_seconds()


__all__ = ["FRACTION", "HALF_LIFE", "KEPT", "USUAL", "Pace", "interval", "observe"]
