"""The ``monitor`` command.

Each area of the product adds its commands from its own module (``archive``,
``search``, ``feeds``, ``alerts``, ``serve``). Every command takes ``--config``; any
``MonitorError`` becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

import click
import sqlalchemy as sa

from monitor.config import Settings, load_settings
from monitor.db import make_engine, require_current_schema
from monitor.errors import DatabaseError, MonitorError


class App:
    """What a command needs, built on first use from ``--config`` and the environment."""

    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self._engine: sa.Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path, os.environ)
            logging.basicConfig(
                level=self._settings.log_level.upper(),
                format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                stream=sys.stderr,
            )
            # Alembic narrates every schema check ("Context impl SQLiteImpl."); commands
            # say what matters themselves.
            logging.getLogger("alembic").setLevel(logging.WARNING)
            # APScheduler logs each run of each job; the daemon logs each poll itself.
            logging.getLogger("apscheduler").setLevel(logging.WARNING)
        return self._settings

    @property
    def engine(self) -> sa.Engine:
        """The engine of a database whose schema is current."""
        if self._engine is None:
            engine = make_engine(self.settings.database_url)
            require_current_schema(engine)
            self._engine = engine
        return self._engine

    def raw_engine(self) -> sa.Engine:
        """The engine without the schema check (for ``init``)."""
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()


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

        return config_option(group.command(*args, **kwargs)(run))

    return decorate


class MonitorGroup(click.Group):
    """Turns every ``MonitorError`` into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            click.echo(f"monitor: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except sa.exc.OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            click.echo(f"monitor: error: {DatabaseError(f'database error: {reason}')}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("monitor: interrupted", err=True)
            sys.exit(130)


@click.group(cls=MonitorGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def _register() -> None:
    # Imported for their side effect of adding commands to ``main``.
    from monitor.cli import archive  # noqa: F401

    for name in ("search", "feeds", "alerts", "serve"):
        try:
            __import__(f"monitor.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"monitor.cli.{name}":
                raise


_register()
