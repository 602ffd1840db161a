"""The settings' schema: every key, its type, default and bounds, validated by pydantic."""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import re
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

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
    # Bounds of the adaptive interval of a feed without its own ``interval``: polled
    # about as often as it publishes, never more often than min, never less than max.
    min_interval: Duration = 600.0
    max_interval: Duration = 21600.0
    # Honour HTTPS_PROXY / HTTP_PROXY / NO_PROXY. Off: a variable set for other programs
    # (or by an attacker with a foot in the environment) would see every URL polled.
    trust_env: bool = False

    @model_validator(mode="after")
    def _interval_bounds(self) -> PollSettings:
        if self.min_interval > self.max_interval:
            raise ValueError("min_interval is longer than max_interval")
        return self


class FeedConfig(_Strict):
    name: str = Field(min_length=1, max_length=200)
    url: str
    interval: Duration | None = None
    # Labels of the feed (OPML categories on export); blanks and repeats dropped.
    tags: list[str] = Field(default_factory=list)
    # False: store the feed's own content as the text, never fetch the pages.
    extract: bool = True
    # CSS selector of the main text, for a site where the extractor picks the wrong block.
    selector: str | None = Field(default=None, min_length=1, max_length=1000)
    # Extra request headers, for the feed and its pages.
    headers: dict[str, str] = Field(default_factory=dict)
    user_agent: str | None = Field(default=None, min_length=1, max_length=500)
    # An HTTP proxy for this feed and its pages: http://[user:password@]host:port
    proxy: str | None = None

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, tags: list[str]) -> list[str]:
        return clean_tags(tags)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not re.match(r"^https?://[^/\s]+", url, re.IGNORECASE):
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url

    @model_validator(mode="after")
    def _css_selector(self) -> FeedConfig:
        if self.selector is not None:
            try:
                selector_xpath(self.selector)
            except ValueError as exc:
                raise ValueError(f"feed {self.name!r}: selector {exc}") from None
        return self

    @field_validator("headers")
    @classmethod
    def _header_fields(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise ValueError(f"{name!r} is not a header name")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"the value of the header {name} has a line break")
        return headers

    @field_validator("proxy")
    @classmethod
    def _proxy_url(cls, proxy: str | None) -> str | None:
        if proxy is not None and not re.match(r"^https?://[^/\s]+", proxy, re.IGNORECASE):
            raise ValueError("a proxy is an http(s) URL such as http://proxy.example:3128")
        return proxy


def selector_xpath(selector: str) -> str:
    """The XPath of a CSS selector (cssselect); ``ValueError`` naming what is wrong with it."""
    from cssselect import GenericTranslator, SelectorError  # only feeds with a selector need it

    try:
        return GenericTranslator().css_to_xpath(selector)
    except SelectorError as exc:
        raise ValueError(f"{selector!r} is not a CSS selector ({exc})") from None


MAX_TAG_LENGTH = 100


def clean_tags(tags: list[str]) -> list[str]:
    """Tags stripped, without blanks or repeats, in their first order; one too long is an error."""
    cleaned: list[str] = []
    for given in tags:
        tag = " ".join(given.split())
        if len(tag) > MAX_TAG_LENGTH:
            raise ValueError(f"the tag {tag[:40]!r}… is longer than {MAX_TAG_LENGTH} characters")
        if tag and tag not in cleaned:
            cleaned.append(tag)
    return cleaned


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


# ``${VAR}`` left in a channel's value when VAR is not set (``monitor.config.loading``).
UNSET_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def holds_unset_variable(value: str, info: ValidationInfo) -> bool:
    """Whether ``value`` still holds a ``${VAR}`` whose variable is not set.

    Such a value is taken as it is, unchecked: reading the archive needs no channel
    secret, and a command that sends refuses the channel (``require_secrets``).
    """
    unset = (info.context or {}).get("unset_variables", ())
    return any(name in unset for name in UNSET_VARIABLE.findall(value))


class _Channel(_Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    # Deliver one message per interval with every alert of the window.
    digest: Duration | None = None
    # Only alerts that mention one of these entities; all when unset. The routing of
    # the implicit rules (one per entity): with ``rules:`` configured, rules route.
    entities: list[str] | None = None
    # The key path and variable of each ``${VAR}`` of the channel left unset.
    _unset: tuple[tuple[str, str], ...] = PrivateAttr(default=())

    @property
    def unset_variables(self) -> tuple[tuple[str, str], ...]:
        """(key path, variable) of each value this channel cannot be sent through yet."""
        return self._unset


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
    def _sender_address(cls, sender: str, info: ValidationInfo) -> str:
        return sender if holds_unset_variable(sender, info) else _mail_address(sender)

    @field_validator("recipients")
    @classmethod
    def _recipient_addresses(cls, recipients: list[str], info: ValidationInfo) -> list[str]:
        return [r if holds_unset_variable(r, info) else _mail_address(r) for r in recipients]

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
    def _http_url(cls, url: str, info: ValidationInfo) -> str:
        return url if holds_unset_variable(url, info) else FeedConfig._http_url(url)

    @field_validator("secret")
    @classmethod
    def _secret_decodes(cls, secret: str, info: ValidationInfo) -> str:
        if secret.startswith("whsec_") and not holds_unset_variable(secret, info):
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


class AppriseSettings(_Channel):
    """Any number of Apprise URLs (``tgram://…``, ``slack://…``, ``ntfy://…``), one channel."""

    name: str = Field(min_length=1, max_length=200)
    urls: list[str] = Field(min_length=1)
    timeout: Duration = 30.0

    @field_validator("urls")
    @classmethod
    def _apprise_urls(cls, urls: list[str]) -> list[str]:
        for number, url in enumerate(urls, 1):
            if "${" in url:
                continue  # a variable left unset: checked when there is something to send
            if not apprise_url_usable(url):
                # Never the URL itself: it carries the service's token.
                scheme = url.partition("://")[0] if "://" in url else ""
                what = f"{scheme}://…" if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,30}", scheme) else "it"
                raise ValueError(
                    f"URL {number} ({what}) is not one Apprise can use: check it against its service's page "
                    "on the Apprise wiki"
                )
        return urls

    @property
    def key(self) -> str:
        return f"apprise:{self.name}"


