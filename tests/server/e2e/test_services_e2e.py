"""Scale-out of the background services, end to end with real processes on one fresh
PostgreSQL database: two `weir server services start` and one `weir server start
--no-services`. Every service runs in exactly one of the services processes (as
`weir server services ls --json` shows), the scheduler creates each run of an
interval schedule once, and when the owner of the services is killed (SIGKILL, no
clean release) the other process takes them over within about one lease."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from weir.server.services import SERVICES
from weir.testing import TemporaryServer, temporary_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

LEASE_SECONDS = 3.0
FAST = {
    "WEIR_SERVER_SERVICE_LEASE_SECONDS": str(LEASE_SECONDS),
    "WEIR_SERVER_SCHEDULER_INTERVAL_SECONDS": "1",
    "WEIR_SERVER_ZOMBIE_REAPER_INTERVAL_SECONDS": "1",
    "WEIR_SERVER_LIVENESS_INTERVAL_SECONDS": "1",
    "WEIR_SERVER_CANCELLATION_CLEANUP_INTERVAL_SECONDS": "1",
    "WEIR_SERVER_RETENTION_INTERVAL_SECONDS": "1",
    "WEIR_SERVER_LATE_RUNS_INTERVAL_SECONDS": "1",
}
NAMES = sorted(service.name for service in SERVICES)


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url  # every process of these tests shares one PostgreSQL database


@pytest.fixture
def server(database_url: str) -> Iterator[TemporaryServer]:
    with temporary_server(database_url=database_url, env=FAST, args=("--no-services",)) as server:
        yield server


def start_services(database_url: str, home: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env.update(FAST, WEIR_HOME=str(home), WEIR_SERVER_DATABASE_URL=database_url)
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "weir", "server", "services", "start"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def services_ls(server: TemporaryServer) -> dict[str, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "weir", "server", "services", "ls", "--json"],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return {service["name"]: service for service in json.loads(result.stdout)}


def owner_pids(listed: dict[str, dict[str, Any]]) -> dict[str, int | None]:
    """The pid in each service's owner (`hostname:pid:random`)."""
    return {
        name: int(s["owner"].split(":")[1]) if s["owner"] else None for name, s in listed.items()
    }


def wait_for_owners(
    server: TemporaryServer, allowed: set[int], timeout: float
) -> dict[str, dict[str, Any]]:
    """Wait until every service runs (a recent pass) in a process of `allowed`."""
    deadline = time.monotonic() + timeout
    while True:
        listed = services_ls(server)
        pids = owner_pids(listed)
        fresh = all(s["status"] == "running" for s in listed.values())
        if sorted(listed) == NAMES and set(pids.values()) <= allowed and fresh:
            return listed
        assert time.monotonic() < deadline, (pids, listed)
        time.sleep(0.2)


def duplicates(server: TemporaryServer, deployment_id: str) -> tuple[int, int]:
    """(runs of the deployment, distinct scheduled times among them)."""
    body = {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}, "limit": 200}
    response = httpx.post(f"{server.api_url}/flow_runs/filter", json=body, timeout=10)
    assert response.status_code == 200, response.text
    times = [run["expected_start_time"] for run in response.json()]
    return len(times), len(set(times))


def test_each_service_runs_in_one_process_and_moves_when_it_dies(
    database_url: str, server: TemporaryServer, tmp_path: Path
) -> None:
    deployment = httpx.post(
        f"{server.api_url}/deployments/",
        json={
            "name": "every-second",
            "flow_name": "tick",
            "enforce_parameter_schema": False,
            "schedules": [{"schedule": {"interval": 1}}],
        },
        timeout=10,
    )
    assert deployment.status_code in (200, 201), deployment.text
    deployment_id = deployment.json()["id"]
    processes = [
        start_services(database_url, tmp_path / f"home{i}", tmp_path / f"services{i}.log")
        for i in range(2)
    ]
    try:
        pids = {process.pid for process in processes}
        listed = wait_for_owners(server, pids, timeout=60)
        assert server.process.pid not in owner_pids(listed).values()
        time.sleep(3 * LEASE_SECONDS)  # passes by whoever holds each lease, both trying
        listed = wait_for_owners(server, pids, timeout=10)
        runs, times = duplicates(server, deployment_id)
        assert runs > 0 and runs == times, (runs, times)

        victim_pid = owner_pids(listed)["scheduler"]
        [victim] = [p for p in processes if p.pid == victim_pid]
        [survivor] = [p for p in processes if p is not victim]
        victim.send_signal(signal.SIGKILL)
        victim.wait(10)
        killed = time.monotonic()
        wait_for_owners(server, {survivor.pid}, timeout=LEASE_SECONDS + 10)
        took = time.monotonic() - killed
        # a lease, plus one standby interval, plus the passes that show it ran
        assert took < LEASE_SECONDS + 6, took
        time.sleep(2 * LEASE_SECONDS)
        runs_after, times_after = duplicates(server, deployment_id)
        assert runs_after == times_after and runs_after >= runs, (runs_after, times_after)
        assert survivor.poll() is None
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(20)
    for i, process in enumerate(processes):
        log = (tmp_path / f"services{i}.log").read_text()
        assert "Traceback" not in log, log
        if process.returncode != -signal.SIGKILL:
            assert process.returncode == 0, log
