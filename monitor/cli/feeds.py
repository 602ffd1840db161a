"""``monitor poll``, ``monitor run`` and ``monitor feeds`` (alias ``monitor status``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Coroutine, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa
from sqlmodel import col, func, select

from monitor.cli import App, app_for, command, config_option, echo, main
from monitor.cli.sources import SUBCOMMANDS
from monitor.config import Settings, load_settings, require_secrets
from monitor.db import describe_database, session
from monitor.models import Feed
from monitor.outcomes import ExtractionStatus
from monitor.times import utcnow

if TYPE_CHECKING:
    from monitor.pipeline.refresh import RefreshOutcome
    from monitor.scheduling.report import CycleReport

# ------------------------------------------------------------------------------ poll


def sending(settings: Settings) -> Settings:
    """``settings``, checked for a command that stores and sends: every channel's
    variables set, every rule's query valid; ``ConfigError`` (one line) otherwise."""
    from monitor.rules import Rulebook

    require_secrets(settings)
    Rulebook.from_settings(settings)
    return settings


@command(main, "poll")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary.")
@click.option("--due", is_flag=True, help="Only feeds whose next poll has come (for cron).")
def poll(app: App, as_json: bool, due: bool) -> None:
    """Poll every active feed once, deliver due alerts, print a summary, exit.

    Feeds another worker is polling right now are left to it, and a feed whose server
    asked for time (Retry-After, Cache-Control max-age) is not fetched before then.
    A failing feed is recorded and reported; the exit code stays 0.

    \b
    Example:
      monitor poll
      monitor poll --json | jq .articles.stored
    """
    from monitor.alerts.dispatch import deliver_due
    from monitor.scheduling.sync import sync_feeds

    settings, engine = sending(app.settings), app.engine
    sync_feeds(engine, settings.feeds)
    report = asyncio.run(_poll(settings, engine, due_only=due, progress=not as_json or sys.stderr.isatty()))
    delivery = deliver_due(engine, settings)
    report.alerts_sent = delivery.sent
    if as_json:
        click.echo(json.dumps(report.as_dict() | {"delivery": delivery.as_dict()}, ensure_ascii=False))
    else:
        echo(_summary(report))
        if delivery.errors:
            echo(delivery.summary())


async def _poll(settings: Settings, engine: sa.Engine, *, due_only: bool, progress: bool) -> CycleReport:
    from monitor.scheduling.worker import Worker

    loop = asyncio.get_running_loop()
    total = _count_active(engine)
    async with Worker(settings, engine) as worker:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.request_stop)
        try:
            with _progress(total, enabled=progress and sys.stderr.isatty()) as advance:
                report = await worker.poll_cycle(due_only=due_only, on_outcome=advance)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        if worker.stopping:
            click.echo("monitor: stopped before every feed was polled", err=True)
    return report


@contextlib.contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[Any]:
    if not enabled or not total:
        yield lambda _outcome: None
        return
    with click.progressbar(length=total, label="Polling feeds", file=sys.stderr) as bar:

        def advance(_outcome: RefreshOutcome) -> None:
            bar.update(1)

        yield advance


def _count_active(engine: sa.Engine) -> int:
    with session(engine) as db:
        polled = col(Feed.active).is_(True), col(Feed.paused).is_(False)
        return db.exec(select(func.count()).select_from(Feed).where(*polled)).one()