def apprise_url_usable(url: str) -> bool:
    """Whether Apprise knows the service of ``url`` and can read its parts."""
    import apprise  # only a configuration with Apprise channels needs it

    return apprise.Apprise.instantiate(url) is not None


def _mail_address(value: str) -> str:
    # A header-safe single address: CR/LF would let a config value inject headers.
    value = value.strip()
    if not re.fullmatch(r"[^@\s<>,]+@[^@\s<>,]+", value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


class AlertSettings(_Strict):
    email: EmailSettings | None = None
    webhooks: list[WebhookSettings] = Field(default_factory=list)
    apprise: list[AppriseSettings] = Field(default_factory=list)
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
        names = [a.name for a in self.apprise]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"apprise: two channels are both named {doubled[0]!r}")
        return self

    @property
    def channels(self) -> list[EmailSettings | WebhookSettings | AppriseSettings]:
        """Every configured channel: e-mail, webhooks, then Apprise channels."""
        return [*([self.email] if self.email else []), *self.webhooks, *self.apprise]


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


def zone_named(name: str) -> tzinfo:
    """The zone called ``name``; ``ValueError`` for a name the time zone database lacks."""
    if name.strip().upper() in ("UTC", "Z"):
        return UTC
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{name!r} is not a time zone name such as UTC or Asia/Almaty") from None


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


# A rule's name: a word of letters, digits, ``-``, ``_`` and ``.`` (it names the rule's
# Atom feed, ``/feeds/rules/{name}.atom``, and goes into every alert it fires).
_RULE_NAME = re.compile(r"[^\W_][\w.-]*")


class RuleConfig(_Strict):
    """An alert rule: the articles ``monitor search QUERY`` lists, sent to ``channels``."""

    name: str = Field(min_length=1, max_length=100)
    query: str = Field(min_length=1, max_length=1000)
    # Channel names (``email``, ``webhook:<name>``, ``apprise:<name>``); every channel when unset.
    channels: list[str] | None = None
    # Gather this rule's alerts into one message per window (else the channel's digest).
    digest: Duration | None = None

    @field_validator("name")
    @classmethod
    def _rule_name(cls, name: str) -> str:
        if not _RULE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a rule name: use letters, digits, '-', '_' and '.'")
        return name

    @field_validator("channels")
    @classmethod
    def _some_channels(cls, channels: list[str] | None) -> list[str] | None:
        if channels is not None and not channels:
            raise ValueError("list at least one channel, or leave channels out for every channel")
        return None if channels is None else list(dict.fromkeys(c.strip() for c in channels))


class Settings(_Strict):
    database_url: str = "sqlite:///data/monitor.db"
    seeds_dir: Path = Path("seeds")
    poll: PollSettings = Field(default_factory=PollSettings)
    feeds: list[FeedConfig] = Field(default_factory=list)
    entities: list[EntityConfig] = Field(default_factory=lambda: list(DEFAULT_ENTITIES))
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    # None: one implicit rule per tracked entity, to every channel (``monitor.rules``).
    rules: list[RuleConfig] | None = None
    dedup: DedupSettings = Field(default_factory=DedupSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    api_token: str | None = None
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
        BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v),
    ] = "INFO"
    # "text": one line per message for people; "json": one JSON object per line, for collectors.
    log_format: Literal["text", "json"] = "text"
    # The time zone the page and the command line show times in (an IANA name such as
    # Asia/Almaty); stored times and logs stay UTC.
    display_timezone: str = "UTC"

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        zone_named(name)
        return name

    @property
    def display_zone(self) -> tzinfo:
        return zone_named(self.display_timezone)

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

    @model_validator(mode="after")
    def _rules_name_channels(self) -> Settings:
        if self.rules is None:
            return self
        names = [r.name for r in self.rules]
        doubled = sorted({n for n in names if names.count(n) > 1})
        if doubled:
            raise ValueError(f"rules: two rules are both named {doubled[0]!r}")
        keys = [c.key for c in self.alerts.channels]
        for rule in self.rules:
            unknown = [c for c in rule.channels or () if c not in keys]
            if unknown:
                known = ", ".join(keys) or "none configured"
                raise ValueError(f"rules: rule {rule.name!r}: no channel named {unknown[0]!r} (channels: {known})")
        filtered = [c.key for c in self.alerts.channels if c.entities is not None]
        if filtered:
            raise ValueError(
                f"alerts: {filtered[0]}: entities: routes the implicit rules; with rules: configured, "
                "route with a rule instead (query: 'entity:NAME', channels: [...])"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
