"""The monitor's vocabulary of outcomes: every status and failure kind, in one place.

Each is a ``StrEnum`` whose values are the strings stored in the database and shown
in JSON, logs and metrics, so a member compares equal to its stored value and
serialises as it:

- ``FailureKind``: why a feed (or one of its pages) could not be had — classified once,
  where the failure happens, and recorded on the feed (``Feed.error_kind``);
- ``PollStatus``: what one poll of a feed came to;
- ``FeedStatus``: a feed's health as stored (``Feed.status``);
- ``ExtractionStatus``: whether a feed's pages still give their text;
- ``FeedOrigin``: where a feed comes from (``Feed.origin``): the file, or added at run time;
- ``AlertStatus``: where an alert stands in the outbox (``Alert.status``);
- ``DeliveryFailure``: how a channel refused a message, which decides what happens next.
"""

from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    """Why a feed or page could not be fetched, parsed or processed."""

    DNS = "dns"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    TLS = "tls"
    HTTP_4XX = "http_4xx"
    HTTP_429 = "http_429"
    HTTP_5XX = "http_5xx"
    TOO_LARGE = "too_large"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    # private/loopback/link-local/multicast/reserved target, or not http(s)
    BLOCKED = "blocked"
    INVALID_URL = "invalid_url"
    NOT_A_FEED = "not_a_feed"
    PARSE_ERROR = "parse_error"
    # page fetched but no text could be extracted
    EMPTY = "empty"
    # a page's extraction ran past ``poll.extract_timeout``: its process was replaced
    EXTRACT_TIMEOUT = "extract_timeout"
    # a feed's whole refresh ran past ``poll.feed_deadline``: what was stored stays
    DEADLINE = "deadline"
    # an unexpected exception (a bug, the database): recorded like the others, never fatal
    INTERNAL = "internal"


class PollStatus(StrEnum):
    """What one poll of a feed came to."""

    OK = "ok"  # fetched and parsed; new entries stored
    NOT_MODIFIED = "not_modified"  # the server answered 304
    UNCHANGED = "unchanged"  # the same bytes as last time
    ERROR = "error"  # failed; the outcome carries a FailureKind


class FeedStatus(StrEnum):
    """A feed's health as stored on its row."""

    NEW = "new"  # never polled
    OK = "ok"  # the last poll succeeded
    ERROR = "error"  # the last poll failed


class FeedOrigin(StrEnum):
    """Where a feed comes from, which decides who may change it."""

    CONFIG = "config"  # the configuration file: it is authoritative for the feed
    ADDED = "added"  # added at run time (``monitor feeds add``, the API, an OPML import)


class ExtractionStatus(StrEnum):
    """Whether a feed's pages still give their text (``FeedHealth.extraction``)."""

    OK = "ok"
    # Most recent articles fell back to the feed's own content: a site redesign, usually.
    BROKEN = "extraction_broken"


class AlertStatus(StrEnum):
    """An alert's place in the outbox."""

    PENDING = "pending"  # to send, due at next_attempt_at
    SENT = "sent"
    FAILED = "failed"  # permanently, or given up; ``monitor alerts retry`` puts it back


class DeliveryFailure(StrEnum):
    """How a channel refused a message."""

    TRANSIENT = "transient"  # try again later (timeouts, refused connections, 5xx, 429, SMTP 4xx)
    PERMANENT = "permanent"  # the message will never be taken (other 4xx, SMTP 5xx)
    GONE = "gone"  # the endpoint was removed (HTTP 410): the channel is disabled


__all__ = [
    "AlertStatus",
    "DeliveryFailure",
    "ExtractionStatus",
    "FailureKind",
    "FeedOrigin",
    "FeedStatus",
    "PollStatus",
]
