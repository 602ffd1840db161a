"""E-mail alerts over SMTP: plain, STARTTLS or implicit TLS, with optional login.

One message per alert (or per digest): a subject naming the rules that fired, the
entities and the title, a text part and an HTML part that say what a reader needs to
act without clicking: the rules, feed, publication time (UTC), language, each mention
with its context and the match marked (``<mark>`` in HTML, ``**…**`` in text), the
article's link and its page in the archive. Everything that comes from an article is untrusted: it
is HTML-escaped in the HTML part, stripped of control characters everywhere, flattened
to one line in headers (no header injection through a title), and only http(s) URLs
become links. ``Message-ID`` is derived from the message id, so a re-sent alert is
recognisably the same mail.

Sending is bounded as a whole by the channel's ``timeout`` (an ``Exchange``: connect,
TLS, login and the message together, however slowly the server answers), and cut short
on shutdown. Credentials never cross an unencrypted connection: the configuration
refuses a login without ``starttls`` or ``tls``, and a STARTTLS the server does not
offer fails the delivery (permanently) before any login.
"""

from __future__ import annotations

import html
import re
import smtplib
import socket
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate

from monitor.alerts.channels import DeliveryError
from monitor.alerts.exchange import Exchange, Stop
from monitor.alerts.payloads import ArticleAlert, MentionRef, Message
from monitor.config import EmailSettings
from monitor.outcomes import DeliveryFailure

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
MAX_SUBJECT_TITLE = 150


