"""URLs as they may be shown: in logs, on the command line, through the API, in errors.

A URL of the configuration is often a credential: a webhook's path is its token
(Slack's ``/services/T…/B…/secret``, Discord's ``/api/webhooks/<id>/<token>``,
Telegram's ``/bot<token>/``), a feed behind a login carries ``user:password@``, and
query strings carry ``?token=``. ``redact_url`` keeps what tells a URL apart for a
person (scheme, host, port, the plain parts of the path, the names of the query
parameters) and replaces the rest with ``***``:

- user information: ``https://***@host/``;
- every query (and fragment) value: ``?token=***&page=***``; a bare piece that looks
  like a token, too;
- the path after a hook provider's fixed prefix (Slack, Discord, Microsoft Teams,
  Zapier, Mattermost and alike: everything after ``hooks``, ``webhooks``,
  ``webhookb2``), Telegram's ``bot<token>``, and a segment after ``key``, ``token``,
  ``secret``…;
- any path segment that looks like a random token: a UUID, or a run of 16 letters and
  digits mixing both (no word of a story's slug does).

``redact_text`` does it to every URL inside a text (an error message, a log line), and
``RedactingFilter`` to every log record a handler writes. A text also loses the token
of every secret feed URL path (``/feeds/token/<token>/…``, ``monitor.feed_tokens``),
with or without scheme and host: uvicorn's access log and an error line about a
request give the path alone. Only what is shown changes:
the configuration and the database keep the real URLs.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

MASK = "***"

# scheme://authority, then the rest up to a space, a quote or an angle bracket.
_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s<>\"'`]+")
# Punctuation that ends a sentence rather than the URL before it.
_TRAILING = ".,;:!?)]}"
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_RUN_RE = re.compile(r"[A-Za-z0-9]+")
# The rest of a path after one of these segments is a hook's token.
_HOOK_SEGMENTS = frozenset({"hooks", "webhooks", "webhook", "webhookb2"})
# Hosts whose whole path after the first segment is the token (Slack's hooks.slack.com).
_TOKEN_PATH_HOSTS = ("hooks.slack.com",)
# The segment after one of these is a credential: IFTTT's ``/with/key/<key>``, and alike.
_KEY_SEGMENTS = frozenset({"key", "apikey", "api_key", "api-key", "token", "access_token", "secret", "password"})
# The API's secret feed URLs: the segment after /feeds/token/ is a feed's secret.
_FEED_TOKEN_RE = re.compile(r"(/feeds/token/)[^/?#:\s\"'<>]+", re.IGNORECASE)
# Telegram's bot API: ``/bot<id>:<secret>/method`` (and ``/file/bot<…>/``).
_TELEGRAM_BOT_RE = re.compile(r"bot\d+:.+", re.IGNORECASE)


def looks_like_token(text: str) -> bool:
    """Whether ``text`` (a path segment, a bare query piece) looks like a random token."""
    text = unquote(text)
    if len(text) < 16:
        return False
    if _UUID_RE.search(text):
        return True
    for run in _RUN_RE.findall(text):
        mixed = any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
        if len(run) >= 16 and (mixed or len(run) >= 32):
            return True
    return False


def redact_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***`` (see the module's notes)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url
    end = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    authority, rest = rest[:end], rest[end:]
    if "@" in authority:
        authority = MASK + "@" + authority.rpartition("@")[2]
    rest, hashmark, fragment = rest.partition("#")
    path, question, query = rest.partition("?")
    host = authority.rpartition("@")[2].split(":")[0].lower()
    shown = f"{scheme}://{authority}{_redact_path(host, path)}"
    if question:
        shown += "?" + _redact_query(query)
    if hashmark:
        shown += "#" + _redact_query(fragment)
    return shown


def _redact_path(host: str, path: str) -> str:
    segments = path.split("/")
    # segments[0] is the empty text before the path's first slash.
    if host in _TOKEN_PATH_HOSTS and len(segments) > 2:
        return "/".join([*segments[:2], MASK])
    shown: list[str] = []
    for index, segment in enumerate(segments):
        if index and segments[index - 1].lower() in _HOOK_SEGMENTS and segment:
            return "/".join([*shown, MASK])
        if index and segments[index - 1].lower() in _KEY_SEGMENTS and segment:
            shown.append(MASK)
        elif _TELEGRAM_BOT_RE.fullmatch(unquote(segment)):
            shown.append("bot" + MASK)
        elif looks_like_token(segment):
            shown.append(MASK)
        else:
            shown.append(segment)
    return "/".join(shown)


def _redact_query(query: str) -> str:
    pieces = []
    for piece in query.split("&"):
        name, equals, value = piece.partition("=")
        if equals:
            pieces.append(f"{name}={MASK}" if value else piece)
        else:
            pieces.append(MASK if looks_like_token(piece) else piece)
    return "&".join(pieces)


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through ``redact_url``, and no feed token."""
    if "/feeds/token/" in text.lower():
        text = _FEED_TOKEN_RE.sub(r"\1" + MASK, text)
    if "://" not in text:
        return text

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        kept = url.rstrip(_TRAILING)
        return redact_url(kept) + url[len(kept) :]

    return _URL_RE.sub(one, text)


class RedactingFilter(logging.Filter):
    """Redacts the URLs of every record that goes through the handler it is put on:
    the message, its traceback and the string fields given as ``extra=``."""

    _formatter = logging.Formatter()
    _standard = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse ``exc_text`` once it is set: formatted here, redacted.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        for name, value in vars(record).items():
            if name not in self._standard and isinstance(value, str) and "://" in value:
                setattr(record, name, redact_text(value))
        return True


__all__ = ["MASK", "RedactingFilter", "looks_like_token", "redact_text", "redact_url"]
