"""``monitor rules``: list the alert rules, and try one on the archive before trusting it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from monitor.cli import App, app_for, command, config_option, echo, main
from monitor.cli.search import print_item
from monitor.config import Settings
from monitor.db import session
from monitor.errors import QueryError
from monitor.rules import Rule, Rulebook, check_query
from monitor.search import DEFAULT_LIMIT, MAX_LIMIT, SearchFilters, search_articles
from monitor.timespec import parse_time


def _span(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _as_dict(rule: Rule, settings: Settings) -> dict[str, Any]:
    digests = {c.key: c.digest for c in settings.alerts.channels}
    return {
        "name": rule.name,
        "query": rule.query,
        "channels": list(rule.channels),
        # The window each channel gets this rule's alerts in (None: at once).
        "digest": rule.digest,
        "digest_by_channel": {key: rule.digest or digests.get(key) for key in rule.channels},
        "implicit": rule.implicit,
    }


@main.group("rules", invoke_without_command=True)
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a list.")
@click.pass_context
def rules(ctx: click.Context, as_json: bool) -> None:
    """List the alert rules: name, query, channels, digest.

    Without ``rules:`` in the configuration every tracked entity is a rule (marked
    implicit), to every channel its ``entities:`` filter lets it reach. Every query
    is checked: a bad one is reported with the rule's name.

    \b
    Examples:
      monitor rules
      monitor rules test almaty-unrest --since 30d
      monitor rules test 'entity:CSTO summit'
    """
    if ctx.invoked_subcommand is not None:
        return
    app = app_for(ctx)
    book = Rulebook.from_settings(app.settings)
    listed = [_as_dict(rule, app.settings) for rule in book.rules]
    if as_json:
        click.echo(json.dumps(listed, ensure_ascii=False, indent=2))
        return
    if not listed:
        echo("no rules (rules: is empty): no article alerts anyone")
        return
    for row in listed:
        echo(f"{row['name']}{'  (implicit: a tracked entity)' if row['implicit'] else ''}")
        echo(f"  query:    {row['query']}")
        echo(f"  channels: {', '.join(row['channels']) or 'none'}")
        windows = sorted({f"{_span(d)} ({k})" if d else f"at once ({k})" for k, d in row["digest_by_channel"].items()})
        echo(f"  digest:   {', '.join(windows) if windows else '-'}")
        echo()


@command(rules, "test", context_settings={"ignore_unknown_options": True})
@click.argument("rule_or_query", nargs=-1, required=True)
@click.option(
    "--since", default="30d", show_default=True, metavar="TIME", help="From this time: a date or 7d / 12h ago."
)
@click.option(
    "--limit",
    metavar="N",
    default=str(DEFAULT_LIMIT),
    show_default=True,
    help=f"How many articles to list (1 to {MAX_LIMIT}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object: the rule and its articles.")
def test(app: App, rule_or_query: tuple[str, ...], since: str, limit: str, as_json: bool) -> None:
    """Show what a rule would have fired on the archive, newest first; sends nothing.

    NAME is a configured rule; anything else is a query, as a rule would hold it. The
    list is exactly what ``monitor search`` lists for the rule's query (duplicates
    left out, as they never alert).

    \b
    Examples:
      monitor rules test almaty-unrest
      monitor rules test 'entity:Almaty protest OR unrest -football' --since 7d --json
    """
    for word in rule_or_query:
        if word.startswith("--") and len(word) > 2:
            raise QueryError(f"no such option {word.split('=')[0]!r} (see monitor rules test --help)")
    text = " ".join(rule_or_query)
    book = Rulebook.from_settings(app.settings)
    rule = book.get(text)
    if rule is None:
        rule = Rule(name="", query=text, channels=())
        check_query(text, app.settings.entities)
    filters = SearchFilters(query=rule.query, since=_since(since), limit=_limit(limit))
    with session(app.engine) as db:
        page = search_articles(db, filters, entities=app.settings.entities)
    if as_json:
        items = [item.model_dump(mode="json") for item in page.items]
        line = {
            "rule": rule.name or None,
            "query": rule.query,
            "channels": list(rule.channels),
            "since": filters.since.isoformat() if filters.since else None,
            "articles": items,
            "more": page.next_cursor is not None,
        }
        click.echo(json.dumps(line, ensure_ascii=False, indent=2))
        return
    if rule.name:
        echo(f"rule {rule.name}: {rule.query}  →  {', '.join(rule.channels) or 'no channel'}")
    else:
        echo(f"query: {rule.query}")
    echo(f"would have fired on (since {since}; nothing is sent):")
    echo()
    for item in page.items:
        print_item(item, app.settings.display_zone)
    shown = f"{len(page.items)} article{'s' if len(page.items) != 1 else ''}"
    echo(f"{shown}; more match (raise --limit)" if page.next_cursor else shown)


def _since(value: str) -> datetime:
    try:
        return parse_time(value, now=datetime.now(UTC))
    except QueryError as exc:
        raise QueryError(f"--since: {str(exc).removeprefix('time: ')}") from None


def _limit(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise QueryError(f"--limit: {value!r} is not a whole number from 1 to {MAX_LIMIT}") from None
