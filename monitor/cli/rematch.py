"""``monitor rematch``: recompute the stored articles' mentions with the entities configured now."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from monitor.cli import App, command, echo, main
from monitor.errors import MonitorError, QueryError
from monitor.pipeline.rematch import BATCH, Progress, Rematcher, RematchReport
from monitor.scheduling.leases import new_owner
from monitor.timespec import parse_time


@command(main, "rematch")
@click.option("--since", metavar="TIME", help="Only articles from this time: 2022-01-06, an ISO time, or 30d ago.")
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=BATCH,
    show_default=True,
    metavar="N",
    help="Articles per transaction.",
)
@click.option("--json", "as_json", is_flag=True, help="The counts as one JSON object.")
def rematch(app: App, since: str | None, batch: int, as_json: bool) -> None:
    """Recompute stored articles' mentions after the entities changed; never alerts.

    Every stored article (or those published since --since) is matched again with the
    entities and aliases configured now: mentions of a new entity or alias are added,
    those only a removed one matched are dropped. Nothing is sent. A running daemon
    does the same by itself when it starts or reloads with other entities; without
    --since this run also counts as that.

    \b
    Examples:
      monitor rematch
      monitor rematch --since 30d --json
    """
    moment = None
    if since is not None:
        try:
            moment = parse_time(since, now=datetime.now(UTC))
        except QueryError as exc:
            raise QueryError(f"--since: {str(exc).removeprefix('time: ')}") from None
    rematcher = Rematcher(
        app.engine, app.settings.entities, owner=f"rematch:{new_owner()}", batch=batch, full=True, since=moment
    )
    report = RematchReport()
    try:
        while True:
            step = rematcher.step()
            if step.progress is Progress.BUSY:
                holder = rematcher.holder() or "another process"
                raise MonitorError(f"rematch: {holder} is re-matching the archive now; try again when it is done")
            report.add(step.report)
            if step.progress is Progress.DONE:
                break
    except BaseException:
        rematcher.release()
        raise
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
        return
    echo(f"re-matched: {report.summary()}")
