"""`weir deployment …`: list, inspect, run, schedule, pause and delete deployments.

A deployment is named `FLOW/DEPLOYMENT`, e.g. `etl/daily`.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import typer

from weir.cli.api import api_client, print_models, print_table, when
from weir.cli.output import exit_with_error, print_json
from weir.cli.params import (
    parse_duration,
    parse_json_object,
    parse_key_values,
    request_body,
)
from weir.cli.watch import watch_and_exit

if TYPE_CHECKING:
    from weir.client.sync import SyncWeirClient
    from weir.core.schemas.deployments import Deployment
    from weir.core.schemas.schedules import DeploymentSchedule, Schedule

app = typer.Typer(
    help="List, inspect, run, schedule, pause and delete deployments.", no_args_is_help=True
)

_NAME_HELP = "FLOW/DEPLOYMENT, e.g. etl/daily."


@app.command("ls")
def list_deployments(
    flow_name: list[str] = typer.Option(
        None, "--flow-name", help="Only deployments of this flow (repeatable)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List deployments."""
    from weir.core.schemas.deployments import DeploymentFilterRequest

    request = DeploymentFilterRequest(flows={"name": {"any_": flow_name}} if flow_name else None)
    with api_client() as client:
        deployments = client.read_deployments(request)
    if json_output:
        print_models(deployments)
        return
    print_table(
        ["NAME", "POOL / QUEUE", "SCHEDULES", "PAUSED"],
        [
            (
                _full_name(d),
                _pool_and_queue(d),
                _schedules_text(d.schedules) or "-",
                "yes" if d.paused else "no",
            )
            for d in deployments
        ],
    )


