"""What a channel is to the outbox: its routing, its digest window, how it fails.

A channel is one configured destination (``EmailSettings``, ``WebhookSettings`` or
``AppriseSettings``); its ``key`` ("email", "webhook:<name or url>", "apprise:<name>")
names it in the outbox and must stay stable across restarts. Senders raise
``DeliveryError`` and nothing else: every third-party failure (smtplib, ssl, httpx,
sockets, Apprise) is classified once, in the sender, into a ``DeliveryFailure``:
transient (try again later), permanent (the message will never be taken) or gone
(HTTP 410: the channel is disabled). A send runs inside an
``Exchange`` bounded by the channel's ``timeout``; one cut short by its ``Stop`` raises
``Cancelled`` instead (the message stays as it was in the outbox).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from monitor.alerts.exchange import Stop
from monitor.alerts.payloads import Message
from monitor.config import AppriseSettings, EmailSettings, WebhookSettings
from monitor.errors import DeliveryError

ChannelSettings = EmailSettings | WebhookSettings | AppriseSettings


__all__ = ["ChannelSettings", "DeliveryError", "Sender", "digest_window_end", "new_message_id", "wants"]


class Sender(Protocol):
    """Delivers messages to one channel."""

    def send(self, message: Message, stop: Stop | None = None) -> str | None:
        """Deliver ``message``; return a note worth keeping (or None).

        Raise ``DeliveryError``, or ``Cancelled`` once ``stop`` is set.
        """
        ...

    def close(self) -> None: ...


def new_message_id() -> str:
    """A fresh id: random, so ids never repeat across databases or re-installs."""
    return "msg_" + secrets.token_hex(16)


def wants(channel: ChannelSettings, entities: Iterable[str]) -> bool:
    """Whether ``channel`` takes an alert mentioning ``entities``."""
    if channel.entities is None:
        return True
    wanted = {e.casefold() for e in channel.entities}
    return any(e.casefold() in wanted for e in entities)


def digest_window_end(moment: datetime, interval: float) -> datetime:
    """The end of the digest window holding ``moment``.

    Windows are aligned on the Unix epoch (``1h`` ends on the hour, ``1d`` at midnight
    UTC), so every process and every restart agrees on them.
    """
    seconds = moment.timestamp()
    end = (math.floor(seconds / interval) + 1) * interval
    return datetime.fromtimestamp(end, UTC)
