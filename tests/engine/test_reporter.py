"""The batching reporter against a real server (uvicorn in a thread, SQLite in tmp_path):
what a flow run records, in what order, and what happens when the server is away."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.servers import serve, weir_app
from weir import flow, get_run_logger, task
from weir.client import SyncWeirClient
from weir.core.schemas.filters import (
    AnyId,
    AnyIdOrNull,
    FlowRunFilter,
    FlowRunFilterRequest,
    LogFilter,
    LogFilterRequest,
    TaskRunFilterRequest,
)
from weir.core.schemas.runs import FlowRun
from weir.core.states import StateType
from weir.engine.reporter import shutdown_reporter
from weir.settings import reset_settings
from weir.testing.server import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def api_url(port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """WEIR_API_URL for this test (nothing listens there until a test starts a server)."""
    url = f"http://127.0.0.1:{port}/api"
    monkeypatch.setenv("WEIR_API_URL", url)
    reset_settings()
    yield url
    shutdown_reporter()


@pytest.fixture
def server(api_url: str, port: int, tmp_path: Path) -> Iterator[uvicorn.Server]:
    running, _ = serve(weir_app(tmp_path), port)
    yield running
    shutdown_reporter()  # before the server goes, so its last records are not lost
    running.should_exit = True


@pytest.fixture
def client(api_url: str) -> Iterator[SyncWeirClient]:
    with SyncWeirClient(api_url) as sync_client:
        yield sync_client


def task_runs_of(client: SyncWeirClient, flow_run_id: uuid.UUID) -> list[Any]:
    return client.read_task_runs(
        TaskRunFilterRequest(flow_runs=FlowRunFilter(id=AnyId(any_=[flow_run_id])), limit=1000)
    )


def logs_of(client: SyncWeirClient, flow_run_id: uuid.UUID) -> list[str]:
    found = client.read_logs(
        LogFilterRequest(logs=LogFilter(flow_run_id=AnyId(any_=[flow_run_id])), limit=1000)
    )
    return [log.message for log in found]


def only_flow_run(client: SyncWeirClient, name: str) -> FlowRun:
    runs = [r for r in client.read_flow_runs() if r.flow_name == name]
    assert len(runs) == 1, runs
    return runs[0]


def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition did not become true in time"
        time.sleep(0.1)


@pytest.mark.usefixtures("server")
def test_a_flow_of_300_tasks_is_all_stored_when_it_returns(client: SyncWeirClient) -> None:
    @task
    def double(i: int) -> int:
        if i % 50 == 0:
            get_run_logger().info("doubling %d", i)
        return 2 * i

    @flow
    def batch() -> int:
        return sum(double(i) for i in range(300))

    assert batch() == 89700
    run = only_flow_run(client, "batch")
    assert run.state_type is StateType.COMPLETED
    assert [s.name for s in client.read_flow_run_states(run.id)] == [
        "Pending",
        "Running",
        "Completed",
    ]
    task_runs = task_runs_of(client, run.id)
    assert len(task_runs) == 300
    assert {t.state_type for t in task_runs} == {StateType.COMPLETED}
    messages = logs_of(client, run.id)
    assert [m for m in messages if m.startswith("doubling")] == [
        f"doubling {i}" for i in range(0, 300, 50)
    ]
    assert any(m.startswith("Beginning flow run") for m in messages)


@pytest.mark.usefixtures("server")
def test_a_failing_task_fails_the_flow_run_on_the_server(client: SyncWeirClient) -> None:
    @task
    def explode() -> None:
        raise ValueError("boom")

    @flow
    def fragile() -> None:
        explode()

    with pytest.raises(ValueError, match="boom"):
        fragile()
    run = only_flow_run(client, "fragile")
    assert run.state_type is StateType.FAILED
    [task_run] = task_runs_of(client, run.id)
    assert task_run.state_type is StateType.FAILED
    assert "boom" in (task_run.state.message if task_run.state else "")
    assert any("ValueError: boom" in m for m in logs_of(client, run.id))


@pytest.mark.usefixtures("server")
def test_a_flow_retry_is_recorded_as_a_valid_sequence(client: SyncWeirClient) -> None:
    attempts = []

    @flow(retries=1)
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first try fails")
        return "ok"

    assert flaky() == "ok"
    run = only_flow_run(client, "flaky")
    assert run.state_type is StateType.COMPLETED
    assert [s.name for s in client.read_flow_run_states(run.id)] == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Pending",
        "Retrying",
        "Completed",
    ]


@pytest.mark.usefixtures("server")
def test_subflows_are_linked_to_their_parent_run_and_task(client: SyncWeirClient) -> None:
    @flow
    def child() -> int:
        return 1

    @task
    def launcher() -> int:
        return child()

    @flow
    def parent() -> int:
        return child() + launcher()

    assert parent() == 2
    parent_run = only_flow_run(client, "parent")
    children = client.read_flow_runs(
        FlowRunFilterRequest(
            flow_runs=FlowRunFilter(parent_flow_run_id=AnyIdOrNull(any_=[parent_run.id]))
        )
    )
    assert len(children) == 2
    assert {c.state_type for c in children} == {StateType.COMPLETED}
    [launcher_run] = task_runs_of(client, parent_run.id)
    assert {c.parent_task_run_id for c in children} == {None, launcher_run.id}


def test_a_server_that_comes_up_mid_run_gets_every_record(
    api_url: str,
    port: int,
    tmp_path: Path,
    client: SyncWeirClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="weir.reporter")
    app = weir_app(tmp_path)
    servers: list[uvicorn.Server] = []

    @task
    def step(i: int) -> int:
        time.sleep(0.02)
        return i

    @flow
    def patient() -> int:
        threading.Timer(0.5, lambda: servers.append(serve(app, port)[0])).start()
        return sum(step(i) for i in range(100))

    try:
        assert patient() == 4950  # nothing raised into the flow while the API was away
        eventually(lambda: bool(servers))

        def stored() -> bool:
            runs = client.read_flow_runs()
            return (
                len(runs) == 1
                and runs[0].state_type is StateType.COMPLETED
                and len(task_runs_of(client, runs[0].id)) == 100
            )

        eventually(stored)
        warnings = [r.getMessage() for r in caplog.records if r.name == "weir.reporter"]
        assert sum("unreachable; buffering" in m for m in warnings) == 1
        assert any("reachable again, sent" in m for m in warnings)
    finally:
        shutdown_reporter()
        for running in servers:
            running.should_exit = True


NEVER_UP_SCRIPT = """
import time
from weir import flow, task

