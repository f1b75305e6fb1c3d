"""`/metrics` of a real `weir server start` with basic auth on: refused without
credentials, and with them it shows the run a client just finished and the heartbeat
of the scheduler running in the server."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from weir.testing import temporary_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def test_a_real_server_serves_metrics_behind_basic_auth() -> None:
    env = {"WEIR_SERVER_API_AUTH_STRING": "admin:s3cret"}
    with temporary_server(env=env) as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/metrics").status_code == 401
        auth = ("admin", "s3cret")
        run = http.post("/api/flow_runs/", json={"flow_name": "etl"}, auth=auth).json()
        for state in ("RUNNING", "COMPLETED"):
            body = {"state": {"type": state}}
            accepted = http.post(f"/api/flow_runs/{run['id']}/set_state", json=body, auth=auth)
            assert accepted.status_code == 201, accepted.text

        deadline = time.monotonic() + 30
        while True:  # the scheduler's first pass, once the 3 s cache lets it through
            response = http.get("/metrics", auth=auth)
            assert response.status_code == 200
            samples = {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(response.text)
                for sample in family.samples
            }
            heartbeat = ("weir_service_seconds_since_heartbeat", (("service", "scheduler"),))
            if heartbeat in samples or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert samples[heartbeat] < 30
    assert ("weir_scheduler_lag_seconds", ()) in samples
    labels = (("deployment", ""), ("project", "default"), ("state", "COMPLETED"))
    assert samples[("weir_flow_run_transitions_total", labels)] == 1
    duration = (
        "weir_flow_run_duration_seconds_count",
        (("deployment", ""), ("project", "default")),
    )
    assert samples[duration] == 1
