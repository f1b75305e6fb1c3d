"""Prometheus metrics of the server (`GET /metrics`): counters the process keeps as
things happen (`registry`, fed by `runs` and `latency`) and figures read from the
database at scrape time (`database`, rendered by `exposition`)."""

from weir.server.metrics.registry import observe_service_pass
from weir.server.metrics.runs import flow_run_state_changed, task_runs_reported

__all__ = ["flow_run_state_changed", "observe_service_pass", "task_runs_reported"]
