"""``monitor search``: query the archive from the command line."""

from __future__ import annotations

import functools
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import Any

import click

from monitor.cli import App, command, echo, main
from monitor.db import session
from monitor.errors import QueryError
from monitor.models import ArticleSummary
from monitor.pipeline.titles import without_title
from monitor.search import DEFAULT_LIMIT, MAX_LIMIT, SearchFilters, SearchPage, search_articles
from monitor.times import shown_time
from monitor.timespec import parse_time


def search_filters(verb: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """QUERY and the search's filter options, shared by ``monitor search`` and ``monitor
    export`` so that an export holds what a search lists: the command receives them as
    one ``filters: SearchFilters``."""
    parameters = [
        click.argument("query", nargs=-1),
        click.option(
            "--entity",
            "entities",
            multiple=True,
            metavar="NAME",
            help="Only articles mentioning this tracked entity; repeat to require several.",
        ),
        click.option("--since", metavar="TIME", help="From this time: 2022-01-06, an ISO time, or 7d / 12h ago."),
        click.option("--until", metavar="TIME", help="Up to this time (a bare date includes that whole day)."),
        click.option("--feed", metavar="NAME", help="Only articles from the feed with this name."),
        click.option(
            "--include-duplicates",
            is_flag=True,
            help=f"Also {verb} republished copies of known texts (left out by default).",
        ),
    ]

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def with_filters(
            *args: Any,
            query: tuple[str, ...],
            entities: tuple[str, ...],
            since: str | None,
            until: str | None,
            feed: str | None,
            include_duplicates: bool,
            **kwargs: Any,
        ) -> Any:
            now = datetime.now(UTC)
            filters = SearchFilters(
                query=query_text(query),
                entities=entities,
                since=time_option("--since", since, now, end=False),
                until=time_option("--until", until, now, end=True),
                feed=feed,
                include_duplicates=include_duplicates,
            )
            return function(*args, filters=filters, **kwargs)

        for parameter in reversed(parameters):
            with_filters = parameter(with_filters)
        return with_filters

    return decorate


# Unknown options pass through as query words, so that an exclusion can start the
# query unquoted (``monitor search -Tokayev CSTO``); a mistyped ``--option`` is still
# reported (see ``query_text``).
@command(main, "search", context_settings={"ignore_unknown_options": True})
@search_filters("list")
@click.option(
    "--limit",
    metavar="N",
    default=str(DEFAULT_LIMIT),
    show_default=True,
    help="How many articles to list (any number: they are read a page at a time).",
)
@click.option(
    "--cursor",
    metavar="CURSOR",
    help="Continue after an earlier listing (the cursor it printed when more matched).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a list.")
def search(app: App, filters: SearchFilters, limit: str, cursor: str | None, as_json: bool) -> None:
    """List archived articles matching QUERY, newest first.

    QUERY matches words anywhere in the title or text (all of them); "quoted
    words" match a phrase; OR between two words or phrases matches either (OR
    binds tighter than the space); -word or -"a phrase" leaves out articles with
    it. Case and accents do not matter, English words match their other forms
    (protest, protests). Without QUERY every article passing the filters is
    listed. Duplicates (republished copies) are left out unless asked for.

    When more articles match than --limit, the listing ends with a cursor: pass
    it as --cursor to list the next ones (with --json it is printed on stderr as
    "next cursor: CURSOR", so that stdout stays one JSON array).

    \b
    Examples:
      monitor search Almaty
      monitor search '"security treaty" CSTO OR ОДКБ -Tokayev' --since 7d
      monitor search --entity Nazarbayev --since 2022-01-01 --until 2022-01-31 --json
      monitor search Almaty --limit 5000 --json > almaty.json
    """
    pages = _pages(app, replace(filters, cursor=cursor or None), _limit_option(limit))
    if as_json:
        next_cursor = _print_json(pages)
        if next_cursor:
            click.echo(f"next cursor: {next_cursor}", err=True)
        return
    _print_list(pages, app.settings.display_zone)


def _pages(app: App, filters: SearchFilters, limit: int) -> Iterator[SearchPage]:
    """Pages of at most ``MAX_LIMIT`` articles until ``limit`` are listed or none are left."""
    left, cursor = limit, filters.cursor
    while left > 0:
        with session(app.engine) as db:
            page = search_articles(
                db,
                replace(filters, limit=min(left, MAX_LIMIT), cursor=cursor),
                entities=app.settings.entities,
                count=False,
            )
        yield page
        left -= len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return


def _print_json(pages: Iterator[SearchPage]) -> str | None:
    """The articles as one JSON array, written a page at a time; the cursor after them."""
    first, next_cursor = True, None
    pending = next(pages, None)  # a bad query fails here, before any output
    click.echo("[", nl=False)
    for page in itertools.chain([pending] if pending else [], pages):
        for item in page.items:
            text = json.dumps(item.model_dump(mode="json"), ensure_ascii=False, indent=2)
            click.echo(("\n  " if first else ",\n  ") + text.replace("\n", "\n  "), nl=False)
            first = False
        next_cursor = page.next_cursor
    click.echo("]" if first else "\n]")
    return next_cursor


def query_text(words: tuple[str, ...]) -> str | None:
    for word in words:
        if word.startswith("--") and len(word) > 2:
            raise QueryError(f"no such option {word.split('=')[0]!r} (see monitor search --help)")
    return " ".join(words) or None


def time_option(name: str, value: str | None, now: datetime, *, end: bool) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, now=now, end=end)
    except QueryError as exc:
        raise QueryError(f"{name}: {str(exc).removeprefix('time: ')}") from None


def _limit_option(value: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise QueryError(f"--limit: {value!r} is not a whole number from 1 up")
    return limit


def _print_list(pages: Iterator[SearchPage], zone: tzinfo) -> None:
    shown, next_cursor = 0, None
    for page in pages:
        for item in page.items:
            print_item(item, zone)
        shown += len(page.items)
        next_cursor = page.next_cursor
    if not shown:
        echo("no matching articles")
        return
    count = f"{shown} article{'s' if shown != 1 else ''}"
    echo(f"{count}; more match: --cursor {next_cursor}" if next_cursor else count)


def print_item(item: ArticleSummary, zone: tzinfo) -> None:
    """One result as people read it: facts, title, the snippet (past the title it may
    repeat), the link, a blank line."""
    facts = [shown_time(item.published_at or item.fetched_at, zone), item.feed or "imported"]
    if item.entities:
        facts.append(", ".join(item.entities))
    if item.duplicate_of:
        facts.append(f"duplicate of {item.duplicate_of}")
    echo(f"#{item.id}  " + "  ·  ".join(facts))
    echo(f"  {item.title or '(no title)'}")
    snippet = without_title(item.snippet or "", item.title)
    if snippet:
        echo(f"  {snippet}")
    echo(f"  {item.url}")
    echo()
