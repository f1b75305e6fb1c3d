"""Catch-up end to end, as a user: a `weir server` (its scheduler and late runs service
on short thresholds), `weir deploy` of a weir.yaml with `catchup: latest` and with
`max_lateness`, runs that become late while no worker runs, then `weir worker start`:
only the latest late run runs, and none past its lateness limit. On SQLite and
PostgreSQL (the `database_url` fixture)."""

from __future__ import annotations

import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.server.e2e.test_deployments_e2e import FAST, ok, weir, workers
from weir.testing import temporary_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SERVICES = {
    "WEIR_SERVER_SCHEDULER_INTERVAL_SECONDS": "1",
    "WEIR_SERVER_LATE_RUNS_AFTER_SECONDS": "1",
    "WEIR_SERVER_LATE_RUNS_INTERVAL_SECONDS": "0.5",
}

FLOWS = textwrap.dedent(
    """
    import os
    from pathlib import Path

    from weir import flow


    @flow
    def mark(out: str, name: str) -> None:
        # one file per execution (O_EXCL: a second execution fails)
        fd = os.open(Path(out) / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.close(fd)
    """
)

# four runs two seconds apart, starting at {start} (UTC): then no more
WEIR_YAML = textwrap.dedent(
    """
    deployments:
      - name: latest
        entrypoint: flows.py:mark
        parameters: {{out: {out}, name: latest}}
        work_pool: {{name: local}}
        catchup: latest
        schedules:
          - rrule: "DTSTART:{start}\\nRRULE:FREQ=SECONDLY;INTERVAL=2;COUNT=4"
      - name: limited
        entrypoint: flows.py:mark
        parameters: {{out: {out}, name: limited}}
        work_pool: {{name: local}}
        max_lateness: 3s
        schedules:
          - rrule: "DTSTART:{start}\\nRRULE:FREQ=SECONDLY;INTERVAL=2;COUNT=4"
    """
)


def runs_of(client: Any, name: str) -> list[Any]:
    from weir.core.schemas.filters import FlowRunFilterRequest

    deployment = client.read_deployment_by_name(f"mark/{name}")
    request = FlowRunFilterRequest.model_validate(
        {
            "flow_runs": {"deployment_id": {"any_": [str(deployment.id)]}},
            "sort": "EXPECTED_START_TIME_ASC",
        }
    )
    return list(client.read_flow_runs(request))


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def names(runs: list[Any]) -> list[str | None]:
    return [run.state_name for run in runs]


def test_after_an_outage_only_the_latest_late_run_runs_and_none_past_the_limit(
    database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "flows.py").write_text(FLOWS)
    with temporary_server(database_url=database_url, env={**FAST, **SERVICES}) as server:
        ok(weir(server, tmp_path, "work-pool", "create", "local", "--type", "process"))
        start = (datetime.now(UTC) + timedelta(seconds=5)).strftime("%Y%m%dT%H%M%S")
        (tmp_path / "weir.yaml").write_text(WEIR_YAML.format(out=out, start=start))
        deployed = ok(weir(server, tmp_path, "deploy", "--all"))
        assert "catch-up: latest" in deployed and "catch-up: all, max lateness 3 s" in deployed
        from weir.client.sync import SyncWeirClient

        with SyncWeirClient(server.api_url) as client:
            # no worker: the four runs of each come and go late
            wait_for(
                lambda: (
                    names(runs_of(client, "latest")) == ["Skipped"] * 3 + ["Late"]
                    and names(runs_of(client, "limited")) == ["Missed"] * 4
                ),
                40,
                "the late runs to be skipped and missed",
            )
            skipped = runs_of(client, "latest")[0]
            assert skipped.state is not None and skipped.state.message is not None
            assert "catch-up policy 'latest'" in skipped.state.message
            shown = ok(weir(server, tmp_path, "deployment", "inspect", "mark/latest"))
            assert "Late (" in shown

            with workers(server, tmp_path, 1):
                wait_for(
                    lambda: runs_of(client, "latest")[-1].state_name == "Completed",
                    60,
                    "the latest run to complete",
                )
                time.sleep(2)  # a worker that would start more has had time to
            latest, limited = runs_of(client, "latest"), runs_of(client, "limited")
    assert names(latest) == ["Skipped"] * 3 + ["Completed"]
    assert names(limited) == ["Missed"] * 4
    assert [run.state_type for run in latest[:3] + limited] == ["CANCELLED"] * 7
    assert sorted(p.name for p in out.iterdir()) == ["latest"], "only the latest run ran"
