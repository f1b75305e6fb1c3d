"""`python -m weir.deployments.execute <flow-run-id>`, what a worker starts: pull steps,
the flow loaded from its entrypoint, the existing run driven to its final state; a run
whose flow cannot be loaded ends FAILED with the reason, and the exit code says which."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.harness import api_server
from tests.server.conftest import database_url  # noqa: F401  (both databases)
from weir.client.sync import SyncWeirClient
from weir.core.schemas.deployments import DeploymentCreate, DeploymentRunCreate
from weir.core.schemas.work_pools import ClaimRequest, WorkPoolCreate
from weir.core.states import StateType
from weir.deployments.execute import main

FLOWS = """\
import os
from pathlib import Path
from weir import flow, task

@task
def shout(word: str) -> str:
    return word.upper()

@flow(name="greet")
def greet(word: str, fail: bool = False) -> str:
    if fail:
        raise RuntimeError("asked to fail")
    Path("ran-in.txt").write_text(os.getcwd())
    return shout(word)
"""


@pytest.fixture
def api(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    with api_server(database_url, tmp_path, monkeypatch) as url:
        with SyncWeirClient(url) as client:
            client.create_work_pool(WorkPoolCreate(name="pool-a"))
        yield url


@pytest.fixture
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "code"
    directory.mkdir()
    (directory / "flows.py").write_text(FLOWS)
    return directory


def _pending_run(api: str, **deployment: Any) -> str:
    """Deploy, create a run and claim it (PENDING), as a worker would before starting it."""
    fields: dict[str, Any] = {
        "name": "d", "flow_name": "greet", "entrypoint": "flows.py:greet",
        "work_pool_name": "pool-a", "parameters": {"word": "hi"}, **deployment,
    }  # fmt: skip
    with SyncWeirClient(api) as client:
        created = client.apply_deployment(DeploymentCreate(**fields))
        run = client.create_deployment_run(created.id, DeploymentRunCreate())
        claimed = client.claim_flow_runs("pool-a", ClaimRequest(worker_name="w"))
        assert [c.flow_run.id for c in claimed] == [run.id]  # type: ignore[attr-defined]
    return str(run.id)


def _state(api: str, run_id: str) -> tuple[StateType | None, str | None]:
    with SyncWeirClient(api) as client:
        run = client.read_flow_run(run_id)
    return run.state_type, run.state.message if run.state else None


def _execute(api: str, run_id: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIR_")}
    env.update(WEIR_API_URL=api, WEIR_HOME=str(cwd))
    return subprocess.run(
        [sys.executable, "-m", "weir.deployments.execute", run_id],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.slow
def test_a_deployment_run_completes_in_the_deployment_s_directory(
    api: str, code: Path, tmp_path: Path
) -> None:
    run_id = _pending_run(api, path=str(code))
    result = _execute(api, run_id, tmp_path)
    assert result.returncode == 0, result.stderr
    assert _state(api, run_id)[0] == StateType.COMPLETED
    assert (code / "ran-in.txt").read_text() == str(code)
    with SyncWeirClient(api) as client:
        assert [t.state_type for t in client.read_task_runs()] == [StateType.COMPLETED]


@pytest.mark.slow
def test_pull_steps_decide_the_directory_and_a_failing_flow_exits_1(
    api: str, code: Path, tmp_path: Path
) -> None:
    pull = [{"set_working_directory": {"directory": str(code)}}]
    run_id = _pending_run(api, pull_steps=pull, parameters={"word": "x", "fail": True})
    result = _execute(api, run_id, tmp_path)
    assert result.returncode == 1
    state, message = _state(api, run_id)
    assert state == StateType.FAILED
    assert "asked to fail" in (message or "")


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        ({"entrypoint": "flows.py:nope"}, "Entrypoint 'flows.py:nope': flows.py has no attribute 'nope'."),
        ({"pull_steps": [{"run_shell_script": {"script": "echo gone >&2; exit 4"}}]}, "Pull step 1 (run_shell_script): the script exited with code 4: gone"),
        ({"path": "/nonexistent/weir"}, "The deployment's directory '/nonexistent/weir' does not exist on this machine"),
    ],
)  # fmt: skip
def test_a_flow_that_cannot_be_loaded_fails_the_run_with_the_reason(
    api: str,
    code: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    deployment: dict[str, Any],
    message: str,
) -> None:
    monkeypatch.chdir(code)  # execute moves into the pull steps' directory; restored after
    monkeypatch.setattr(sys, "path", list(sys.path))
    run_id = _pending_run(api, **deployment)
    assert main([run_id]) == 1
    state, stored = _state(api, run_id)
    assert state == StateType.FAILED
    assert (stored or "").startswith(message)
    assert message in capsys.readouterr().err


def test_bad_arguments_and_unknown_runs(api: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["not-an-id"]) == 2
    assert main(["01a2063f-ff3b-7d2f-86cd-eb3a031c7cbd"]) == 1
    err = capsys.readouterr().err
    assert "'not-an-id' is not a flow run id." in err
    assert "Traceback" not in err


def test_a_run_claimed_ahead_of_its_time_waits_for_it() -> None:
    from datetime import UTC, datetime, timedelta

    from weir.core.schemas.runs import FlowRun
    from weir.deployments.execute import wait_for_start

    def run(start_in: float) -> FlowRun:
        expected = datetime.now(UTC) + timedelta(seconds=start_in)
        return FlowRun.model_validate(
            {
                "id": "01900000-0000-7000-8000-000000000001",
                "name": "r",
                "flow_id": "01900000-0000-7000-8000-000000000002",
                "expected_start_time": expected.isoformat(),
                "created": expected.isoformat(),
                "updated": expected.isoformat(),
            }
        )

    ahead = run(0.4)
    wait_for_start(ahead)
    assert datetime.now(UTC) >= ahead.expected_start_time  # type: ignore[operator]
    began = datetime.now(UTC)
    wait_for_start(run(-60))  # already due (or late): no wait
    assert (datetime.now(UTC) - began).total_seconds() < 0.1
