"""What polling tells its user: a line per feed polled, a summary per cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.outcomes import PollStatus
from monitor.pipeline.refresh import PollCounts, RefreshOutcome
from monitor.times import iso_utc


@dataclass
class CycleReport(PollCounts):
    """Totals of one poll cycle (``monitor poll``), and each failing feed."""

    polled: int = 0
    ok: int = 0
    not_modified: int = 0
    unchanged: int = 0
    failed: int = 0
    alerts_sent: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    elapsed: float = 0.0

    def add_outcome(self, outcome: RefreshOutcome) -> None:
        self.polled += 1
        match outcome.status:
            case PollStatus.OK:
                self.ok += 1
            case PollStatus.NOT_MODIFIED:
                self.not_modified += 1
            case PollStatus.UNCHANGED:
                self.unchanged += 1
            case PollStatus.ERROR:
                self.failed += 1
                self.errors.append(
                    {"feed": outcome.feed_name, "kind": outcome.error_kind, "message": outcome.error_message}
                )
        self.add(outcome)

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeds": {
                "polled": self.polled,
                "ok": self.ok,
                "not_modified": self.not_modified,
                "unchanged": self.unchanged,
                "failed": self.failed,
            },
            "entries_seen": self.entries_seen,
            "new_entries": self.new_entries,
            "entries_waiting": self.waiting,
            "articles": {
                "stored": self.stored,
                "duplicates": self.duplicates,
                "from_feed_content": self.fallbacks,
                "skipped": self.skipped,
            },
            "alerts": {"queued": self.alerts, "sent": self.alerts_sent},
            "errors": sorted(self.errors, key=lambda e: e["feed"]),
            "elapsed": round(self.elapsed, 3),
        }


def describe(outcome: RefreshOutcome, next_poll_at: datetime | None) -> str:
    """The one log line of a poll."""
    when = f"next poll {iso_utc(next_poll_at)}" if next_poll_at else "lease lost"
    took = f"({outcome.elapsed:.2f}s)"
    name = f"feed {outcome.feed_name!r}"
    if outcome.failed:
        wait = f", Retry-After {outcome.retry_after:.0f}s" if outcome.retry_after else ""
        return f"{name}: {outcome.error_kind}: {outcome.error_message}; {when}{wait} {took}"
    if outcome.status is not PollStatus.OK:
        return f"{name}: {outcome.status.replace('_', ' ')}; {when} {took}"
    details = f", {outcome.fallbacks} from feed content" if outcome.fallbacks else ""
    details += f", {outcome.skipped} skipped" if outcome.skipped else ""
    waiting = f", {outcome.waiting} waiting for the next poll" if outcome.waiting else ""
    return (
        f"{name}: ok, {outcome.entries_seen} entries, {outcome.new_entries} new, "
        f"{outcome.stored} stored ({outcome.duplicates} duplicates{details}){waiting}, "
        f"{outcome.alerts} alerts; {when} {took}"
    )


__all__ = ["CycleReport", "describe"]
