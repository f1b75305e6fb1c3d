"""`weir deployment schedule …`, `set-schedule`'s options, `set-catchup`, and the next
runs `weir deployment inspect` shows, against a real server on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests.cli.deployments import deploy
from tests.cli.harness import fails, weir, weir_json
from weir.core.schemas.schedules import DeploymentScheduleCreate, IntervalSchedule
from weir.server.db.engine import Database
from weir.server.services.late_runs import LateRuns
from weir.server.services.scheduler import Scheduler
from weir.settings import Settings


def test_schedules_are_listed_created_paused_resumed_and_deleted(api: str) -> None:
    deploy(api)
    created = weir(
        "deployment", "schedule", "create", "etl/daily", "--cron", "0 8 * * mon-fri",
        "--timezone", "Europe/Oslo", "--param", "region=us", "--slug", "morning",
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    assert "to 'etl/daily': cron '0 8 * * mon-fri' (Europe/Oslo)." in created.stdout
    second = weir_json(
        "deployment", "schedule", "create", "etl/daily", "--interval", "30m",
        "--anchor-date", "2024-01-01T00:10:00", "--inactive", "--params", '{"region": "apac"}',
    )  # fmt: skip
    assert second["schedule"]["interval"] == 1800
    assert second["schedule"]["anchor_date"].startswith("2024-01-01T00:10:00")
    assert (second["active"], second["parameters"]) == (False, {"region": "apac"})

    listed = weir_json("deployment", "schedule", "ls", "etl/daily")
    assert [s["slug"] for s in listed] == ["morning", None]
    assert listed[0]["parameters"] == {"region": "us"}
    table = weir("deployment", "schedule", "ls", "etl/daily").stdout
    assert second["id"] in table and "every 1800 s (UTC) (paused)" in table and "morning" in table

    paused = weir("deployment", "schedule", "pause", "etl/daily", "morning")
    assert paused.exit_code == 0, paused.stderr
    assert f"Paused schedule {listed[0]['id']} of 'etl/daily': cron" in paused.stdout
    # a unique start of the id will do
    resumed = weir("deployment", "schedule", "resume", "etl/daily", second["id"][:30])
    assert resumed.exit_code == 0, resumed.stderr
    states = {
        s["slug"]: s["active"] for s in weir_json("deployment", "schedule", "ls", "etl/daily")
    }
    assert states == {"morning": False, None: True}

    deleted = weir("deployment", "schedule", "delete", "etl/daily", listed[0]["id"].upper())
    assert deleted.exit_code == 0, deleted.stderr
    assert [s["id"] for s in weir_json("deployment", "schedule", "ls", "etl/daily")] == [
        second["id"]
    ]


def test_schedule_mistakes_are_one_sentence(api: str) -> None:
    deploy(api)
    for interval in ("60", "120"):
        weir("deployment", "schedule", "create", "etl/daily", "--interval", interval)
    schedule = ("deployment", "schedule")
    for args, sentence in [
        ((*schedule, "delete", "etl/daily", "nope"), "Deployment 'etl/daily' has no schedule 'nope'; list them with `weir deployment schedule ls etl/daily`."),
        ((*schedule, "pause", "etl/daily", "0"), "'0' names 2 schedules of 'etl/daily'; give the full id"),
        ((*schedule, "resume", "etl/nightly", "0"), "Deployment 'etl/nightly' not found"),
        ((*schedule, "ls", "daily"), "Name the deployment as FLOW/DEPLOYMENT"),
        ((*schedule, "create", "etl/daily", "--cron", "0 8 * * *", "--interval", "60"), "Give exactly one of --cron, --interval or --rrule, not --cron and --interval."),
        ((*schedule, "create", "etl/daily", "--cron", "0 8 * * *", "--anchor-date", "2024-01-01"), "--anchor-date applies to --interval schedules only."),
        ((*schedule, "create", "etl/daily", "--interval", "60", "--day-and"), "--day-or/--day-and apply to --cron schedules only."),
        ((*schedule, "create", "etl/daily", "--interval", "soon"), "--interval: 'soon' is not a duration"),
        ((*schedule, "create", "etl/daily", "--interval", "60", "--anchor-date", "someday"), "anchor_date"),
        ((*schedule, "create", "etl/daily", "--cron", "0 25 * * *"), "'25' is not a valid hour"),
        ((*schedule, "create", "etl/daily", "--rrule", "FREQ=DAILY", "--param", "x"), "--param 'x' is not KEY=VALUE"),
    ]:  # fmt: skip
        fails(weir(*args), sentence)
    assert len(weir_json("deployment", "schedule", "ls", "etl/daily")) == 2


def test_set_schedule_takes_an_anchor_parameters_and_inactive(api: str) -> None:
    deploy(api)
    result = weir(
        "deployment", "set-schedule", "etl/daily", "--interval", "PT1H",
        "--anchor-date", "2024-01-01T00:30:00", "--timezone", "Europe/Oslo",
        "--param", "region=us", "--inactive",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (schedule,) = weir_json("deployment", "inspect", "etl/daily")["schedules"]
    assert schedule["schedule"]["interval"] == 3600
    assert schedule["schedule"]["anchor_date"].startswith("2024-01-01T00:30:00")
    assert (schedule["active"], schedule["parameters"]) == (False, {"region": "us"})
    weir("deployment", "set-schedule", "etl/daily", "--cron", "0 8 1 * mon", "--day-and")
    (schedule,) = weir_json("deployment", "inspect", "etl/daily")["schedules"]
    assert schedule["schedule"]["day_or"] is False


def test_set_catchup_changes_the_policy_and_the_limit(api: str) -> None:
    deploy(api)
    shown = weir_json("deployment", "inspect", "etl/daily")
    assert (shown["catchup"], shown["max_lateness_seconds"]) == ("all", None)

    result = weir("deployment", "set-catchup", "etl/daily", "latest", "--max-lateness", "2h")
    assert result.exit_code == 0, result.stderr
    assert "Deployment 'etl/daily' now catches up: latest, max lateness 2 h." in result.stdout
    shown = weir_json("deployment", "inspect", "etl/daily")
    assert (shown["catchup"], shown["max_lateness_seconds"]) == ("latest", 7200)
    assert (
        "Catch-up:          latest, max lateness 2 h"
        in weir("deployment", "inspect", "etl/daily").stdout
    )

    assert weir("deployment", "set-catchup", "etl/daily", "--max-lateness", "90").exit_code == 0
    shown = weir_json("deployment", "inspect", "etl/daily")
    assert (shown["catchup"], shown["max_lateness_seconds"]) == ("latest", 90)
    cleared = weir("deployment", "set-catchup", "etl/daily", "skip", "--no-max-lateness")
    assert "now catches up: skip." in cleared.stdout
    shown = weir_json("deployment", "inspect", "etl/daily")
    assert (shown["catchup"], shown["max_lateness_seconds"]) == ("skip", None)

    for args, sentence in [
        (("etl/daily",), "Give a policy (all, latest or skip), --max-lateness or --no-max-lateness."),
        (("etl/daily", "sometimes"), "Catch-up policy 'sometimes': use all, latest or skip."),
        (("etl/daily", "--max-lateness", "later"), "--max-lateness: 'later' is not a duration"),
        (("etl/daily", "--max-lateness", "1h", "--no-max-lateness"), "not both"),
        (("etl/nightly", "all"), "Deployment 'etl/nightly' not found"),
    ]:  # fmt: skip
        fails(weir("deployment", "set-catchup", *args), sentence)


def run_services(database_url: str, now: datetime) -> None:
    """A scheduler pass and a late runs pass at `now`, on the server's database."""

    async def passes() -> None:
        database = Database(database_url)
        try:
            await Scheduler(database, Settings()).run_once(now)
            await LateRuns(database, Settings()).run_once(datetime.now(UTC))
        finally:
            await database.dispose()

    asyncio.run(passes())


