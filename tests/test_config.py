"""Configuration: YAML, ${VAR} expansion, MONITOR_* overrides, one-line errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.config import DEFAULT_ENTITIES, Settings, load_settings, parse_duration
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_default_config_is_valid() -> None:
    settings = load_settings(ROOT / "config" / "monitor.yaml", {})
    assert settings.database_url == "sqlite:///data/monitor.db"
    assert settings.feeds, "the default config should watch some feeds"
    assert {e.name for e in settings.entities} == {"CSTO", "Nazarbayev", "Almaty"}
    # The file and the built-in defaults list the same aliases.
    assert {e.name: e.aliases for e in settings.entities} == {e.name: e.aliases for e in DEFAULT_ENTITIES}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("15m", 900), ("20s", 20), ("1h30m", 5400), ("2d", 172800), ("90", 90), (45, 45), ("500ms", 0.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "15 minutes", "-5s", "0", "1x", True])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_env_overrides_nested_keys(config_file: Callable[..., Path]) -> None:
    path = config_file("poll:\n  concurrency: 5\nfeeds: []\n")
    env = {
        "MONITOR_POLL__CONCURRENCY": "7",
        "MONITOR_POLL__TIMEOUT": "3s",
        "MONITOR_DATABASE_URL": "postgresql://u@h/db",
        "MONITOR_FEEDS": "[{name: A, url: 'https://a.example/rss'}]",
        "MONITOR_CONFIG": str(path),
    }
    settings = load_settings(None, env)
    assert settings.poll.concurrency == 7
    assert settings.poll.timeout == 3
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert [f.name for f in settings.feeds] == ["A"]


def test_variables_are_expanded(config_file: Callable[..., Path]) -> None:
    path = config_file(
        "alerts:\n  webhooks:\n    - url: https://h.example/x\n      secret: ${HOOK_SECRET}\n"
        "database_url: ${DB:-sqlite:///x.db}\n"
    )
    settings = load_settings(path, {"HOOK_SECRET": "s3cret"})
    assert settings.alerts.webhooks[0].secret == "s3cret"
    assert settings.database_url == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("yaml_text", "env", "expected"),
    [
        ("poll:\n  concurrency: 0\n", {}, "poll.concurrency"),
        ("poll:\n  timeout: soon\n", {}, "poll.timeout"),
        ("feeds:\n  - name: X\n    url: ftp://x\n", {}, "feeds.0.url"),
        ("databse_url: sqlite:///x\n", {}, "databse_url: unknown key"),
        ("database_url: mysql://x\n", {}, "database_url"),
        ("alerts:\n  email:\n    sender: a@b\n    recipients: [c@d]\n    password: ${NOPE}\n", {}, "NOPE"),
        ("feeds: [\n", {}, "invalid YAML"),
        ("- just\n- a list\n", {}, "mapping"),
        ("{}", {"MONITOR_POLL__CONCURRENCY": "many"}, "poll.concurrency"),
        ("{}", {"MONITOR_BOGUS": "1"}, "bogus: unknown key"),
        (
            "feeds:\n  - {name: A, url: 'https://a.example/1'}\n  - {name: A, url: 'https://a.example/2'}\n",
            {},
            "duplicate name",
        ),
    ],
)
def test_bad_config_is_one_clear_line(
    config_file: Callable[..., Path], yaml_text: str, env: dict[str, str], expected: str
) -> None:
    path = config_file(yaml_text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.yaml", {})


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {})
    assert settings == Settings()
    assert [e.name for e in settings.entities] == ["CSTO", "Nazarbayev", "Almaty"]
