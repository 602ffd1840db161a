"""The daemon (``monitor run``): poll due feeds, deliver alerts, follow the configuration.

APScheduler drives four short jobs, each a method of ``Daemon``; the database decides
what is due, so any number of daemons can share one PostgreSQL database:

- ``poll`` every ``poll.tick``: claim due feeds and poll them in the background;
- ``leases`` every ``poll.lease / 3``: renew the leases of feeds in flight;
- ``alerts`` every 30 s, and as soon as a poll has queued alerts: deliver them, each
  channel in a thread of its own; a channel whose delivery is still under way (a slow
  receiver, bounded by its ``timeout``) goes round again when it is done, and holds up
  no other;
- ``config`` every 5 min, and on SIGHUP: re-read the configuration file.

Re-matching: at the start and after each reload, when the tracked entities differ from
those the stored mentions were matched with (``monitor.pipeline.rematch``), the stored
articles are matched again in the background, a short batch at a time in a thread,
with a pause between batches, so polling goes on; one worker does it at a time (a
lease in the database), and a restart goes on where it stopped. Nothing is alerted.

Live settings are explicit: ``Daemon.settings`` is replaced as a whole when the file is
re-read, and every job reads it when it runs, so a reload changes the feeds, the alert
channels and the tracked entities without a restart (and says what changed). Poll
settings (concurrency, timeouts) take effect at the next start.

Stopping (SIGTERM, SIGINT): no new job starts, alert deliveries in flight are cut short
at once (their alerts stay pending, with their message ids, for the next start), running
jobs and polls in flight get ``poll.shutdown_grace`` seconds, then leases are released.
Deliveries run in daemon threads, so not even one stuck in a connect keeps the process
alive past that. Everything that can start a job checks ``stopping`` on the event loop's
thread first, so nothing reaches the scheduler after it is shut down.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.alerts.dispatch import MAX_PARALLEL_CHANNELS, deliver_due
from monitor.alerts.exchange import Stop
from monitor.config import Settings
from monitor.db import is_outage, outage_reason
from monitor.pipeline.rematch import Progress, Rematcher, RematchReport
from monitor.scheduling.outage import OutageLog
from monitor.scheduling.sync import sync_feeds
from monitor.scheduling.worker import Worker

log = logging.getLogger(__name__)

T = TypeVar("T")

ALERT_EVERY = 30.0  # seconds between two alert deliveries
CONFIG_EVERY = 300.0  # seconds between two reloads of the configuration
REMATCH_PAUSE = 0.2  # seconds between two batches of re-matching: the poll's turn


def changes(old: Settings, new: Settings) -> list[str]:
    """What a reload changes, in words; the feeds' changes are told by their sync."""
    said = _keyed_changes("alert channels", old.alerts.channels, new.alerts.channels, key=lambda c: c.key)
    said += _keyed_changes("entities", old.entities, new.entities, key=lambda e: e.name)
    if new.rules != old.rules:
        said.append("alert rules changed")
    channels = {"email", "webhooks", "apprise"}
    if new.alerts.model_dump(exclude=channels) != old.alerts.model_dump(exclude=channels):
        said.append("alert settings changed")
    if new.dedup != old.dedup:
        said.append("dedup settings changed")
    if new.poll != old.poll:
        said.append("poll settings changed (they take effect at the next start)")
    return said


def _keyed_changes(what: str, old: Sequence[T], new: Sequence[T], *, key: Callable[[T], str]) -> list[str]:
    before, after = {key(item): item for item in old}, {key(item): item for item in new}
    said = []
    for verb, keys in (
        ("added", after.keys() - before.keys()),
        ("removed", before.keys() - after.keys()),
        ("changed", {k for k in after.keys() & before.keys() if after[k] != before[k]}),
    ):
        if keys:
            said.append(f"{what} {verb}: {', '.join(sorted(keys))}")
    return said


