"""Webhooks: a signed JSON ``POST`` per message, per the Standard Webhooks convention.

Headers: ``webhook-id`` (the message id, the same on every re-send), ``webhook-timestamp``
(Unix seconds of this attempt) and ``webhook-signature`` = ``v1,`` +
base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")). The key of a secret ``whsec_…`` is
the base64 after the prefix; any other secret is used as its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from monitor.alerts.channels import DeliveryError
from monitor.alerts.payloads import Message
from monitor.config import WebhookSettings
from monitor.headers import parse_retry_after
from monitor.outcomes import DeliveryFailure

SECRET_PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    return secret.encode("utf-8")


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def encode_body(message: Message) -> bytes:
    return json.dumps(message.body(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WebhookSender:
    """POSTs messages to one endpoint."""

    def __init__(
        self,
        config: WebhookSettings,
        *,
        user_agent: str,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.key = signing_key(config.secret)
        self.user_agent = user_agent
        self.clock = clock
        self._own_client = client is None
        self.client = client or httpx.Client(follow_redirects=False, trust_env=False)

    def headers(self, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "user-agent": self.user_agent,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(self.key, message_id, timestamp, body),
        }

    def send(self, message: Message) -> str | None:
        body = encode_body(message)
        now = self.clock()
        headers = self.headers(message.message_id, int(now), body)
        try:
            response = self.client.post(self.config.url, content=body, headers=headers, timeout=self.config.timeout)
        except httpx.TimeoutException:
            raise DeliveryError(DeliveryFailure.TRANSIENT, f"no answer within {self.config.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(DeliveryFailure.TRANSIENT, f"{type(exc).__name__}: {exc}"[:500]) from None
        _check(response, now=now)
        return None

    def close(self) -> None:
        if self._own_client:
            self.client.close()


def _check(response: httpx.Response, *, now: float) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"HTTP {status} {response.reason_phrase}".strip() + _excerpt(response)
    if status == 410:
        raise DeliveryError(DeliveryFailure.GONE, f"{reason}: the endpoint is gone, channel disabled")
    if status in (408, 425, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=datetime.fromtimestamp(now, UTC))
        raise DeliveryError(DeliveryFailure.TRANSIENT, reason, retry_after=retry_after)
    if 300 <= status < 400:
        location = response.headers.get("location", "?")
        raise DeliveryError(DeliveryFailure.PERMANENT, f"{reason}: redirected to {location}; update the url")
    raise DeliveryError(DeliveryFailure.PERMANENT, reason)


def _excerpt(response: httpx.Response) -> str:
    try:
        text = " ".join(response.text.split())
    except (UnicodeDecodeError, LookupError):
        return ""
    return f": {text[:200]}" if text else ""
