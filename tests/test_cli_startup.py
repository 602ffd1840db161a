"""``monitor`` starts fast: commands load on first use, heavy libraries only where used.

Checked through ``sys.modules`` of a fresh process, not through timings: what is not
imported costs nothing (the figures are in BENCHMARKS.md, "Command start-up").
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from monitor.cli import COMMANDS, main
from monitor.db import alembic_config, head_revisions, make_engine, script_head, upgrade_schema

# Libraries and modules a command must load only when it does what needs them.
HEAVY = [
    "trafilatura",
    "alembic",
    "fastapi",
    "uvicorn",
    "apscheduler",
    "httpx",
    "feedparser",
    "monitor.alerts.dispatch",
]

# Runs ``monitor`` with the given arguments in this process, then prints the modules
# loaded by then as the last line of stdout.
PROBE = """
import json, sys
from monitor.cli import main
try:
    main(sys.argv[1:], prog_name="monitor")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""


def _loaded(*code_or_args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", *code_or_args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
        check=True,
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def _heavy(modules: set[str], names: list[str]) -> list[str]:
    return sorted(n for n in names if n in modules or any(m.startswith(n + ".") for m in modules))


def test_importing_the_cli_loads_no_heavy_library() -> None:
    loaded = _loaded("import json, sys, monitor.cli; print(json.dumps(sorted(sys.modules)))")
    assert _heavy(loaded, HEAVY) == []


def test_help_loads_neither_commands_nor_database_libraries() -> None:
    loaded = _loaded(PROBE, "--help")
    assert _heavy(loaded, [*HEAVY, "sqlalchemy", "sqlmodel", "pydantic", "yaml", "monitor.config"]) == []
    assert not [m for m in loaded if m.startswith("monitor.cli.")]


def test_search_loads_no_extraction_migration_or_api_library(tmp_path: Path) -> None:
    database = tmp_path / "monitor.db"
    engine = make_engine(f"sqlite:///{database}")
    upgrade_schema(engine)
    engine.dispose()
    config = tmp_path / "monitor.yaml"
    config.write_text(f"database_url: sqlite:///{database}\nfeeds: []\n", encoding="utf-8")
    loaded = _loaded(PROBE, "--config", str(config), "search", "Almaty", cwd=tmp_path)
    assert "monitor.search" in loaded  # the command ran
    assert _heavy(loaded, HEAVY) == []


def test_feed_urls_loads_no_api_library(tmp_path: Path) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("feeds: []\napi_token: secret-token-of-some-length\n", encoding="utf-8")
    loaded = _loaded(PROBE, "--config", str(config), "feed-urls", cwd=tmp_path)
    assert "monitor.feed_tokens" in loaded  # the command ran
    assert _heavy(loaded, HEAVY) == []


def test_help_lists_every_command_with_the_summary_of_its_help() -> None:
    context = click.Context(main)
    for name, lazy in COMMANDS.items():
        command = main.get_command(context, name)
        assert command is not None, name
        assert command.get_short_help_str(300) == click.Command(name, help=lazy.summary).get_short_help_str(300), (
            f"COMMANDS[{name!r}].summary differs from the first sentence of `monitor {name} --help`"
        )
    # Every command the modules define is in the table (none only reachable once loaded).
    assert set(main.commands) <= set(COMMANDS)


HELP = """
import click, sys
from monitor.cli import main
if sys.argv[1] == "loaded":
    context = click.Context(main)
    for name in main.list_commands(context):
        main.get_command(context, name)
main(["--help"], prog_name="monitor")
"""


def test_help_reads_the_same_with_commands_loaded_or_not() -> None:
    def show(mode: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", HELP, mode], capture_output=True, text=True, timeout=60, check=True
        )
        return result.stdout

    lazy = show("lazy")
    assert lazy == show("loaded")
    for name in COMMANDS:
        assert f"\n  {name} " in lazy.split("Commands:")[1]


def test_the_schema_check_reads_the_same_head_as_alembic() -> None:
    assert script_head() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def _migration(versions: Path, revision: str, down: str) -> None:
    (versions / f"{revision}_step.py").write_text(
        f'"""step"""\n\nrevision: str = "{revision}"\ndown_revision: str | None = {down}  # parent\n'
        "branch_labels = None\n",
        encoding="utf-8",
    )


def test_head_revisions_follow_branches_and_merges(tmp_path: Path) -> None:
    _migration(tmp_path, "a", "None")
    _migration(tmp_path, "b", '"a"')
    assert head_revisions(tmp_path) == {"b"}
    _migration(tmp_path, "c", '"a"')
    assert head_revisions(tmp_path) == {"b", "c"}
    _migration(tmp_path, "d", '("b", "c")')
    assert head_revisions(tmp_path) == {"d"}
    (tmp_path / "helpers.py").write_text("x = 1\n", encoding="utf-8")  # not a migration
    assert head_revisions(tmp_path) == {"d"}


@pytest.mark.parametrize("down", ["PARENT", '"a" if True else None'])
def test_head_revisions_leave_scripts_they_cannot_read_to_alembic(tmp_path: Path, down: str) -> None:
    _migration(tmp_path, "a", "None")
    _migration(tmp_path, "b", down)
    assert head_revisions(tmp_path) is None


def test_a_command_run_in_process_leaves_the_garbage_collector_as_it_was() -> None:
    # As the program, ``monitor`` pauses the collector while it loads a command and
    # freezes what is loaded; a caller running a command in its own process keeps its
    # collector untouched.
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(main, ["search", "--limit", "many"])
    assert result.exit_code == 2 and "--limit" in result.output
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen
