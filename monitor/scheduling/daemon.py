"""The daemon (``monitor run``): poll due feeds, deliver alerts, follow the configuration.

APScheduler drives four short jobs, each a method of ``Daemon``; the database decides
what is due, so any number of daemons can share one PostgreSQL database:

- ``poll`` every ``poll.tick``: claim due feeds and poll them in the background;
- ``leases`` every ``poll.lease / 3``: renew the leases of feeds in flight;
- ``alerts`` every 30 s, and as soon as a poll has queued alerts: deliver them;
- ``config`` every 5 min, and on SIGHUP: re-read the configuration file.

Live settings are explicit: ``Daemon.settings`` is replaced as a whole when the file is
re-read, and every job reads it when it runs, so a reload changes the feeds, the alert
channels and the tracked entities without a restart (and says what changed). Poll
settings (concurrency, timeouts) take effect at the next start.

Stopping (SIGTERM, SIGINT): no new job starts, running jobs and polls in flight get
``poll.shutdown_grace`` seconds, then leases are released. Everything that can start a
job checks ``stopping`` on the event loop's thread first, so nothing reaches the
scheduler after it is shut down.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.alerts.dispatch import deliver_due
from monitor.config import Settings
from monitor.scheduling.sync import sync_feeds
from monitor.scheduling.worker import Worker

log = logging.getLogger(__name__)

T = TypeVar("T")

ALERT_EVERY = 30.0  # seconds between two alert deliveries
CONFIG_EVERY = 300.0  # seconds between two reloads of the configuration


def changes(old: Settings, new: Settings) -> list[str]:
    """What a reload changes, in words; the feeds' changes are told by their sync."""
    said = _keyed_changes("alert channels", old.alerts.channels, new.alerts.channels, key=lambda c: c.key)
    said += _keyed_changes("entities", old.entities, new.entities, key=lambda e: e.name)
    channels = {"email", "webhooks"}
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
        self._delivering = False
        self._running: set[asyncio.Task[None]] = set()
        self._reloading: asyncio.Lock | None = None

    # ---------------------------------------------------------------------- the jobs

    async def poll(self) -> None:
        try:
            await self.worker.tick()
        except Exception:
            log.exception("cannot claim feeds")

    async def renew_leases(self) -> None:
        try:
            await self.worker.renew_leases()
        except Exception:
            log.exception("cannot renew leases")

    async def deliver_alerts(self) -> None:
        self._delivering = True
        try:
            report = await asyncio.to_thread(deliver_due, self.engine, self.settings)
            if report.sent or report.errors:
                log.info(report.summary())
        except Exception:
            log.exception("alert delivery failed")
        finally:
            self._delivering = False

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

    def deliver_now(self) -> None:
        """Deliver new alerts at once rather than at the next round.

        A round under way already, or the next one, takes those it does not see.
        Called on the event loop's thread, so ``stopping`` cannot change under it.
        """
        if self.stopping or self._delivering or self.scheduler is None:
            return
        self.scheduler.modify_job("alerts", next_run_time=_now())

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
        """No job starts any more; those running finish (a delivery is not cut off mid-round)."""
        self.stopping = True
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
