"""One validated ``Settings`` object, built once from YAML and the environment.

Precedence, lowest first: built-in defaults, the YAML file, ``MONITOR_<KEY>`` variables
(``__`` separates nested keys: ``MONITOR_POLL__CONCURRENCY=5``). ``${VAR}`` and
``${VAR:-default}`` inside YAML string values are expanded from the environment, so
secrets stay out of the file. Any problem becomes a ``ConfigError`` whose message is
one line naming the key.

Relative paths — the file of an SQLite ``database_url``, ``seeds_dir`` and
``alerts.email.ca_file`` — are taken from the directory of the file that gives them, so
a configuration means the same database whatever directory the command runs in (the
shipped ``config/monitor.yaml`` says ``sqlite:///../data/monitor.db``: the project's
``data/``). A relative path given by a ``MONITOR_*`` variable is taken from the current
directory, as any path typed in a shell is, and so are the built-in defaults
(``sqlite:///data/monitor.db``, ``seeds``), which apply when neither gives the key.

Nothing here reads the environment implicitly: ``load_settings`` takes the mapping to
read, and callers pass ``os.environ`` once, at the edge (the CLI).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/monitor.yaml")
ENV_PREFIX = "MONITOR_"
# Variables with the prefix that are not configuration keys.
ENV_NOT_KEYS = {"MONITOR_CONFIG"}
# The settings that are paths, relative ones being resolved on load (see above).
PATH_KEYS = (("database_url",), ("seeds_dir",), ("alerts", "email", "ca_file"))

_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Longer than any interval, timeout or time filter means anything; past it a duration
# overflows the date arithmetic it feeds (``now - timedelta``) or never comes round.
MAX_DURATION = 100 * 365.25 * 86400
MAX_DURATION_TEXT = "100 years"


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90"``, ``"20s"``, ``"15m"``, ``"1h30m"`` or ``"2d"``."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            parts = _DURATION_RE.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(f"{value!r} is not a duration such as 30s, 15m or 1h")
            seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    else:
        raise ValueError("expected a duration such as 30s, 15m or 1h")
    if math.isnan(seconds) or seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is longer than the longest duration allowed ({MAX_DURATION_TEXT})")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PollSettings(_Strict):
    interval: Duration = 900.0
    concurrency: int = Field(20, ge=1, le=1000)
    per_host: int = Field(2, ge=1, le=100)
    timeout: Duration = 20.0
    max_bytes: int = Field(5_000_000, ge=1024)
    max_redirects: int = Field(5, ge=0, le=30)
    allow_private_networks: bool = False
    user_agent: str = "news-monitor/0.1 (+https://github.com/news-monitor/news-monitor)"
    # How long a worker may hold a feed before another worker may take it over.
    lease: Duration = 300.0
    # Ceiling of the exponential back-off of a failing feed.
    max_backoff: Duration = 86400.0
    # Process pool size for text extraction; 0 means one per CPU core.
    extract_workers: int = Field(0, ge=0, le=256)
    # How often the daemon looks for feeds that are due.
    tick: Duration = 5.0
    # On SIGTERM, how long in-flight polls may run before they are abandoned.
    shutdown_grace: Duration = 10.0
    # Pages of one feed fetched or extracted at once: a feed whose pages never answer
    # holds this many of the shared page slots, never all of them.
    per_feed_pages: int = Field(4, ge=1, le=1000)
    # New entries taken from a feed in one poll, oldest first; the rest wait for the next.
    max_new_entries: int = Field(100, ge=1, le=100_000)
    # The most one feed's whole refresh (feed, pages, extraction, storing) may take;
    # under ``lease``, so that a poll ends before its lease (``monitor poll`` renews none).
    feed_deadline: Duration = 240.0
    # The most one page's extraction may take; its process is killed and replaced after.
    extract_timeout: Duration = 20.0


class FeedConfig(_Strict):
    name: str = Field(min_length=1)
    url: str
    interval: Duration | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url, re.IGNORECASE):
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url


class EntityConfig(_Strict):
    name: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _aliases_include_name(self) -> EntityConfig:
        aliases = [a.strip() for a in self.aliases if a and a.strip()]
        if self.name not in aliases:
            aliases.insert(0, self.name)
        object.__setattr__(self, "aliases", aliases)
        return self


# The tracked entities when the config lists none; config/monitor.yaml repeats them.
# List spellings only: case, accents, hyphen/space variants, possessives and Russian
# and Kazakh case endings are handled by the matcher (monitor.pipeline.match).
DEFAULT_ENTITIES = [
    EntityConfig(
        name="CSTO",
        aliases=[
            "CSTO",
            "Collective Security Treaty Organization",
            "Collective Security Treaty Organisation",
            "ОДКБ",
            # Russian: the head noun comes first, so its cases are listed.
            "Организация Договора о коллективной безопасности",
            "Организации Договора о коллективной безопасности",
            "Организацию Договора о коллективной безопасности",
            "Организацией Договора о коллективной безопасности",
            "ҰҚШҰ",
            "Ұжымдық қауіпсіздік туралы шарт ұйымы",
            "OTSC",
            "Organisation du traité de sécurité collective",
            "Organización del Tratado de Seguridad Colectiva",
            "ODKB",
            "OVKS",
            "Organisation des Vertrags über kollektive Sicherheit",
            "Kolektif Güvenlik Antlaşması Örgütü",
        ],
    ),
    EntityConfig(
        name="Nazarbayev",
        aliases=[
            "Nazarbayev",
            "Nazarbaev",
            "Nazarbajev",
            "Nazarbajew",
            "Nasarbajew",
            "Nazarbaïev",
            "Назарбаев",
            "Nursultan Nazarbayev",
            "Nursultan Nazarbaev",
            "Нурсултан Назарбаев",
            "Нұрсұлтан Назарбаев",
            # "Leader of the Nation": a title only he has held.
            "Elbasy",
            "Елбасы",
        ],
    ),
    EntityConfig(
        name="Almaty",
        aliases=["Almaty", "Almati", "Alma-Ata", "Ałma-Ata", "Алматы", "Алма-Ата", "阿拉木图"],
    ),
]


class _Channel(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    # Deliver one message per interval with every alert of the window.
    digest: Duration | None = None
    # Only alerts that mention one of these entities; all when unset.
    entities: list[str] | None = None


class EmailSettings(_Channel):
    smtp_host: str = "localhost"
    smtp_port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    tls: bool = False  # implicit TLS (SMTPS, usually port 465)
    username: str | None = None
    password: str | None = None
    # Extra CA certificates (PEM) to trust, for a relay with a private CA.
    ca_file: Path | None = None
    sender: str
    recipients: list[str] = Field(min_length=1)
    timeout: Duration = 30.0
    subject_prefix: str = "[monitor]"

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, sender: str) -> str:
        return _mail_address(sender)

    @field_validator("recipients")
    @classmethod
    def _recipient_addresses(cls, recipients: list[str]) -> list[str]:
        return [_mail_address(r) for r in recipients]

    @model_validator(mode="after")
    def _one_tls_mode(self) -> EmailSettings:
        if self.starttls and self.tls:
            raise ValueError("choose starttls or tls, not both")
        if (self.username or self.password) and not (self.starttls or self.tls):
            raise ValueError(
                "a login (username, password) without starttls or tls would send the password "
                "unencrypted: set starttls: true (port 587) or tls: true (port 465)"
            )
        return self

    @property
    def key(self) -> str:
        """The channel's identity in the outbox; stable while the config is."""
        return f"email:{self.name}" if self.name else "email"


