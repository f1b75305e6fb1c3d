"""The process infrastructure's fork server, with a real API and real deployment runs:
output, the run's environment and directory, exit codes, kills, runs dying with
their worker, many runs at once without zombies, and the Popen fallback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.workers.test_process import REPO_ROOT, Lines, alive, eventually, python
from weir.client import SyncWeirClient
from weir.core.schemas.deployments import Deployment, DeploymentCreate, DeploymentRunCreate
from weir.core.schemas.runs import FlowRun
from weir.core.schemas.work_pools import MAX_CLAIM, ClaimedRun, ClaimRequest, WorkPoolCreate
from weir.testing import TemporaryServer, temporary_server
from weir.workers import reaping
from weir.workers.process import ProcessHandle, ProcessInfrastructure

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the fork server is Linux's"),
]

FLOWS = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time
    from pathlib import Path

    from weir import flow


    @flow
    def talk(out: str) -> None:
        print("first", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        facts = {"env": dict(os.environ), "cwd": os.getcwd(), "ppid": os.getppid(),
                 "pgid": os.getpgid(0), "sid": os.getsid(0)}
        Path(out, "facts.json").write_text(json.dumps(facts))
        time.sleep(0.3)
        print("last", flush=True)


    @flow
    def fine() -> None:
        pass


    @flow
    def fail() -> None:
        raise ValueError("no")


    @flow
    def exit_with(code: int) -> None:
        sys.stdout.flush()
        os._exit(code)


    @flow
    def kill_self() -> None:
        os.kill(os.getpid(), signal.SIGKILL)


    @flow
    def stubborn() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(child.pid, flush=True)
        time.sleep(60)
    """
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporaryServer]:
    database = tmp_path_factory.mktemp("db") / "weir.db"
    with temporary_server(database_url=f"sqlite+aiosqlite:///{database}") as running:
        yield running


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("project")
    (path / "flows.py").write_text(FLOWS)
    return path


@pytest.fixture(scope="module")
def client(server: TemporaryServer) -> Iterator[SyncWeirClient]:
    with SyncWeirClient(server.api_url) as sync_client:
        sync_client.create_work_pool(WorkPoolCreate(name="local"))
        yield sync_client


@pytest.fixture(scope="module")
def infrastructure(server: TemporaryServer) -> Iterator[ProcessInfrastructure]:
    infra = ProcessInfrastructure({"WEIR_API_URL": server.api_url}, fork_server=True)
    infra.prepare()
    yield infra
    infra.close()


def deployment(client: SyncWeirClient, project: Path, flow: str) -> Deployment:
    return client.apply_deployment(
        DeploymentCreate(
            name=flow,
            flow_name=flow.replace("_", "-"),
            entrypoint=f"flows.py:{flow}",
            path=str(project),
            work_pool_name="local",
        )
    )


def claim(client: SyncWeirClient, count: int) -> list[FlowRun]:
    """Claim `count` due runs of the pool (PENDING, as a worker would have them)."""
    runs: list[FlowRun] = []
    while len(runs) < count:
        request = ClaimRequest(worker_name="test", limit=min(MAX_CLAIM, count - len(runs)))
        runs += [claimed.flow_run for claimed in client.claim_flow_runs("local", request)]
    return runs


def claimed_run(
    client: SyncWeirClient, project: Path, flow: str, *, parameters: Any = None, **job: Any
) -> ClaimedRun:
    target = deployment(client, project, flow)
    client.create_deployment_run(target.id, DeploymentRunCreate(parameters=parameters or {}))
    return ClaimedRun(flow_run=claim(client, 1)[0], job_configuration=job)


def forked(handle: ProcessHandle) -> bool:
    return isinstance(handle.status, reaping.ReparentedStatus)


def zombie_children() -> list[int]:
    found = []
    for pid in reaping._children():
        stat = reaping._stat(pid)
        if stat is not None and stat[0] == "Z":
            found.append(pid)
    return found


