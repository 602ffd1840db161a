"""URLs as they are shown: credentials, query values and hook tokens replaced by ``***``."""

from __future__ import annotations

import io
import json
import logging

import pytest

from monitor.cli.logs import JSONFormatter, TextFormatter
from monitor.errors import DeliveryError, FetchError
from monitor.redact import RedactingFilter, redact_text, redact_url

SLACK = "https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/AbCdEfGhIjKlMnOpQrStUvWx"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SLACK, "https://hooks.slack.com/services/***"),
        (
            "https://discord.com/api/webhooks/123456789012345678/AbCdEf-gh_IJklmnop1234567890",
            "https://discord.com/api/webhooks/***",
        ),
        (
            "https://api.telegram.org/bot123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11/sendMessage?chat_id=42",
            "https://api.telegram.org/bot***/sendMessage?chat_id=***",
        ),
        (
            "https://contoso.webhook.office.com/webhookb2/1f0e@2a3b/IncomingWebhook/0123456789abcdef/9c8d",
            "https://contoso.webhook.office.com/webhookb2/***",
        ),
        (
            "https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=S3CR3T",
            "https://prod-12.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=***",
        ),
        ("https://hooks.zapier.com/hooks/catch/123456/abcdef/", "https://hooks.zapier.com/hooks/***"),
        ("https://maker.ifttt.com/trigger/story/with/key/dAbCxyz", "https://maker.ifttt.com/trigger/story/with/key/***"),
        ("https://user:pa:ss@feeds.example.org/rss?token=abc&page=2", "https://***@feeds.example.org/rss?token=***&page=***"),
        ("https://feeds.example.org/rss#access_token=abc", "https://feeds.example.org/rss#access_token=***"),
        # Path segments that look like random tokens, and a bare token as the query.
        ("https://example.org/feeds/3f2a9c1b-1d2e-4f5a-9b8c-7d6e5f4a3b2c.xml", "https://example.org/feeds/***"),
        ("https://example.org/in/a8Kq2xZ0pL5mN7vB3cR9/", "https://example.org/in/***/"),
        ("https://example.org/rss?a8Kq2xZ0pL5mN7vB3cR9", "https://example.org/rss?***"),
        # What holds no secret is left as it is.
        ("https://news.example.org/2024/05/01/summit-opens-in-almaty.html", None),
        ("http://127.0.0.1:8080/hook", None),
        ("https://example.org/rss", None),
        ("not a url", None),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str | None) -> None:
    assert redact_url(url) == (shown or url)
    assert redact_url(redact_url(url)) == redact_url(url)  # twice is once


def test_every_url_in_a_text_is_redacted_and_the_text_around_it_kept() -> None:
    text = f"redirect loop at https://u:p@h.example/x?t=1. Then '{SLACK}' (see https://x.org/)."
    assert redact_text(text) == (
        "redirect loop at https://***@h.example/x?t=***. Then 'https://hooks.slack.com/services/***' "
        "(see https://x.org/)."
    )


def test_errors_that_are_stored_carry_no_secret() -> None:
    fetch = FetchError("too_many_redirects", "redirect loop at https://me:pw@example.org/feed?key=k")
    assert fetch.message == "redirect loop at https://***@example.org/feed?key=***" and "pw" not in str(fetch)
    delivery = DeliveryError("permanent", f"HTTP 302 Found: redirected to {SLACK}; update the url")
    assert str(delivery) == "HTTP 302 Found: redirected to https://hooks.slack.com/services/***; update the url"


@pytest.mark.parametrize("formatter", [TextFormatter(), JSONFormatter()], ids=["text", "json"])
def test_log_lines_carry_no_secret(formatter: logging.Formatter) -> None:
    """The message, its arguments, a traceback and ``extra=`` fields, in either format."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("HTTP Request: POST %s", SLACK, extra={"target": SLACK})
        try:
            raise ValueError(f"cannot post to {SLACK}")
        except ValueError:
            logger.exception("delivery failed")
    finally:
        logger.removeHandler(handler)
    written = stream.getvalue()
    assert "AbCdEf" not in written and "T0AAAAAAA" not in written
    assert written.count("https://hooks.slack.com/services/***") == (3 if isinstance(formatter, JSONFormatter) else 2)
    if isinstance(formatter, JSONFormatter):
        first, second = (json.loads(line) for line in written.splitlines())
        assert first["target"] == "https://hooks.slack.com/services/***"
        assert "ValueError: cannot post to https://hooks.slack.com/services/***" in second["exception"]


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        # uvicorn's access log: the request's path alone, no scheme or host.
        (
            '127.0.0.1:5000 - "GET /feeds/token/0123abcd/rules/csto.atom?limit=5 HTTP/1.1" 200',
            '127.0.0.1:5000 - "GET /feeds/token/***/rules/csto.atom?limit=5 HTTP/1.1" 200',
        ),
        ("GET /Feeds/Token/s3cret: database unavailable", "GET /Feeds/Token/***: database unavailable"),
        ("see https://m.example/feeds/token/s3cret/mentions.atom.", "see https://m.example/feeds/token/***/mentions.atom."),
        ("GET /feeds/mentions.atom 200", None),
    ],
)  # fmt: skip
def test_secret_feed_urls_lose_their_token(line: str, shown: str | None) -> None:
    assert redact_text(line) == (shown or line)
