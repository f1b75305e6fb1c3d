"""`weir deployment schedule …`: a deployment's schedules one by one — list, create,
delete, pause and resume — beside `weir deployment set-schedule` / `clear-schedule`,
which replace them all.

A schedule is named by its id (as `schedule ls` prints it), a unique start of its
id, or its slug. Pausing a schedule (or deleting it) removes the runs it made that
have not started; resuming it lets the scheduler make them again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from weir.cli.api import print_models, print_table
from weir.cli.output import exit_with_error
from weir.cli.params import parse_json_object, parse_key_values, request_body

if TYPE_CHECKING:
    from weir.core.schemas.schedules import DeploymentSchedule, DeploymentScheduleCreate

app = typer.Typer(
    help="List, create, delete, pause and resume a deployment's schedules.",
    no_args_is_help=True,
)

_NAME_HELP = "FLOW/DEPLOYMENT, e.g. etl/daily."
_SCHEDULE_HELP = "The schedule's id (or a unique start of it) or its slug; see `schedule ls`."


class ScheduleOptions:
    """The options that describe one schedule, shared by `schedule create` and
    `set-schedule`."""

    cron = typer.Option(None, "--cron", help='A cron expression, e.g. "0 8 * * *".')
    interval = typer.Option(
        None, "--interval", help="Every this long: seconds (1800), 30m, 2h, or ISO 8601 (PT30M)."
    )
    rrule = typer.Option(None, "--rrule", help="An RFC 5545 rule, e.g. FREQ=DAILY;BYHOUR=8.")
    timezone = typer.Option(
        None, "--timezone", help="An IANA time zone, e.g. Europe/Oslo (default: UTC)."
    )
    anchor_date = typer.Option(
        None,
        "--anchor-date",
        help="Intervals count from this ISO time (local to --timezone unless it has an offset).",
    )
    day_or = typer.Option(
        None,
        "--day-or/--day-and",
        help="Cron: with both day fields restricted, run on a day matching either (default) or both.",
    )
    param = typer.Option(
        None, "--param", help="A parameter for this schedule's runs, KEY=VALUE (repeatable)."
    )
    params = typer.Option(None, "--params", help="This schedule's parameters as a JSON object.")
    inactive = typer.Option(False, "--inactive", help="Add it paused: it makes no runs.")
    slug = typer.Option(None, "--slug", help="A name to refer to it by (as weir.yaml's slug).")


def schedule_body(
    *,
    cron: str | None,
    interval: str | None,
    rrule: str | None,
    timezone: str | None,
    anchor_date: str | None,
    day_or: bool | None,
    param: list[str] | None,
    params: str | None,
    inactive: bool,
    slug: str | None,
) -> DeploymentScheduleCreate:
    """One schedule from the command line, or one sentence naming the problem and exit."""
    from weir.core.schemas import schedules

    given = [option for option, value in (("--cron", cron), ("--interval", interval),
             ("--rrule", rrule)) if value is not None]  # fmt: skip
    if len(given) != 1:
        exit_with_error(
            "Give exactly one of --cron, --interval or --rrule"
            + (f", not {' and '.join(given)}." if given else ".")
        )
    if anchor_date is not None and interval is None:
        exit_with_error("--anchor-date applies to --interval schedules only.")
    if day_or is not None and cron is None:
        exit_with_error("--day-or/--day-and apply to --cron schedules only.")
    zone = timezone or "UTC"
    schedule: schedules.Schedule
    if cron is not None:
        extra = {} if day_or is None else {"day_or": day_or}
        schedule = request_body(schedules.CronSchedule, cron=cron, timezone=zone, **extra)
    elif interval is not None:
        schedule = request_body(
            schedules.IntervalSchedule,
            interval=_interval_seconds(interval),
            anchor_date=anchor_date,
            timezone=zone,
        )
    else:
        schedule = request_body(schedules.RRuleSchedule, rrule=rrule, timezone=zone)
    parameters = {**parse_json_object(params), **parse_key_values(param)}
    return request_body(
        schedules.DeploymentScheduleCreate,
        schedule=schedule,
        active=not inactive,
        parameters=parameters,
        slug=slug,
    )


def _interval_seconds(text: str) -> float:
    from weir.deployments.config import duration_seconds

    try:
        return duration_seconds(text)
    except ValueError as exc:
        exit_with_error(f"--interval: {exc}.")


def describe(schedule: DeploymentSchedule) -> str:
    from weir.core.schemas.schedules import describe_schedule

    return describe_schedule(schedule.schedule) + ("" if schedule.active else " (paused)")


def find_schedule(schedules: list[DeploymentSchedule], ref: str, name: str) -> DeploymentSchedule:
    """The schedule `ref` names: its id, a unique start of it, or its slug."""
    wanted = ref.strip().lower()
    by_id = [s for s in schedules if str(s.id) == wanted]
    by_slug = [s for s in schedules if s.slug == ref]
    by_start = [s for s in schedules if wanted and str(s.id).startswith(wanted)]
    for matches in (by_id, by_slug, by_start):
        if len(matches) == 1:
            return matches[0]
        if matches:
            exit_with_error(
                f"{ref!r} names {len(matches)} schedules of {name!r}; give the full id "
                f"(`weir deployment schedule ls {name}`)."
            )
    exit_with_error(
        f"Deployment {name!r} has no schedule {ref!r}; list them with "
        f"`weir deployment schedule ls {name}`."
    )


@app.command("ls")
def list_schedules(
    name: str = typer.Argument(..., help=_NAME_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the deployment's schedules with their ids."""
    import json

    from weir.cli.api import api_client
    from weir.cli.deployment import read_deployment

    with api_client() as client:
        schedules = read_deployment(client, name).schedules
    if json_output:
        print_models(schedules)
        return
    print_table(
        ["ID", "SCHEDULE", "ACTIVE", "PARAMETERS", "SLUG"],
        [
            (s.id, describe(s), "yes" if s.active else "no", json.dumps(s.parameters), s.slug)
            for s in schedules
        ],
    )