def test_output_env_and_working_dir(
    client: SyncWeirClient,
    project: Path,
    infrastructure: ProcessInfrastructure,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FROM_WORKER_SHELL", "inherited")
    monkeypatch.setenv("TO_BE_UNSET", "present")
    workdir = tmp_path / "work"
    workdir.mkdir()
    job = claimed_run(
        client,
        project,
        "talk",
        parameters={"out": str(tmp_path)},
        env={"JOB_VAR": "42", "TO_BE_UNSET": None, "TZ": "UTC"},
        working_dir=str(workdir),
    )
    lines = Lines()
    handle = infrastructure.start(job, lines)
    assert forked(handle)
    eventually(lambda: "to stderr" in lines.lines, timeout=30)
    assert "last" not in lines.lines  # streamed while it runs
    assert infrastructure.wait(handle, timeout=30) == 0
    prints = [line for line in lines.lines if "|" not in line]  # not the engine's log lines
    assert prints == ["first", "to stderr", "last"]

    facts = json.loads((tmp_path / "facts.json").read_text())
    # exactly the environment the infrastructure computed, nothing of the template's
    assert facts["env"] == infrastructure.env(job.job_configuration["env"])
    assert facts["env"]["FROM_WORKER_SHELL"] == "inherited" and "TO_BE_UNSET" not in facts["env"]
    assert facts["cwd"] == str(project)  # the deployment's path, as `execute` moves there
    assert facts["ppid"] == os.getpid()  # re-parented to the worker
    assert facts["pgid"] == facts["sid"] == handle.pid


def test_the_working_dir_is_where_the_run_starts(
    client: SyncWeirClient, project: Path, infrastructure: ProcessInfrastructure, tmp_path: Path
) -> None:
    # a deployment without a path runs where the run process starts: the working_dir
    client.create_deployment_run(
        client.apply_deployment(
            DeploymentCreate(
                name="no-path", flow_name="talk", entrypoint="flows.py:talk", work_pool_name="local"
            )
        ).id,
        DeploymentRunCreate(parameters={"out": str(tmp_path)}),
    )
    job = ClaimedRun(flow_run=claim(client, 1)[0], job_configuration={"working_dir": str(project)})
    handle = infrastructure.start(job, Lines())
    assert forked(handle)
    assert infrastructure.wait(handle, timeout=30) == 0
    assert json.loads((tmp_path / "facts.json").read_text())["cwd"] == str(project)


@pytest.mark.parametrize(
    ("flow", "parameters", "code"),
    [
        ("fine", {}, 0),
        ("fail", {}, 1),
        ("exit_with", {"code": 7}, 7),
        ("kill_self", {}, -signal.SIGKILL),
    ],
)
def test_exit_codes_are_those_of_popen(
    client: SyncWeirClient,
    project: Path,
    infrastructure: ProcessInfrastructure,
    flow: str,
    parameters: dict[str, Any],
    code: int,
) -> None:
    handle = infrastructure.start(
        claimed_run(client, project, flow, parameters=parameters), Lines()
    )
    assert forked(handle)
    assert infrastructure.wait(handle, timeout=30) == code
    assert infrastructure.poll(handle) == code


def test_kill_stops_the_group_even_if_it_ignores_sigterm(
    client: SyncWeirClient, project: Path, infrastructure: ProcessInfrastructure
) -> None:
    lines = Lines()
    handle = infrastructure.start(claimed_run(client, project, "stubborn"), lines)
    assert forked(handle)
    eventually(lambda: any(line.isdigit() for line in lines.lines), timeout=30)
    grandchild = int(next(line for line in lines.lines if line.isdigit()))
    assert alive(handle.pid) and alive(grandchild)

    started = time.monotonic()
    infrastructure.kill(handle, grace=0.5)

    assert 0.4 < time.monotonic() - started < 5
    assert infrastructure.poll(handle) == -signal.SIGKILL
    eventually(lambda: not alive(grandchild))
    # the grandchild was re-parented to this process too: the orphan sweep reaps it
    eventually(lambda: grandchild in reaping.reap_orphans(force=True) or not _exists(grandchild))


def _exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def test_fifty_concurrent_runs_every_exit_code_and_no_zombies(
    client: SyncWeirClient, project: Path, infrastructure: ProcessInfrastructure
) -> None:
    target = deployment(client, project, "exit_with")
    for index in range(50):
        client.create_deployment_run(target.id, DeploymentRunCreate(parameters={"code": index % 5}))
    handles = []
    for run in claim(client, 50):
        handle = infrastructure.start(ClaimedRun(flow_run=run, job_configuration={}), Lines())
        assert forked(handle)
        handles.append((handle, run.parameters["code"]))
    deadline = time.monotonic() + 50
    codes: dict[int, int | None] = {}
    while len(codes) < len(handles):
        assert time.monotonic() < deadline, f"{len(handles) - len(codes)} runs did not end"
        for handle, _ in handles:
            if handle.pid not in codes and (code := infrastructure.poll(handle)) is not None:
                codes[handle.pid] = code
        time.sleep(0.05)
    assert [codes[handle.pid] for handle, _ in handles] == [code for _, code in handles]
    reaping.reap_orphans(force=True)
    assert zombie_children() == []


def test_a_command_starts_a_new_process(infrastructure: ProcessInfrastructure) -> None:
    from tests.workers.test_process import claimed

    lines = Lines()
    handle = infrastructure.start(claimed(command=python("print('popen')")), lines)
    assert not forked(handle)
    assert infrastructure.wait(handle, timeout=10) == 0
    assert lines.lines == ["popen"]


def test_an_interpreter_variable_starts_a_new_process(
    client: SyncWeirClient, project: Path, infrastructure: ProcessInfrastructure
) -> None:
    job = claimed_run(client, project, "fine", env={"PYTHONHASHSEED": "123"})
    handle = infrastructure.start(job, Lines())
    assert not forked(handle)
    assert infrastructure.wait(handle, timeout=30) == 0


def test_the_setting_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from weir.settings import reset_settings

    monkeypatch.setenv("WEIR_WORKER_FORK_SERVER", "false")
    reset_settings()
    try:
        infra = ProcessInfrastructure()
        infra.prepare()
        assert infra.fork_server is None
    finally:
        reset_settings()


def test_a_dead_template_is_restarted(
    client: SyncWeirClient, project: Path, server: TemporaryServer
) -> None:
    infra = ProcessInfrastructure({"WEIR_API_URL": server.api_url}, fork_server=True)
    infra.prepare()
    try:
        assert infra.fork_server is not None and infra.fork_server.process is not None
        first = infra.fork_server.process
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        # the run that found it dead starts as a new process; the next is forked again
        handle = infra.start(claimed_run(client, project, "fine"), Lines())
        assert not forked(handle)
        assert infra.wait(handle, timeout=30) == 0
        handle = infra.start(claimed_run(client, project, "fine"), Lines())
        assert forked(handle)
        assert infra.wait(handle, timeout=30) == 0
        assert infra.fork_server is not None and infra.fork_server.process is not first
    finally:
        infra.close()


def test_the_template_runs_no_thread(infrastructure: ProcessInfrastructure) -> None:
    infrastructure.prepare()
    assert infrastructure.fork_server is not None and infrastructure.fork_server.process
    pid = infrastructure.fork_server.process.pid
    eventually(lambda: _warmed_up(pid), timeout=30)
    assert len(os.listdir(f"/proc/{pid}/task")) == 1


def _warmed_up(pid: int) -> bool:
    maps = Path(f"/proc/{pid}/maps").read_text()
    return "pydantic_core" in maps and "_ssl" in maps


def test_runs_die_with_their_worker(server: TemporaryServer, project: Path) -> None:
    worker = textwrap.dedent(
        f"""
        import sys, time
        from weir.client import SyncWeirClient
        from weir.core.schemas.deployments import DeploymentCreate, DeploymentRunCreate
        from weir.core.schemas.work_pools import ClaimedRun, ClaimRequest
        from weir.workers.process import ProcessInfrastructure

        with SyncWeirClient({server.api_url!r}) as client:
            target = client.apply_deployment(DeploymentCreate(
                name="stubborn", flow_name="stubborn", entrypoint="flows.py:stubborn",
                path={str(project)!r}, work_pool_name="local"))
            client.create_deployment_run(target.id, DeploymentRunCreate())
            request = ClaimRequest(worker_name="dies", limit=1, wait_seconds=5)
            run = client.claim_flow_runs("local", request)[0].flow_run
        infra = ProcessInfrastructure({{"WEIR_API_URL": {server.api_url!r}}}, fork_server=True)
        handle = infra.start(ClaimedRun(flow_run=run, job_configuration={{}}), print)
        print("run", handle.pid, type(handle.status).__name__, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", worker], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    try:
        assert parent.stdout is not None
        first = parent.stdout.readline().split()
        assert first[0] == "run" and first[2] == "ReparentedStatus", first
        run_pid = int(first[1])
        grandchild = int(next(ln for ln in parent.stdout if ln.strip().isdigit()))  # its child
        assert alive(run_pid) and alive(grandchild)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        eventually(lambda: not alive(run_pid), timeout=1.5)
        os.kill(grandchild, signal.SIGKILL)  # like a Popen run's, it outlives the run
    finally:
        if parent.poll() is None:
            parent.kill()


def test_the_template_warms_up_what_a_run_s_first_request_would_import(
    server: TemporaryServer,
) -> None:
    # after the warm-up, a request through the client a run uses imports nothing more
    # (httpx loads its async backend on first use: ~30 ms in every run otherwise)
    probe = textwrap.dedent(
        f"""
        import sys
        from weir.workers.forkserver import _warm_up
        _warm_up()
        before = set(sys.modules)
        from weir.client.sync import SyncWeirClient
        with SyncWeirClient({server.api_url!r}) as client:
            client.read_flow_runs()
        print(sorted(m for m in set(sys.modules) - before if not m.startswith("encodings")))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