@task
def add(a, b):
    return a + b

@flow
def offline():
    return sum(add(i, 1) for i in range(50))

started = time.monotonic()
print("result", offline(), flush=True)
print("flow took", round(time.monotonic() - started, 2), flush=True)
"""


def run_script(source: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    environ.update(env, PYTHONPATH=str(REPO_ROOT / "src"))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def test_a_server_that_never_comes_up_costs_the_flow_nothing_but_a_warning(
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    started = time.monotonic()
    done = run_script(NEVER_UP_SCRIPT, WEIR_API_URL=url, WEIR_HOME=str(tmp_path))
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert "result 1275" in done.stdout
    assert done.stderr.count("unreachable; buffering") == 1, done.stderr
    assert elapsed < 10, f"the process took {elapsed:.1f} s to exit"


def test_without_an_api_nothing_is_imported_or_started(tmp_path: Path) -> None:
    script = NEVER_UP_SCRIPT + textwrap.dedent(
        """
        import sys, threading
        print("httpx imported:", "httpx" in sys.modules)
        print("threads:", sorted(t.name for t in threading.enumerate()))
        """
    )
    done = run_script(script, WEIR_HOME=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "httpx imported: False" in done.stdout
    assert "weir-reporter" not in done.stdout


class RecordingClient:
    """The I/O edge of the reporter: keeps the bodies it is given, answers at once."""

    api_url = "http://weir.test/api"

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def upsert_task_runs(self, body: bytes) -> None:
        self.bodies.append(body)

    def create_logs(self, body: bytes) -> None:
        self.bodies.append(body)

    def close(self, timeout: float) -> None:
        pass


def test_a_flush_sends_at_once_without_waiting_out_the_batch_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from weir.core.runs import TaskRun
    from weir.core.states import Completed, Pending
    from weir.engine import reporter as reporter_module

    monkeypatch.setattr(reporter_module, "BATCH_SECONDS", 60.0)
    client = RecordingClient()
    reporter = reporter_module.Reporter(client)  # type: ignore[arg-type]
    try:
        run = TaskRun(uuid.uuid4(), "noop-0", "noop", "tests.noop", None, Pending())
        for state in (Pending(), Completed()):
            reporter.task_run_state(run, state)
        started = time.monotonic()
        assert reporter.flush(timeout=10)
        assert time.monotonic() - started < 5  # not the 60 s batch window
        assert len(client.bodies) == 1 and client.bodies[0].count(b'"type"') == 2
    finally:
        reporter.close()


def test_closing_with_wait_for_api_delivers_when_the_server_comes_back(
    api_url: str, port: int, tmp_path: Path, client: SyncWeirClient
) -> None:
    # A worker's run that ends while its server restarts: its final state must still get
    # there (or its worker would report it CRASHED). Without the wait, it is dropped.
    app = weir_app(tmp_path)
    servers: list[uvicorn.Server] = []

    @flow
    def quick() -> int:
        return 1

    try:
        assert quick() == 1  # ended while nothing listens
        threading.Timer(0.5, lambda: servers.append(serve(app, port)[0])).start()
        shutdown_reporter(20.0, wait_for_api=True)
        runs = client.read_flow_runs()  # read at once: the close waited for the delivery
        assert [r.state_type for r in runs] == [StateType.COMPLETED]
    finally:
        for running in servers:
            running.should_exit = True


def test_closing_without_wait_for_api_gives_up_at_once(
    api_url: str, port: int, tmp_path: Path
) -> None:
    @flow
    def quick() -> int:
        return 1

    assert quick() == 1
    started = time.monotonic()
    shutdown_reporter(20.0)
    assert time.monotonic() - started < 5  # not the 20 s: nothing listens, so nothing waits


def test_flow_run_states_waiting_together_reach_the_server_in_one_request(
    server: uvicorn.Server, api_url: str, client: SyncWeirClient
) -> None:
    # a process running many flows at once (serve(execution="thread")): while one state
    # is on its way, the others queue up and go together, each decided on its own
    from weir.core.runs import FlowRun as EngineRun
    from weir.core.states import Completed, Pending, Running
    from weir.engine.reporter import Reporter

    gate = threading.Event()
    requests: list[int] = []  # proposals per request

    class GatedClient(SyncWeirClient):
        # the first request is held until the other runs' states are queued behind it
        def set_flow_run_state(self, *args: Any, **kwargs: Any) -> Any:
            requests.append(1)
            gate.wait(10)
            return super().set_flow_run_state(*args, **kwargs)

        def set_flow_run_states(self, proposals: Any) -> Any:
            requests.append(len(proposals))
            gate.wait(10)
            return super().set_flow_run_states(proposals)

    reporter = Reporter(GatedClient(api_url))
    try:
        runs = [EngineRun(uuid.uuid4(), f"run-{i}", "batched", {}, Pending()) for i in range(20)]
        for run in runs:
            reporter.flow_run_created(run)
        answers: dict[uuid.UUID, Any] = {}

        def start(run: EngineRun) -> None:
            # each run's log line lands between the states in the queue
            record = logging.LogRecord("weir.flow_runs", logging.INFO, "", 0, "hi", (), None)
            record.flow_run_id = run.id
            reporter.log_handler.handle(record)
            answers[run.id] = reporter.flow_run_state(run, Running())

        threads = [threading.Thread(target=start, args=(run,)) for run in runs]
        for thread in threads:
            thread.start()
        eventually(lambda: bool(requests))
        time.sleep(0.5)  # the other threads queue their line and state behind the held one
        gate.set()
        for thread in threads:
            thread.join(10)
        assert sum(requests) == len(runs)
        assert len(requests) <= 2  # the held one, then all the others together
        assert {a.status.value for a in answers.values()} == {"ACCEPT"}
        # a refused proposal in a batch is answered as such, the others still change
        finished = [reporter.flow_run_state(run, Completed()) for run in runs[:2]]
        assert [a.status.value for a in finished if a] == ["ACCEPT", "ACCEPT"]
    finally:
        reporter.close()
    stored = client.read_flow_runs(
        FlowRunFilterRequest(flow_runs=FlowRunFilter(id=AnyId(any_=[r.id for r in runs])))
    )
    assert sorted(r.state_type.value for r in stored) == ["COMPLETED"] * 2 + ["RUNNING"] * 18
    for run in stored:
        assert run.start_time is not None and run.run_count == 1
    assert all(logs_of(client, run.id) == ["hi"] for run in runs)
