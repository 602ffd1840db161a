"""The documentation keeps up with the command line."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from monitor.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "monitor") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append((f"{prefix} {name}", command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix} {name}"))
    return found


@pytest.mark.parametrize(("name", "command"), _commands(main), ids=lambda v: str(v))
def test_every_command_is_in_the_readme_and_has_help(name: str, command: click.Command) -> None:
    assert f"`{name}" in README, f"README.md does not mention `{name}`"
    assert command.help and command.help.strip(), f"{name} has no help text"


def test_readme_shows_the_two_commands() -> None:
    assert "scripts/run" in README and "scripts/test" in README
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "scripts/test" in ci
