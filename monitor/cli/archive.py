"""``monitor init``, ``monitor analyze`` and ``monitor import``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from monitor.cli import App, command, echo, main
from monitor.config import require_secrets
from monitor.db import describe_database, init_lock, schema_revision, session, upgrade_schema
from monitor.errors import DatabaseError, InputError, MonitorError
from monitor.pipeline.extract import Extracted, read_file
from monitor.pipeline.ingest import Analysis, Archive, Candidate
from monitor.pipeline.titles import without_site_name
from monitor.seeds import load_seeds
from monitor.text import for_terminal


def _wait_for_database(engine: sa.Engine, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            return
        except sa.exc.OperationalError as exc:
            if time.monotonic() >= deadline:
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise DatabaseError(f"cannot connect to the database: {reason}") from None
            time.sleep(1)


@command(main, "init")
@click.option(
    "--wait",
    type=float,
    default=0,
    show_default=True,
    help="Seconds to wait for the database to accept connections (containers).",
)
def init(app: App, wait: float) -> None:
    """Create or upgrade the schema and load the seed corpus. Safe to run again.

    \b
    Example:
      monitor init
      MONITOR_DATABASE_URL=postgresql+psycopg://monitor@db/monitor monitor init --wait 60
    """
    click.echo(f"database: {describe_database(app.settings.database_url)}")
    engine = app.raw_engine()
    if wait:
        _wait_for_database(engine, wait)
    archive = Archive(app.settings, alerting=False)  # the seeds' index only
    # Monitors started together on one database each run this: one at a time.
    with init_lock(engine):
        before = schema_revision(engine)
        upgrade_schema(engine)
        after = schema_revision(engine)
        with session(engine) as db:
            added = load_seeds(db, app.settings.seeds_dir, archive.index)
            db.commit()
    if before == after:
        schema = f"schema is current ({after})"
    else:
        schema = f"schema upgraded from {before or 'nothing'} to {after}"
    click.echo(f"{schema}; {added} new seed text(s) loaded from {app.settings.seeds_dir}")


def _files(paths: tuple[str, ...]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*") if p.suffix.lower() in (".txt", ".html", ".htm") and not p.is_dir()
            )
            if not found:
                click.echo(f"monitor: warning: {path}: no .txt, .html or .htm files in it", err=True)
            files.extend(found)
        else:
            files.append(path)
    return files


def _candidate(path: Path, extracted: Extracted) -> Candidate:
    return Candidate(
        url=path.resolve().as_uri(),
        text=extracted.text,
        title=without_site_name(extracted.title, extracted.site_name),
        author=extracted.author,
        language=extracted.language,
        published_at=extracted.published_at,
        source="import",
    )


def _analysis_json(path: Path, extracted: Extracted, analysis: Analysis, rules: list[str]) -> dict[str, Any]:
    verdict = analysis.verdict
    return {
        "path": str(path),
        "title": without_site_name(extracted.title, extracted.site_name),
        "duplicate_of": verdict.duplicate_of.name if verdict.duplicate_of else None,
        "similarity": round(verdict.similarity, 4),
        "known_coverage": round(verdict.known_coverage, 4),
        "new_coverage": round(verdict.new_coverage, 4),
        "mentions": [
            {
                "entity": m.entity,
                "text": m.text,
                "start": m.start,
                "end": m.end,
                "snippet": m.snippet,
            }
            for m in analysis.mentions
        ],
        "rules": rules,
    }


def _report_failure(path: Path, exc: MonitorError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"path": str(path), "error": str(exc)}, ensure_ascii=False))
    echo(f"monitor: error: {exc}", err=True)


@command(main, "analyze")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, one per file.")
def analyze(app: App, paths: tuple[str, ...], as_json: bool) -> None:
    """Extract, dedup and match local .txt/.html files without storing anything.

    Each file is also tried against the alert rules, as storing it would: "rules"
    names those it would fire (none for a duplicate).

    \b
    Example:
      monitor analyze seeds/*.txt --json
      monitor analyze saved-page.html
    """
    archive = Archive(app.settings)
    failed = 0
    with session(app.engine) as db:
        for path in _files(paths):
            try:
                extracted = read_file(path, max_bytes=app.settings.poll.max_bytes)
            except InputError as exc:
                failed += 1
                _report_failure(path, exc, as_json)
                continue
            analysis = archive.analyze(db, extracted.text)
            fired = archive.rules_for(db, _candidate(path, extracted), analysis)
            result = _analysis_json(path, extracted, analysis, fired)
            if as_json:
                click.echo(json.dumps(result, ensure_ascii=False))
            else:
                _print_analysis(result)
    if failed:
        raise InputError(f"{failed} file(s) could not be analysed")


def _print_analysis(result: dict[str, Any]) -> None:
    click.secho(for_terminal(result["path"]), bold=True)
    echo(f"  title:      {result['title'] or '-'}")
    if result["duplicate_of"]:
        echo(f"  duplicate:  of {result['duplicate_of']} (similarity {result['similarity']:.2f})")
    else:
        echo("  duplicate:  no, the text is new")
    entities = sorted({m["entity"] for m in result["mentions"]})
    echo(f"  mentions:   {len(result['mentions'])} ({', '.join(entities) or 'none'})")
    echo(f"  rules:      {', '.join(result['rules']) or 'none would fire'}")


@command(main, "import")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, one per file.")
@click.option(
    "--alerts",
    "with_alerts",
    is_flag=True,
    help="Alert as for polled articles (rules, channels) and deliver before exiting.",
)
def import_files(app: App, paths: tuple[str, ...], as_json: bool, with_alerts: bool) -> None:
    """Store local .txt/.html files as archived articles (backfills).

    Each file goes through the same dedup and entity matching as polled articles; a
    file imported twice is stored once. Nothing alerts unless --alerts: then new
    articles fire the rules as polled ones do, and the alerts due are delivered
    before the command ends (those of a digest wait for its window and the daemon).

    \b
    Example:
      monitor import ~/clippings/*.html
      monitor import --alerts ~/clippings/today/
    """
    if with_alerts:
        require_secrets(app.settings)
    archive = Archive(app.settings, alerting=with_alerts)
    counts = {"stored": 0, "duplicates": 0, "already": 0, "failed": 0}
    with session(app.engine) as db:
        for path in _files(paths):
            try:
                extracted = read_file(path, max_bytes=app.settings.poll.max_bytes)
            except InputError as exc:
                counts["failed"] += 1
                _report_failure(path, exc, as_json)
                continue
            result = archive.store(db, _candidate(path, extracted))
            if result.rejected is not None:
                counts["failed"] += 1
                _report_failure(path, InputError(f"{path}: not stored, {result.rejected}"), as_json)
                continue
            if not result.created:
                counts["already"] += 1
            elif result.duplicate_of:
                counts["duplicates"] += 1
            else:
                counts["stored"] += 1
            if as_json:
                line = {
                    "path": str(path),
                    "id": result.article_id,
                    "created": result.created,
                    "duplicate_of": result.duplicate_of,
                    "similarity": round(result.similarity, 4),
                    "entities": list(result.entities),
                    "rules": list(result.rules),
                }
                click.echo(json.dumps(line, ensure_ascii=False))
    if not as_json:
        echo(
            f"{counts['stored']} new, {counts['duplicates']} duplicate(s), "
            f"{counts['already']} already stored, {counts['failed']} failed"
        )
    if with_alerts:
        from monitor.alerts.dispatch import deliver_due

        delivery = deliver_due(app.engine, app.settings)
        if as_json:
            click.echo(json.dumps({"delivery": delivery.as_dict()}, ensure_ascii=False))
        else:
            echo(delivery.summary())
    if counts["failed"]:
        raise InputError(f"{counts['failed']} file(s) could not be imported")
