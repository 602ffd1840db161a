"""The dispatcher: sends due alerts from the outbox, channels side by side, each in order.

A delivery round (``deliver_due``) runs each configured channel in a thread of its own
(at most ``MAX_PARALLEL_CHANNELS`` at once), so a slow or dead receiver holds up no other
channel; the round ends when every channel's part has. One channel's part:

1. **Claim the channel** (``claims``): on PostgreSQL its ``alert_channel`` row is
   locked (``FOR UPDATE SKIP LOCKED``) for the whole of it; on SQLite a file lock keeps
   other processes out; within the process one thread at a time delivers a channel.
   Another dispatcher's channel is skipped ("busy").
2. **Take the oldest pending alert.** If it is not due (in back-off, or its digest
   window is still open), the channel waits: newer alerts never overtake it.
3. **Fix its message id and commit** before the first attempt. A digest gathers every
   due alert of the channel under one id. From then on the message is re-sent with
   the same id (``webhook-id`` / ``Message-ID``) until it is marked sent.
4. **Send, then mark sent and commit.** A crash before the mark re-sends the same
   message; receivers drop the repeated id.

Each send is bounded as a whole by the channel's ``timeout`` (``exchange``). Setting the
round's ``Stop`` (shutdown, Ctrl-C) cuts every send in flight short and starts no new
one: an alert cut short is left exactly as it was, pending with its message id, and
sent again by a later round.

Failures: transient ones back off exponentially with jitter (or as ``Retry-After``
says) until ``alerts.give_up_after`` has passed since the alert was queued; permanent
ones mark the alert failed with the reason; HTTP 410 disables the channel (its alerts
stay pending until ``monitor alerts retry`` re-enables it).

One module, past the house's usual size, because a round's steps (order, fix the
message id, send, mark) share one transaction discipline that is easier to check read
together than spread over files.
"""

from __future__ import annotations

import functools
import logging
import queue
import random
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from monitor.alerts.channels import (
    ChannelSettings,
    DeliveryError,
    Sender,
    new_message_id,
)
from monitor.alerts.claims import ChannelHold, hold_channel, process_lock
from monitor.alerts.email import EmailSender
from monitor.alerts.exchange import Cancelled, Stop
from monitor.alerts.outbox import ensure_channels, load_message
from monitor.alerts.payloads import CREATED, DIGEST, Message, sample_message
from monitor.alerts.webhook import WebhookSender
from monitor.config import AlertSettings, AppriseSettings, EmailSettings, Settings, require_secrets
from monitor.db import session as open_session
from monitor.models import Alert
from monitor.outcomes import AlertStatus, DeliveryFailure
from monitor.times import utcnow

log = logging.getLogger(__name__)

# Bounds of one round, so a large backlog cannot hold a channel (or the daemon) for long.
MAX_MESSAGES_PER_ROUND = 100
MAX_DIGEST_ITEMS = 200
# Channels delivered at once: each holds up to two database connections meanwhile.
MAX_PARALLEL_CHANNELS = 8
# After Ctrl-C, how long the channels' threads get to put their state down.
STOP_WAIT = 5.0


