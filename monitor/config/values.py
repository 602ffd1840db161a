"""What every part of the settings is made of: durations ("15m", "6h") and strict models."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
)

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Longer than any interval, timeout or time filter means anything; past it a duration
# overflows the date arithmetic it feeds (``now - timedelta``) or never comes round.
MAX_DURATION = 100 * 365.25 * 86400
MAX_DURATION_TEXT = "100 years"


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90"``, ``"20s"``, ``"15m"``, ``"1h30m"`` or ``"2d"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION_RE.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"{value!r} is not a duration such as 30s, 15m or 1h")
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        raise ValueError("expected a duration such as 30s, 15m or 1h")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is longer than the longest duration allowed ({MAX_DURATION_TEXT})")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def http_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host; ValueError otherwise."""
    if not re.match(r"^https?://[^/\s]+", url, re.IGNORECASE):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url
