"""`weir deployment …` against a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.cli.deployments import deploy, run_like_a_worker, runs_of
from tests.cli.harness import fails, weir, weir_json
from weir.core.states import StateType


def test_list_and_inspect(api: str) -> None:
    deploy(api, "daily", "etl", tags=["finance"])
    deploy(api, "hourly", "sync", paused=True)

    listed = {f"{d['flow_name']}/{d['name']}": d for d in weir_json("deployment", "ls")}
    assert set(listed) == {"etl/daily", "sync/hourly"}
    assert listed["sync/hourly"]["paused"] is True
    only_etl = weir_json("deployment", "ls", "--flow-name", "etl")
    assert [d["name"] for d in only_etl] == ["daily"]

    table = weir("deployment", "ls").stdout
    row = next(line for line in table.splitlines() if line.startswith("etl/daily"))
    assert row.split()[:4] == ["etl/daily", "local", "/", "default"]

    shown = weir_json("deployment", "inspect", "etl/daily")
    assert (shown["entrypoint"], shown["tags"]) == ("flows/etl.py:etl", ["finance"])
    text = weir("deployment", "inspect", "etl/daily").stdout
    assert "flows/etl.py:etl" in text and '{"region": "eu"}' in text


def test_schedules_are_set_replaced_and_cleared(api: str) -> None:
    deploy(api)
    result = weir(
        "deployment",
        "set-schedule",
        "etl/daily",
        "--cron",
        "0 8 * * *",
        "--timezone",
        "Europe/Oslo",
    )
    assert result.exit_code == 0, result.stderr
    assert "cron '0 8 * * *' (Europe/Oslo)" in result.stdout
    (schedule,) = weir_json("deployment", "inspect", "etl/daily")["schedules"]
    assert schedule["schedule"]["cron"] == "0 8 * * *"
    assert schedule["schedule"]["timezone"] == "Europe/Oslo"
    assert "cron '0 8 * * *' (Europe/Oslo)" in weir("deployment", "ls").stdout

    assert weir("deployment", "set-schedule", "etl/daily", "--interval", "1800").exit_code == 0
    (schedule,) = weir_json("deployment", "inspect", "etl/daily")["schedules"]
    assert "cron" not in schedule["schedule"]
    assert weir("deployment", "set-schedule", "etl/daily", "--rrule", "FREQ=DAILY").exit_code == 0
    (schedule,) = weir_json("deployment", "inspect", "etl/daily")["schedules"]
    assert schedule["schedule"]["rrule"] == "FREQ=DAILY"

    assert weir("deployment", "clear-schedule", "etl/daily").exit_code == 0
    assert weir_json("deployment", "inspect", "etl/daily")["schedules"] == []


def test_pause_resume_and_delete(api: str) -> None:
    deploy(api)
    assert "Paused deployment 'etl/daily'" in weir("deployment", "pause", "etl/daily").stdout
    assert weir_json("deployment", "inspect", "etl/daily")["paused"] is True
    assert weir("deployment", "resume", "etl/daily").exit_code == 0
    assert weir_json("deployment", "inspect", "etl/daily")["paused"] is False

    deleted = weir("deployment", "delete", "etl/daily")
    assert deleted.exit_code == 0, deleted.stderr
    assert weir_json("deployment", "ls") == []
    fails(weir("deployment", "inspect", "etl/daily"), "Deployment 'etl/daily' not found")


def test_run_with_parameters_tags_job_variables_and_a_start_time(api: str) -> None:
    deployment = deploy(api)
    result = weir(
        "deployment", "run", "etl/daily",
        "--params", '{"count": 1, "region": "us"}',
        "--param", "count=3",
        "--tag", "manual", "--tag", "backfill",
        "--job-variable", 'env={"LEVEL": "debug"}',
        "--start-in", "10m",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (run,) = runs_of(api, deployment.id)
    assert str(run.id) in result.stdout and run.name in result.stdout
    assert run.parameters == {"count": 3, "region": "us"}
    assert set(run.tags) >= {"manual", "backfill"}
    assert run.job_variables == {"env": {"LEVEL": "debug"}}
    assert run.state_type is StateType.SCHEDULED
    assert run.expected_start_time is not None
    expected = datetime.now(UTC) + timedelta(minutes=10)
    assert abs((run.expected_start_time - expected).total_seconds()) < 30

    at = "2030-01-02T08:00:00+00:00"
    assert weir("deployment", "run", "etl/daily", "--start-at", at).exit_code == 0
    later = max(runs_of(api, deployment.id), key=lambda r: r.expected_start_time or at)
    assert later.expected_start_time == datetime(2030, 1, 2, 8, tzinfo=UTC)
    assert later.parameters == {"region": "eu"}  # the deployment's own


def test_run_watch_follows_the_run_and_exits_with_its_outcome(api: str) -> None:
    deployment = deploy(api)
    worker = run_like_a_worker(api, deployment.id, StateType.COMPLETED)
    watched = weir("deployment", "run", "etl/daily", "--watch")
    worker.join(10)
    assert watched.exit_code == 0, (watched.stdout, watched.stderr)
    lines = watched.stdout.splitlines()
    states = [line.split("|")[2].strip() for line in lines if "| STATE" in line]
    assert states == ["Scheduled", "Pending", "Running", "Completed"]
    assert any("loading 42 invoices" in line for line in lines)
    assert "ended Completed" in lines[-1]

    failing = deploy(api, "fragile")
    worker = run_like_a_worker(api, failing.id, StateType.FAILED)
    watched = weir("deployment", "run", "etl/fragile", "--watch")
    worker.join(10)
    assert watched.exit_code == 1
    assert "ended Failed" in watched.stdout


def test_bad_input_is_one_sentence(api: str) -> None:
    deploy(api)
    for args, sentence in [
        (("deployment", "inspect", "daily"), "Name the deployment as FLOW/DEPLOYMENT"),
        (("deployment", "run", "etl/nightly"), "Deployment 'etl/nightly' not found"),
        (("deployment", "pause", "etl/nightly"), "not found"),
        (("deployment", "run", "etl/daily", "--param", "count"), "is not KEY=VALUE"),
        (("deployment", "run", "etl/daily", "--param", "count=many"), "count"),
        (("deployment", "run", "etl/daily", "--params", "[1]"), "must be a JSON object"),
        (("deployment", "run", "etl/daily", "--params", "{"), "not valid JSON"),
        (("deployment", "run", "etl/daily", "--start-in", "soon"), "is not a duration"),
        (("deployment", "run", "etl/daily", "--start-at", "tomorrow"), "is not an ISO time"),
        (
            ("deployment", "run", "etl/daily", "--start-in", "1m", "--start-at", "2030-01-01"),
            "not both",
        ),
        (("deployment", "run", "etl/daily", "--job-variable", "gpu=2"), "gpu"),
        (("deployment", "set-schedule", "etl/daily", "--cron", "every day"), "cron expression"),
        (
            (
                "deployment",
                "set-schedule",
                "etl/daily",
                "--cron",
                "0 8 * * *",
                "--timezone",
                "Mars/Base",
            ),
            "unknown time zone",
        ),
        (("deployment", "set-schedule", "etl/daily", "--interval", "0"), "must be positive"),
        (
            ("deployment", "set-schedule", "etl/daily", "--cron", "0 8 * * *", "--interval", "60"),
            "exactly one of --cron, --interval or --rrule",
        ),
        (("deployment", "set-schedule", "etl/daily"), "exactly one of"),
        (("deployment", "set-schedule", "etl/daily", "--rrule", "FREQ=SOMETIMES"), "RFC 5545"),
    ]:
        fails(weir(*args), sentence)
    assert weir_json("deployment", "inspect", "etl/daily")["schedules"] == []