@dataclass
class DeliveryReport:
    """What one delivery round did."""

    sent: int = 0  # alerts delivered
    messages: int = 0  # e-mails and webhook calls that succeeded
    retrying: int = 0  # alerts put into back-off
    failed: int = 0  # alerts marked failed
    disabled: list[str] = field(default_factory=list)  # channels disabled (410)
    busy: list[str] = field(default_factory=list)  # channels another dispatcher held
    errors: list[str] = field(default_factory=list)  # "channel: reason"

    def as_dict(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "messages": self.messages,
            "retrying": self.retrying,
            "failed": self.failed,
            "disabled": self.disabled,
            "busy": self.busy,
            "errors": self.errors,
        }

    def add(self, other: DeliveryReport) -> None:
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> str:
        text = f"alerts: {self.sent} sent in {self.messages} messages, {self.retrying} retrying, {self.failed} failed"
        if self.disabled:
            text += f"; disabled: {', '.join(self.disabled)}"
        if self.busy:
            text += f"; busy elsewhere: {', '.join(self.busy)}"
        return text


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with jitter: ``initial``·2ⁿ, capped, times 0.5–1."""

    initial: float
    maximum: float
    give_up_after: float

    @classmethod
    def from_settings(cls, alerts: AlertSettings) -> RetryPolicy:
        return cls(alerts.retry_initial, alerts.retry_max, alerts.give_up_after)

    def delay(self, attempts: int, rng: random.Random, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return max(retry_after, 1.0)
        ceiling = min(self.maximum, self.initial * 2 ** max(attempts - 1, 0))
        return rng.uniform(ceiling / 2, ceiling)


def build_senders(settings: Settings, keys: Collection[str] | None = None) -> dict[str, Sender]:
    """A sender per channel (of ``keys``); ``ConfigError`` if one lacks a variable it needs."""
    require_secrets(settings, keys)
    senders: dict[str, Sender] = {}
    for channel in settings.alerts.channels:
        if keys is not None and channel.key not in keys:
            continue
        if isinstance(channel, EmailSettings):
            senders[channel.key] = EmailSender(channel)
        elif isinstance(channel, AppriseSettings):
            # Imported here: Apprise loads its plugins, which a setup without it never needs.
            from monitor.alerts.apprise import AppriseSender

            senders[channel.key] = AppriseSender(channel)
        else:
            senders[channel.key] = WebhookSender(channel, user_agent=settings.poll.user_agent)
    return senders


def deliver_due(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    senders: Mapping[str, Sender] | None = None,
    rng: random.Random | None = None,
    channels: Collection[str] | None = None,
    stop: Stop | None = None,
) -> DeliveryReport:
    """Send every due alert of the configured channels (or of those ``channels``); one round."""
    report = DeliveryReport()
    chosen = [c for c in settings.alerts.channels if channels is None or c.key in channels]
    if not chosen:
        return report
    now = now or utcnow()
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    with open_session(engine) as session:
        ensure_channels(session, keys=[c.key for c in chosen])
        session.commit()
    own = senders is None
    active = dict(senders) if senders is not None else build_senders(settings, [c.key for c in chosen])
    rng = rng or random.Random()
    stop = stop or Stop()
    rounds = [_Round(engine, settings, now, random.Random(rng.random()), stop) for _ in chosen]
    try:
        with process_lock(engine) as acquired:
            if not acquired:
                report.busy = [c.key for c in chosen]
                return report
            jobs = [functools.partial(r.deliver_channel, c, active[c.key]) for r, c in zip(rounds, chosen, strict=True)]
            _side_by_side(jobs, stop)
    finally:
        if own:
            for sender in active.values():
                sender.close()
    for round_ in rounds:
        report.add(round_.report)
    return report


def _side_by_side(jobs: Sequence[Callable[[], None]], stop: Stop) -> None:
    """Run ``jobs`` in threads (``MAX_PARALLEL_CHANNELS`` at most) and wait for them all.

    The first error of a job is raised once every job has ended. Ctrl-C cuts what is in
    flight short and gives the jobs ``STOP_WAIT`` seconds to end; the threads are daemon
    threads, so one that still hangs (a connect) cannot keep the process alive.
    """
    if len(jobs) == 1:
        jobs[0]()
        return
    todo: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
    for job in jobs:
        todo.put(job)
    errors: list[Exception] = []

    def work() -> None:
        while not stop.is_set():
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                job()
            except Exception as exc:
                errors.append(exc)

    threads = [
        threading.Thread(target=work, name=f"alerts-{n}", daemon=True)
        for n in range(min(len(jobs), MAX_PARALLEL_CHANNELS))
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        stop.set()
        for thread in threads:
            thread.join(timeout=STOP_WAIT)
        raise
    if errors:
        raise errors[0]


# ------------------------------------------------------------------------------ round


@dataclass
class _Batch:
    """The alerts one message carries."""

    alert_ids: list[int]
    queued_at: datetime
    attempts: int
    message: Message | None  # None: none of the articles is stored any more


class _Round:
    """One channel's part of a round (a thread of its own), with its own report."""

    def __init__(self, engine: Engine, settings: Settings, now: datetime, rng: random.Random, stop: Stop) -> None:
        self.engine = engine
        self.settings = settings
        self.now = now
        self.rng = rng
        self.stop = stop
        self.report = DeliveryReport()
        self.policy = RetryPolicy.from_settings(settings.alerts)

    def deliver_channel(self, channel: ChannelSettings, sender: Sender) -> None:
        with hold_channel(self.engine, channel.key) as hold:
            if hold is None:
                self.report.busy.append(channel.key)
                return
            if hold.state.disabled_at is not None:
                return
            for _ in range(MAX_MESSAGES_PER_ROUND):
                if self.stop.is_set():
                    return
                batch = self._next_batch(channel)
                if batch is None:
                    return
                if not self._attempt(channel, sender, batch, hold):
                    return

    def _attempt(self, channel: ChannelSettings, sender: Sender, batch: _Batch, hold: ChannelHold) -> bool:
        """Send one batch and record the outcome; False stops the channel's round."""
        if batch.message is None:
            self._mark_failed(batch.alert_ids, "the article is no longer stored")
            return True
        try:
            note = sender.send(batch.message, self.stop)
        except Cancelled:
            # Not an attempt that failed: the alerts stay as they are, to be sent again.
            log.info("alert delivery to %s cut short by shutdown; it stays queued", channel.key)
            return False
        except DeliveryError as exc:
            return self._record_failure(channel, batch, exc, hold)
        except Exception as exc:
            # A failure no sender foresaw must not wedge the channel: retry, then give up.
            log.exception("unexpected error delivering to %s", channel.key)
            error = DeliveryError(DeliveryFailure.TRANSIENT, f"unexpected error: {type(exc).__name__}: {exc}")
            return self._record_failure(channel, batch, error, hold)
        self._update(
            batch.alert_ids,
            status=AlertStatus.SENT,
            sent_at=self.now,
            last_error=note,
            attempts=Alert.attempts + 1,
            last_attempt_at=self.now,
        )
        hold.state.last_sent_at = self.now
        hold.save()
        self.report.sent += len(batch.alert_ids)
        self.report.messages += 1
        return True

    # -------------------------------------------------------------- choosing a batch

    def _next_batch(self, channel: ChannelSettings) -> _Batch | None:
        with open_session(self.engine) as session:
            pending = (
                select(Alert)
                .where(Alert.channel == channel.key, Alert.status == AlertStatus.PENDING)
                .order_by(col(Alert.id))
            )
            # An alert waiting for its digest window (a rule's) holds up no other.
            waiting = sa.and_(
                col(Alert.message_id).is_(None),
                col(Alert.message_type) == DIGEST,
                col(Alert.next_attempt_at) > self.now,
            )
            head = session.exec(pending.where(sa.not_(waiting)).limit(1)).first()
            if head is None or head.next_attempt_at > self.now:
                return None
            digest = bool(channel.digest) or head.message_type == DIGEST
            if head.message_id is not None:
                members = list(session.exec(pending.where(Alert.message_id == head.message_id)))
            elif digest:
                gathered = pending.where(col(Alert.message_id).is_(None), col(Alert.next_attempt_at) <= self.now)
                if not channel.digest:  # a rule's digest: its window's alerts, not the others
                    gathered = gathered.where(col(Alert.message_type) == DIGEST)
                members = list(session.exec(gathered.limit(MAX_DIGEST_ITEMS)))
            else:
                members = [head]
            if head.message_id is None:
                # Fixed and committed before the first attempt: every re-send reuses it.
                message_id = new_message_id()
                for alert in members:
                    alert.message_id = message_id
                    alert.message_type = DIGEST if digest else CREATED
                    session.add(alert)
                session.commit()
            return _Batch(
                alert_ids=[a.id for a in members if a.id is not None],
                queued_at=min(a.queued_at for a in members),
                attempts=max(a.attempts for a in members),
                message=load_message(session, members, settings=self.settings),
            )

    # ---------------------------------------------------------------- failures

    def _record_failure(self, channel: ChannelSettings, batch: _Batch, exc: DeliveryError, hold: ChannelHold) -> bool:
        reason = str(exc)[:2000]
        log.warning("alert delivery to %s failed (%s): %s", channel.key, exc.kind, reason)
        self.report.errors.append(f"{channel.key}: {reason}")
        hold.state.last_error = reason
        hold.state.last_error_at = self.now
        if exc.kind is DeliveryFailure.GONE:
            self._update(batch.alert_ids, attempts=Alert.attempts + 1, last_attempt_at=self.now, last_error=reason)
            hold.state.disabled_at = self.now
            hold.state.disabled_reason = reason[:500]
            hold.save()
            self.report.disabled.append(channel.key)
            return False
        hold.save()
        if exc.kind is DeliveryFailure.PERMANENT:
            self._mark_failed(batch.alert_ids, reason)
            return True
        give_up_at = batch.queued_at + timedelta(seconds=self.policy.give_up_after)
        if self.now >= give_up_at:
            self._give_up(channel, batch, reason)
            return False
        delay = self.policy.delay(batch.attempts + 1, self.rng, exc.retry_after)
        self._update(
            batch.alert_ids,
            attempts=Alert.attempts + 1,
            last_attempt_at=self.now,
            last_error=reason,
            next_attempt_at=self.now + timedelta(seconds=delay),
        )
        self.report.retrying += len(batch.alert_ids)
        return False

    def _give_up(self, channel: ChannelSettings, batch: _Batch, reason: str) -> None:
        """Fail this batch and every pending alert of the channel as old as it."""
        hours = self.policy.give_up_after / 3600
        why = f"gave up after retrying for {hours:g}h; last error: {reason}"[:2000]
        cutoff = self.now - timedelta(seconds=self.policy.give_up_after)
        self._mark_failed(batch.alert_ids, why)
        with open_session(self.engine) as session:
            result = session.exec(
                sa.update(Alert)
                .where(
                    col(Alert.channel) == channel.key,
                    col(Alert.status) == AlertStatus.PENDING,
                    col(Alert.queued_at) <= cutoff,
                )
                .values(status=AlertStatus.FAILED, last_error=why)
            )
            session.commit()
        self.report.failed += result.rowcount or 0

    def _mark_failed(self, alert_ids: Sequence[int], reason: str) -> None:
        self._update(
            alert_ids,
            status=AlertStatus.FAILED,
            last_error=reason[:2000],
            attempts=Alert.attempts + 1,
            last_attempt_at=self.now,
        )
        self.report.failed += len(alert_ids)

    def _update(self, alert_ids: Sequence[int], **values: Any) -> None:
        with open_session(self.engine) as session:
            session.execute(
                sa.update(Alert)
                .where(col(Alert.id).in_(list(alert_ids)), col(Alert.status) == AlertStatus.PENDING)
                .values(**values)
            )
            session.commit()


# ------------------------------------------------------------------- channel checks


@dataclass(frozen=True)
class ChannelCheck:
    channel: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "ok": self.ok, "detail": self.detail}


def send_test(settings: Settings, *, senders: Mapping[str, Sender] | None = None) -> list[ChannelCheck]:
    """Send an example alert (``mention.test``) to every configured channel."""
    own = senders is None
    active = dict(senders) if senders is not None else build_senders(settings)
    results = []
    try:
        for channel in settings.alerts.channels:
            message = sample_message(message_id=new_message_id(), now=utcnow(), public_url=settings.alerts.public_url)
            try:
                note = active[channel.key].send(message)
            except DeliveryError as exc:
                results.append(ChannelCheck(channel.key, False, f"{exc.kind}: {exc}"))
            else:
                results.append(ChannelCheck(channel.key, True, note or "delivered"))
    finally:
        if own:
            for sender in active.values():
                sender.close()
    return results