class WebhookSettings(_Channel):
    url: str
    # ``whsec_`` + base64 (Standard Webhooks), or any other text used as UTF-8 bytes.
    secret: str = Field(min_length=1)
    timeout: Duration = 10.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        return FeedConfig._http_url(url)

    @field_validator("secret")
    @classmethod
    def _secret_decodes(cls, secret: str) -> str:
        if secret.startswith("whsec_"):
            try:
                key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except binascii.Error:
                raise ValueError("a whsec_ secret must be base64 after the prefix") from None
            if not key:
                raise ValueError("the whsec_ secret is empty")
        return secret

    @property
    def key(self) -> str:
        """``webhook:<name>``, else ``webhook:<host>-<hash>`` (``unnamed_webhook_key``)."""
        return f"webhook:{self.name}" if self.name else unnamed_webhook_key(self.url)


def unnamed_webhook_key(url: str) -> str:
    """The key of a webhook without a name: its host (and port), and a short hash of its
    URL without credentials and query, which tells two endpoints of one host apart.

    Never the path itself: a hook's path is often its token (Slack, Discord, Teams), and
    keys are stored, listed and logged. Migration 0005 moved the alerts of the keys that
    held the path (``webhook:https://host/path``) to these, from the same URL parts.
    """
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a number: the delivery reports it
        port = None
    shown = f"{parts.scheme}://{parts.hostname or ''}{f':{port}' if port else ''}{parts.path}"
    digest = hashlib.sha256(shown.encode("utf-8")).hexdigest()[:8]
    return f"webhook:{parts.hostname or ''}{f':{port}' if port else ''}-{digest}"


def _mail_address(value: str) -> str:
    # A header-safe single address: CR/LF would let a config value inject headers.
    value = value.strip()
    if not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+", value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


class AlertSettings(_Strict):
    email: EmailSettings | None = None
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    # Base URL of the web page, used for links in alerts (``monitor serve``).
    public_url: str | None = None
    # Give up retrying a transient failure after this long.
    give_up_after: Duration = 2 * 86400.0
    # Back-off after the first transient failure, doubled on each failure up to retry_max.
    retry_initial: Duration = 30.0
    retry_max: Duration = 3600.0

    @field_validator("public_url")
    @classmethod
    def _public_http_url(cls, url: str | None) -> str | None:
        return None if url is None else FeedConfig._http_url(url).rstrip("/")

    @model_validator(mode="after")
    def _unique_channels(self) -> AlertSettings:
        keys = [w.key for w in self.webhooks]
        doubled = sorted({k for k in keys if keys.count(k) > 1})
        if doubled:
            raise ValueError(f"webhooks: two webhooks are both {doubled[0]!r}: give them names")
        return self

    @property
    def channels(self) -> list[EmailSettings | WebhookSettings]:
        """Every configured channel, e-mail first."""
        return ([self.email] if self.email else []) + list(self.webhooks)


