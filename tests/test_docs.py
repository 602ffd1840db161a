"""The documentation keeps up with the command line."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import click
import pytest

from monitor.alerts.webhook import signature, signing_key
from monitor.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "monitor") -> list[tuple[str, click.Command]]:
    found = []
    context = click.Context(group)
    for name in group.list_commands(context):  # commands load on first use: list, then get
        command = group.get_command(context, name)
        assert command is not None, name
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


@pytest.mark.parametrize("secret", ["whsec_" + base64.b64encode(b"0123456789abcdef0123").decode(), "plain secret ✓"])
def test_the_readme_webhook_verifier_accepts_our_signatures_and_nothing_else(secret: str) -> None:
    (snippet,) = [block for block in re.findall(r"```python\n(.*?)```", README, re.S) if "def verified" in block]
    namespace: dict[str, object] = {}
    exec(snippet.replace('SECRET = "whsec_..."', f"SECRET = {secret!r}"), namespace)
    verified = namespace["verified"]
    body, stamp = b'{"type":"mention.created"}', int(time.time())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v0,bogus " + signature(signing_key(secret), "msg_1", stamp, body),
    }
    assert verified(headers, body)
    assert not verified(headers, body + b" ")
    assert not verified({**headers, "webhook-id": "msg_2"}, body)
    stale = str(stamp - 3600)
    assert not verified(
        {
            **headers,
            "webhook-timestamp": stale,
            "webhook-signature": signature(signing_key(secret), "msg_1", int(stale), body),
        },
        body,
    )
