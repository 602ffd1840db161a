"""Configuration: YAML, ${VAR} expansion, MONITOR_* overrides, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.config import DEFAULT_ENTITIES, Settings, load_settings, parse_duration
from monitor.db import describe_database
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_default_config_is_valid() -> None:
    settings = load_settings(ROOT / "config" / "monitor.yaml", {})
    # Relative to config/: the project's data/ and seeds/, from whatever directory.
    assert settings.database_url == f"sqlite:///{ROOT / 'data' / 'monitor.db'}"
    assert settings.seeds_dir == ROOT / "seeds"
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


@pytest.mark.parametrize("text", ["999999999999w", "5300w", "9" * 400, 1e300, float("inf"), "36525d1s"])
def test_durations_past_a_hundred_years_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="100 years"):
        parse_duration(text)
    assert parse_duration("36525d") == 36525 * 86400


def test_nan_is_not_a_duration() -> None:
    with pytest.raises(ValueError, match="positive"):
        parse_duration(float("nan"))


def test_an_endless_interval_in_the_config_is_one_clear_line(config_file: Callable[..., Path]) -> None:
    path = config_file("poll:\n  interval: 999999999999w\nserve:\n  statement_timeout: 2s\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    message = str(caught.value)
    assert message.startswith("config: poll.interval: ") and "100 years" in message
    assert "\n" not in message
    settings = load_settings(config_file("serve:\n  statement_timeout: 250ms\n"), {})
    assert settings.serve.statement_timeout == 0.25
    assert (settings.serve.login_attempts, settings.serve.login_window) == (5, 60)


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
    assert settings.database_url == f"sqlite:///{path.parent.resolve() / 'x.db'}"


@pytest.mark.parametrize(
    ("yaml_text", "env", "expected"),
    [
        ("poll:\n  concurrency: 0\n", {}, "poll.concurrency"),
        ("poll:\n  timeout: soon\n", {}, "poll.timeout"),
        ("feeds:\n  - name: X\n    url: ftp://x\n", {}, "feeds.0.url"),
        ("databse_url: sqlite:///x\n", {}, "databse_url: unknown key"),
        ("database_url: mysql://x\n", {}, "database_url"),
        ("database_url: sqlite:///${NOPE}/monitor.db\n", {}, "database_url: environment variable NOPE is not set"),
        ("alerts:\n  public_url: ${NOPE}\n", {}, "alerts.public_url: environment variable NOPE is not set"),
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


def test_every_problem_is_named_on_the_line(config_file: Callable[..., Path]) -> None:
    """One run shows all there is to fix, not the first problem and a count."""
    path = config_file("databse_url: sqlite:///x\npoll:\n  concurrency: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    message = str(caught.value)
    assert "databse_url: unknown key" in message
    assert "poll.concurrency" in message
    assert "\n" not in message


HOOK_TOKEN = "AbCdEfGhIjKlMnOpQrStUvWx"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # Malformed YAML flow: PyYAML's own message would quote the value over eight lines.
        (
            {"MONITOR_ALERTS__WEBHOOKS": f"[{{url: https://hooks.slack.com/services/T0/B0/{HOOK_TOKEN}, secret: s"},
            "MONITOR_ALERTS__WEBHOOKS: not valid YAML flow (did not find expected ',' or '}'",
        ),
        # Well-formed, refused by a validator that quotes what it refuses.
        (
            {"MONITOR_ALERTS__WEBHOOKS": f"[{{url: hooks.slack.com/services/T0/B0/{HOOK_TOKEN}, secret: s}}]"},
            "alerts.webhooks.0.url: the value is not an http(s) URL",
        ),
        ({"MONITOR_POLL__TIMEOUT": HOOK_TOKEN}, "poll.timeout: the value is not a duration"),
        ({"MONITOR_API_TOKEN": "[" + HOOK_TOKEN}, "MONITOR_API_TOKEN: not valid YAML flow"),
    ],
)
def test_an_override_error_names_the_variable_never_its_value(
    config_file: Callable[..., Path], env: dict[str, str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file("{}"), env)
    message = str(caught.value)
    assert expected in message and HOOK_TOKEN not in message and "\n" not in message


def test_a_file_value_is_still_quoted_in_its_error(config_file: Callable[..., Path]) -> None:
    path = config_file("poll: {timeout: forever}\n")
    with pytest.raises(ConfigError, match="'forever' is not a duration"):
        load_settings(path, {"MONITOR_POLL__CONCURRENCY": "3"})


def test_a_file_that_is_not_utf8_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_bytes("feeds:\n  - {name: caf\u00e9, url: 'https://a.example/'}\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    assert str(caught.value) == f"config: {path}: not UTF-8 text (byte 0xe9 at line 2, column 15)"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql+psycopg://u:pw@h:abc/db", "database_url: the port is not a number"),
        ("postgresql://u:pw@h:/db", "database_url: the port is not a number"),
        ("postgresql+psycopg://u:pw@h:70000/db", "database_url: the port 70000 is not from 1 to 65535"),
        ("postgresql+psycopg:garbage", "database_url: not a database URL"),
    ],
)
def test_a_malformed_database_url_is_one_clear_line_without_its_password(
    config_file: Callable[..., Path], url: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(config_file(json.dumps({"database_url": url})), {})
    assert problem in str(caught.value) and "pw" not in str(caught.value)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.yaml", {})


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None, {})
    assert settings == Settings()
    assert [e.name for e in settings.entities] == ["CSTO", "Nazarbayev", "Almaty"]


# ------------------------------------------------------------------ relative paths


def _project(root: Path, config_text: str) -> Path:
    """A project directory: config/monitor.yaml (``config_text``) and seeds/ with one text."""
    (root / "config").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "seeds" / "one.txt").write_text("Almaty\n\nA seed text about Almaty.\n", encoding="utf-8")
    config = root / "config" / "monitor.yaml"
    config.write_text(config_text, encoding="utf-8")
    return config


def test_relative_paths_in_the_file_are_taken_from_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _project(
        tmp_path / "project",
        "database_url: sqlite:///../data/monitor.db\nseeds_dir: ../seeds\n"
        "alerts:\n  email:\n    sender: a@b.example\n    recipients: [c@d.example]\n    ca_file: certs/ca.pem\n",
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(Path("../project/config/monitor.yaml"), {})
    project = (tmp_path / "project").resolve()
    assert settings.database_url == f"sqlite:///{project / 'data' / 'monitor.db'}"
    assert settings.seeds_dir == project / "seeds"
    assert settings.alerts.email is not None
    assert settings.alerts.email.ca_file == project / "config" / "certs" / "ca.pem"
    # The same through $MONITOR_CONFIG, and through a ${VAR} expanded in the file.
    assert load_settings(None, {"MONITOR_CONFIG": str(config)}).database_url == settings.database_url
    config.write_text("database_url: ${DB:-sqlite:///x.db}\n", encoding="utf-8")
    assert load_settings(config, {}).database_url == f"sqlite:///{project / 'config' / 'x.db'}"


def test_relative_paths_in_variables_are_taken_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _project(tmp_path / "project", "database_url: sqlite:///../data/monitor.db\nseeds_dir: ../seeds\n")
    monkeypatch.chdir(tmp_path)
    env = {
        "MONITOR_DATABASE_URL": "sqlite:///here.db?timeout=5",
        "MONITOR_SEEDS_DIR": "my-seeds",
        "MONITOR_ALERTS__EMAIL": "{sender: a@b.example, recipients: [c@d.example], ca_file: ca.pem}",
    }
    settings = load_settings(config, env)
    here = tmp_path.resolve()
    assert settings.database_url == f"sqlite:///{here / 'here.db'}?timeout=5"
    assert settings.seeds_dir == here / "my-seeds"
    assert settings.alerts.email is not None and settings.alerts.email.ca_file == here / "ca.pem"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:////srv/monitor/monitor.db",
        "sqlite:///file:monitor.db?mode=ro&uri=true",
        "postgresql+psycopg://monitor:secret@db/monitor",
    ],
)
def test_urls_without_a_relative_file_are_left_as_they_are(config_file: Callable[..., Path], url: str) -> None:
    assert load_settings(config_file(f"database_url: '{url}'\n"), {}).database_url == url


def test_a_command_run_elsewhere_uses_the_database_beside_its_configuration(tmp_path: Path) -> None:
    config = _project(
        tmp_path / "project", "database_url: sqlite:///../data/monitor.db\nseeds_dir: ../seeds\nfeeds: []\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "MONITOR_CONFIG": str(config)}
    monitor = [sys.executable, "-c", "import sys; from monitor.cli import main; sys.exit(main())"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*monitor, *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)

    database = (tmp_path / "project" / "data" / "monitor.db").resolve()
    init = run("init")
    assert init.returncode == 0, init.stderr
    assert init.stdout.splitlines()[0] == f"database: sqlite:///{database}"
    assert "1 new seed text(s)" in init.stdout
    assert database.exists()
    feeds = run("feeds")
    assert feeds.returncode == 0, feeds.stderr
    assert feeds.stdout.splitlines()[0] == f"database: sqlite:///{database}"
    search = run("search", "Almaty")
    assert search.returncode == 0, search.stderr
    assert list(elsewhere.iterdir()) == []  # nothing created where the command ran


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://monitor:s3cret@db:5432/monitor", "postgresql+psycopg://monitor:***@db:5432/monitor"),
        ("postgresql+psycopg://monitor@db/monitor", "postgresql+psycopg://monitor@db/monitor"),
        ("sqlite:////srv/monitor.db", "sqlite:////srv/monitor.db"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
    ],
)
def test_the_database_is_shown_without_its_password(url: str, shown: str) -> None:
    assert describe_database(url) == shown


def test_a_relative_sqlite_file_is_shown_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert describe_database("sqlite:///data/monitor.db") == f"sqlite:///{Path.cwd() / 'data' / 'monitor.db'}"