class DedupSettings(_Strict):
    """Thresholds of the duplicate decision; see ``monitor.pipeline.dedup``."""

    # Share of the known text found, in order, in the new one (republished copy) ...
    known_coverage: float = Field(0.5, gt=0, le=1)
    # ... when the known text is at least this share of the new one (not a short
    # brief quoted whole inside a long article).
    copy_new_coverage: float = Field(0.3, gt=0, le=1)
    # Share of the new text found in the known one (excerpt) ...
    new_coverage: float = Field(0.6, gt=0, le=1)
    # ... when the excerpt spans at least this share of the known text.
    excerpt_span: float = Field(0.25, gt=0, le=1)
    # Known texts verified per lookup, those sharing most fingerprints first.
    max_candidates: int = Field(3, ge=1, le=50)
    # A shingle indexed for this many texts is a stock phrase: later texts skip it,
    # which bounds every posting list and so the cost of a lookup.
    max_postings: int = Field(100, ge=2)


class ServeSettings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # The longest a database statement of one request may run; past it the request
    # is a 503 and the statement is cancelled, whether or not the client still waits.
    statement_timeout: Duration = 5.0
    # Failed sign-ins on the page's form allowed per client address within login_window.
    login_attempts: int = Field(5, ge=1, le=1000)
    login_window: Duration = 60.0
    # ``monitor run`` serves the API too, in its own process (as ``monitor run --serve``).
    with_daemon: bool = False


class Settings(_Strict):
    database_url: str = "sqlite:///data/monitor.db"
    seeds_dir: Path = Path("seeds")
    poll: PollSettings = Field(default_factory=PollSettings)
    feeds: list[FeedConfig] = Field(default_factory=list)
    entities: list[EntityConfig] = Field(default_factory=lambda: list(DEFAULT_ENTITIES))
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    dedup: DedupSettings = Field(default_factory=DedupSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    api_token: str | None = None
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    ] = "INFO"
    # "text": one line per message for people; "json": one JSON object per line, for collectors.
    log_format: Literal["text", "json"] = "text"

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, url: str) -> str:
        if url.startswith("postgresql://"):
            # Use psycopg 3, the driver we ship, for a bare postgresql:// URL.
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        if not url.startswith(("sqlite:", "postgresql+psycopg:")):
            raise ValueError("use sqlite:///PATH or postgresql+psycopg://HOST/DB")
        # Checked here, where the key can be named, rather than by the engine, whose
        # error is a traceback; imported here, as ``monitor --help`` needs none of it.
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            port = make_url(url).port
        except ArgumentError:
            raise ValueError("not a database URL: use sqlite:///PATH or postgresql+psycopg://HOST/DB") from None
        except ValueError:  # the URL is not repeated: it may hold a password
            raise ValueError("the port is not a number") from None
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"the port {port} is not from 1 to 65535")
        return url

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        for label, names in (
            ("feeds", [f.name for f in self.feeds]),
            ("entities", [e.name for e in self.entities]),
        ):
            seen = {n for n in names if names.count(n) > 1}
            if seen:
                raise ValueError(f"{label}: duplicate name {sorted(seen)[0]!r}")
        urls = [f.url for f in self.feeds]
        doubled = {u for u in urls if urls.count(u) > 1}
        if doubled:
            raise ValueError(f"feeds: the same url is listed twice: {sorted(doubled)[0]}")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


# --------------------------------------------------------------------------- loading

# libyaml's parser when PyYAML has it: ten times faster on the shipped file.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_YAML_LOADER)  # a safe loader, C or Python


_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any, env: Mapping[str, str], key: str) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"config: {key or 'value'}: environment variable {name} is not set")

        return _VAR_RE.sub(substitute, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, f"{key}.{k}" if key else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, f"{key}[{i}]") for i, v in enumerate(value)]
    return value


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


def _describe(error: ValidationError, hidden: list[tuple[str, ...]]) -> str:
    """The first problem, one line; a value under a key path of ``hidden`` is not quoted."""
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    message = first["msg"].removeprefix("Value error, ")
    value = first.get("input")
    if isinstance(value, str) and value and any(tuple(map(str, first["loc"]))[: len(k)] == k for k in hidden):
        # Set by a variable: the value may be a secret, and the key says where it is.
        message = message.replace(repr(value), "the value").replace(value, "the value")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    extra = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"{where}: {message}{extra}"


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
    data = _expand(data, env, "")
    data = _resolve_paths(data, (), config_path.absolute().parent)
    data = _apply_env_overrides(data, env)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"config: {_describe(exc, _env_keys(env))}") from None
