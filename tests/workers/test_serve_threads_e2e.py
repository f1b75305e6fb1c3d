"""`serve(..., execution="thread")` end to end: runs execute in threads of the serving
process (no process per run), runs due together all complete with their states
batched, a failing run leaves the others alone, and cancelling stops a run at its
next line (or before it started) while the process goes on serving. On SQLite and
PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.workers.test_worker_e2e import FAST, wait_for
from weir.client import SyncWeirClient
from weir.core.clock import utcnow
from weir.core.schemas.deployments import Deployment, DeploymentRunCreate
from weir.core.schemas.states import StateSchema
from weir.core.states import StateType
from weir.testing import TemporaryServer, temporary_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SERVED = textwrap.dedent(
    """
    import os
    import threading
    import time
    from pathlib import Path

    from weir import flow, get_run_logger


    @flow
    def report(out: str, seconds: float = 0, fail: bool = False) -> str:
        get_run_logger().info("reporting from thread %s", threading.current_thread().name)
        (Path(out) / "pids").open("a").write(f"{os.getpid()}\\n")
        for _ in range(int(seconds * 20)):  # Python lines: a cancel lands between them
            time.sleep(0.05)
        if fail:
            raise ValueError("bad input")
        return "done"


    if __name__ == "__main__":
        report.serve("nightly", limit=40, execution="thread")
    """
)


@pytest.fixture
def server(database_url: str) -> Iterator[TemporaryServer]:
    with temporary_server(database_url=database_url) as running:
        yield running


def start_serving(server: TemporaryServer, directory: Path, script: str) -> subprocess.Popen[str]:
    """`python served.py` in `directory`, `script` its text, talking to `server`."""
    (directory / "served.py").write_text(script)
    return subprocess.Popen(
        [sys.executable, "served.py"],
        cwd=directory,
        env=server.env(**FAST),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """Where the served flow writes the pid of the process that ran it."""
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


@pytest.fixture
def serving(server: TemporaryServer, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    process = start_serving(server, tmp_path, SERVED)
    yield process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)


def deployment_of(client: SyncWeirClient, serving: subprocess.Popen[str]) -> Deployment:
    deadline = time.monotonic() + 20
    while not client.read_deployments():
        assert serving.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    (deployment,) = client.read_deployments()
    return deployment


def test_runs_due_together_run_in_the_serving_process(
    server: TemporaryServer, serving: subprocess.Popen[str], out: Path
) -> None:
    with SyncWeirClient(server.api_url) as client:
        deployment = deployment_of(client, serving)
        at = utcnow() + timedelta(seconds=2)  # claimed ahead, started together
        parameters = {"out": str(out)}
        runs = [
            client.create_deployment_run(
                deployment.id, DeploymentRunCreate(parameters=parameters, scheduled_time=at)
            )
            for _ in range(30)
        ]
        failing = client.create_deployment_run(
            deployment.id, DeploymentRunCreate(parameters={**parameters, "fail": True})
        )
        for run in runs:
            done = wait_for(client, run.id, lambda r: r.state_type is StateType.COMPLETED)
            assert done.start_time is not None and done.start_time >= at
            states = [s.type for s in client.read_flow_run_states(run.id)]
            assert states == [
                StateType.SCHEDULED,
                StateType.PENDING,
                StateType.RUNNING,
                StateType.COMPLETED,
            ]
        failed = wait_for(client, failing.id, lambda r: r.state_type is StateType.FAILED)
        assert "bad input" in (failed.state.message or "")
    # every run wrote the serving process's own pid: no process was started for any
    assert set((out / "pids").read_text().split()) == {str(serving.pid)}
    serving.send_signal(signal.SIGTERM)
    output, _ = serving.communicate(timeout=20)
    assert serving.returncode == 0, output


def test_cancelling_stops_a_run_and_the_process_serves_on(
    server: TemporaryServer, serving: subprocess.Popen[str], out: Path
) -> None:
    with SyncWeirClient(server.api_url) as client:
        deployment = deployment_of(client, serving)
        slow = client.create_deployment_run(
            deployment.id, DeploymentRunCreate(parameters={"out": str(out), "seconds": 60})
        )
        wait_for(client, slow.id, lambda r: r.state_type is StateType.RUNNING)
        client.set_flow_run_state(slow.id, StateSchema(type=StateType.CANCELLING))
        cancelled = wait_for(
            client, slow.id, lambda r: r.state_type is StateType.CANCELLED, timeout=10
        )
        assert cancelled.end_time is not None
        # one claimed ahead of its time is cancelled while it waits for it
        later = client.create_deployment_run(
            deployment.id,
            DeploymentRunCreate(
                parameters={"out": str(out)}, scheduled_time=utcnow() + timedelta(seconds=4)
            ),
        )
        wait_for(client, later.id, lambda r: r.state_type is StateType.PENDING)
        client.set_flow_run_state(later.id, StateSchema(type=StateType.CANCELLING))
        wait_for(client, later.id, lambda r: r.state_type is StateType.CANCELLED, timeout=10)
        time.sleep(5)  # past its time: it must not have started
        assert [s.type for s in client.read_flow_run_states(later.id)][-1] is StateType.CANCELLED
        assert (out / "pids").read_text().split() == [str(serving.pid)]
        again = client.create_deployment_run(
            deployment.id, DeploymentRunCreate(parameters={"out": str(out)})
        )
        wait_for(client, again.id, lambda r: r.state_type is StateType.COMPLETED)
    assert serving.poll() is None
