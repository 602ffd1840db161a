"""Webhooks: a signed JSON ``POST`` per message, per the Standard Webhooks convention.

Headers: ``webhook-id`` (the message id, the same on every re-send), ``webhook-timestamp``
(Unix seconds of this attempt) and ``webhook-signature`` = ``v1,`` +
base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")). The key of a secret ``whsec_…`` is
the base64 after the prefix; any other secret is used as its UTF-8 bytes.

One connection per message, bounded as a whole by the channel's ``timeout`` (an
``Exchange``: connect, send and the answer together, however slowly it trickles), and
only the first ``MAX_ANSWER`` bytes of an answer are read: its status decides, and a
short excerpt of its body goes into the error.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from monitor.alerts.channels import DeliveryError
from monitor.alerts.exchange import Exchange, Stop
from monitor.alerts.payloads import Message
from monitor.config import WebhookSettings
from monitor.headers import parse_retry_after
from monitor.outcomes import DeliveryFailure

SECRET_PREFIX = "whsec_"
MAX_ANSWER = 64 * 1024  # bytes of an answer read at most
# httpcore's trace event that hands over a new connection's socket (TLS comes after,
# on the same connection, which the exchange's guard still reaches).
_CONNECTED = "connection.connect_tcp.complete"


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.key = signing_key(config.secret)
        self.user_agent = user_agent
        self.clock = clock
        # No connection is kept for the next message: each one is opened inside its
        # exchange, where its socket is guarded.
        self.client = httpx.Client(
            follow_redirects=False, trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
        )

    def headers(self, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "user-agent": self.user_agent,
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature(self.key, message_id, timestamp, body),
        }

    def send(self, message: Message, stop: Stop | None = None) -> str | None:
        body = encode_body(message)
        now = self.clock()
        headers = self.headers(message.message_id, int(now), body)
        with Exchange(self.config.timeout, stop) as exchange:
            try:
                response, start = self._post(body, headers, exchange)
            except Exception:
                exchange.check()
                raise
        _check(response, start, now=now)
        return None

    def _post(self, body: bytes, headers: dict[str, str], exchange: Exchange) -> tuple[httpx.Response, bytes]:
        """The answer and the first ``MAX_ANSWER`` bytes of its body."""

        def trace(event: str, info: dict[str, Any]) -> None:
            stream = info.get("return_value") if event == _CONNECTED else None
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                exchange.guard(sock)

        timeout = self.config.timeout
        try:
            with self.client.stream(
                "POST", self.config.url, content=body, headers=headers, timeout=timeout, extensions={"trace": trace}
            ) as response:
                start = bytearray()
                for chunk in response.iter_raw():
                    start += chunk
                    if len(start) >= MAX_ANSWER:
                        break
        except httpx.TimeoutException:
            raise DeliveryError(DeliveryFailure.TRANSIENT, f"no answer within {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(DeliveryFailure.TRANSIENT, f"{type(exc).__name__}: {exc}"[:500]) from None
        return response, bytes(start[:MAX_ANSWER])

    def close(self) -> None:
        self.client.close()


def _check(response: httpx.Response, start: bytes, *, now: float) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"HTTP {status} {response.reason_phrase}".strip() + _excerpt(response, start)
    if status == 410:
        raise DeliveryError(DeliveryFailure.GONE, f"{reason}: the endpoint is gone, channel disabled")
    if status in (408, 425, 429) or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=datetime.fromtimestamp(now, UTC))
        raise DeliveryError(DeliveryFailure.TRANSIENT, reason, retry_after=retry_after)
    if 300 <= status < 400:
        location = response.headers.get("location", "?")
        raise DeliveryError(DeliveryFailure.PERMANENT, f"{reason}: redirected to {location}; update the url")
    raise DeliveryError(DeliveryFailure.PERMANENT, reason)


def _excerpt(response: httpx.Response, start: bytes) -> str:
    if response.headers.get("content-encoding", "identity").lower() != "identity":
        return ""  # compressed: no text to show without inflating it
    text = " ".join(start.decode(response.charset_encoding or "utf-8", "replace").split())
    return f": {text[:200]}" if text else ""