def test_inspect_shows_the_next_runs_with_their_schedule_and_late_marks(
    api: str, database_url: str
) -> None:
    now = datetime.now(UTC)
    # hourly at half past now's hour: the runs are 1.5 h and 0.5 h late, and 0.5 h ahead
    anchor = now - timedelta(minutes=30)
    every_hour = IntervalSchedule(interval=timedelta(hours=1), anchor_date=anchor)
    deployment = deploy(api, schedules=[DeploymentScheduleCreate(schedule=every_hour)])
    assert weir("deployment", "run", "etl/daily", "--start-in", "3h").exit_code == 0
    # the scheduler made the runs two hours ago; nothing ran the first two since
    run_services(database_url, now - timedelta(hours=2))

    shown = weir_json("deployment", "inspect", "etl/daily")
    runs = shown["next_runs"]
    schedule_id = str(deployment.schedules[0].id)
    assert [run["state_name"] for run in runs] == ["Late", "Late", "Scheduled", "Scheduled"]
    assert [run["schedule_id"] for run in runs] == [schedule_id] * 3 + [None]
    times = [datetime.fromisoformat(run["expected_start_time"]) for run in runs]
    assert times == sorted(times) and times[1] - times[0] == timedelta(hours=1)

    text = weir("deployment", "inspect", "etl/daily").stdout
    section = text[text.index("Next runs") :]
    rows = [line for line in section.splitlines()[2:] if line.strip()]
    assert len(rows) == 4
    assert "Late (1 h" in rows[0] and "every 3600 s (UTC)" in rows[0]
    assert "Scheduled" in rows[3] and "by hand" in rows[3]

    weir("deployment", "clear-schedule", "etl/daily")
    weir("deployment", "delete", "etl/daily")
    deploy(api)
    assert "Next runs: none scheduled." in weir("deployment", "inspect", "etl/daily").stdout