class Daemon:
    """One ``monitor run`` process: a worker, a scheduler and the live settings."""

    def __init__(
        self,
        settings: Settings,
        engine: sa.Engine,
        *,
        reload: Callable[[], Settings] | None = None,
        stop: asyncio.Event | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self._reload = reload
        self.stop = stop or asyncio.Event()
        self.worker = Worker(settings, engine)
        self.scheduler: AsyncIOScheduler | None = None
        self.stopping = False
        self._alerts_stop = Stop()
        self._delivering: set[str] = set()  # channels whose delivery is under way
        self._deliver_again: set[str] = set()  # ... and that have more to deliver since
        self._delivery_slots: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._reloading: asyncio.Lock | None = None
        self._outage = OutageLog()
        self._rematching = False  # a re-match of the archive is under way

    # ---------------------------------------------------------------------- the jobs

    async def poll(self) -> None:
        try:
            await self.worker.tick()
        except Exception as exc:
            self._outage.failed("cannot claim feeds", exc)
        else:
            self._outage.succeeded()

    async def renew_leases(self) -> None:
        try:
            await self.worker.renew_leases()
        except Exception as exc:
            self._outage.failed("cannot renew leases", exc)

    async def deliver_alerts(self) -> None:
        self._start_deliveries()

    def _start_deliveries(self) -> None:
        """A delivery for each channel without one; one under way goes round again after."""
        for channel in self.settings.alerts.channels:
            if channel.key in self._delivering:
                self._deliver_again.add(channel.key)
            else:
                self._delivering.add(channel.key)
                self._spawn(self._deliver_channel(channel.key))

    async def _deliver_channel(self, key: str) -> None:
        if self._delivery_slots is None:
            self._delivery_slots = asyncio.Semaphore(MAX_PARALLEL_CHANNELS)
        try:
            while not self.stopping:
                self._deliver_again.discard(key)
                async with self._delivery_slots:
                    await self._deliver_once(key)
                if key not in self._deliver_again:
                    return
        finally:
            self._delivering.discard(key)

    async def _deliver_once(self, key: str) -> None:
        if self.stopping:
            return
        try:
            report = await _in_own_thread(
                lambda: deliver_due(self.engine, self.settings, channels=[key], stop=self._alerts_stop)
            )
        except Exception as exc:
            if is_outage(exc):  # the outage is told by the jobs that poll; its alerts wait in the outbox
                log.warning("alert delivery to %s: the database is unreachable: %s", key, outage_reason(exc))
            else:
                log.exception("alert delivery to %s failed", key)
            return
        if report.sent or report.errors:
            log.info("%s: %s", key, report.summary())

    async def reload_config(self) -> None:
        """Re-read the configuration file and apply it; a broken file changes nothing."""
        assert self._reloading is not None
        async with self._reloading:
            new = self.settings
            if self._reload is not None:
                try:
                    new = await asyncio.to_thread(self._reload)
                except Exception as exc:  # a broken edit must not stop the daemon
                    log.error("configuration not reloaded: %s", exc)
                    return
            said = changes(self.settings, new)
            self.settings = new
            if said:
                await self.worker.reconfigure(new)
            try:
                await asyncio.to_thread(sync_feeds, self.engine, new.feeds)
            except Exception:
                log.exception("feed sync failed")
            for change in said:
                log.info("configuration reloaded: %s", change)
            self._start_rematch()

    def _start_rematch(self) -> None:
        """Re-match the archive in the background if the entities changed since it was matched.

        One under way reads the live entities at each batch, so it follows a reload.
        Called on the event loop's thread, so ``stopping`` cannot change under it.
        """
        if not self.stopping and not self._rematching:
            self._rematching = True
            self._spawn(self._rematch())

    async def _rematch(self) -> None:
        entities = self.settings.entities
        rematcher = Rematcher(self.engine, entities, owner=self.worker.owner)
        report = RematchReport()
        try:
            if not await asyncio.to_thread(rematcher.needed):
                return
            while not self.stopping:
                if self.settings.entities is not entities:  # reloaded meanwhile
                    entities = self.settings.entities
                    rematcher = Rematcher(self.engine, entities, owner=self.worker.owner)
                step = await asyncio.to_thread(rematcher.step)
                if step.started:
                    log.info("re-matching the stored articles with the entities configured now")
                report.add(step.report)
                if step.progress is Progress.BUSY:
                    log.info("another worker re-matches the stored articles; this one polls")
                    return
                if step.progress is Progress.DONE:
                    if report.articles:
                        log.info("re-matched: %s", report.summary())
                    return
                await asyncio.sleep(REMATCH_PAUSE)
            # Stopping: the place is kept in the database for whoever goes on.
            await asyncio.to_thread(rematcher.release)
            log.info("re-matching stopped after %d article(s); it goes on at the next start", report.articles)
        except Exception as exc:
            self._outage.failed("re-matching stopped (it goes on at the next reload)", exc)
        finally:
            self._rematching = False

    def deliver_now(self) -> None:
        """Deliver new alerts at once rather than at the next round.

        A channel's delivery under way goes round again when done, and takes them then.
        Called on the event loop's thread, so ``stopping`` cannot change under it.
        """
        if not self.stopping:
            self._start_deliveries()

    def hang_up(self) -> None:
        """SIGHUP: re-read the configuration now."""
        if not self.stopping:
            self._spawn(self.reload_config())

    # ------------------------------------------------------------------- the process

    async def run(self) -> None:
        """Until SIGTERM/SIGINT (or ``stop``): start, serve the jobs, stop cleanly."""
        loop = asyncio.get_running_loop()
        self._reloading = asyncio.Lock()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.hang_up)
        try:
            await asyncio.to_thread(sync_feeds, self.engine, self.settings.feeds)
            async with self.worker:
                await asyncio.to_thread(self.worker.pool.warm_up)
                self._start_scheduler()
                self.worker.on_alerts_queued = self.deliver_now
                self._start_rematch()
                log.info(
                    "worker %s polling %d feed(s); SQLite: %s",
                    self.worker.owner,
                    len(self.settings.feeds),
                    self.settings.is_sqlite,
                )
                try:
                    await self.stop.wait()
                    log.info("stopping: finishing polls in flight (at most %.0fs)", self.settings.poll.shutdown_grace)
                finally:
                    await self._stop_scheduler()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
        log.info("stopped")

    def _start_scheduler(self) -> None:
        poll = self.settings.poll
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        first = {"next_run_time": _now()}
        jobs: list[tuple[str, Callable[[], Awaitable[None]], float, bool]] = [
            ("poll", self.poll, poll.tick, True),
            ("leases", self.renew_leases, max(poll.lease / 3, 1.0), False),
            ("alerts", self.deliver_alerts, ALERT_EVERY, True),
            ("config", self.reload_config, CONFIG_EVERY, False),
        ]
        for name, job, every, at_once in jobs:
            scheduler.add_job(
                self._tracked(job), "interval", seconds=every, id=name, **options, **(first if at_once else {})
            )
        scheduler.start()
        self.scheduler = scheduler

    async def _stop_scheduler(self) -> None:
        """No job starts any more; deliveries are cut short, the rest finish (within the grace)."""
        self.stopping = True
        self._alerts_stop.set()
        self.worker.request_stop()
        self.worker.on_alerts_queued = None
        if self.scheduler is not None:
            self.scheduler.pause()
        if self._running:
            await asyncio.wait(list(self._running), timeout=self.settings.poll.shutdown_grace)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)

    def _tracked(self, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        # The scheduler cancels the jobs still running when it shuts down; these are
        # let finish first.
        async def run() -> None:
            if self.stopping:
                return
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                await job()
            finally:
                self._running.discard(task)

        return run

    def _spawn(self, job: Awaitable[None]) -> None:
        async def run() -> None:
            await job

        task = asyncio.ensure_future(run())
        self._running.add(task)
        task.add_done_callback(self._running.discard)


def _now() -> datetime:
    return datetime.now().astimezone()


async def _in_own_thread(call: Callable[[], T]) -> T:
    """``call()`` in a daemon thread of its own.

    Unlike ``asyncio.to_thread``, whose threads the end of ``asyncio.run`` waits for, a
    call that hangs cannot keep the process alive.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return  # the waiter was cancelled: nobody wants it any more
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = call(), None
        except BaseException as exc:
            result, error = None, exc
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the event loop is closed: the process is ending

    threading.Thread(target=run, name="alerts", daemon=True).start()
    return await future


async def run_daemon(
    settings: Settings,
    engine: sa.Engine,
    *,
    reload: Callable[[], Settings] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the daemon until SIGTERM/SIGINT (or ``stop`` is set)."""
    await Daemon(settings, engine, reload=reload, stop=stop).run()


__all__ = ["ALERT_EVERY", "CONFIG_EVERY", "Daemon", "changes", "run_daemon"]
