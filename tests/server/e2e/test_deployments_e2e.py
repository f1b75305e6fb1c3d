"""Issue 4's quality bar, end to end with real processes, as a user: a `weir server`,
`weir work-pool create`, `weir deploy`, `weir worker start`, `weir deployment run
--watch`, `weir flow-run logs`; four workers on one pool running 500 runs exactly once
(counted by their side effects); a deployment with `concurrency_limit: 1` never running
two at once. On SQLite and PostgreSQL (the `database_url` fixture)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from weir.testing import TemporaryServer, temporary_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FAST = {
    "WEIR_WORKER_HEARTBEAT_SECONDS": "0.5",
    "WEIR_WORKER_LEASE_SECONDS": "5",
    "WEIR_WORKER_CLAIM_WAIT_SECONDS": "5",
    "WEIR_WORKER_SHUTDOWN_GRACE_SECONDS": "2",
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
    def greet(name: str = "world", n: int = 21) -> int:
        get_run_logger().info("hello %s", name)
        return double(n)


    @flow
    def mark(out: str, i: int) -> None:
        # the side effect counted: one file per execution (O_EXCL: a second execution fails)
        fd = os.open(Path(out) / f"{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)


    @flow
    def exclusive(out: str, i: int) -> None:
        lock = Path(out) / "running"
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # fails if another runs
        os.close(fd)
        time.sleep(0.3)
        (Path(out) / f"done-{i}").touch()
        lock.unlink()
    """
)

WEIR_YAML = textwrap.dedent(
    """
    deployments:
      - name: hello
        entrypoint: flows.py:greet
        parameters: {name: weir}
        work_pool: {name: local}
      - &marking
        name: marking
        entrypoint: flows.py:mark
        work_pool: {name: local}
      - <<: *marking
        name: one-at-a-time
        entrypoint: flows.py:exclusive
        concurrency_limit: 1
    """
)


def weir(
    server: TemporaryServer, cwd: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weir", *args],
        env=server.env(**FAST),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"{result.args}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@contextlib.contextmanager
def workers(
    server: TemporaryServer, cwd: Path, count: int, *args: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = []
    for k in range(count):
        log = open(cwd / f"worker-{k}.log", "wb")  # noqa: SIM115 (closed below)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "weir",
                    "worker",
                    "start",
                    "-p",
                    "local",
                    "-n",
                    f"w{k}",
                    *args,
                ],
                env=server.env(**FAST),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        log.close()
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def project(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "weir.yaml").write_text(WEIR_YAML)
    (tmp_path / "out").mkdir()
    return tmp_path


def test_deploy_run_watch_and_logs(database_url: str, tmp_path: Path) -> None:
    cwd = project(tmp_path)
    with temporary_server(database_url=database_url, env=FAST) as server:
        ok(weir(server, cwd, "work-pool", "create", "local", "--type", "process"))
        ok(weir(server, cwd, "deploy", "--all"))
        with workers(server, cwd, 1):
            watched = weir(server, cwd, "deployment", "run", "greet/hello", "--watch")
            assert watched.returncode == 0, watched.stdout + watched.stderr
            assert "Completed" in watched.stdout or "COMPLETED" in watched.stdout
        runs = json.loads(ok(weir(server, cwd, "flow-run", "ls", "--json")))
        (run,) = [r for r in runs if r["flow_name"] == "greet"]
        assert run["state_type"] == "COMPLETED"
        assert run["parameters"] == {"name": "weir"}
        logs = ok(weir(server, cwd, "flow-run", "logs", run["id"]))
        assert "hello weir" in logs


def test_four_workers_run_each_of_500_runs_exactly_once(database_url: str, tmp_path: Path) -> None:
    cwd = project(tmp_path)
    out = cwd / "out"
    count = 500
    with temporary_server(database_url=database_url, env=FAST) as server:
        ok(weir(server, cwd, "work-pool", "create", "local", "--type", "process"))
        ok(weir(server, cwd, "deploy", "--name", "marking"))
        from weir.client.sync import SyncWeirClient
        from weir.core.schemas.deployments import DeploymentRunCreate
        from weir.core.schemas.filters import FlowRunFilterRequest

        with SyncWeirClient(server.api_url) as client:
            deployment = client.read_deployment_by_name("mark/marking")
            for i in range(count):
                client.create_deployment_run(
                    deployment.id, DeploymentRunCreate(parameters={"out": str(out), "i": i})
                )
            with workers(server, cwd, 4, "--limit", "4"):
                deadline = time.monotonic() + 240
                while time.monotonic() < deadline:
                    done = client.count_flow_runs(
                        FlowRunFilterRequest.model_validate(
                            {"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
                        )
                    )
                    if done == count:
                        break
                    time.sleep(0.5)
            states = [run.state_type for run in client.iter_flow_runs()]
    files = sorted(int(p.name) for p in out.iterdir())
    assert files == list(range(count)), "every run executed exactly once"
    assert states.count("COMPLETED") == count, states
    pids = {p.read_text() for p in out.iterdir()}
    assert len(pids) > 1


def test_a_deployment_with_concurrency_limit_1_never_runs_two_at_once(
    database_url: str, tmp_path: Path
) -> None:
    cwd = project(tmp_path)
    out = cwd / "out"
    with temporary_server(database_url=database_url, env=FAST) as server:
        ok(weir(server, cwd, "work-pool", "create", "local", "--type", "process"))
        ok(weir(server, cwd, "deploy", "--name", "one-at-a-time"))
        from weir.client.sync import SyncWeirClient
        from weir.core.schemas.deployments import DeploymentRunCreate

        with SyncWeirClient(server.api_url) as client:
            deployment = client.read_deployment_by_name("exclusive/one-at-a-time")
            ids = [
                client.create_deployment_run(
                    deployment.id, DeploymentRunCreate(parameters={"out": str(out), "i": i})
                ).id
                for i in range(6)
            ]
            with workers(server, cwd, 2, "--limit", "3"):
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    runs = [client.read_flow_run(i) for i in ids]
                    if all(r.state_type and r.state_type.value == "COMPLETED" for r in runs):
                        break
                    assert not any(
                        r.state_type and r.state_type.value in ("FAILED", "CRASHED") for r in runs
                    ), [(r.name, r.state) for r in runs]
                    time.sleep(0.3)
        assert sorted(p.name for p in out.iterdir()) == [f"done-{i}" for i in range(6)]
