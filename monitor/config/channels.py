"""Alert channels' settings: e-mail, signed webhooks and Apprise URLs, and ``alerts:``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import (
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.config.values import Duration, Strict, http_url

# ``${VAR}`` left in a channel's value when VAR is not set (``monitor.config.loading``).
UNSET_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def holds_unset_variable(value: str, info: ValidationInfo) -> bool:
    """Whether ``value`` still holds a ``${VAR}`` whose variable is not set.

    Such a value is taken as it is, unchecked: reading the archive needs no channel
    secret, and a command that sends refuses the channel (``require_secrets``).
    """
    unset = (info.context or {}).get("unset_variables", ())
    return any(name in unset for name in UNSET_VARIABLE.findall(value))


class _Channel(Strict):
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
        return url if holds_unset_variable(url, info) else http_url(url)

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


class AlertSettings(Strict):
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
        return None if url is None else http_url(url).rstrip("/")

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
