"""The ``monitor`` command.

Each area of the product adds its commands from its own module (``archive``,
``search``, ``feeds``, ``alerts``, ``serve``). Every command takes ``--config``; any
``MonitorError`` becomes one line on stderr and a non-zero exit, never a traceback.

What a command prints for people goes through ``echo``, which removes terminal controls
(``monitor.text.for_terminal``): titles, names and errors come from feeds, pages and
servers, and an escape sequence in one would act on the terminal instead of showing.
JSON output is printed as it is: JSON escapes control characters itself.

A command's module is imported only when that command runs (``COMMANDS`` says where
each one is and what ``monitor --help`` says of it), and heavy libraries only where
they are used, so that ``monitor --help`` starts at once and ``monitor search`` does
not pay for trafilatura, alembic or the API.
"""

from __future__ import annotations

import functools
import gc
import importlib
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from monitor.errors import MonitorError
from monitor.redact import redact_text
from monitor.text import for_terminal

if TYPE_CHECKING:
    import sqlalchemy as sa

    from monitor.config import Settings


class App:
    """What a command needs, built on first use from ``--config`` and the environment."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self._engine: sa.Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from monitor.cli.logs import configure_logging
            from monitor.config import load_settings

            self._settings = load_settings(self.config_path, os.environ)
            configure_logging(self._settings.log_level, self._settings.log_format)
            # Alembic narrates every schema check ("Context impl SQLiteImpl."); commands
            # say what matters themselves.
            logging.getLogger("alembic").setLevel(logging.WARNING)
            # APScheduler logs each run of each job; the daemon logs each poll itself.
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
            # httpx logs every request at INFO with its whole URL ("HTTP Request: POST
            # https://hooks.example/…"): a line per request, and a webhook's token in it.
            # Apprise tells of every notification at INFO ("Notifying 1 service(s)."); its
            # warnings stay.
            if self._settings.log_level != "DEBUG":
                logging.getLogger("httpx").setLevel(logging.WARNING)
                logging.getLogger("apprise").setLevel(logging.WARNING)
        return self._settings

    @property
    def engine(self) -> sa.Engine:
        """The engine of a database whose schema is current."""
        if self._engine is None:
            from monitor.db import make_engine, require_current_schema

            engine = make_engine(self.settings.database_url)
            require_current_schema(engine)
            self._engine = engine
        return self._engine

    def raw_engine(self) -> sa.Engine:
        """The engine without the schema check (for ``init``)."""
        if self._engine is None:
            from monitor.db import make_engine

            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


def echo(text: str = "", *, err: bool = False) -> None:
    """Print a line of a command's human output, with terminal controls removed."""
    click.echo(for_terminal(text), err=err)


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    # Kept on the root context, so `monitor --config X cmd` and `monitor cmd --config X`
    # (and nested groups) all see it.
    if value:
        ctx.find_root().ensure_object(dict)["config"] = value
    return value


config_option = click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    expose_value=False,
    callback=_set_config,
    is_eager=True,
    help="Configuration file (default: $MONITOR_CONFIG, else config/monitor.yaml).",
)


def app_for(ctx: click.Context) -> App:
    """The ``App`` of this invocation, closed when the command ends."""
    app = App(ctx.find_root().ensure_object(dict).get("config"))
    ctx.call_on_close(app.close)
    return app


def command(group: click.Group, *args: Any, **kwargs: Any) -> Callable[..., Any]:
    """Register a command on ``group`` that receives the ``App`` as its first argument."""

    def decorate(func: Callable[..., Any]) -> click.Command:
        @functools.wraps(func)
        @click.pass_context
        def run(ctx: click.Context, /, *a: Any, **kw: Any) -> Any:
            return func(app_for(ctx), *a, **kw)

        registered: click.Command = group.command(*args, **kwargs)(run)
        return config_option(registered)

    return decorate


class Lazy(NamedTuple):
    """Where a command is (``module:attribute``) and its one-line summary."""

    target: str
    summary: str


