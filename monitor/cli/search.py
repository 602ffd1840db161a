"""``monitor search``: query the archive from the command line."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from monitor.cli import App, command, echo, main
from monitor.db import session
from monitor.errors import QueryError
from monitor.models import ArticleSummary
from monitor.query import parse_time
from monitor.search import DEFAULT_LIMIT, MAX_LIMIT, SearchFilters, search_articles


# Unknown options pass through as query words, so that an exclusion can start the
# query unquoted (``monitor search -Tokayev CSTO``); a mistyped ``--option`` is still
# reported (see ``_query_text``).
@command(main, "search", context_settings={"ignore_unknown_options": True})
@click.argument("query", nargs=-1)
@click.option(
    "--entity",
    "entities",
    multiple=True,
    metavar="NAME",
    help="Only articles mentioning this tracked entity; repeat to require several.",
)
@click.option("--since", metavar="TIME", help="From this time: 2022-01-06, an ISO time, or 7d / 12h ago.")
@click.option("--until", metavar="TIME", help="Up to this time (a bare date includes that whole day).")
@click.option("--feed", metavar="NAME", help="Only articles from the feed with this name.")
@click.option(
    "--include-duplicates",
    is_flag=True,
    help="Also list republished copies of known texts (left out by default).",
)
@click.option(
    "--limit",
    metavar="N",
    default=str(DEFAULT_LIMIT),
    show_default=True,
    help=f"How many articles to list (1 to {MAX_LIMIT}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a list.")
def search(
    app: App,
    query: tuple[str, ...],
    entities: tuple[str, ...],
    since: str | None,
    until: str | None,
    feed: str | None,
    include_duplicates: bool,
    limit: str,
    as_json: bool,
) -> None:
    """List archived articles matching QUERY, newest first.

    QUERY matches words anywhere in the title or text (all of them); "quoted
    words" match a phrase; OR between two words or phrases matches either (OR
    binds tighter than the space); -word or -"a phrase" leaves out articles with
    it; (parentheses) group, and a group can be excluded: -(a OR b). Field
    terms: entity:NAME (a tracked entity, by name or alias), feed:NAME
    (feed:"The Diplomat") and lang:CODE (lang:en also matches en-US). Case and
    accents do not matter, English words match their other forms (protest,
    protests). Without QUERY every article passing the filters is listed.
    Duplicates (republished copies) are left out unless asked for.

    \b
    Examples:
      monitor search Almaty
      monitor search '"security treaty" CSTO OR ОДКБ -Tokayev' --since 7d
      monitor search 'entity:Alma-Ata (protest OR unrest) -football lang:en'
      monitor search --entity Nazarbayev --since 2022-01-01 --until 2022-01-31 --json
    """
    now = datetime.now(UTC)
    filters = SearchFilters(
        query=_query_text(query),
        entities=entities,
        since=_time_option("--since", since, now, end=False),
        until=_time_option("--until", until, now, end=True),
        feed=feed,
        include_duplicates=include_duplicates,
        limit=_limit_option(limit),
    )
    with session(app.engine) as db:
        page = search_articles(db, filters, entities=app.settings.entities)
    if as_json:
        items = [item.model_dump(mode="json") for item in page.items]
        click.echo(json.dumps(items, ensure_ascii=False, indent=2))
        return
    _print_list(page.items, more=page.next_cursor is not None)


def _query_text(words: tuple[str, ...]) -> str | None:
    for word in words:
        if word.startswith("--") and len(word) > 2:
            raise QueryError(f"no such option {word.split('=')[0]!r} (see monitor search --help)")
    return " ".join(words) or None


def _time_option(name: str, value: str | None, now: datetime, *, end: bool) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value, now=now, end=end)
    except QueryError as exc:
        raise QueryError(f"{name}: {str(exc).removeprefix('time: ')}") from None


def _limit_option(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        message = f"--limit: {value!r} is not a whole number from 1 to {MAX_LIMIT}"
        raise QueryError(message) from None


def _print_list(items: list[ArticleSummary], *, more: bool) -> None:
    if not items:
        echo("no matching articles")
        return
    for item in items:
        moment = item.published_at or item.fetched_at
        facts = [moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M"), item.feed or "imported"]
        if item.entities:
            facts.append(", ".join(item.entities))
        if item.duplicate_of:
            facts.append(f"duplicate of {item.duplicate_of}")
        echo(f"#{item.id}  " + "  ·  ".join(facts))
        echo(f"  {item.title or '(no title)'}")
        if item.snippet:
            echo(f"  {item.snippet}")
        echo(f"  {item.url}")
        echo()
    shown = f"{len(items)} article{'s' if len(items) != 1 else ''}"
    echo(f"{shown}; more match (raise --limit or narrow the search)" if more else shown)
