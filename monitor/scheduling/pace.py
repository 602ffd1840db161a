"""Adaptive polling: each feed asked about as often as it publishes.

A feed's *pace* is the time between two of its entries, the median of the last
``KEPT`` gaps (``gap``: robust to the night's pause of a feed that publishes by day, which
a moving average would take for a slowdown), and the date of the newest entry seen
(``last_entry``). Each successful poll feeds it the entries that were new:

- their own dates, where the feed gives them and they are after the newest entry seen
  (a date in the future counts as now; one before the newest seen, or none, counts as
  the middle of the time since the previous poll, when the entry must have appeared);
- on the first poll, the whole history the feed lists seeds the average.

The interval is ``FRACTION`` of the gap expected next, the larger of the average gap
and the time since the newest entry (a feed quiet for longer than usual has slowed
down), clamped to ``[poll.min_interval, poll.max_interval]``: a busy feed is asked
often, a daily blog a few times a day, a dormant feed drifts to the maximum and comes
back as soon as it publishes again. A feed's explicit ``interval`` is never adapted;
nor is a feed without any history yet (``poll.interval``). Server hints (Retry-After,
Cache-Control max-age) still come on top (``backoff``).

Pure: the clock comes in as an argument, so tests and the simulation benchmark
(``tests/bench/bench_adaptive.py``) run it on simulated time.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.config import PollSettings

# Gaps kept per feed: a change of pace shows within half as many entries.
KEPT = 9
# The interval as a share of the expected gap: about four polls per entry, so the delay
# from publication to storage stays a small part of the feed's own rhythm (an hourly
# feed is asked every quarter of an hour, as with a fixed 15m; a daily one every 3h).
FRACTION = 0.25


@dataclass(frozen=True)
class Pace:
    gaps: tuple[float, ...] = ()  # seconds between two entries, the latest last
    last_entry: datetime | None = None  # the newest entry seen (its date, or when it appeared)

    @property
    def gap(self) -> float | None:
        """The usual time between two entries: the median of the gaps kept."""
        return statistics.median(self.gaps) if self.gaps else None


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
        return pace if pace.last_entry is not None else Pace(gaps=pace.gaps, last_entry=now)
    # A gap past what the longest interval stands for says only "long": counted at that,
    # a feed back from months of silence is not taken for one publishing every month.
    longest = poll.max_interval / FRACTION
    # Where a date cannot be trusted, the entry appeared since the previous poll.
    appeared = now - (now - previous_poll) / 2 if previous_poll is not None and previous_poll < now else now
    arrivals = sorted(_arrival(date, pace.last_entry, now, appeared) for date in new_dates)
    gaps, last = list(pace.gaps), pace.last_entry
    for arrival in arrivals:
        if last is not None:
            gaps.append(round(min(max((arrival - last).total_seconds(), 0.0), longest), 1))
        last = arrival if last is None else max(last, arrival)
    return Pace(gaps=tuple(gaps[-KEPT:]), last_entry=last)


def _arrival(date: datetime | None, last_entry: datetime | None, now: datetime, appeared: datetime) -> datetime:
    if date is None:
        return appeared
    if last_entry is not None and date <= last_entry:
        return appeared  # backdated, or a date the feed only now lists
    return min(date, now)


def interval(pace: Pace, *, now: datetime, poll: PollSettings) -> float:
    """Seconds until the next poll of a feed at ``pace`` (its own interval aside).

    A ``poll.interval`` shorter than ``poll.min_interval`` lowers the bound to it: who
    asked for every feed every five minutes gets the busy ones as often.
    """
    lowest = min(poll.min_interval, poll.interval)
    if pace.gap is None and pace.last_entry is None:
        return min(poll.interval, poll.max_interval)
    quiet = (now - pace.last_entry).total_seconds() if pace.last_entry is not None else 0.0
    expected = max(pace.gap or 0.0, quiet)
    return min(max(FRACTION * expected, lowest), poll.max_interval)


__all__ = ["FRACTION", "KEPT", "Pace", "interval", "observe"]
