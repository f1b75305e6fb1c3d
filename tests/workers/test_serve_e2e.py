"""`flow.serve()` end to end: a script serving a flow against a real server; runs of
its deployment execute in subprocesses of the serving process, and cancelling one
stops it. On SQLite and PostgreSQL."""

from __future__ import annotations

import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.workers.test_serve_threads_e2e import start_serving
from tests.workers.test_worker_e2e import alive, pids, wait_for
from weir.client import SyncWeirClient
from weir.core.schemas.deployments import DeploymentRunCreate
from weir.core.schemas.states import StateSchema
from weir.core.states import StateType
from weir.testing import TemporaryServer, temporary_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

SERVED = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from weir import flow


    @flow
    def report(out: str, seconds: float = 0) -> str:
        (Path(out) / "pids").open("a").write(f"{os.getpid()}\\n")
        time.sleep(seconds)
        return "done"


    if __name__ == "__main__":
        report.serve("nightly", tags=["served"], limit=2)
    """
)


@pytest.fixture
def server(database_url: str) -> Iterator[TemporaryServer]:
    with temporary_server(database_url=database_url) as running:
        yield running


def test_a_served_flow_runs_its_deployment_s_runs(server: TemporaryServer, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    serving = start_serving(server, tmp_path, SERVED)
    try:
        with SyncWeirClient(server.api_url) as client:
            deadline = time.monotonic() + 20
            while not client.read_deployments():
                assert serving.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            (deployment,) = client.read_deployments()
            assert (deployment.flow_name, deployment.name) == ("report", "nightly")
            assert deployment.work_pool_name is None and deployment.tags == ["served"]

            quick = client.create_deployment_run(
                deployment.id, DeploymentRunCreate(parameters={"out": str(out)})
            )
            run = wait_for(client, quick.id, lambda r: r.state_type is StateType.COMPLETED)
            assert run.deployment_id == deployment.id

            slow = client.create_deployment_run(
                deployment.id, DeploymentRunCreate(parameters={"out": str(out), "seconds": 60})
            )
            pid = pids(out, 2)[1]
            wait_for(client, slow.id, lambda r: r.state_type is StateType.RUNNING)
            client.set_flow_run_state(slow.id, StateSchema(type=StateType.CANCELLING))
            wait_for(client, slow.id, lambda r: r.state_type is StateType.CANCELLED, timeout=10)
            assert not alive(pid)
    finally:
        serving.send_signal(signal.SIGTERM)
        output, _ = serving.communicate(timeout=20)
    assert serving.returncode == 0, output
    assert "weir deployment run 'report/nightly'" in output