@app.command("inspect")
def inspect(
    name: str = typer.Argument(..., help=_NAME_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show one deployment: entrypoint, parameters, pool, schedules, limits."""
    with api_client() as client:
        deployment = _read(client, name)
    if json_output:
        print_json(deployment.model_dump(mode="json"))
        return
    d = deployment
    limit = f"{d.concurrency_limit} ({d.collision_strategy.value})" if d.concurrency_limit else "-"
    fields = [
        ("ID", d.id), ("Name", _full_name(d)), ("Description", d.description or "-"),
        ("Version", d.version or "-"), ("Entrypoint", d.entrypoint or "-"),
        ("Path", d.path or "-"), ("Parameters", json.dumps(d.parameters)),
        ("Tags", ", ".join(d.tags) or "-"), ("Work pool / queue", _pool_and_queue(d)),
        ("Job variables", json.dumps(d.job_variables)), ("Paused", "yes" if d.paused else "no"),
        ("Concurrency limit", limit), ("Created", when(d.created)), ("Updated", when(d.updated)),
    ]  # fmt: skip
    for label, value in fields:
        typer.echo(f"{label + ':':<19}{value}")
    if d.schedules:
        typer.echo("")
        print_table(
            ["SCHEDULE", "ACTIVE", "PARAMETERS"],
            [
                (_schedules_text([s]), "yes" if s.active else "no", json.dumps(s.parameters))
                for s in d.schedules
            ],
            title="Schedules",
        )


@app.command("delete")
def delete(name: str = typer.Argument(..., help=_NAME_HELP)) -> None:
    """Delete a deployment and its schedules (its past runs are kept)."""
    with api_client() as client:
        deployment = _read(client, name)
        client.delete_deployment(deployment.id)
    typer.echo(f"Deleted deployment {_full_name(deployment)!r}.")


@app.command("pause")
def pause(name: str = typer.Argument(..., help=_NAME_HELP)) -> None:
    """Pause a deployment: its schedules create no runs until it is resumed."""
    with api_client() as client:
        deployment = client.pause_deployment(_read(client, name).id)
    typer.echo(f"Paused deployment {_full_name(deployment)!r}.")


@app.command("resume")
def resume(name: str = typer.Argument(..., help=_NAME_HELP)) -> None:
    """Resume a paused deployment."""
    with api_client() as client:
        deployment = client.resume_deployment(_read(client, name).id)
    typer.echo(f"Resumed deployment {_full_name(deployment)!r}.")


@app.command("run")
def run(
    name: str = typer.Argument(..., help=_NAME_HELP),
    param: list[str] = typer.Option(
        None, "--param", help="A parameter as KEY=VALUE; VALUE is JSON or text (repeatable)."
    ),
    params: str = typer.Option(None, "--params", help="Parameters as a JSON object."),
    start_in: str = typer.Option(None, "--start-in", help="Start after 30s, 10m, 2h, 1d, …"),
    start_at: str = typer.Option(
        None, "--start-at", help="Start at this ISO time (local time unless it has an offset)."
    ),
    tag: list[str] = typer.Option(None, "--tag", help="A tag for the run (repeatable)."),
    job_variable: list[str] = typer.Option(
        None,
        "--job-variable",
        "-jv",
        help='Override a job variable as KEY=VALUE, e.g. env={"LEVEL": "debug"} (repeatable).',
    ),
    watch: bool = typer.Option(
        False, "--watch", help="Show its states and logs until it ends; exit 0 if it completed."
    ),
) -> None:
    """Create a run of a deployment (now, or later); a worker of its pool starts it."""
    from weir.core.schemas.deployments import DeploymentRunCreate

    parameters = {**parse_json_object(params), **parse_key_values(param)}
    body = request_body(
        DeploymentRunCreate,
        parameters=parameters,
        tags=list(tag or []),
        job_variables=parse_key_values(job_variable, "--job-variable"),
        scheduled_time=_start_time(start_in, start_at),
    )
    with api_client() as client:
        deployment = _read(client, name)
        flow_run = client.create_deployment_run(deployment.id, body)
        when_text = when(flow_run.expected_start_time) if body.scheduled_time else "now"
        typer.echo(f"Created flow run {flow_run.name!r} of {_full_name(deployment)!r}.")
        typer.echo(f"ID:        {flow_run.id}")
        typer.echo(f"Scheduled: {when_text}")
        if watch:
            watch_and_exit(client, flow_run.id)
    typer.echo(f"Follow it with: weir flow-run watch {flow_run.id}")


@app.command("set-schedule")
def set_schedule(
    name: str = typer.Argument(..., help=_NAME_HELP),
    cron: str = typer.Option(None, "--cron", help='A cron expression, e.g. "0 8 * * *".'),
    interval: float = typer.Option(None, "--interval", help="Every this many seconds."),
    rrule: str = typer.Option(None, "--rrule", help="An RFC 5545 rule, e.g. FREQ=DAILY;BYHOUR=8."),
    timezone: str = typer.Option(
        None, "--timezone", help="An IANA time zone, e.g. Europe/Oslo (default: UTC)."
    ),
) -> None:
    """Replace the deployment's schedules with this one."""
    from weir.core.schemas.deployments import DeploymentUpdate
    from weir.core.schemas.schedules import DeploymentScheduleCreate

    schedule = _schedule(cron, interval, rrule, timezone or "UTC")
    change = DeploymentUpdate(schedules=[DeploymentScheduleCreate(schedule=schedule)])
    with api_client() as client:
        deployment = client.update_deployment(_read(client, name).id, change)
    typer.echo(
        f"Deployment {_full_name(deployment)!r} now runs "
        f"{_schedules_text(deployment.schedules) or 'on no schedule'}."
    )


@app.command("clear-schedule")
def clear_schedule(name: str = typer.Argument(..., help=_NAME_HELP)) -> None:
    """Remove all of the deployment's schedules."""
    from weir.core.schemas.deployments import DeploymentUpdate

    with api_client() as client:
        deployment = client.update_deployment(
            _read(client, name).id, DeploymentUpdate(schedules=[])
        )
    typer.echo(f"Removed the schedules of deployment {_full_name(deployment)!r}.")


def _read(client: SyncWeirClient, name: str) -> Deployment:
    flow, _, deployment = name.partition("/")
    if not flow or not deployment or "/" in deployment:
        exit_with_error(f"Name the deployment as FLOW/DEPLOYMENT, e.g. etl/daily; got {name!r}.")
    return client.read_deployment_by_name(name)


def _full_name(deployment: Deployment) -> str:
    return f"{deployment.flow_name}/{deployment.name}"


def _pool_and_queue(deployment: Deployment) -> str:
    if not deployment.work_pool_name:
        return "-"
    return f"{deployment.work_pool_name} / {deployment.work_queue_name or 'default'}"


def _schedules_text(schedules: list[DeploymentSchedule]) -> str:
    from weir.core.schemas.schedules import describe_schedule

    return ", ".join(
        describe_schedule(s.schedule) + ("" if s.active else " (inactive)") for s in schedules
    )


def _schedule(
    cron: str | None, interval: float | None, rrule: str | None, timezone: str
) -> Schedule:
    from weir.core.schemas import schedules

    given = [option for option, value in (("--cron", cron), ("--interval", interval),
             ("--rrule", rrule)) if value is not None]  # fmt: skip
    if len(given) != 1:
        exit_with_error(
            "Give exactly one of --cron, --interval or --rrule"
            + (f", not {' and '.join(given)}." if given else ".")
        )
    if cron is not None:
        return request_body(schedules.CronSchedule, cron=cron, timezone=timezone)
    if interval is not None:
        return request_body(schedules.IntervalSchedule, interval=interval, timezone=timezone)
    return request_body(schedules.RRuleSchedule, rrule=rrule, timezone=timezone)


def _start_time(start_in: str | None, start_at: str | None) -> datetime | None:
    from weir.core.clock import utcnow

    if start_in is not None and start_at is not None:
        exit_with_error("Give --start-in or --start-at, not both.")
    if start_in is not None:
        return utcnow() + parse_duration(start_in)
    if start_at is None:
        return None
    try:
        moment = datetime.fromisoformat(start_at)
    except ValueError:
        exit_with_error(
            f"--start-at {start_at!r} is not an ISO time; use e.g. 2025-06-01T08:00 "
            "or 2025-06-01T08:00+02:00."
        )
    return moment if moment.tzinfo else moment.astimezone()
