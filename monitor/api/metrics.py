"""Prometheus metrics in a registry the app owns (never the process-wide default).

Archive figures are read from the database at scrape time by ``ArchiveCollector``:
a handful of grouped counts on indexed columns, so a scrape stays cheap and every
server (and every worker writing the archive) reports the same numbers. Request
counts are kept in memory by ``RequestMetrics``, an ASGI middleware.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import col
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor.models import Alert, Article, Feed, Mention
from monitor.outcomes import AlertStatus, FeedStatus

log = logging.getLogger(__name__)

FEED_STATUSES: tuple[str, ...] = tuple(status.value for status in FeedStatus)
# Any other method is counted as "other": label values must stay a small set.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ArchiveCollector(Collector):
    """Gauges of the archive, the feeds and the alert outbox, queried per scrape."""

    def __init__(self, engine: Engine, *, entities: Iterable[str] = ()) -> None:
        self._engine = engine
        self._entities = tuple(entities)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("monitor_database_up", "1 when the database answered this scrape")
        try:
            with self._engine.connect() as connection:
                figures = list(self._figures(connection))
        except sa.exc.SQLAlchemyError as exc:
            log.warning("metrics: database unavailable: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from figures

    def _figures(self, connection: sa.Connection) -> Iterator[Metric]:
        is_duplicate = col(Article.is_duplicate)
        by_kind: dict[bool, int] = dict(
            connection.execute(sa.select(is_duplicate, sa.func.count()).group_by(is_duplicate)).all()
        )
        stored = GaugeMetricFamily("monitor_articles_stored", "Articles in the archive, duplicates included")
        stored.add_metric([], sum(by_kind.values()))
        yield stored
        duplicates = GaugeMetricFamily("monitor_articles_duplicates", "Stored articles recognised as duplicates")
        duplicates.add_metric([], by_kind.get(True, 0))
        yield duplicates

        yield self._grouped(
            connection,
            Mention.entity,
            "monitor_mentions",
            "Entity mentions found in stored articles",
            "entity",
            self._entities,
        )
        yield self._grouped(
            connection,
            Feed.status,
            "monitor_feeds",
            "Feeds by polling status",
            "status",
            FEED_STATUSES,
        )
        yield from self._feed_pace_and_extraction(connection)
        yield self._grouped(
            connection,
            Alert.status,
            "monitor_alerts",
            "Alerts in the outbox by status",
            "status",
            (AlertStatus.PENDING,),
        )

    @staticmethod
    def _feed_pace_and_extraction(connection: sa.Connection) -> Iterator[Metric]:
        """Per active feed: its poll interval and extraction failure rate; the broken ones, counted."""
        rows = connection.execute(
            sa.select(
                col(Feed.name),
                sa.func.coalesce(col(Feed.interval), col(Feed.current_interval)),
                col(Feed.extraction_failure_rate),
                col(Feed.extraction_broken_at).is_not(None),
            ).where(col(Feed.active).is_(True))
        ).all()
        interval = GaugeMetricFamily(
            "monitor_feed_poll_interval_seconds",
            "Seconds between two polls of the feed (adaptive unless set)",
            labels=["feed"],
        )
        failures = GaugeMetricFamily(
            "monitor_feed_extraction_failure_ratio",
            "Share of the feed's recent articles whose page gave no text",
            labels=["feed"],
        )
        broken = GaugeMetricFamily("monitor_feeds_extraction_broken", "Feeds whose extraction is flagged broken")
        flagged = 0
        for name, seconds, rate, is_broken in rows:
            if seconds is not None:
                interval.add_metric([name], seconds)
            if rate is not None:
                failures.add_metric([name], rate)
            flagged += bool(is_broken)
        broken.add_metric([], flagged)
        yield interval
        yield failures
        yield broken

    @staticmethod
    def _grouped(
        connection: sa.Connection,
        column: Any,
        name: str,
        documentation: str,
        label: str,
        always: Iterable[str],
    ) -> Metric:
        counts = dict.fromkeys(always, 0)
        counts.update(connection.execute(sa.select(column, sa.func.count()).group_by(column)).all())
        family = GaugeMetricFamily(name, documentation, labels=[label])
        for key in sorted(counts):
            family.add_metric([str(key)], counts[key])
        return family


class HTTPMetrics:
    """The request counter and latency histogram, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "monitor_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "monitor_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            registry=registry,
        )


class RequestMetrics:
    """ASGI middleware counting every request by its route *template* (bounded labels)."""

    def __init__(self, app: ASGIApp, *, metrics: HTTPMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client sees when the app raises before answering

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.requests.labels(route, method, str(status)).inc()
            self.metrics.duration.labels(route).observe(time.perf_counter() - started)


def registry_for(engine: Engine, *, entities: Iterable[str]) -> tuple[CollectorRegistry, HTTPMetrics]:
    registry = CollectorRegistry()  # no auto-describe: it would query the database here
    registry.register(ArchiveCollector(engine, entities=entities))
    return registry, HTTPMetrics(registry)
