"""A bar chart of daily counts, as numbers for an SVG template (``_chart.html``).

Drawn on the server, no script: a bar per day, a y axis from zero to a round maximum
with three labelled ticks, and dates under the first, middle and last bars. Geometry
only, in the SVG's own units (``WIDTH`` x ``HEIGHT``); the page scales it to its width.
Each bar links to the search for its entity and day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

from monitor.api.mention_stats import EntitySeries

WIDTH = 480
HEIGHT = 170
LEFT = 36  # room for the y labels
RIGHT = 8
TOP = 12
BOTTOM = 28  # room for the dates


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # "2022-01-06: 3 articles"
    href: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class Chart:
    entity: str
    total: int
    peak: int
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM
    top: int = TOP


def round_up(value: int) -> int:
    """The smallest of 1, 2, 5 × 10^n at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    power = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power  # pragma: no cover - the loop ends at 10 × power


def _plural(count: int) -> str:
    return f"{count:,} article{'s' if count != 1 else ''}"


def bar_chart(series: EntitySeries) -> Chart:
    counts = series.counts
    days = max(len(counts), 1)
    peak = max((c.count for c in counts), default=0)
    top = round_up(peak)
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT - RIGHT) / days
    gap = min(slot * 0.2, 2.0)
    bars = []
    for n, day in enumerate(counts):
        height = plot_height * day.count / top
        query = urlencode({"entity": series.entity, "since": day.date.isoformat(), "until": day.date.isoformat()})
        bars.append(
            Bar(
                x=round(LEFT + n * slot + gap / 2, 2),
                y=round(HEIGHT - BOTTOM - height, 2),
                width=round(max(slot - gap, 0.5), 2),
                height=round(height, 2),
                label=f"{day.date.isoformat()}: {_plural(day.count)}",
                href="/?" + query,
            )
        )
    y_ticks = [Tick(round(HEIGHT - BOTTOM - plot_height * v / top, 2), f"{v:,}") for v in (0, top // 2, top)]
    if top == 1:
        y_ticks = [y_ticks[0], y_ticks[2]]
    shown = sorted({0, (len(counts) - 1) // 2, len(counts) - 1}) if counts else []
    x_ticks = [Tick(round(LEFT + (n + 0.5) * slot, 2), counts[n].date.strftime("%b %-d")) for n in shown]
    return Chart(entity=series.entity, total=series.total, peak=peak, bars=bars, y_ticks=y_ticks, x_ticks=x_ticks)


__all__ = ["Bar", "Chart", "Tick", "bar_chart", "round_up"]
