"""The alert outbox as tests look at it: what it holds, and one delivery round.

The receivers the alerts go to are ``SMTPSink`` and ``WebhookReceiver``
(``servers.py``) and ``NotifyReceiver`` (``notify.py``); the ``smtp``, ``hook`` and
``alerting`` fixtures (``tests/conftest.py``) run them and point settings at them.
"""

from __future__ import annotations

import base64
import random
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import select

from monitor.alerts.dispatch import DeliveryReport, deliver_due
from monitor.config import Settings
from monitor.db import session
from monitor.models import Alert

# The ``hook`` fixture's signing secret, in the Standard Webhooks form ("whsec_" + base64).
SECRET = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes....").decode()


def alerts_of(engine: sa.Engine) -> list[Alert]:
    """Every alert in the outbox, oldest first."""
    with session(engine) as db:
        return list(db.exec(select(Alert).order_by(Alert.id)).all())


def deliver(engine: sa.Engine, settings: Settings, now: datetime | None = None) -> DeliveryReport:
    """One delivery round, its retry jitter seeded so that a test's retry times repeat."""
    return deliver_due(engine, settings, now=now, rng=random.Random(7))
