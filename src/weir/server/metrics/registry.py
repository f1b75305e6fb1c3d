"""The process's metrics that are counted as things happen, in prometheus-client's
default registry (the ones read from the database are collected at scrape time, in
`weir.server.metrics.database`).

Each process counts what it saw: with several replicas, Prometheus sums them.
"""

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
FLOW_RUN_TRANSITIONS = Counter(
    "weir_flow_run_transitions_total",
    "Accepted flow-run state changes, by the state entered.",
    ["project", "deployment", "state"],
)
FLOW_RUN_DURATION = Histogram(
    "weir_flow_run_duration_seconds",
    "Seconds from a flow run's start to its final state, observed when it ends.",
    ["project", "deployment"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400),
)
TASK_RUNS_FINISHED = Counter(
    "weir_task_runs_total",
    "Task runs reported in a final state, by that state.",
    ["project", "state"],
)
API_REQUEST_SECONDS = Histogram(
    "weir_api_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status class.",
    ["method", "route", "status"],
    # claims long-poll for up to half a minute
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


def observe_service_pass(service: str, seconds: float, failed: bool) -> None:
    SERVICE_PASS_SECONDS.labels(service).observe(seconds)
    if failed:
        SERVICE_PASS_ERRORS.labels(service).inc()
