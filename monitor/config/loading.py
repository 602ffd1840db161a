"""Reading the settings: the YAML file, ``${VAR}`` expansion, ``MONITOR_*`` overrides, paths.

See the package's docstring for the precedence and how relative paths resolve.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from monitor.config.schema import Settings
from monitor.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/monitor.yaml")
ENV_PREFIX = "MONITOR_"
# Variables with the prefix that are not configuration keys.
ENV_NOT_KEYS = {"MONITOR_CONFIG"}
# The settings that are paths, relative ones being resolved on load (see above).
PATH_KEYS = (("database_url",), ("seeds_dir",), ("alerts", "email", "ca_file"))


# libyaml's parser when PyYAML has it: ten times faster on the shipped file.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER)  # a safe loader, C or Python


_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


# The channels' sections: a variable they use may be unset until something is sent.
_CHANNEL_KEY = re.compile(r"alerts\.(email|(?:webhooks|apprise)\[\d+\])(?=[.\[]|$)")


def _expand(value: Any, env: Mapping[str, str], key: str, unset: list[tuple[str, str]]) -> Any:
    """``value`` with ``${VAR}`` expanded; a channel's unset variable is left as written
    and noted in ``unset`` as (key path, variable); any other one is an error."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            if _CHANNEL_KEY.match(key):
                unset.append((key, name))
                return "${" + name + "}"
            raise ConfigError(f"config: {key or 'value'}: environment variable {name} is not set")

        return _VAR_RE.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{key}.{k}" if key else str(k), unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, f"{key}[{i}]", unset) for i, v in enumerate(value)]
    return value


def _note_unset(settings: Settings, unset: list[tuple[str, str]]) -> None:
    """Tell each channel which of its variables are unset (``require_secrets`` reads it)."""
    for key, name in unset:
        match = _CHANNEL_KEY.match(key)
        if match is None:
            continue
        section, _, index = match.group(1).partition("[")
        if section == "email":
            channel: Any = settings.alerts.email
        else:
            channels = getattr(settings.alerts, section, None) or []
            position = int(index.rstrip("]"))
            channel = channels[position] if position < len(channels) else None
        if channel is not None:
            channel._unset = (*channel.unset_variables, (key, name))


def require_secrets(settings: Settings, keys: Collection[str] | None = None) -> None:
    """Refuse to send through a channel (of ``keys``, else any) with an unset variable.

    ``ConfigError``, one line: the key, the variable and the channel that needs it.
    """
    for channel in settings.alerts.channels:
        if keys is not None and channel.key not in keys:
            continue
        for key, name in channel.unset_variables:
            raise ConfigError(
                f"config: {key}: environment variable {name} is not set (needed to send to {channel.key})"
            )


def _absolute_sqlite_url(url: str, base: Path) -> str:
    if not url.startswith("sqlite"):
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # malformed: left as it is, for the engine to report
        return url
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:") or Path(database).is_absolute():
        return url
    return parsed.set(database=str((base / database).resolve())).render_as_string(hide_password=False)


def _absolute(key: tuple[str, ...], value: Any, base: Path) -> Any:
    if key == ("database_url",):
        return _absolute_sqlite_url(value, base) if isinstance(value, str) else value
    if isinstance(value, str | Path) and str(value) and not Path(value).is_absolute():
        return str((base / value).resolve())
    return value


def _resolve_paths(value: Any, at: tuple[str, ...], base: Path) -> Any:
    """``value``, the configuration at key path ``at``, with relative paths made absolute against ``base``."""
    for key in PATH_KEYS:
        if key[: len(at)] != at:
            continue
        rest = key[len(at) :]
        if not rest:
            return _absolute(key, value, base)
        node = value
        for part in rest[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and rest[-1] in node:
            node[rest[-1]] = _absolute(key, node[rest[-1]], base)
    return value


def _env_value(raw: str) -> Any:
    # Structured values (lists, mappings) are written as YAML flow: "[a, b]".
    if raw.strip()[:1] in ("[", "{"):
        try:
            return _yaml(raw)
        except yaml.YAMLError as exc:
            # Only the problem and its place: PyYAML's own message quotes the value,
            # and a variable's value is often a secret (a webhook's URL, a password).
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "invalid YAML"
            raise ConfigError(f"not valid YAML flow ({problem}{where}); its value is not shown") from None
    return raw


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with every ``MONITOR_*`` variable's value set at its key path."""
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_KEYS:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if not all(path):
            raise ConfigError(f"config: {name}: malformed variable name")
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"config: {name}: {part} is not a section")
            node = child
        try:
            node[path[-1]] = _resolve_paths(_env_value(env[name]), tuple(path), Path.cwd())
        except ConfigError as exc:
            raise ConfigError(f"config: {name}: {exc}") from None
    return data


