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

from monitor.alerts.channels import DeliveryError
from monitor.alerts.dispatch import DeliveryReport, deliver_due, send_test
from monitor.alerts.outbox import enqueue_alerts

__all__ = ["DeliveryError", "DeliveryReport", "deliver_due", "enqueue_alerts", "send_test"]
