"""``monitor feeds add|remove|pause|resume|import|export``: feeds managed at run time.

Attached to the ``monitor feeds`` group (``monitor.cli.feeds``). What they change is in
the database (``monitor.sources.catalog``); a running daemon sees it at its next claim.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monitor.cli import App, command, echo
from monitor.config import parse_duration
from monitor.db import session
from monitor.errors import FetchError, InputError
from monitor.outcomes import FailureKind
from monitor.times import shown_time, utcnow

if TYPE_CHECKING:
    from monitor.models import Feed
    from monitor.sources.discover import Discovered

# Their own group until ``monitor.cli.feeds`` attaches them to ``monitor feeds``.
group = click.Group("feeds")


def _interval(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


interval_option = click.option(
    "--interval", callback=_interval, metavar="DURATION", help="Poll it at this fixed interval (15m, 1h)."
)


@command(group, "add")
@click.argument("url")
@click.option("--name", help="Its name (default: the feed's title, made unique).")
@interval_option
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the feed added as JSON.")
def add(app: App, url: str, name: str | None, interval: float | None, tags: tuple[str, ...], as_json: bool) -> None:
    """Add a feed, given its URL or the URL of a page of its site.

    The URL is fetched once, as polls fetch (poll.allow_private_networks, max_bytes,
    timeout). A feed (RSS, Atom, JSON Feed) is taken as it is; for an HTML page, the
    feeds its head links are tried, then the usual paths (/feed, /rss.xml, /atom.xml…).
    The feed is stored and a running daemon polls it within one scheduling round.

    \b
    Example:
      monitor feeds add https://www.example.org/
      monitor feeds add https://example.org/world/rss.xml --name "Example World" --tag world
    """
    from monitor.sources.catalog import NewFeed, add_feed, find_feed, refuse_known

    settings, engine = app.settings, app.engine
    with session(engine) as db:
        refuse_known(db, settings, [url.strip()])
    found = asyncio.run(_discover(app, url))
    new = NewFeed(
        url=found.url,
        name=name,
        interval=interval,
        tags=tags,
        title=found.title,
        site_url=found.feed.link,
        aliases=[url.strip()],
    )
    with session(engine) as db:
        feed = add_feed(db, settings, new)
        view = _view(find_feed(db, feed.name))
    if as_json:
        click.echo(json.dumps(view, ensure_ascii=False))
        return
    for line in _describe(found, settings.display_zone):
        echo(line)
    echo(f"added feed {feed.name!r} (id {feed.id}); a running daemon polls it within {settings.poll.tick:g}s")


async def _discover(app: App, url: str) -> Discovered:
    from monitor.pipeline.fetch import Fetcher
    from monitor.sources.discover import discover

    async with Fetcher(app.settings.poll) as fetcher:
        try:
            return await discover(fetcher, url)
        except FetchError as exc:
            hint = " (poll.allow_private_networks is false)" if exc.kind is FailureKind.BLOCKED else ""
            raise FetchError(exc.kind, f"cannot add {url}: {exc.message}{hint}") from None


def _describe(found: Discovered, zone: tzinfo) -> list[str]:
    last = shown_time(found.last_entry_at, zone) if found.last_entry_at else "none dated"
    how = {"given": "the URL given", "link": "linked from the page", "path": "at a usual path"}[found.via]
    lines = [
        f"found: {found.title or '(untitled)'} ({found.feed.format}): {found.entries} entries, last entry {last}",
        f"feed URL: {found.url} ({how})",
    ]
    if found.others:
        lines.append("other feeds the page names (add them by their URL):")
        lines.extend(f"  {other}" for other in found.others)
    return lines


def _view(feed: Feed) -> dict[str, object]:
    from monitor.health import health_of

    return health_of(feed, utcnow()).as_json()


@command(group, "remove")
@click.argument("name")
def remove(app: App, name: str) -> None:
    """Remove a feed added at run time; its stored articles stay in the archive.

    A feed of the configuration file is removed from the file instead (it can be
    paused here). NAME is the feed's name or its id.

    \b
    Example:
      monitor feeds remove "Example World"
    """
    from monitor.sources.catalog import remove_feed

    with session(app.engine) as db:
        removed, articles = remove_feed(db, app.settings, name)
    kept = f"; its {articles} article(s) stay in the archive" if articles else ""
    echo(f"removed feed {removed!r}{kept}")


@command(group, "pause")
@click.argument("name")
def pause(app: App, name: str) -> None:
    """Stop polling a feed until it is resumed (kept across restarts).

    \b
    Example:
      monitor feeds pause "Example World"
    """
    _pause(app, name, paused=True)


@command(group, "resume")
@click.argument("name")
def resume(app: App, name: str) -> None:
    """Poll a paused feed again, at once.

    \b
    Example:
      monitor feeds resume "Example World"
    """
    _pause(app, name, paused=False)


def _pause(app: App, name: str, *, paused: bool) -> None:
    from monitor.scheduling.sync import sync_feeds
    from monitor.sources.catalog import set_paused

    # A feed just written in the file may be paused before any poll has synced it.
    sync_feeds(app.engine, app.settings.feeds)
    with session(app.engine) as db:
        feed = set_paused(db, name, paused)
    echo(f"{'paused' if paused else 'resumed'} feed {feed.name!r}")


@command(group, "import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="A tag for every feed imported (repeatable).")
def import_opml(app: App, path: str, tags: tuple[str, ...]) -> None:
    """Add the feeds of an OPML file (Miniflux, FreshRSS, Feedly… exports).

    Categories become tags. Feeds already known (by URL) are skipped and counted;
    nothing is fetched now: the daemon polls the new feeds and `monitor feeds` shows
    how each fares.

    \b
    Example:
      monitor feeds import subscriptions.opml
    """
    from monitor.sources.catalog import NewFeed, import_feeds
    from monitor.sources.opml import read_opml

    data = _read(path)
    outlines = read_opml(data, source=path)
    feeds = [o for o in outlines if o.is_feed]
    unsupported = [o for o in outlines if not o.is_feed]
    new = [NewFeed(url=o.url, title=o.title, site_url=o.site_url, tags=[*o.tags, *tags]) for o in feeds]
    with session(app.engine) as db:
        report = import_feeds(db, app.settings, new)
    echo(
        f"{path}: {len(report.added)} feed(s) added, {report.duplicates} already known, "
        f"{len(report.invalid) + len(unsupported)} skipped"
    )
    for line in report.invalid:
        echo(f"  skipped: {line}")
    for outline in unsupported:
        echo(f"  skipped: {outline.title or outline.url}: {outline.kind} is not a feed")


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


@command(group, "export")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
def export_opml(app: App, output: str | None) -> None:
    """Write every active feed as OPML 2.0, tags as categories.

    \b
    Example:
      monitor feeds export --output subscriptions.opml
    """
    from sqlmodel import col, select

    from monitor.models import Feed
    from monitor.sources.opml import Outline, write_opml

    with session(app.engine) as db:
        rows = db.exec(select(Feed).where(col(Feed.active).is_(True)).order_by(col(Feed.name))).all()
        outlines = [Outline(url=f.url, title=f.name, site_url=f.site_url, tags=list(f.tags)) for f in rows]
    known = {o.url for o in outlines}
    # Configured feeds no poll has synced yet are feeds all the same.
    outlines += [Outline(url=c.url, title=c.name, tags=c.tags) for c in app.settings.feeds if c.url not in known]
    text = write_opml(outlines, title="News monitor feeds", now=utcnow())
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{output}: cannot write: {exc.strerror or exc}") from None
    echo(f"wrote {len(outlines)} feed(s) to {output}")


SUBCOMMANDS = [add, remove, pause, resume, import_opml, export_opml]

__all__ = ["SUBCOMMANDS"]
