"""Cache and back-off hints in HTTP headers, read with one policy for feeds and webhooks.

A server may ask us to wait (``Retry-After``, on 429 and 503) or tell us how long its
answer stays fresh (``Cache-Control: max-age``). Both are honoured, within bounds: a
news monitor never waits longer than ``MAX_SERVER_WAIT`` on a server's word, so a
mistaken or hostile header (``max-age=315360000``) cannot silence a feed for years.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime

from monitor.times import as_utc, utcnow

# The longest wait a server's header can impose, in seconds.
MAX_SERVER_WAIT = 86400.0

_MAX_AGE = re.compile(r'max-age\s*=\s*"?(\d+)"?')


def _bounded(seconds: float) -> float:
    return min(max(seconds, 0.0), MAX_SERVER_WAIT)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return _bounded(float(value[:12]))  # a longer number is past any bound anyway
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _bounded((as_utc(when) - (now or utcnow())).total_seconds())


def parse_max_age(cache_control: str | None) -> float | None:
    """Seconds of freshness from ``Cache-Control: max-age``, None when it gives none."""
    if not cache_control:
        return None
    for directive in cache_control.split(","):
        match = _MAX_AGE.fullmatch(directive.strip().lower())
        if match:
            return _bounded(float(match.group(1)[:12]))
    return None


__all__ = ["MAX_SERVER_WAIT", "parse_max_age", "parse_retry_after"]
