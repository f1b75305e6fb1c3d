"""The process infrastructure with real subprocesses: output, env, working directory,
killing the process group, and children that die with their worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from weir.core.schemas.runs import FlowRun
from weir.core.schemas.work_pools import ClaimedRun
from weir.workers.infrastructure import infrastructure_for
from weir.workers.process import ProcessInfrastructure, default_command

REPO_ROOT = Path(__file__).resolve().parents[2]


def claimed(**job: Any) -> ClaimedRun:
    now = datetime.now(UTC)
    run = FlowRun(
        id=uuid.uuid4(), name="tidy-otter", flow_id=uuid.uuid4(), created=now, updated=now
    )
    return ClaimedRun(flow_run=run, job_configuration=job)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended


def eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition did not become true in time"
        time.sleep(0.05)


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self.lock:
            self.lines.append(line)


def test_the_default_command_runs_the_deployments_executor() -> None:
    job = claimed()
    assert ProcessInfrastructure().command(job) == default_command(job.flow_run.id)
    assert default_command(job.flow_run.id)[1:] == [
        "-m",
        "weir.deployments.execute",
        str(job.flow_run.id),
    ]
    assert ProcessInfrastructure().command(claimed(command="echo 'a b' c")) == ["echo", "a b", "c"]


def test_output_is_streamed_line_by_line_stdout_and_stderr() -> None:
    infrastructure = ProcessInfrastructure()
    lines = Lines()
    code = """
        import sys, time
        print("first", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        time.sleep(0.3)
        print("last")
        sys.exit(3)
    """
    handle = infrastructure.start(claimed(command=python(code)), lines)
    eventually(lambda: "to stderr" in lines.lines)
    assert "last" not in lines.lines  # streamed while it runs, not at the end
    assert infrastructure.wait(handle) == 3
    assert lines.lines == ["first", "to stderr", "last"]
    assert infrastructure.poll(handle) == 3


def test_no_output_is_read_when_stream_output_is_off() -> None:
    infrastructure = ProcessInfrastructure()
    lines = Lines()
    handle = infrastructure.start(
        claimed(command=python("print('hidden')"), stream_output=False), lines
    )
    assert infrastructure.wait(handle, timeout=10) == 0
    assert lines.lines == []


def test_env_and_working_dir_are_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FROM_WORKER_SHELL", "inherited")
    monkeypatch.setenv("TO_BE_UNSET", "present")
    infrastructure = infrastructure_for(
        "process", {"WEIR_API_URL": "http://127.0.0.1:1/api", "WEIR_PROJECT": "finance"}
    )
    lines = Lines()
    code = """
        import os
        for name in ("FROM_WORKER_SHELL", "TO_BE_UNSET", "JOB_VAR", "WEIR_API_URL", "WEIR_PROJECT"):
            print(name, os.environ.get(name))
        print("cwd", os.getcwd())
    """
    job = claimed(
        command=python(code),
        env={"JOB_VAR": "42", "TO_BE_UNSET": None, "WEIR_PROJECT": "finance-staging"},
        working_dir=str(tmp_path),
    )
    handle = infrastructure.start(job, lines)
    assert infrastructure.wait(handle, timeout=10) == 0
    assert lines.lines == [
        "FROM_WORKER_SHELL inherited",
        "TO_BE_UNSET None",
        "JOB_VAR 42",
        "WEIR_API_URL http://127.0.0.1:1/api",
        "WEIR_PROJECT finance-staging",  # the job's env wins over the worker's
        f"cwd {tmp_path}",
    ]


def test_an_unknown_pool_type_is_one_sentence() -> None:
    with pytest.raises(ValueError, match="cannot run work pools of type 'docker'"):
        infrastructure_for("docker", {})


def test_kill_stops_the_whole_process_group_even_if_it_ignores_sigterm() -> None:
    infrastructure = ProcessInfrastructure()
    lines = Lines()
    code = """
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(child.pid, flush=True)
        time.sleep(60)
    """
    handle = infrastructure.start(claimed(command=python(code)), lines)
    eventually(lambda: len(lines.lines) == 1)
    grandchild = int(lines.lines[0])
    assert alive(handle.pid) and alive(grandchild)

    started = time.monotonic()
    infrastructure.kill(handle, grace=0.5)

    assert 0.4 < time.monotonic() - started < 5
    assert infrastructure.poll(handle) == -signal.SIGKILL
    eventually(lambda: not alive(grandchild))


def test_kill_of_a_polite_process_takes_no_grace() -> None:
    infrastructure = ProcessInfrastructure()
    handle = infrastructure.start(claimed(command=["sleep", "60"]), Lines())
    started = time.monotonic()
    infrastructure.kill(handle, grace=10)
    assert time.monotonic() - started < 2
    assert infrastructure.poll(handle) == -signal.SIGTERM


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_child_dies_with_its_worker() -> None:
    worker = textwrap.dedent(
        """
        import sys, time, uuid
        from datetime import UTC, datetime
        from weir.core.schemas.runs import FlowRun
        from weir.core.schemas.work_pools import ClaimedRun
        from weir.workers.process import ProcessInfrastructure

        now = datetime.now(UTC)
        run = FlowRun(id=uuid.uuid4(), name="r", flow_id=uuid.uuid4(), created=now, updated=now)
        job = ClaimedRun(flow_run=run, job_configuration={"command": ["sleep", "60"]})
        handle = ProcessInfrastructure().start(job, print)
        print(handle.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", worker], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert alive(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        eventually(lambda: not alive(child), timeout=5)
    finally:
        if parent.poll() is None:
            parent.kill()
