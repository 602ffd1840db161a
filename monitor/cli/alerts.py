"""``monitor alerts``: list the outbox, re-queue failures, test channels, deliver now."""

from __future__ import annotations

import json
import sys
from datetime import datetime, tzinfo
from typing import Any

import click

from monitor.alerts.dispatch import deliver_due, send_test
from monitor.alerts.outbox import (
    STATUSES,
    AlertView,
    channel_states,
    count_by_status,
    enable_channels,
    list_alerts,
    requeue_failed,
)
from monitor.cli import App, app_for, command, config_option, echo, main
from monitor.db import session
from monitor.errors import ConfigError, InputError
from monitor.redact import redact_text
from monitor.times import iso, shown_time

# The largest id an alert can have (its column is an INTEGER: 32 bits on PostgreSQL);
# a larger number names no alert, and in a query it is an error of the database.
MAX_INTEGER = 2**31 - 1


@main.group("alerts", invoke_without_command=True)
@config_option
@click.option(
    "--status",
    type=click.Choice([*STATUSES, "all"]),
    default="all",
    show_default=True,
    help="Only alerts with this status.",
)
@click.option("--channel", help="Only this channel (e.g. email, webhook:ops, apprise:team).")
@click.option("--limit", type=int, default=50, show_default=True, help="How many alerts to list (from 1).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: channels and alerts.")
@click.pass_context
def alerts(ctx: click.Context, status: str, channel: str | None, limit: int, as_json: bool) -> None:
    """List pending, failed and sent alerts, newest first, and each channel's state.

    \b
    Examples:
      monitor alerts                     # channels, then the latest alerts
      monitor alerts --status failed     # what did not go out, and why
      monitor alerts retry               # re-queue failures, re-enable channels
      monitor alerts test                # send a test alert to every channel
      monitor alerts deliver             # one delivery round now
    """
    if ctx.invoked_subcommand is not None:
        return
    app = app_for(ctx)
    if limit < 1:
        raise InputError(f"--limit {limit}: list at least 1 alert")
    limit = min(limit, MAX_INTEGER)  # more than there can be alerts: all of them
    statuses = STATUSES if status == "all" else (status,)
    with session(app.engine) as db:
        views = list_alerts(db, statuses=statuses, channel=channel, limit=limit)
        channels = _channels(app, db)
    if channel:
        channels = [c for c in channels if c["key"] == channel]
    if as_json:
        listed = [_redacted(v.as_dict()) for v in views]
        click.echo(json.dumps({"channels": channels, "alerts": listed}, ensure_ascii=False, indent=2))
        return
    zone = app.settings.display_zone
    _print_channels(channels, zone)
    _print_alerts(views, zone)


def _channels(app: App, db: Any) -> list[dict[str, Any]]:
    configured = [c.key for c in app.settings.alerts.channels]
    states = {s.key: s for s in channel_states(db)}
    counts = count_by_status(db)
    keys = configured + sorted(
        {k for k in states if k not in configured} | {k for k, _ in counts if k not in configured}
    )
    rows = []
    for key in keys:
        state = states.get(key)
        rows.append(
            {
                "key": key,
                "configured": key in configured,
                "disabled_at": iso(state.disabled_at) if state else None,
                "disabled_reason": state.disabled_reason if state else None,
                "last_sent_at": iso(state.last_sent_at) if state else None,
                "last_error": state.last_error if state else None,
                **{s: counts.get((key, s), 0) for s in STATUSES},
            }
        )
    return [_redacted(row) for row in rows]


