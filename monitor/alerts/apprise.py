"""Apprise channels: Telegram, Slack, Matrix, ntfy, Discord… by URL, through the outbox.

One channel (``alerts.apprise``) has a name and any number of Apprise URLs; each
message goes to every URL as one notification (a digest too): a title, as an e-mail's
subject, and a Markdown body with the article's link, the rules it fired, its feed,
publication time (UTC) and language, each mention's snippet with the match in bold, and
links to the article's page in the archive and to a copy's original. Apprise turns the
Markdown into what each service takes (HTML for e-mail,
Markdown for Telegram and Slack, plain text where nothing else is understood).
Everything taken from an article is escaped for Markdown, ``<`` included (Markdown
would let HTML through to the services that render it), and only http(s) URLs
become links.

Failures. Apprise says per service whether it took the notification, not why; the
reason is the last warning Apprise logged for that service during the call (each call
captures its own log, so channels sending side by side never mix reasons). Every
failure is transient: a refused message and a receiver that is down look alike
through Apprise, and ``alerts.give_up_after`` bounds the retries. The URLs of a
channel succeed or fail together: when one fails, the message goes to all of them
again later (give independent destinations a channel each). A URL Apprise cannot use
is refused when the configuration is loaded, and again here, naming the channel.

Bounds. Apprise's own call timeout is the channel's ``timeout``; the call runs in a
thread of its own inside an ``Exchange``, so a shutdown (``Stop``) ends the wait at once
(``Cancelled``: the alert stays pending) and a service that overruns is given up at the
deadline (transient). A call given up ends by itself within Apprise's request timeouts.

Secrets. Apprise URLs carry tokens: errors name a service by Apprise's privacy form of
its URL (``tgram://1...z/12345``), and any configured URL found in a captured log line
is replaced by that form before the line goes anywhere.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import apprise

from monitor.alerts.channels import DeliveryError
from monitor.alerts.email import one_line, published, subject
from monitor.alerts.exchange import Exchange, Stop
from monitor.alerts.payloads import ArticleAlert, MentionRef, Message
from monitor.config import AppriseSettings
from monitor.errors import ConfigError
from monitor.outcomes import DeliveryFailure

# Past Apprise's own timeout, how long the exchange waits before it gives the call up.
GRACE = 2.0
# How often the waiting thread looks whether the exchange was cut short.
POLL = 0.05
_WARNING = logging.WARNING

# Characters Markdown reads as markup inside a line. Every line of a body starts with
# text of ours, so the characters that matter only at a line's start (``#``, ``-``,
# ``>``, ``1.``) need no escape, and plain-text services see fewer backslashes.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]])")


def _escaped(value: str) -> str:
    return _MARKDOWN_INLINE.sub(r"\\\1", value).replace("<", "&lt;")


def markdown_text(value: str | None) -> str:
    """``value`` on one line, Markdown's inline markup escaped and ``<`` an entity
    (Markdown has no escape for it, and would pass HTML on to services that render it)."""
    return _escaped(one_line(value))


def marked_snippet(mention: MentionRef) -> str:
    """The mention's snippet, escaped, with the match in bold."""
    before, match, after = mention.parts()
    if not match:
        return markdown_text(before)
    return one_line(f"{_escaped(before)}**{_escaped(match)}**{_escaped(after)}")


def markdown_link(url: str | None, label: str) -> str:
    """A Markdown link for an http(s) ``url``, else the label alone."""
    url = one_line(url)
    if not re.match(r"^https?://", url, re.IGNORECASE):
        return markdown_text(label)
    # Inside ``(…)`` only these would end or break the destination.
    target = url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")
    return f"[{markdown_text(label)}]({target})"


def _markdown_item(item: ArticleAlert) -> list[str]:
    article = item.article
    title = one_line(article.title) or "(untitled)"
    lines = [f"**{markdown_link(article.url, title)}**", ""]
    # Two spaces end a line in Markdown without starting a paragraph.
    if item.rules:
        lines.append(f"Rules: {markdown_text(', '.join(item.rules))}  ")
    if article.feed:
        lines.append(f"Feed: {markdown_text(article.feed)}  ")
    lines.append(f"Published: {published(article.published_at)}  ")
    if article.language:
        lines.append(f"Language: {markdown_text(article.language)}  ")
    lines.append("")
    lines += [f"- **{markdown_text(m.entity)}** “{markdown_text(m.text)}”: {marked_snippet(m)}" for m in item.mentions]
    links = [markdown_link(article.url, "article")]
    if article.archive_url:
        links.append(markdown_link(article.archive_url, "in the archive"))
    if article.original_url:
        links.append(markdown_link(article.original_url, "original"))
    lines += ["", " · ".join(links)]
    return lines