class LazyGroup(click.Group):
    """A group whose commands are imported on first use.

    ``--help`` lists them from their summaries without importing anything; the
    summaries repeat the first sentence of each command's help (a test holds them
    equal).
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, Lazy] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            self.add_command(self._load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def _load(self, cmd_name: str) -> click.Command:
        module_name, attribute = self.lazy_commands[cmd_name].target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in self.commands or name not in self.lazy_commands:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
            else:
                # Shortened exactly as click shortens a loaded command's help.
                command = click.Command(name, help=self.lazy_commands[name].summary)
            rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class MonitorGroup(LazyGroup):
    """Turns every ``MonitorError`` into one line on stderr and its exit code."""

    # True when this process is the ``monitor`` program (arguments from sys.argv), not
    # a caller running a command in its own process (tests).
    as_program = False

    def main(self, args: Sequence[str] | None = None, *rest: Any, **extra: Any) -> Any:
        if args is None:
            self.as_program = True
        return super().main(args, *rest, **extra)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # Loading a command imports most of what it uses (SQLAlchemy, trafilatura), which
        # leaves no garbage: the collector is paused meanwhile (5 % of the loading).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            resolved = super().resolve_command(ctx, args)
        finally:
            if self.as_program:
                # What is loaded now lives as long as the process: frozen, it is never
                # scanned again, during the command or by the full collection at exit
                # (tens of ms for the heavy commands).
                gc.freeze()
            if was_enabled:
                gc.enable()
        return resolved

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            echo(f"monitor: error: {redact_text(str(exc))}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("monitor: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:
            # A database that went away mid-command; SQLAlchemy is only loaded (and its
            # errors only possible) when the command used a database.
            if "sqlalchemy.exc" not in sys.modules:
                raise
            import sqlalchemy as sa

            if not isinstance(exc, sa.exc.OperationalError):
                raise
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            echo(f"monitor: error: {redact_text(f'database error: {reason}')}", err=True)
            sys.exit(1)


_FEEDS_SUMMARY = "Show every feed's health: status, last success, errors, next poll, articles."

# Every command of ``monitor``: where it is defined, and the first sentence of its help.
COMMANDS = {
    "alerts": Lazy(
        "monitor.cli.alerts:alerts", "List pending, failed and sent alerts, newest first, and each channel's state."
    ),
    "analyze": Lazy(
        "monitor.cli.archive:analyze", "Extract, dedup and match local .txt/.html files without storing anything."
    ),
    "feed-urls": Lazy(
        "monitor.cli.feed_urls:feed_urls", "Print the URLs of the Atom feeds to subscribe to in a feed reader."
    ),
    "export": Lazy(
        "monitor.cli.export:export",
        "Stream every article matching QUERY with its whole text, as JSON Lines or CSV.",
    ),
    "feeds": Lazy("monitor.cli.feeds:feeds", _FEEDS_SUMMARY),
    "import": Lazy(
        "monitor.cli.archive:import_files", "Store local .txt/.html files as archived articles (backfills)."
    ),
    "init": Lazy("monitor.cli.archive:init", "Create or upgrade the schema and load the seed corpus."),
    "poll": Lazy("monitor.cli.feeds:poll", "Poll every active feed once, deliver due alerts, print a summary, exit."),
    "rules": Lazy("monitor.cli.rules:rules", "List the alert rules: name, query, channels, digest."),
    "rematch": Lazy(
        "monitor.cli.rematch:rematch", "Recompute stored articles' mentions after the entities changed; never alerts."
    ),
    "run": Lazy(
        "monitor.cli.feeds:run", "Run the daemon: poll every feed on its interval, send alerts, until SIGTERM/SIGINT."
    ),
    "search": Lazy("monitor.cli.search:search", "List archived articles matching QUERY, newest first."),
    "serve": Lazy("monitor.cli.serve:serve", "Serve the HTTP API, the Atom feed of mentions and the search page."),
    "status": Lazy("monitor.cli.feeds:status", _FEEDS_SUMMARY),
}


@click.group(
    cls=MonitorGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@config_option
@click.version_option(package_name="news-monitor")
def main() -> None:
    """Watch news feeds, recognise syndicated copies, alert on tracked entities.

    \b
    Quick start:
      monitor init                      # create the database, load the seed corpus
      monitor poll                      # poll every feed once
      monitor run                       # the daemon
      monitor search "Almaty" --json    # query the archive
    """
