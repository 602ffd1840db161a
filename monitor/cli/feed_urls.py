"""``monitor feed-urls``: the Atom feeds' URLs, to subscribe to in a feed reader."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import click

from monitor.cli import App, command, echo, main
from monitor.errors import MonitorError
from monitor.feed_tokens import feed_links


@command(main, "feed-urls")
@click.option("--base", metavar="URL", help="Where readers reach the server (default: alerts.public_url).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of {title, feed, url}.")
def feed_urls(app: App, base: str | None, as_json: bool) -> None:
    """Print the URLs of the Atom feeds to subscribe to in a feed reader.

    One feed of every tracked entity's mentions, and one per alert rule (per tracked
    entity without rules:). With api_token (MONITOR_API_TOKEN) set they are secret
    URLs: each holds a token that opens that one feed and nothing else, never the API;
    keep them like passwords. Changing api_token revokes them all. Without a token the
    plain URLs are printed. They start with --base, else alerts.public_url, else
    serve.host and serve.port.

    \b
    Examples:
      monitor feed-urls
      monitor feed-urls --base https://monitor.example.org --json
    """

    if base is not None:
        parts = urlsplit(base.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise MonitorError(f"--base: {base!r} is not an http(s) URL such as https://monitor.example.org")
    links = feed_links(app.settings, base.strip() if base else None)
    if as_json:
        click.echo(json.dumps([link.__dict__ for link in links], ensure_ascii=False, indent=2))
        return
    for link in links:
        echo(link.title)
        echo(f"  {link.url}")
    if app.settings.api_token is None:
        echo()
        echo("no api_token: these URLs are open to anyone who reaches the server")
    else:
        echo()
        echo("secret URLs: each opens its own feed only; changing api_token revokes them all")
