"""The settings' schema: every key, its type, default and bounds, validated by pydantic."""

from __future__ import annotations

import re
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    Field,
    field_validator,
    model_validator,
)

from monitor.config.channels import AlertSettings
from monitor.config.values import Duration, Strict, http_url


class PollSettings(Strict):
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


class FeedConfig(Strict):
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
        return http_url(url)

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


class EntityConfig(Strict):
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


class DedupSettings(Strict):
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


class ServeSettings(Strict):
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


class RuleConfig(Strict):
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


class Settings(Strict):
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
