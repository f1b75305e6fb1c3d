"""Workers end to end, as a user runs them: a real `weir server start` and real
`weir worker start` processes; the flows run in the workers' subprocesses. Crash
detection (kill -9 of a worker), cancellation, SIGTERM, and a missing pool.
On SQLite and PostgreSQL (the `database_url` fixture)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from weir.client import SyncWeirClient
from weir.core.schemas.deployments import Deployment, DeploymentCreate
from weir.core.schemas.filters import AnyId, LogFilter, LogFilterRequest
from weir.core.schemas.runs import FlowRun
from weir.core.schemas.work_pools import WorkPoolCreate
from weir.core.states import StateType
from weir.testing import TemporaryServer, temporary_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

LEASE_SECONDS = 2.0
FAST = {
    "WEIR_WORKER_HEARTBEAT_SECONDS": "0.5",
    "WEIR_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
    "WEIR_WORKER_CLAIM_WAIT_SECONDS": "5",
    "WEIR_WORKER_SHUTDOWN_GRACE_SECONDS": "1",
}

FLOWS = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from weir import flow, get_run_logger, task


    @task
    def double(n: int) -> int:
        return 2 * n


    @flow
    def greet(name: str = "world") -> int:
        get_run_logger().info("hello %s", name)
        print("a plain print")
        return double(21)


    @flow(retries=1)
    def long_job(out: str) -> str:
        # the pid of each attempt, one line each; the first attempt waits to be stopped
        with open(Path(out) / "pids", "a") as pids:
            pids.write(f"{os.getpid()}\\n")
        if len((Path(out) / "pids").read_text().split()) == 1:
            time.sleep(60)
        return "done"


    @flow
    def stubborn(out: str) -> None:
        (Path(out) / "pids").write_text(f"{os.getpid()}\\n")
        time.sleep(60)
    """
)


@pytest.fixture
def server(database_url: str) -> Iterator[TemporaryServer]:
    env = {"WEIR_SERVER_ZOMBIE_REAPER_INTERVAL_SECONDS": "0.5"}
    with temporary_server(database_url=database_url, env=env) as running:
        yield running


@pytest.fixture
def client(server: TemporaryServer) -> Iterator[SyncWeirClient]:
    with SyncWeirClient(server.api_url) as sync_client:
        sync_client.create_work_pool(WorkPoolCreate(name="local"))
        yield sync_client


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "out").mkdir()
    return tmp_path