@app.command("create")
def create(
    name: str = typer.Argument(..., help=_NAME_HELP),
    cron: str = ScheduleOptions.cron,
    interval: str = ScheduleOptions.interval,
    rrule: str = ScheduleOptions.rrule,
    timezone: str = ScheduleOptions.timezone,
    anchor_date: str = ScheduleOptions.anchor_date,
    day_or: bool = ScheduleOptions.day_or,
    param: list[str] = ScheduleOptions.param,
    params: str = ScheduleOptions.params,
    inactive: bool = ScheduleOptions.inactive,
    slug: str = ScheduleOptions.slug,
    json_output: bool = typer.Option(False, "--json", help="Print the new schedule as JSON."),
) -> None:
    """Add a schedule to the deployment (its other schedules stay)."""
    from weir.cli.api import api_client
    from weir.cli.deployment import full_name, read_deployment
    from weir.cli.output import print_json

    body = schedule_body(
        cron=cron, interval=interval, rrule=rrule, timezone=timezone, anchor_date=anchor_date,
        day_or=day_or, param=param, params=params, inactive=inactive, slug=slug,
    )  # fmt: skip
    with api_client() as client:
        deployment = read_deployment(client, name)
        (schedule,) = client.create_deployment_schedules(deployment.id, [body])
    if json_output:
        print_json(schedule.model_dump(mode="json"))
        return
    typer.echo(f"Added schedule {schedule.id} to {full_name(deployment)!r}: {describe(schedule)}.")


@app.command("delete")
def delete(
    name: str = typer.Argument(..., help=_NAME_HELP),
    schedule: str = typer.Argument(..., help=_SCHEDULE_HELP),
) -> None:
    """Delete one schedule and the runs it made that have not started."""
    _change(name, schedule, None)


@app.command("pause")
def pause(
    name: str = typer.Argument(..., help=_NAME_HELP),
    schedule: str = typer.Argument(..., help=_SCHEDULE_HELP),
) -> None:
    """Pause one schedule: it makes no runs, and its runs that have not started go."""
    _change(name, schedule, False)


@app.command("resume")
def resume(
    name: str = typer.Argument(..., help=_NAME_HELP),
    schedule: str = typer.Argument(..., help=_SCHEDULE_HELP),
) -> None:
    """Resume a paused schedule."""
    _change(name, schedule, True)


def _change(name: str, ref: str, active: bool | None) -> None:
    """Delete the schedule (`active` None) or set its `active` flag."""
    from weir.cli.api import api_client
    from weir.cli.deployment import full_name, read_deployment
    from weir.core.schemas.schedules import DeploymentScheduleUpdate

    with api_client() as client:
        deployment = read_deployment(client, name)
        found = find_schedule(deployment.schedules, ref, full_name(deployment))
        if active is None:
            client.delete_deployment_schedule(deployment.id, found.id)
        else:
            update = DeploymentScheduleUpdate(active=active)
            client.update_deployment_schedule(deployment.id, found.id, update)
    verb = "Deleted" if active is None else "Resumed" if active else "Paused"
    what = describe(found).removesuffix(" (paused)")
    typer.echo(f"{verb} schedule {found.id} of {full_name(deployment)!r}: {what}.")