def _env_keys(env: Mapping[str, str]) -> list[tuple[str, ...]]:
    """The key paths the ``MONITOR_*`` variables set."""
    return [
        tuple(name[len(ENV_PREFIX) :].lower().split("__"))
        for name in env
        if name.startswith(ENV_PREFIX) and name not in ENV_NOT_KEYS
    ]


def _describe(error: ValidationError, hidden: list[tuple[str, ...]], unset: Collection[str] = ()) -> str:
    """Every problem on one line, separated by "; ", so that one run shows all to fix."""
    return "; ".join(_problem(problem, hidden, unset) for problem in error.errors())


def _problem(first: ErrorDetails, hidden: list[tuple[str, ...]], unset: Collection[str]) -> str:
    """One problem: where and what; a value under a key path of ``hidden`` is not quoted.

    A value that fails because it holds a variable in ``unset`` says so instead.
    """
    where = ".".join(str(p) for p in first["loc"]) or "config"
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if isinstance(value, str):
        missing = [var for var, default in _VAR_RE.findall(value) if var in unset and not default]
        if missing:
            return f"{where}: environment variable {missing[0]} is not set"
    if isinstance(value, str) and value and any(tuple(map(str, first["loc"]))[: len(k)] == k for k in hidden):
        # Set by a variable: the value may be a secret, and the key says where it is.
        message = message.replace(repr(value), "the value").replace(value, "the value")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    # A problem of the whole file (``rules: …``) names its key itself.
    return f"{where}: {message}" if first["loc"] else message


def _bad_byte(error: UnicodeDecodeError) -> str:
    """Where the text stops being UTF-8: the byte, its line and its column."""
    before = error.object[: error.start]
    line = before.count(b"\n") + 1
    column = error.start - (before.rfind(b"\n") + 1) + 1
    return f"byte {error.object[error.start]:#04x} at line {line}, column {column}"


def resolve_config_path(cli_path: str | Path | None, env: Mapping[str, str]) -> Path:
    """``--config``, else ``$MONITOR_CONFIG``, else ``config/monitor.yaml``."""
    if cli_path:
        return Path(cli_path)
    if env.get("MONITOR_CONFIG"):
        return Path(env["MONITOR_CONFIG"])
    return DEFAULT_CONFIG_PATH


def load_settings(path: str | Path | None, env: Mapping[str, str]) -> Settings:
    """Read, expand, override and validate the configuration.

    A missing file is an error when a path was asked for explicitly; the default path
    may be absent, in which case defaults and environment variables apply.
    """
    config_path = resolve_config_path(path, env)
    explicit = path is not None or bool(env.get("MONITOR_CONFIG"))
    data: Any = {}
    if config_path.exists():
        try:
            data = _yaml(config_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"config: {config_path}{where}: invalid YAML: {problem}") from None
        except OSError as exc:
            raise ConfigError(f"config: cannot read {config_path}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config: {config_path}: not UTF-8 text ({_bad_byte(exc)})") from None
    elif explicit:
        raise ConfigError(f"config: {config_path}: no such file")
    if not isinstance(data, dict):
        raise ConfigError(f"config: {config_path}: the top level must be a mapping of keys")
    unset: list[tuple[str, str]] = []
    data = _expand(data, env, "", unset)
    data = _resolve_paths(data, (), config_path.absolute().parent)
    data = _apply_env_overrides(data, env)
    names = {name for _, name in unset}
    try:
        settings = Settings.model_validate(data, context={"unset_variables": names})
    except ValidationError as exc:
        raise ConfigError(f"config: {_describe(exc, _env_keys(env), names)}") from None
    _note_unset(settings, unset)
    return settings
