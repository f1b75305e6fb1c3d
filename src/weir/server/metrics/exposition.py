"""The text of `GET /metrics`: the process's own counters (prometheus-client's default
registry) followed by the database's figures, read at most once per
`SNAPSHOT_TTL_SECONDS` however many scrapers ask (concurrent scrapes share one read).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Iterator
from datetime import datetime
from importlib import metadata

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from weir.core.clock import utcnow
from weir.server.db.engine import Database
from weir.server.metrics.database import DatabaseFigures, read_figures

SNAPSHOT_TTL_SECONDS = 3.0
SCHEDULER = "scheduler"


class MetricsSnapshots:
    """The database part of the exposition, rendered and kept for `ttl_seconds`."""

    def __init__(self, ttl_seconds: float = SNAPSHOT_TTL_SECONDS) -> None:
        self.ttl_seconds = ttl_seconds
        self._text = b""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def render(self, database: Database, late_after_seconds: float) -> bytes:
        """The whole exposition: this process's counters, then the database's figures."""
        return generate_latest(REGISTRY) + await self._database_text(database, late_after_seconds)

    async def _database_text(self, database: Database, late_after_seconds: float) -> bytes:
        if self._expires > time.monotonic():
            return self._text
        async with self._lock:
            if self._expires > time.monotonic():  # another scrape read it while we waited
                return self._text
            started = time.perf_counter()
            now = utcnow()
            async with database.read() as session:
                figures = await read_figures(session, now, late_after_seconds)
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_FiguresCollector(figures, now, time.perf_counter() - started))
            self._text = generate_latest(registry)
            self._expires = time.monotonic() + self.ttl_seconds
            return self._text


class _FiguresCollector:
    def __init__(self, figures: DatabaseFigures, now: datetime, seconds: float) -> None:
        self.figures, self.now, self.seconds = figures, now, seconds

    def collect(self) -> Iterator[Metric]:
        yield from _run_families(self.figures)
        yield from _pool_families(self.figures)
        yield from _service_families(self.figures)
        build = GaugeMetricFamily(
            "weir_build_info", "The weir version serving.", labels=["version"]
        )
        build.add_metric([_version()], 1.0)
        yield build
        scrape = GaugeMetricFamily(
            "weir_metrics_database_read_seconds",
            "How long the last read of the database's figures for /metrics took.",
        )
        scrape.add_metric([], self.seconds)
        yield scrape


def _run_families(figures: DatabaseFigures) -> Iterator[Metric]:
    runs = GaugeMetricFamily(
        "weir_flow_runs",
        "Flow runs now in each non-final state.",
        labels=["project", "deployment", "state"],
    )
    for labels, count in sorted(figures.runs.items()):
        runs.add_metric(list(labels), count)
    late = GaugeMetricFamily(
        "weir_flow_runs_late",
        "SCHEDULED flow runs past their expected start by more than the late-runs threshold.",
        labels=["project", "deployment"],
    )
    oldest = GaugeMetricFamily(
        "weir_flow_runs_late_oldest_seconds",
        "How late the oldest late flow run is, in seconds.",
        labels=["project", "deployment"],
    )
    for pair, (count, seconds) in sorted(figures.late.items()):
        late.add_metric(list(pair), count)
        oldest.add_metric(list(pair), seconds)
    ended = GaugeMetricFamily(
        "weir_flow_runs_ended_recent",
        "Flow runs that reached each final state in the last 15 minutes, whichever "
        "process ended them.",
        labels=["project", "deployment", "state"],
    )
    for labels, count in sorted(figures.ended.items()):
        ended.add_metric(list(labels), count)
    yield from (runs, late, oldest, ended)


def _pool_families(figures: DatabaseFigures) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "weir_work_queue_depth",
        "SCHEDULED flow runs due now, waiting in each work pool's queue.",
        labels=["project", "pool", "queue"],
    )
    for labels, count in sorted(figures.queue_depth.items()):
        depth.add_metric(list(labels), count)
    online = GaugeMetricFamily(
        "weir_workers_online",
        "Workers of each pool whose heartbeat is current.",
        labels=["project", "pool"],
    )
    offline = GaugeMetricFamily(
        "weir_workers_offline",
        "Workers of each pool whose heartbeats stopped (kept until the retention prunes them).",
        labels=["project", "pool"],
    )
    for pair, (up, down) in sorted(figures.workers.items()):
        online.add_metric(list(pair), up)
        offline.add_metric(list(pair), down)
    yield from (depth, online, offline)


def _service_families(figures: DatabaseFigures) -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "weir_scheduler_lag_seconds",
        "Seconds since the scheduler's last pass, in whichever process runs it.",
    )
    last_pass = GaugeMetricFamily(
        "weir_service_last_pass_seconds",
        "How long each loop service's last pass took.",
        labels=["service"],
    )
    since = GaugeMetricFamily(
        "weir_service_seconds_since_heartbeat",
        "Seconds since each loop service last finished a pass.",
        labels=["service"],
    )
    error_time = GaugeMetricFamily(
        "weir_service_last_error_timestamp_seconds",
        "When each loop service last failed a pass (Unix time; absent if never).",
        labels=["service"],
    )
    for service in figures.services:
        if service.last_pass_seconds is not None:
            last_pass.add_metric([service.name], service.last_pass_seconds)
        if service.seconds_since_heartbeat is not None:
            since.add_metric([service.name], service.seconds_since_heartbeat)
            if service.name == SCHEDULER:
                lag.add_metric([], service.seconds_since_heartbeat)
        if service.last_error_time is not None:
            error_time.add_metric([service.name], service.last_error_time.timestamp())
    yield from (lag, last_pass, since, error_time)


@functools.cache
def _version() -> str:
    try:
        return metadata.version("weir")
    except metadata.PackageNotFoundError:
        return "unknown"
