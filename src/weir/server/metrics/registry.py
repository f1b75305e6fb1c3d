"""The process's metrics that are counted as things happen (the ones read from the
database are collected at scrape time)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SERVICE_PASS_SECONDS = Histogram(
    "weir_service_pass_duration_seconds",
    "How long one pass of a loop service took.",
    ["service"],
)
SERVICE_PASS_ERRORS = Counter(
    "weir_service_pass_errors_total",
    "Passes of a loop service that failed.",
    ["service"],
)


def observe_service_pass(service: str, seconds: float, failed: bool) -> None:
    SERVICE_PASS_SECONDS.labels(service).observe(seconds)
    if failed:
        SERVICE_PASS_ERRORS.labels(service).inc()