class Workers:
    """`weir worker start` processes, stopped (SIGKILL) at the end of the test."""

    def __init__(self, server: TemporaryServer, tmp_path: Path) -> None:
        self.server, self.tmp_path = server, tmp_path
        self.started: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        log = open(self.tmp_path / f"worker-{len(self.started)}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "weir", "worker", "start", "-p", "local", *args],
            env=self.server.env(**FAST),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.started.append(process)
        return process

    def output(self, index: int) -> str:
        return (self.tmp_path / f"worker-{index}.log").read_text()

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(server: TemporaryServer, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(server, tmp_path)
    yield started
    started.stop_all()


def deploy(client: SyncWeirClient, project: Path, flow: str, **fields: Any) -> Deployment:
    body = DeploymentCreate(
        name=flow,
        flow_name=flow.replace("_", "-"),
        entrypoint=f"flows.py:{flow}",
        path=str(project),
        work_pool_name="local",
        **fields,
    )
    return client.apply_deployment(body)


def run_of(client: SyncWeirClient, deployment: Deployment, **parameters: Any) -> uuid.UUID:
    from weir.core.schemas.deployments import DeploymentRunCreate

    return client.create_deployment_run(
        deployment.id, DeploymentRunCreate(parameters=parameters)
    ).id


def wait_for(
    client: SyncWeirClient,
    run_id: uuid.UUID,
    check: Callable[[FlowRun], bool],
    timeout: float = 20.0,
) -> FlowRun:
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(run_id)
        if check(run):
            return run
        assert time.monotonic() < deadline, f"run stayed {run.state_type} {run.state_name}"
        time.sleep(0.1)


def pids(out: Path, count: int, timeout: float = 20.0) -> list[int]:
    path = out / "pids"
    deadline = time.monotonic() + timeout
    while True:
        found = [int(p) for p in path.read_text().split()] if path.exists() else []
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{count} attempt(s) did not start"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_deployment_run_completes_with_its_logs(
    client: SyncWeirClient, workers: Workers, project: Path
) -> None:
    deployment = deploy(client, project, "greet", parameters={"name": "weir"})
    worker = workers.start()
    run_id = run_of(client, deployment)

    run = wait_for(client, run_id, lambda r: r.state_type is StateType.COMPLETED)

    assert run.run_count == 1 and run.lease_owner is None
    request = LogFilterRequest(logs=LogFilter(flow_run_id=AnyId(any_=[run_id])))
    messages: list[str] = []
    deadline = time.monotonic() + 5
    while "a plain print" not in messages:  # the process's output, shipped by the worker
        assert time.monotonic() < deadline, messages
        time.sleep(0.1)
        messages = [log.message for log in client.read_logs(request)]
    assert "hello weir" in messages
    assert sum("Beginning flow run" in m for m in messages) == 1  # engine lines not twice
    (registered,) = client.read_workers("local")

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert client.read_workers("local") == []  # deregistered
    output = workers.output(0)
    assert f"{run.name} | a plain print" in output
    assert registered.name in output


def test_a_run_is_claimed_ahead_of_its_time_and_starts_on_it(
    client: SyncWeirClient, workers: Workers, project: Path
) -> None:
    # prefetch: the worker claims the run before its time (here half the 2 s lease:
    # 1 s ahead), its process gets ready, and it turns RUNNING at its time, not before
    from datetime import UTC, datetime, timedelta

    from weir.core.schemas.deployments import DeploymentRunCreate

    deployment = deploy(client, project, "greet")
    workers.start()
    expected = datetime.now(UTC) + timedelta(seconds=4)
    create = DeploymentRunCreate(scheduled_time=expected)
    run_id = client.create_deployment_run(deployment.id, create).id

    run = wait_for(client, run_id, lambda r: r.state_type is StateType.COMPLETED)
    states = client.read_flow_run_states(run_id)
    pending = next(s for s in states if s.type is StateType.PENDING)
    assert pending.timestamp < expected  # claimed ahead
    assert run.start_time is not None and run.start_time >= expected  # never early


def test_a_killed_worker_s_run_crashes_and_retries_on_another_worker(
    client: SyncWeirClient, workers: Workers, project: Path
) -> None:
    deployment = deploy(client, project, "long_job")
    first = workers.start()
    run_id = run_of(client, deployment, out=str(project / "out"))
    (pid,) = pids(project / "out", 1)
    wait_for(client, run_id, lambda r: r.state_type is StateType.RUNNING)

    first.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    first.wait()
    with contextlib.suppress(AssertionError):  # the flow's process dies with its worker
        wait_for(client, run_id, lambda r: not alive(pid), timeout=5)
    assert not alive(pid)

    # crashed once the lease lapsed, which the retry rule turns into AwaitingRetry
    crashed = wait_for(
        client, run_id, lambda r: r.state_type is not StateType.RUNNING, timeout=4 * LEASE_SECONDS
    )
    assert time.monotonic() - killed_at <= 3 * LEASE_SECONDS + 1.0
    assert (crashed.state_type, crashed.state_name) == (StateType.SCHEDULED, "AwaitingRetry")

    workers.start()
    run = wait_for(client, run_id, lambda r: r.state_type is StateType.COMPLETED)
    assert run.run_count == 2
    assert len(pids(project / "out", 2)) == 2
    names = [s.name for s in client.read_flow_run_states(run_id)]
    assert names[-3:] == ["Pending", "Retrying", "Completed"]


def test_cancelling_a_long_running_flow_kills_its_process(
    client: SyncWeirClient, workers: Workers, project: Path, server: TemporaryServer
) -> None:
    deployment = deploy(client, project, "stubborn")
    workers.start()
    run_id = run_of(client, deployment, out=str(project / "out"))
    (pid,) = pids(project / "out", 1)
    wait_for(client, run_id, lambda r: r.state_type is StateType.RUNNING)

    cancel = subprocess.run(
        [sys.executable, "-m", "weir", "flow-run", "cancel", str(run_id)],
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert cancel.returncode == 0, cancel.stderr
    cancelled_at = time.monotonic()

    wait_for(client, run_id, lambda r: r.state_type is StateType.CANCELLED, timeout=10)
    assert not alive(pid)
    assert time.monotonic() - cancelled_at < 5


def test_sigterm_of_a_worker_leaves_nothing_running(
    client: SyncWeirClient, workers: Workers, project: Path
) -> None:
    deployment = deploy(client, project, "stubborn")
    quick = deploy(client, project, "greet")
    worker = workers.start("--limit", "1")
    run_id = run_of(client, deployment, out=str(project / "out"))
    (pid,) = pids(project / "out", 1)
    wait_for(client, run_id, lambda r: r.state_type is StateType.RUNNING)
    waiting = run_of(client, quick)  # no free slot: stays SCHEDULED

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0

    run = client.read_flow_run(run_id)
    assert run.state_type is StateType.CRASHED
    assert run.state is not None and "worker" in (run.state.message or "")
    assert not alive(pid)
    assert client.read_flow_run(waiting).state_type is StateType.SCHEDULED
    assert client.read_workers("local") == []


def test_a_run_whose_process_dies_without_a_final_state_is_crashed(
    client: SyncWeirClient, workers: Workers, project: Path
) -> None:
    deployment = deploy(
        client, project, "greet", job_variables={"command": "python -c 'raise SystemExit(7)'"}
    )
    workers.start()
    run_id = run_of(client, deployment)
    run = wait_for(client, run_id, lambda r: r.state_type is StateType.CRASHED)
    assert run.state is not None
    assert run.state.message == (
        "The flow run's process exited with code 7 without reporting a final state."
    )


def test_a_worker_of_a_missing_pool_says_how_to_create_it(server: TemporaryServer) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "weir", "worker", "start", "-p", "nowhere"],
        env=server.env(**FAST),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "Work pool 'nowhere' does not exist; create it with" in result.stderr
    assert "weir work-pool create nowhere --type process" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_waits_for_an_unreachable_server(tmp_path: Path) -> None:
    from weir.testing.server import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env.update(FAST, WEIR_API_URL=f"http://127.0.0.1:{free_port()}/api", WEIR_HOME=str(tmp_path))
    worker = subprocess.Popen(
        [sys.executable, "-m", "weir", "worker", "start", "-p", "local"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(3)
    assert worker.poll() is None  # still trying
    worker.send_signal(signal.SIGTERM)
    output, _ = worker.communicate(timeout=15)
    assert worker.returncode == 0
    assert output.count("unreachable; retrying") == 1
    assert "Traceback" not in output


def test_run_once_runs_what_it_claimed_and_exits(
    client: SyncWeirClient, workers: Workers, project: Path
) -> None:
    deployment = deploy(client, project, "greet")
    first, second = run_of(client, deployment), run_of(client, deployment)
    worker = workers.start("--run-once", "--limit", "1")
    assert worker.wait(30) == 0
    states = {client.read_flow_run(i).state_type for i in (first, second)}
    assert states == {StateType.COMPLETED, StateType.SCHEDULED}  # one claimed, one left
    assert client.read_workers("local") == []
