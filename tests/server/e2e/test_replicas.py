"""Scale-out, end to end with real processes: two `weir server start --no-services`
replicas and one `weir server services start` on one PostgreSQL database, wake-ups
carried by the PostgreSQL or the Redis broker. A worker long-polls replica A; runs
created through replica B are claimed within 0.5 s (measured on the server, from the
run's state history), and `weir flow-run cancel` through B reaches the worker at once
(its heartbeat long-polls A; its interval is the default 10 s)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import require_service
from weir.testing import TemporaryServer, temporary_server
from weir.testing.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
CLAIM_WITHIN_SECONDS = 0.5
RUNS = 8

FLOWS = textwrap.dedent(
    """
    import time

    from weir import flow


    @flow
    def quick() -> int:
        return 1


    @flow
    def slow() -> None:
        time.sleep(120)
    """
)


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url  # every process of these tests shares one PostgreSQL database


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A `weir …` subprocess, stopped with SIGTERM (then SIGKILL) at the end."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "weir", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def wait_for(check: Any, timeout: float, what: str, *logs: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    shown = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')}" for log in logs)
    raise AssertionError(f"{what} did not happen within {timeout} s\n{shown}")


def states(http: httpx.Client, run_id: str) -> dict[str, datetime]:
    """The run's state types, each with the time it was entered (the first time)."""
    response = http.get(f"/flow_runs/{run_id}/states")
    response.raise_for_status()
    entered: dict[str, datetime] = {}
    for state in response.json():
        entered.setdefault(state["type"], datetime.fromisoformat(state["timestamp"]))
    return entered


@pytest.mark.parametrize("broker", ["postgres", "redis"])
def test_a_run_created_on_one_replica_is_claimed_through_another_at_once(
    broker: str, database_url: str, tmp_path: Path
) -> None:
    if broker == "redis":
        require_service("Redis", REDIS_HOST, REDIS_PORT)
        # the channels are named after the (fresh) database: this test's own
        broker = f"redis://{REDIS_HOST}:{REDIS_PORT}/1"
    env = {"WEIR_MESSAGING_BROKER": broker}
    (tmp_path / "flows.py").write_text(FLOWS)
    no_services = ("--no-services",)
    with (
        temporary_server(database_url=database_url, env=env, args=no_services) as a,
        temporary_server(database_url=database_url, env=env, args=no_services) as b,
        httpx.Client(base_url=a.api_url, timeout=10) as api_a,
        httpx.Client(base_url=b.api_url, timeout=10) as api_b,
    ):
        services_env = a.env(WEIR_SERVER_DATABASE_URL=database_url, **env)
        with process(
            ["server", "services", "start"], services_env, tmp_path / "services.log"
        ) as services:
            wait_for(
                lambda: any(s["owner"] for s in api_b.get("/services").json()),
                30,
                "the services process taking its services",
                tmp_path / "services.log",
            )
            assert api_a.post("/work_pools/", json={"name": "local"}).status_code == 201
            deployments = {}
            for name in ("quick", "slow"):
                body = {
                    "name": name,
                    "flow_name": name,
                    "entrypoint": f"flows.py:{name}",
                    "path": str(tmp_path),
                    "work_pool_name": "local",
                }
                response = api_b.post("/deployments/", json=body)
                assert response.status_code == 201, response.text
                deployments[name] = response.json()["id"]

            worker_log = tmp_path / "worker.log"
            worker_env = a.env(WEIR_WORKER_CLAIM_WAIT_SECONDS="30")  # it long-polls A
            with process(["worker", "start", "-p", "local", "-n", "w1"], worker_env, worker_log):
                wait_for(
                    lambda: api_b.post("/work_pools/local/workers/filter").json(),
                    30,
                    "the worker registering",
                    worker_log,
                )
                time.sleep(1)  # its first claim is waiting on A now
                latencies = [
                    claim_latency(api_b, deployments["quick"], worker_log) for _ in range(RUNS)
                ]
                assert max(latencies) < CLAIM_WITHIN_SECONDS, latencies
                cancel_through_b(api_b, b, deployments["slow"], worker_log)

            assert services.poll() is None, (tmp_path / "services.log").read_text()
        for server in (a, b):
            assert "Traceback" not in server.log(), server.log()


def claim_latency(api_b: httpx.Client, deployment_id: str, worker_log: Path) -> float:
    """Create a run through B; seconds from its creation to its claim (PENDING)."""
    response = api_b.post(f"/deployments/{deployment_id}/runs", json={})
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    entered = wait_for(
        lambda: (s := states(api_b, run_id)).get("PENDING") and s,
        10,
        "the claim of the run",
        worker_log,
    )
    wait_for(  # let the run finish, and the worker be back to long-polling
        lambda: api_b.get(f"/flow_runs/{run_id}").json()["state_type"] == "COMPLETED",
        30,
        "the run completing",
        worker_log,
    )
    time.sleep(0.3)
    return (entered["PENDING"] - entered["SCHEDULED"]).total_seconds()


def cancel_through_b(
    api_b: httpx.Client, b: TemporaryServer, deployment_id: str, worker_log: Path
) -> None:
    """`weir flow-run cancel` through B stops the run the worker on A runs, well before
    the worker's next regular heartbeat (10 s)."""
    response = api_b.post(f"/deployments/{deployment_id}/runs", json={})
    run_id = response.json()["id"]
    wait_for(
        lambda: api_b.get(f"/flow_runs/{run_id}").json()["state_type"] == "RUNNING",
        30,
        "the slow run running",
        worker_log,
    )
    time.sleep(0.5)  # the worker's heartbeat, naming the run, is waiting on A
    cancel = subprocess.run(
        [sys.executable, "-m", "weir", "flow-run", "cancel", run_id],
        env=b.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cancel.returncode == 0, cancel.stderr
    entered = wait_for(
        lambda: (s := states(api_b, run_id)).get("CANCELLED") and s,
        15,
        "the run being cancelled",
        worker_log,
    )
    took = (entered["CANCELLED"] - entered["CANCELLING"]).total_seconds()
    assert took < 3, (took, worker_log.read_text())


@pytest.mark.parametrize("command", [["server", "start"], ["server", "services", "start"]])
@pytest.mark.parametrize(
    ("broker", "message"),
    [
        ("kafka", "Unknown broker 'kafka' in WEIR_MESSAGING_BROKER"),
        ("postgres", "WEIR_MESSAGING_BROKER=postgres uses the server's database"),
    ],
)
def test_a_misconfigured_broker_is_one_sentence(
    command: list[str], broker: str, message: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env.update(
        WEIR_HOME=str(tmp_path), WEIR_MESSAGING_BROKER=broker, WEIR_SERVER_PORT=str(free_port())
    )
    result = subprocess.run(
        [sys.executable, "-m", "weir", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
