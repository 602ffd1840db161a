"""Alerts: the outbox written with each new article, and its delivery.

    outbox.py    enqueue_alerts (in the article's transaction), queries for the CLI
    dispatch.py  deliver_due: claims due alerts, sends, retries, marks sent
    email.py     SMTP sender and the rendering of e-mails
    webhook.py   Standard-Webhooks-signed JSON POSTs
    payloads.py  what a message says, apart from the tables
    channels.py  routing, digest windows, DeliveryError

Delivery is at least once per channel, and every re-send of a message carries the same
id, so a receiver that drops repeated ids sees each alert exactly once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.alerts.channels import DeliveryError
    from monitor.alerts.dispatch import DeliveryReport, deliver_due, send_test
    from monitor.alerts.outbox import enqueue_alerts

__all__ = ["DeliveryError", "DeliveryReport", "deliver_due", "enqueue_alerts", "send_test"]

# The names above are imported on first use: storing an article needs only the outbox,
# and should not load the senders (httpx, smtplib) with it.
_HOMES = {
    "DeliveryError": "monitor.alerts.channels",
    "DeliveryReport": "monitor.alerts.dispatch",
    "deliver_due": "monitor.alerts.dispatch",
    "send_test": "monitor.alerts.dispatch",
    "enqueue_alerts": "monitor.alerts.outbox",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
