"""When a feed is polled next: its interval after a success, a back-off after a failure.

The interval is the feed's own, or the adaptive one of ``pace`` (the caller's choice).

A failing feed waits ``interval × 2^(failures−1)``, with jitter, at most
``poll.max_backoff``, and never less than its server asked for (``Retry-After``,
``Cache-Control: max-age``, kept as ``not_before``, which ``monitor poll`` respects too).
The first success resets it. Pure: the clock and the randomness come in as arguments.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from monitor.config import PollSettings
from monitor.headers import MAX_SERVER_WAIT
from monitor.pipeline.refresh import RefreshOutcome


def plan_next(
    outcome: RefreshOutcome,
    *,
    interval: float,
    error_count: int,
    poll: PollSettings,
    now: datetime,
    rng: random.Random,
) -> tuple[datetime, datetime | None]:
    """``(next_poll_at, not_before)`` after ``outcome``; ``error_count`` counts this failure."""
    if outcome.failed:
        backoff = min(poll.max_backoff, interval * 2 ** min(error_count - 1, 40))
        wait = backoff * rng.uniform(0.8, 1.0)
    else:
        wait = interval * rng.uniform(0.9, 1.1)
    server_wait = min(max(outcome.retry_after or 0.0, outcome.max_age or 0.0), MAX_SERVER_WAIT)
    not_before = now + timedelta(seconds=server_wait) if server_wait > 0 else None
    next_poll_at = now + timedelta(seconds=max(wait, server_wait))
    return next_poll_at, not_before


__all__ = ["plan_next"]