def _summary(report: CycleReport) -> str:
    lines = [
        (
            f"polled {report.polled} feed(s) in {report.elapsed:.1f}s: {report.ok} ok, "
            f"{report.not_modified} not modified, {report.unchanged} unchanged, {report.failed} failed"
        ),
        (
            f"entries: {report.entries_seen} seen, {report.new_entries} new"
            f"{f' ({report.waiting} waiting for the next poll)' if report.waiting else ''}; "
            f"articles: {report.stored} stored ({report.duplicates} duplicates, "
            f"{report.fallbacks} from feed content), {report.skipped} skipped"
        ),
        f"alerts: {report.alerts} queued, {report.alerts_sent or 0} sent",
    ]
    if report.errors:
        lines.append("failed feeds:")
        lines.extend(
            f"  {e['feed']}: {e['kind']}: {e['message']}" for e in sorted(report.errors, key=lambda e: e["feed"])
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------- run


@command(main, "run")
@click.option(
    "--serve",
    "with_api",
    is_flag=True,
    help="Serve the HTTP API too, in this process, as `monitor serve` would (serve.with_daemon).",
)
@click.option("--host", metavar="HOST", help="With --serve: address to listen on (default: serve.host).")
@click.option("--port", type=click.IntRange(0, 65535), metavar="PORT", help="With --serve: port (default: serve.port).")
def run(app: App, with_api: bool, host: str | None, port: int | None) -> None:
    """Run the daemon: poll every feed on its interval, send alerts, until SIGTERM/SIGINT.

    Several daemons may share one PostgreSQL database: each claims due feeds with a
    lease, so no feed is polled twice at once. With SQLite, run one daemon. SIGHUP
    re-reads the configuration file: feeds, alert channels and entities change without
    a restart (the API, with --serve, keeps the settings it started with).

    With --serve (or serve.with_daemon: true) the HTTP API runs beside the daemon in
    the same process, and SIGTERM stops both: one process for a container.

    \b
    Example:
      monitor run --config config/monitor.yaml
      monitor run --serve --host 0.0.0.0 --port 8080
    """
    from monitor.scheduling.daemon import run_daemon

    settings, engine = sending(app.settings), app.engine

    def daemon(stop: asyncio.Event | None = None) -> Coroutine[Any, Any, None]:
        return run_daemon(
            settings, engine, reload=lambda: sending(load_settings(app.config_path, os.environ)), stop=stop
        )

    if not (with_api or settings.serve.with_daemon):
        asyncio.run(daemon())
        return
    from monitor.cli.serve import api_server, serve_beside

    server, sock = api_server(app, host, port, own_signals=False)
    asyncio.run(serve_beside(server, sock, daemon))


# ----------------------------------------------------------------------------- feeds


def _ago(value: str | None, now: datetime) -> str:
    if value is None:
        return "never"
    seconds = (now - datetime.fromisoformat(value.replace("Z", "+00:00"))).total_seconds()
    return _span(seconds) + " ago" if seconds >= 0 else "in " + _span(-seconds)


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


_json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
_all_option = click.option("--all", "include_inactive", is_flag=True, help="Include removed feeds.")


@main.group("feeds", invoke_without_command=True)
@config_option
@_json_option
@_all_option
@click.pass_context
def feeds(ctx: click.Context, as_json: bool, include_inactive: bool) -> None:
    """Show every feed's health: status, last success, errors, next poll, articles.

    ORIGIN says where a feed comes from: `config` (the configuration file, which is
    changed there) or `added` (at run time, by the commands below, the API or an
    OPML import). INTERVAL is the time between two polls, `~` when it adapts to how
    often the feed publishes; NO TEXT the share of its recent pages that gave no text,
    `!` when that says extraction broke (a site redesign, usually).

    \b
    Example:
      monitor feeds
      monitor status --json | jq '.[] | select(.status == "error")'
      monitor feeds add https://www.example.org/       # finds the site's feed
      monitor feeds pause "Example World"
      monitor feeds import subscriptions.opml
      monitor feeds export > subscriptions.opml
    """
    if ctx.invoked_subcommand is None:
        _list_feeds(app_for(ctx), as_json, include_inactive)


for _subcommand in SUBCOMMANDS:
    feeds.add_command(_subcommand)


@command(main, "status")
@_json_option
@_all_option
def status(app: App, as_json: bool, include_inactive: bool) -> None:
    """Show every feed's health: status, last success, errors, next poll, articles.

    The same as `monitor feeds`.

    \b
    Example:
      monitor status --json | jq '.[] | select(.status == "error")'
    """
    _list_feeds(app, as_json, include_inactive)


def _list_feeds(app: App, as_json: bool, include_inactive: bool) -> None:
    from monitor.health import feed_health

    with session(app.engine) as db:
        health = [f.as_json() for f in feed_health(db, app.settings, include_inactive=include_inactive)]
    if as_json:
        click.echo(json.dumps(health, ensure_ascii=False))
        return
    echo(f"database: {describe_database(app.settings.database_url)}")
    if not health:
        echo("no feeds: `monitor feeds add URL`, or add some under `feeds:` in the configuration")
        return
    now = utcnow()
    width = min(max(len(f["name"]) for f in health), 40)
    echo(
        f"{'FEED':<{width}}  {'STATUS':<8} {'ORIGIN':<6} {'LAST SUCCESS':<13} {'ERRORS':>6}  "
        f"{'NEXT POLL':<10} {'ARTICLES':>8} {'INTERVAL':>8} {'NO TEXT':>7}"
    )
    for f in health:
        state = "paused" if f["paused"] else f["status"] if f["active"] else "inactive"
        next_poll = _ago(f.get("next_poll_at"), now) if f.get("next_poll_at") else "-"
        echo(
            f"{f['name'][:width]:<{width}}  {state:<8} {f['origin']:<6} {_ago(f.get('last_success_at'), now):<13} "
            f"{f['error_count']:>6}  {next_poll:<10} {f['articles_stored']:>8} {_interval(f):>8} {_extraction(f):>7}"
        )
        if f["tags"]:
            echo(f"{'':<{width}}  └ tags: {', '.join(f['tags'])}")
        if f.get("error_kind"):
            echo(f"{'':<{width}}  └ {f['error_kind']}: {f['error_message']}")
        if f.get("entries_waiting"):
            echo(f"{'':<{width}}  └ {f['entries_waiting']} new entries waiting for the next poll")
        if f.get("extraction") == ExtractionStatus.BROKEN:
            since = _ago(f.get("extraction_broken_since"), now)
            echo(
                f"{'':<{width}}  └ extraction broken (since {since}): most recent pages gave no text, "
                "the feed's own content stands in; a site redesign? (a selector: docs/feeds.md)"
            )


def _interval(feed: dict[str, Any]) -> str:
    """The poll interval; ``~`` marks one that adapts to the feed's pace."""
    if not feed.get("interval"):
        return "-"
    return ("~" if feed.get("adaptive") else "") + _span(feed["interval"])


def _extraction(feed: dict[str, Any]) -> str:
    """The share of recent pages that gave no text; ``!`` when extraction is flagged broken."""
    rate = feed.get("extraction_failure_rate")
    if rate is None:
        return "-"
    return f"{rate:.0%}" + ("!" if feed.get("extraction") == ExtractionStatus.BROKEN else "")
