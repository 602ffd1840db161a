"""``monitor export``: every matching article, whole, as JSON Lines or CSV."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import click

from monitor.cli import App, command, echo, main
from monitor.cli.search import search_filters
from monitor.db import session
from monitor.errors import MonitorError
from monitor.export import ExportFormat, Record, export_articles, lines
from monitor.search import SearchFilters


@command(main, "export", context_settings={"ignore_unknown_options": True})
@search_filters("export")
@click.option(
    "--format",
    "export_format",
    type=click.Choice([f.value for f in ExportFormat]),
    default=ExportFormat.JSONL.value,
    show_default=True,
    help="JSON Lines (one object per article) or CSV (a header row, then one row per article).",
)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE (complete or not at all) instead of stdout.",
)
def export(app: App, filters: SearchFilters, export_format: str, output: Path | None) -> None:
    """Stream every article matching QUERY with its whole text, as JSON Lines or CSV.

    QUERY and the filters are those of monitor search, and the articles the same,
    newest first; each comes with its text, its mentions (entity, matched text,
    character offsets), duplicate_of (the original of a copy) and copies (ids of
    the articles found to be copies of it). Memory stays the same whatever the
    size of the archive: articles are read a page at a time.

    \b
    Examples:
      monitor export > archive.jsonl
      monitor export --entity Almaty --since 2022-01-01 --format csv -o almaty.csv
      monitor export '"security forces"' --include-duplicates | gzip > forces.jsonl.gz
    """
    counted = _Counted(export_articles(lambda: session(app.engine), filters, entities=app.settings.entities))
    rendered = lines(counted, ExportFormat(export_format))
    first = next(rendered, "")  # bad filters fail here, before a file is made
    if output is None:
        _write(first, rendered, sys.stdout)
        echo(f"exported {_articles(counted.count)}", err=True)
        return
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            _write(first, rendered, stream)
        os.replace(partial, output)
    except OSError as exc:
        raise MonitorError(f"--output: cannot write {output}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    echo(f"exported {_articles(counted.count)} to {output}", err=True)


class _Counted:
    """The records, counted as they pass."""

    def __init__(self, records: Iterator[Record]) -> None:
        self.records = records
        self.count = 0

    def __iter__(self) -> Iterator[Record]:
        for record in self.records:
            self.count += 1
            yield record


def _write(first: str, rest: Iterator[str], stream: TextIO) -> None:
    stream.write(first)
    for line in rest:
        stream.write(line)


def _articles(count: int) -> str:
    return f"{count} article{'s' if count != 1 else ''}"
