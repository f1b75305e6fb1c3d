"""`weir work-pool …` against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.harness import fails, weir, weir_json
from weir.core.job_templates import default_base_job_template


def test_create_list_and_inspect(api: str) -> None:
    created = weir("work-pool", "create", "local", "--type", "process", "--concurrency-limit", "3")
    assert created.exit_code == 0, created.stderr
    assert "Created work pool 'local'" in created.stdout
    weir("work-pool", "create", "batch", "--paused", "--description", "nightly jobs")

    pools = {p["name"]: p for p in weir_json("work-pool", "ls")}
    assert set(pools) == {"local", "batch"}
    assert (pools["local"]["type"], pools["local"]["concurrency_limit"]) == ("process", 3)
    assert pools["batch"]["is_paused"] is True
    assert pools["batch"]["description"] == "nightly jobs"

    table = weir("work-pool", "ls").stdout
    local_row = next(line for line in table.splitlines() if line.startswith("local"))
    assert local_row.split()[:4] == ["local", "process", "NOT_READY", "3"]
    assert "PAUSED" in next(line for line in table.splitlines() if line.startswith("batch"))

    pool = weir_json("work-pool", "inspect", "local")
    assert pool["base_job_template"] == default_base_job_template("process")
    shown = weir("work-pool", "inspect", "local")
    assert shown.exit_code == 0, shown.stderr
    assert "default" in shown.stdout  # its default queue
    assert '"job_configuration"' in shown.stdout


def test_update_pause_resume_and_limits(api: str) -> None:
    weir("work-pool", "create", "local")
    updated = weir(
        "work-pool", "update", "local", "--description", "laptop", "--concurrency-limit", "5"
    )
    assert updated.exit_code == 0, updated.stderr
    pool = weir_json("work-pool", "inspect", "local")
    assert (pool["description"], pool["concurrency_limit"]) == ("laptop", 5)

    assert weir("work-pool", "set-concurrency-limit", "local", "2").exit_code == 0
    assert weir_json("work-pool", "inspect", "local")["concurrency_limit"] == 2
    assert weir("work-pool", "clear-concurrency-limit", "local").exit_code == 0
    pool = weir_json("work-pool", "inspect", "local")
    assert pool["concurrency_limit"] is None
    assert pool["description"] == "laptop"  # untouched by the other updates

    assert "Paused work pool 'local'" in weir("work-pool", "pause", "local").stdout
    pool = weir_json("work-pool", "inspect", "local")
    assert (pool["is_paused"], pool["status"]) == (True, "PAUSED")
    assert weir("work-pool", "resume", "local").exit_code == 0
    assert weir_json("work-pool", "inspect", "local")["is_paused"] is False


def test_base_job_templates(api: str, tmp_path: Path) -> None:
    printed = weir("work-pool", "get-default-base-job-template", "--type", "process")
    assert printed.exit_code == 0, printed.stderr
    assert json.loads(printed.stdout) == default_base_job_template("process")

    template_file = tmp_path / "template.json"
    written = weir("work-pool", "get-default-base-job-template", "--file", str(template_file))
    assert written.exit_code == 0, written.stderr
    template = json.loads(template_file.read_text())
    template["variables"]["properties"]["env"]["default"] = {"REGION": "eu"}
    template_file.write_text(json.dumps(template))

    created = weir("work-pool", "create", "eu", "--base-job-template", str(template_file))
    assert created.exit_code == 0, created.stderr
    stored = weir_json("work-pool", "inspect", "eu")["base_job_template"]
    assert stored["variables"]["properties"]["env"]["default"] == {"REGION": "eu"}

    template["variables"]["properties"]["env"]["default"] = {"REGION": "us"}
    template_file.write_text(json.dumps(template))
    assert (
        weir("work-pool", "update", "eu", "--base-job-template", str(template_file)).exit_code == 0
    )
    stored = weir_json("work-pool", "inspect", "eu")["base_job_template"]
    assert stored["variables"]["properties"]["env"]["default"] == {"REGION": "us"}


def test_delete_asks_first(api: str) -> None:
    weir("work-pool", "create", "local")
    fails(weir("work-pool", "delete", "local"), "pass --yes to confirm")
    assert [p["name"] for p in weir_json("work-pool", "ls")] == ["local"]

    deleted = weir("work-pool", "delete", "local", "--yes")
    assert deleted.exit_code == 0, deleted.stderr
    assert "Deleted work pool 'local'" in deleted.stdout
    assert weir_json("work-pool", "ls") == []


def test_bad_input_is_one_sentence(api: str, tmp_path: Path) -> None:
    weir("work-pool", "create", "local")
    not_json = tmp_path / "broken.json"
    not_json.write_text("{not json")
    no_config = tmp_path / "partial.json"
    no_config.write_text(json.dumps({"variables": {"type": "object", "properties": {}}}))
    for args, sentence in [
        (("work-pool", "inspect", "nowhere"), "nowhere"),
        (("work-pool", "pause", "nowhere"), "nowhere"),
        (("work-pool", "delete", "nowhere", "--yes"), "nowhere"),
        (("work-pool", "create", "local"), "local"),  # exists already
        (("work-pool", "create", "k8s", "--type", "kubernetes"), "Unknown work pool type"),
        (("work-pool", "get-default-base-job-template", "--type", "nomad"), "nomad"),
        (("work-pool", "create", "x", "--base-job-template", str(not_json)), "not valid JSON"),
        (("work-pool", "create", "x", "--base-job-template", str(no_config)), "job_configuration"),
        (("work-pool", "create", "x", "--base-job-template", "/no/such.json"), "Cannot read"),
        (("work-pool", "create", "x", "--concurrency-limit", "-1"), "concurrency_limit"),
        (("work-pool", "create", "a/b"), "name"),
        (("work-pool", "update", "local"), "Nothing to update"),
    ]:
        fails(weir(*args), sentence)
    assert [p["name"] for p in weir_json("work-pool", "ls")] == ["local"]