def _redacted(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with the URLs of its errors redacted: errors recorded before errors were
    redacted when made may still hold a webhook's token."""
    for name in ("last_error", "disabled_reason"):
        if row.get(name):
            row[name] = redact_text(row[name])
    return row


def _shown(stamp: str, zone: tzinfo) -> str:
    """A time of a channel's row (ISO, for ``--json``) as people read it."""
    return shown_time(datetime.fromisoformat(stamp), zone)


def _print_channels(channels: list[dict[str, Any]], zone: tzinfo) -> None:
    if not channels:
        echo("no alert channels configured (alerts.email, alerts.webhooks, alerts.apprise)")
        return
    echo("Channels:")
    for row in channels:
        counts = ", ".join(f"{row[s]} {s}" for s in STATUSES)
        if row["disabled_at"]:
            state = f"DISABLED since {_shown(row['disabled_at'], zone)}: {row['disabled_reason']}"
            state += " (`monitor alerts retry` re-enables it)"
        elif not row["configured"]:
            state = "not in the configuration any more"
        else:
            sent = row["last_sent_at"]
            state = f"last sent {_shown(sent, zone)}" if sent else "nothing sent yet"
        echo(f"  {row['key']}: {counts}; {state}")


def _when(moment: datetime | None, zone: tzinfo) -> str:
    return shown_time(moment, zone) if moment is not None else "-"


def _print_alerts(views: list[AlertView], zone: tzinfo) -> None:
    if not views:
        echo("no alerts")
        return
    echo("Alerts (newest first):")
    for v in views:
        when = {
            "pending": f"due {_when(v.next_attempt_at, zone)}",
            "sent": f"sent {_when(v.sent_at, zone)}",
            "failed": "failed",
        }.get(v.status, v.status)
        title = " ".join((v.title or v.url).split())[:80]
        rules = f" rules: {', '.join(v.rules)};" if v.rules else ""
        echo(
            f"  #{v.id} {v.status:<7} {v.channel} article {v.article_id} "
            f"[{', '.join(v.entities)}]{rules} {when}, {v.attempts} attempt(s): {title}"
        )
        if v.last_error and v.status != "sent":
            echo(f"      last error: {redact_text(v.last_error)}")


@command(alerts, "retry")
@click.option("--channel", help="Only this channel.")
@click.option("--id", "alert_ids", type=int, multiple=True, help="Only this alert (repeatable).")
def retry(app: App, channel: str | None, alert_ids: tuple[int, ...]) -> None:
    """Re-queue failed alerts and re-enable disabled channels.

    Re-queued alerts get a fresh retry period and go out, oldest first, on the next
    delivery round.

    \b
    Example:
      monitor alerts retry --channel webhook:ops
    """
    for alert_id in alert_ids:
        if not 1 <= alert_id <= MAX_INTEGER:
            raise InputError(f"--id {alert_id}: no alert has this id (ids are whole numbers from 1 to {MAX_INTEGER})")
    with session(app.engine) as db:
        count = requeue_failed(db, channel=channel, alert_ids=alert_ids)
        enabled = [] if alert_ids else enable_channels(db, channel=channel)
        db.commit()
    echo(f"re-queued {count} failed alert(s)")
    for key in enabled:
        echo(f"re-enabled {key}")


@command(alerts, "test")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per channel.")
def test(app: App, as_json: bool) -> None:
    """Send a test alert (type mention.test) to every channel; exit 1 if any fails.

    \b
    Example:
      monitor alerts test
    """
    if not app.settings.alerts.channels:
        raise ConfigError("alerts: no channel configured (alerts.email, alerts.webhooks, alerts.apprise)")
    results = send_test(app.settings)
    for result in results:
        if as_json:
            click.echo(json.dumps(result.as_dict(), ensure_ascii=False))
        else:
            echo(f"{result.channel}: {'ok' if result.ok else 'FAILED'}: {result.detail}")
    if not all(r.ok for r in results):
        sys.exit(1)


@command(alerts, "deliver")
@click.option("--json", "as_json", is_flag=True, help="The round's report as JSON.")
def deliver(app: App, as_json: bool) -> None:
    """Run one delivery round now: send every due alert.

    \b
    Example:
      monitor alerts deliver
    """
    report = deliver_due(app.engine, app.settings)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    echo(report.summary())
    for error in report.errors:
        echo(f"  {error}")