def one_line(value: str | None, *, limit: int | None = None) -> str:
    """``value`` without line breaks or control characters, whitespace collapsed."""
    text = " ".join(_CONTROL.sub(" ", value or "").split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _clean(value: str | None) -> str:
    return _CONTROL.sub(" ", (value or "").replace("\r\n", "\n").replace("\r", "\n"))


def _safe_url(url: str | None) -> str | None:
    url = one_line(url)
    return url if re.match(r"^https?://", url, re.IGNORECASE) else None


def _rules_named(message: Message) -> str:
    """The rules, unless they only repeat the entities (the implicit rules)."""
    rules = message.rules
    if not rules or {r.casefold() for r in rules} <= {e.casefold() for e in message.entities}:
        return ""
    return ", ".join(one_line(r) for r in rules)


def subject(message: Message, prefix: str) -> str:
    entities = ", ".join(one_line(e) for e in message.entities)
    rules = _rules_named(message)
    if message.is_digest:
        count = len(message.items)
        noun = "article" if count == 1 else "articles"
        fired = f" for {rules}" if rules else ""
        return one_line(f"{prefix} {count} new {noun}{fired} mentioning {entities}")
    title = one_line(message.items[0].article.title, limit=MAX_SUBJECT_TITLE) or "(untitled)"
    return one_line(f"{prefix} {rules + ' · ' if rules else ''}{entities}: {title}")


def published(moment: datetime | None) -> str:
    """A publication time for people: UTC, and saying so."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "unknown"


# ------------------------------------------------------------------------- text part


def _text_item(item: ArticleAlert) -> list[str]:
    article = item.article
    lines = [one_line(article.title) or "(untitled)"]
    if item.rules:
        lines.append(f"Rules: {', '.join(one_line(r) for r in item.rules)}")
    if article.feed:
        lines.append(f"Feed: {one_line(article.feed)}")
    lines.append(f"Published: {published(article.published_at)}")
    if article.language:
        lines.append(f"Language: {one_line(article.language)}")
    lines.append(f"Article: {one_line(article.url)}")
    if article.archive_url:
        lines.append(f"In the archive: {article.archive_url}")
    if article.original_url:
        lines.append(f"Original: {article.original_url}")
    lines.append("Mentions:")
    lines.extend(
        f'  - {one_line(mention.entity)} ("{one_line(mention.text)}"): {_marked_text(mention)}'
        for mention in item.mentions
    )
    return lines


def _marked_text(mention: MentionRef) -> str:
    before, match, after = (_clean(part) for part in mention.parts())
    return one_line(f"{before}**{match}**{after}" if match else before)


def text_body(message: Message) -> str:
    lines = [subject(message, "").strip(), ""]
    for item in message.items:
        lines.extend(_text_item(item))
        lines.append("")
    lines.append("-- ")
    lines.append("Sent by the news monitor.")
    return _clean("\n".join(lines)) + "\n"


# ------------------------------------------------------------------------- HTML part


def _e(value: str | None) -> str:
    return html.escape(_clean(value), quote=True)


def _link(url: str | None, label: str) -> str:
    safe = _safe_url(url)
    return f'<a href="{_e(safe)}">{_e(label)}</a>' if safe else _e(label)


def _html_item(item: ArticleAlert) -> str:
    article = item.article
    title = one_line(article.title) or "(untitled)"
    meta = [one_line(article.feed)] if article.feed else []
    meta.append(published(article.published_at))
    if article.language:
        meta.append(one_line(article.language))
    links = [_link(article.url, one_line(article.url))]
    if article.archive_url:
        links.append(_link(article.archive_url, "in the archive"))
    if article.original_url:
        links.append(_link(article.original_url, "original"))
    mentions = "".join(
        f"<li><strong>{_e(m.entity)}</strong> “{_e(one_line(m.text))}”: {_marked_html(m)}</li>" for m in item.mentions
    )
    rules = f"<p>Rules: {_e(', '.join(item.rules))}</p>\n" if item.rules else ""
    return (
        f"<h2>{_link(article.url, title)}</h2>\n"
        f"{rules}"
        f"<p>{' · '.join(_e(m) for m in meta)}</p>\n"
        f"<p>{' · '.join(links)}</p>\n"
        f"<ul>{mentions}</ul>\n"
    )


def _marked_html(mention: MentionRef) -> str:
    before, match, after = mention.parts()
    if not match:
        return _e(one_line(before))
    return f"{_e(before)}<mark>{_e(match)}</mark>{_e(after)}"


def html_body(message: Message) -> str:
    items = "<hr>\n".join(_html_item(item) for item in message.items)
    heading = _e(subject(message, "").strip())
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"></head>\n'
        f'<body style="font-family: sans-serif">\n<p>{heading}</p>\n{items}'
        '<p style="color: #777">Sent by the news monitor.</p>\n</body></html>\n'
    )


def render(message: Message, config: EmailSettings) -> EmailMessage:
    mail = EmailMessage(policy=SMTP)
    mail["Subject"] = subject(message, config.subject_prefix)
    mail["From"] = config.sender
    mail["To"] = ", ".join(config.recipients)
    mail["Date"] = formatdate(usegmt=True)
    mail["Message-ID"] = f"<{message.message_id}@{config.sender.rsplit('@', 1)[1]}>"
    mail["Auto-Submitted"] = "auto-generated"
    mail["X-Auto-Response-Suppress"] = "All"
    mail.set_content(text_body(message))
    mail.add_alternative(html_body(message), subtype="html")
    return mail


# ----------------------------------------------------------------------------- sending


class _SMTP(smtplib.SMTP):
    """smtplib's client, its socket guarded by the exchange from before it connects."""

    def __init__(self, exchange: Exchange, host: str, port: int, *, timeout: float) -> None:
        self.exchange = exchange
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return _open(host, port, timeout, self.exchange)


class _SMTPS(smtplib.SMTP_SSL):
    """Implicit TLS: the guarded connection, then the handshake (as SMTP_SSL does it)."""

    def __init__(self, exchange: Exchange, host: str, port: int, *, timeout: float, context: ssl.SSLContext) -> None:
        self.exchange = exchange
        super().__init__(host, port, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self.context.wrap_socket(_open(host, port, timeout, self.exchange), server_hostname=host)


def _open(host: str, port: int, timeout: float, exchange: Exchange) -> socket.socket:
    """A connection to the first address that takes it; cut short with the exchange."""
    error: OSError = OSError(f"{host}: no address")
    for family, kind, proto, _name, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            exchange.guard(sock)  # before connecting: a connect that hangs is cut too
            if exchange.cut:
                raise OSError("cut short")
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        return sock
    raise error


class EmailSender:
    """Sends messages through one SMTP server, one connection per message."""

    def __init__(self, config: EmailSettings) -> None:
        self.config = config

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.config.ca_file:
            context.load_verify_locations(cafile=str(self.config.ca_file))
        return context

    def _connect(self, exchange: Exchange) -> smtplib.SMTP:
        config = self.config
        host, port, timeout = config.smtp_host, config.smtp_port, config.timeout
        if config.tls:
            smtp: smtplib.SMTP = _SMTPS(exchange, host, port, timeout=timeout, context=self._tls_context())
        else:
            smtp = _SMTP(exchange, host, port, timeout=timeout)
        try:
            if config.starttls:
                # Raises when the server does not offer it: never go on in the clear.
                smtp.starttls(context=self._tls_context())
            if config.username:
                smtp.login(config.username, config.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: Message, stop: Stop | None = None) -> str | None:
        mail = render(message, self.config)
        with Exchange(self.config.timeout, stop) as exchange:
            try:
                refused = self._send(mail, exchange)
            except Exception:
                exchange.check()
                raise
        if refused:
            return "refused by the server: " + ", ".join(sorted(refused))
        return None

    def _send(self, mail: EmailMessage, exchange: Exchange) -> dict[str, tuple[int, bytes]]:
        """The recipients refused (the others took the mail); raise DeliveryError."""
        try:
            smtp = self._connect(exchange)
            try:
                return smtp.send_message(mail, self.config.sender, self.config.recipients)
            finally:
                _quit(smtp)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refused(exc.recipients) from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, exc.smtp_error) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(DeliveryFailure.PERMANENT, f"SMTP server: {exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(DeliveryFailure.TRANSIENT, f"TLS certificate: {exc.verify_message}") from None
        except (smtplib.SMTPException, OSError) as exc:
            if _timed_out(exc):
                # The socket's own timeout went off before the exchange's deadline (both
                # are config.timeout): the same failure, said the same way.
                raise DeliveryError(DeliveryFailure.TRANSIENT, f"no answer within {self.config.timeout:g}s") from None
            reason = str(exc) or type(exc).__name__
            raise DeliveryError(
                "transient", f"SMTP {self.config.smtp_host}:{self.config.smtp_port}: {reason}"
            ) from None

    def close(self) -> None:
        """Nothing to close: each message has its own connection."""


def _timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is a read or write that timed out (smtplib wraps it as a disconnect)."""
    return isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError)


def _quit(smtp: smtplib.SMTP) -> None:
    # The message is already accepted: a failing QUIT must not count as a failure.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _by_code(code: int, error: bytes | str) -> DeliveryError:
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    reason = f"SMTP {code} {one_line(text)}"
    return DeliveryError(DeliveryFailure.PERMANENT if 500 <= code < 600 else DeliveryFailure.TRANSIENT, reason)


def _refused(recipients: dict[str, tuple[int, bytes]]) -> DeliveryError:
    codes = [code for code, _ in recipients.values()]
    details = "; ".join(
        f"{address}: {code} {one_line(text.decode('utf-8', 'replace'))}"
        for address, (code, text) in sorted(recipients.items())
    )
    kind = DeliveryFailure.TRANSIENT if any(400 <= c < 500 for c in codes) else DeliveryFailure.PERMANENT
    return DeliveryError(kind, f"every recipient refused: {details}")
