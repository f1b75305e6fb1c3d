"""End to end, as a user: a real `weir server`, a flow run from another process with
WEIR_API_URL set, then the CLI (`weir flow-run ls | inspect | logs`, `weir project`)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from weir.testing import TemporaryServer, temporary_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FLOW = textwrap.dedent(
    """
    from weir import flow, task, get_run_logger

    @task
    def load_invoice(number: int) -> int:
        get_run_logger().info("loaded invoice %d", number)
        return number * 10

    @flow(log_prints=True)
    def invoices(count: int = 25) -> int:
        total = sum(load_invoice.map(range(count)).result())
        print(f"invoiced {total}")
        return total

    if __name__ == "__main__":
        assert invoices() == 3000
    """
)


def run_flow(server: TemporaryServer, tmp_path: Path, **env: str) -> None:
    script = tmp_path / "invoices.py"
    script.write_text(FLOW)
    result = subprocess.run(
        [sys.executable, str(script)],
        env=server.env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def weir(server: TemporaryServer, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "weir", *args],
        env=server.env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_tracked_flow_run_shows_in_the_cli(database_url: str, tmp_path: Path) -> None:
    with temporary_server(database_url=database_url) as server:
        run_flow(server, tmp_path)

        listing = weir(server, "flow-run", "ls", "--json")
        assert listing.returncode == 0, listing.stderr
        (run,) = json.loads(listing.stdout)
        assert (run["flow_name"], run["state_type"]) == ("invoices", "COMPLETED")

        table = weir(server, "flow-run", "ls", "--flow-name", "invoices", "--state", "COMPLETED")
        assert run["id"] in table.stdout and "Completed" in table.stdout

        logs = weir(server, "flow-run", "logs", run["id"])
        assert logs.returncode == 0, logs.stderr
        assert "Beginning flow run" in logs.stdout
        assert "invoiced 3000" in logs.stdout
        assert logs.stdout.count("loaded invoice") == 25

        inspect = json.loads(weir(server, "flow-run", "inspect", run["id"], "--json").stdout)
        assert [s["name"] for s in inspect["state_history"]] == ["Pending", "Running", "Completed"]

        count = _post(server, "/task_runs/count", {})
        assert count == 25


def test_with_basic_auth_requests_need_credentials(tmp_path: Path) -> None:
    auth = {"WEIR_SERVER_API_AUTH_STRING": "admin:correct-horse"}
    with temporary_server(env=auth) as server:
        with pytest.raises(urllib.error.HTTPError) as denied:
            _post(server, "/flow_runs/count", {})
        assert denied.value.code == 401
        with urllib.request.urlopen(f"{server.api_url}/health") as health:
            assert health.status == 200

        run_flow(server, tmp_path, WEIR_API_AUTH_STRING="admin:correct-horse")
        listed = weir(
            server, "flow-run", "ls", "--json", WEIR_API_AUTH_STRING="admin:correct-horse"
        )
        assert len(json.loads(listed.stdout)) == 1

        refused = weir(server, "flow-run", "ls")
        assert refused.returncode == 1
        assert "Authentication required" in refused.stderr
        assert "Traceback" not in refused.stderr


def test_projects_keep_environments_apart(tmp_path: Path) -> None:
    with temporary_server() as server:
        created = weir(server, "project", "create", "finance-report-prod")
        assert created.returncode == 0, created.stderr
        run_flow(server, tmp_path, WEIR_PROJECT="finance-report-prod")

        prod = weir(server, "--project", "finance-report-prod", "flow-run", "ls", "--json")
        assert len(json.loads(prod.stdout)) == 1
        default = weir(server, "flow-run", "ls", "--json")
        assert json.loads(default.stdout) == []

        missing = weir(server, "--project", "finance-report-qa", "flow-run", "ls")
        assert missing.returncode == 1
        assert "Project 'finance-report-qa' does not exist" in missing.stderr

        names = [p["name"] for p in json.loads(weir(server, "project", "ls", "--json").stdout)]
        assert sorted(names) == ["default", "finance-report-prod"]
        refused = weir(server, "project", "delete", "finance-report-prod")
        assert refused.returncode == 1 and "--yes" in refused.stderr
        assert weir(server, "project", "delete", "finance-report-prod", "--yes").returncode == 0


def test_logs_tail_follows_a_running_flow(tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text(
        textwrap.dedent(
            """
            import time
            from weir import flow

            @flow(log_prints=True)
            def nightly_export() -> None:
                for batch in range(4):
                    print(f"exported batch {batch}")
                    time.sleep(0.4)
            nightly_export()
            """
        )
    )
    with temporary_server() as server:
        running = subprocess.Popen([sys.executable, str(script)], env=server.env())
        try:
            run_id = None
            for _ in range(100):
                runs = json.loads(weir(server, "flow-run", "ls", "--json").stdout)
                if runs:
                    run_id = runs[0]["id"]
                    break
            assert run_id is not None
            tail = weir(server, "flow-run", "logs", run_id, "--tail")
            assert tail.returncode == 0, tail.stderr
            assert "exported batch 3" in tail.stdout
            assert "Finished in state Completed()" in tail.stdout
        finally:
            running.wait(30)


def test_a_server_that_is_not_running_is_one_clear_sentence(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "weir", "flow-run", "ls"],
        env={
            "WEIR_HOME": str(tmp_path),
            "WEIR_API_URL": "http://127.0.0.1:9/api",
            "PATH": "/usr/bin",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Cannot reach the weir API at http://127.0.0.1:9/api" in result.stderr
    assert "Traceback" not in result.stderr


def _post(server: TemporaryServer, path: str, body: object) -> object:
    request = urllib.request.Request(
        f"{server.api_url}{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_without_weir_api_url_the_cli_talks_to_the_local_server(tmp_path: Path) -> None:
    with temporary_server() as server:
        run_flow(server, tmp_path)
        port = server.url.rsplit(":", 1)[1]
        env = server.env(WEIR_SERVER_PORT=port)
        del env["WEIR_API_URL"]
        listing = subprocess.run(
            [sys.executable, "-m", "weir", "flow-run", "ls", "--json"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert listing.returncode == 0, listing.stderr
        assert len(json.loads(listing.stdout)) == 1


def test_an_unusable_database_at_start_is_one_sentence(tmp_path: Path) -> None:
    env = {"WEIR_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    env["WEIR_SERVER_DATABASE_URL"] = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
    result = subprocess.run(
        [sys.executable, "-m", "weir", "server", "start", "--port", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        "Cannot use the database at postgresql+asyncpg://postgres@127.0.0.1:1/nothing"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_wrong_credentials_do_not_stop_the_flow_and_are_reported_once(tmp_path: Path) -> None:
    with temporary_server(env={"WEIR_SERVER_API_AUTH_STRING": "admin:correct-horse"}) as server:
        script = tmp_path / "invoices.py"
        script.write_text(FLOW)
        result = subprocess.run(
            [sys.executable, str(script)],
            env=server.env(WEIR_API_AUTH_STRING="admin:wrong"),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr  # the flow itself completed
    refusals = [line for line in result.stderr.splitlines() if "refused" in line]
    first_lines = [line for line in refusals if "repeats are counted" in line]
    assert first_lines, result.stderr
    assert len(set(first_lines)) == len(first_lines)  # each kind of refusal logged once
    assert len(refusals) < 10
    assert "Authentication required" in result.stderr


def test_task_runs_in_process_pool_workers_are_recorded_too(tmp_path: Path) -> None:
    script = tmp_path / "crunch.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, os, sys, urllib.request
            from weir import flow, task, runtime, ProcessPoolTaskRunner

            @task
            def crunch(n: int) -> int:
                return n * n

            @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
            def numbers() -> str:
                assert sum(crunch.map(range(6)).result()) == 55
                return runtime.flow_run.id

            if __name__ == "__main__":
                run_id = numbers()
                body = json.dumps({"flow_runs": {"id": {"any_": [run_id]}}}).encode()
                request = urllib.request.Request(
                    os.environ["WEIR_API_URL"] + "/task_runs/count", data=body,
                    headers={"content-type": "application/json"}, method="POST",
                )
                print("COUNT", urllib.request.urlopen(request).read().decode())
            """
        )
    )
    with temporary_server() as server:
        result = subprocess.run(
            [sys.executable, str(script)],
            env=server.env(),
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert result.returncode == 0, result.stderr
    assert "COUNT 6" in result.stdout  # stored when the flow returned, not later
