"""Log lines on stderr: for people (``log_format: text``) or for collectors (``json``).

Both give the time in UTC, ISO 8601 with a ``Z``, so lines from several hosts and
containers sort and compare whatever their time zone.

    2026-05-04T09:12:03.481Z INFO monitor.scheduling.worker: feed 'Wire': ok, …
    {"time": "2026-05-04T09:12:03.481Z", "level": "INFO", "logger": "monitor.scheduling.worker",
     "message": "feed 'Wire': ok, …", "feed_id": 3, "feed": "Wire", …}

In JSON, whatever a log call passes as ``extra=`` (a feed's id, an article's) is a
field of its own, so collectors can filter on it without parsing the message.

Every URL in a line is redacted (``monitor.redact``): a feed's password or a webhook's
token never reaches a log, whoever logged it (the monitor, httpx, uvicorn).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from monitor.redact import RedactingFilter
from monitor.text import for_terminal

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}
# uvicorn repeats its message with terminal colours.
_NOT_FIELDS = _STANDARD | {"color_message"}


def utc_iso(created: float) -> str:
    """``created`` (seconds since the epoch) as ``2026-05-04T09:12:03.481Z``."""
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        # A feed's name or a server's error page may hold escape sequences: shown, not obeyed.
        return for_terminal(super().format(record))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return utc_iso(record.created)


class JSONFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is a field, newlines escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": utc_iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _NOT_FIELDS and not k.startswith("_"))
        if record.exc_info:
            # ``exc_text`` when set: the traceback as ``RedactingFilter`` left it.
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: str) -> None:
    """Send every log record at ``level`` and above to stderr, formatted as ``fmt`` says."""
    root = logging.getLogger()
    # As logging.basicConfig: logging set up already (by a caller running a command in
    # its own process) is left as it is.
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())


__all__ = ["JSONFormatter", "TextFormatter", "configure_logging", "utc_iso"]
