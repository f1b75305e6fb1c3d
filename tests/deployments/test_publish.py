"""`flow.deploy()`, `flow.to_deployment()` and `register_served()` (for `flow.serve()`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.cli.harness import api_server
from tests.server.conftest import database_url  # noqa: F401  (both databases)
from weir import flow
from weir.client.sync import SyncWeirClient
from weir.core.schemas.work_pools import WorkPoolCreate
from weir.deployments.publish import register_served
from weir.exceptions import DeploymentConfigError, NotFound


@flow(name="nightly")
def nightly(day: str = "today") -> str:
    """Run the night.

    Args:
        day: which day.
    """
    return day


@pytest.fixture
def api(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    with api_server(database_url, tmp_path, monkeypatch) as url:
        with SyncWeirClient(url) as client:
            client.create_work_pool(WorkPoolCreate(name="pool-a"))
        yield url


def test_to_deployment_points_at_this_file_from_the_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    here = Path(__file__).parent
    monkeypatch.chdir(here.parent)
    body = nightly.to_deployment("n", work_pool_name="pool-a", interval=timedelta(minutes=5))
    assert body.entrypoint == "deployments/test_publish.py:nightly"
    assert body.path == str(here.parent)
    assert body.description == "Run the night.\n\nArgs:\n    day: which day."
    assert body.schedules[0].schedule.interval == timedelta(minutes=5)  # type: ignore[union-attr]
    assert body.parameter_openapi_schema is not None
    assert body.parameter_openapi_schema["properties"]["day"]["description"] == "which day."
    with pytest.raises(DeploymentConfigError, match="cron: 'every day' is not a 5-field"):
        nightly.to_deployment("n", cron="every day")
    with pytest.raises(DeploymentConfigError, match="exactly one of cron, interval or rrule"):
        nightly.to_deployment("n", cron="0 8 * * *", rrule="FREQ=DAILY")


def test_catchup_and_max_lateness_options() -> None:
    body = nightly.to_deployment("n", catchup="latest", max_lateness="2h")
    assert (body.catchup, body.max_lateness_seconds) == ("latest", 7200)
    body = nightly.to_deployment("n", max_lateness=timedelta(minutes=5))
    assert (body.catchup, body.max_lateness_seconds) == ("all", 300)
    with pytest.raises(DeploymentConfigError, match="max_lateness: 'a while' is not a duration"):
        nightly.to_deployment("n", max_lateness="a while")
    with pytest.raises(DeploymentConfigError, match="catchup: Input should be 'all', 'latest'"):
        nightly.to_deployment("n", catchup="some")


def test_flow_deploy_registers_it_on_the_pool(api: str) -> None:
    deployment = nightly.deploy(
        "nightly-prod", "pool-a", cron="0 2 * * *", timezone="Europe/Oslo",
        parameters={"day": "yesterday"}, tags=["prod"], concurrency_limit=1,
    )  # fmt: skip
    assert (deployment.flow_name, deployment.work_pool_name) == ("nightly", "pool-a")
    assert deployment.parameters == {"day": "yesterday"}
    assert deployment.schedules[0].schedule["timezone"] == "Europe/Oslo"
    with pytest.raises(NotFound):
        nightly.deploy("elsewhere", "no-such-pool")


def test_register_served_makes_pool_less_deployments(api: str) -> None:
    served = register_served(
        [(nightly, {"name": "served", "interval": 60, "catchup": "skip"}), (nightly, {})]
    )
    assert [(d.name, d.work_pool_name) for d in served] == [("served", None), ("nightly", None)]
    assert [d.catchup for d in served] == ["skip", "all"]
    with SyncWeirClient(api) as client:
        assert len(client.read_deployments()) == 2