def markdown_body(message: Message) -> str:
    """The notification's body: every article of the message, in Markdown."""
    lines: list[str] = []
    for number, item in enumerate(message.items):
        if number:
            lines += ["", "---", ""]
        lines += _markdown_item(item)
    return "\n".join(lines) + "\n"


class AppriseSender:
    """Notifies every URL of one Apprise channel."""

    def __init__(self, config: AppriseSettings) -> None:
        self.config = config
        # No state on disk (Apprise may keep some per service), and its own timeout.
        asset = apprise.AppriseAsset(
            app_id="News monitor",
            app_desc="News monitor alerts",
            storage_mode="memory",
            service_timeout=config.timeout,
            secure_logging=True,
        )
        self.apprise = apprise.Apprise(asset=asset)
        self.masks: list[tuple[str, str]] = []  # (URL as configured, its privacy form)
        for number, url in enumerate(config.urls, 1):
            service = apprise.Apprise.instantiate(url, asset=asset)
            if service is None:
                raise ConfigError(f"config: alerts.apprise: {config.key}: URL {number} is not one Apprise can use")
            self.apprise.add(service)
            shown: str = service.url(privacy=True)  # type: ignore[no-untyped-call]  # Apprise's own
            self.masks.append((url, _shown(shown)))

    def send(self, message: Message, stop: Stop | None = None) -> str | None:
        title = subject(message, "").strip()
        body = markdown_body(message)
        outcome: list[Any] = []
        done = threading.Event()

        def call() -> None:
            try:
                outcome.append(
                    self.apprise.notify(
                        body=body,
                        title=title,
                        body_format=apprise.NotifyFormat.MARKDOWN,
                        timeout=self.config.timeout,
                        log_level=_WARNING,
                    )
                )
            except Exception as exc:  # a plugin's bug: a reason like any other
                outcome.append(exc)
            finally:
                done.set()

        with Exchange(self.config.timeout + GRACE, stop) as exchange:
            threading.Thread(target=call, name=f"apprise-{self.config.name}", daemon=True).start()
            while not done.wait(POLL):
                if exchange.cut:
                    exchange.check()
        (result,) = outcome
        if isinstance(result, Exception):
            reason = f"Apprise failed: {type(result).__name__}: {result}"
            raise DeliveryError(DeliveryFailure.TRANSIENT, self._masked(reason))
        if not result:
            raise DeliveryError(DeliveryFailure.TRANSIENT, self._masked(self._reason(result)))
        return None

    def _reason(self, result: Any) -> str:
        """Why ``result`` (an ``AppriseResult``) failed: each failed service and its last warning."""
        reasons = []
        for service in result:
            if service:
                continue
            said = [e.message for e in service.logs() if logging.getLevelName(e.level) >= _WARNING]
            if service.status == apprise.AppriseResultStatus.TIMEOUT:
                why = f"no answer within {self.config.timeout:g}s"
            else:
                why = one_line(said[-1]) if said else "not delivered"
            reasons.append(f"{_shown(service.url)}: {why}")
        if not reasons:  # nothing was sent: the call itself failed
            said = [e.message for e in result.call_logs() if logging.getLevelName(e.level) >= _WARNING]
            reasons.append(one_line(said[-1]) if said else f"Apprise: {result.status.name.lower()}")
        return "; ".join(reasons)[:2000]

    def _masked(self, text: str) -> str:
        for url, shown in self.masks:
            text = text.replace(url, shown)
        return text

    def close(self) -> None:
        """Nothing to close: Apprise opens a connection per notification."""


def _shown(url: str) -> str:
    """A privacy-form URL without its options (``?format=…&overflow=…``): shorter, same service."""
    return url.partition("?")[0]


__all__ = ["AppriseSender", "markdown_body", "markdown_link", "markdown_text", "marked_snippet"]
