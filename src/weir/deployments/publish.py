"""Deployments registered from Python: `flow.deploy(...)` (a deployment on a work pool)
and `register_served(...)` (the pool-less deployments of `flow.serve()`).

Both point the deployment at the flow's own file, relative to the current
directory (`entrypoint_for`), with that directory as its path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from weir.core.schemas.deployments import Catchup, CollisionStrategy, DeploymentCreate
from weir.core.schemas.schedules import DeploymentScheduleCreate
from weir.deployments.apply import deployment_create
from weir.deployments.config import ScheduleEntry, duration_seconds
from weir.deployments.entrypoints import entrypoint_for
from weir.exceptions import DeploymentConfigError

if TYPE_CHECKING:
    from weir.core.schemas.deployments import Deployment
    from weir.engine.flows import Flow


def to_deployment(
    flow: Flow[..., Any],
    name: str,
    work_pool_name: str | None = None,
    *,
    work_queue_name: str | None = None,
    cron: str | None = None,
    interval: float | timedelta | str | None = None,
    rrule: str | None = None,
    timezone: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    description: str | None = None,
    version: str | None = None,
    job_variables: Mapping[str, Any] | None = None,
    concurrency_limit: int | None = None,
    collision_strategy: CollisionStrategy | str | None = None,
    enforce_parameter_schema: bool = True,
    paused: bool = False,
    catchup: Catchup | str | None = None,
    max_lateness: float | timedelta | str | None = None,
) -> DeploymentCreate:
    """The body registering `flow` as deployment `name` (not sent).

    `catchup` is what happens to scheduled runs that became late while no worker ran:
    "all" run (the default), only each schedule's "latest", or none ("skip").
    `max_lateness` (seconds, a timedelta, "2h", "PT2H") marks a run that late `Missed`
    instead of starting it. See docs/schedules.md."""
    cwd = Path.cwd()
    return deployment_create(
        flow,
        name=name,
        entrypoint=entrypoint_for(flow, cwd),
        path=str(cwd.resolve()),
        work_pool_name=work_pool_name,
        work_queue_name=work_queue_name,
        schedules=schedules_from(cron=cron, interval=interval, rrule=rrule, timezone=timezone),
        parameters=dict(parameters or {}),
        tags=list(tags or ()),
        description=description,
        version=version,
        job_variables=dict(job_variables or {}),
        concurrency_limit=concurrency_limit,
        collision_strategy=collision_strategy,
        enforce_parameter_schema=enforce_parameter_schema,
        paused=paused,
        catchup=catchup,
        max_lateness_seconds=_lateness_seconds(max_lateness),
    )


def _lateness_seconds(value: float | timedelta | str | None) -> float | None:
    if value is None:
        return None
    try:
        return duration_seconds(value)
    except ValueError as exc:
        raise DeploymentConfigError(f"max_lateness: {exc}.") from None


def deploy(flow: Flow[..., Any], name: str, work_pool_name: str, **options: Any) -> Deployment:
    """Register `flow` as deployment `name` on the work pool; see `to_deployment`."""
    from weir.client.sync import SyncWeirClient

    body = to_deployment(flow, name, work_pool_name, **options)
    with SyncWeirClient.from_settings() as client:
        return client.apply_deployment(body)


def register_served(
    flows_with_options: Iterable[tuple[Flow[..., Any], Mapping[str, Any]]],
) -> list[Deployment]:
    """Register pool-less deployments for `flow.serve()`: one per `(flow, options)`, the
    options being `to_deployment`'s keyword arguments (`name` required)."""
    from weir.client.sync import SyncWeirClient

    bodies = []
    for flow, options in flows_with_options:
        options = dict(options)
        name = options.pop("name", None) or flow.name
        bodies.append(to_deployment(flow, name, None, **options))
    with SyncWeirClient.from_settings() as client:
        return [client.apply_deployment(body) for body in bodies]


def schedules_from(
    *,
    cron: str | None = None,
    interval: float | timedelta | str | None = None,
    rrule: str | None = None,
    timezone: str | None = None,
) -> list[DeploymentScheduleCreate]:
    """At most one schedule from keyword arguments; a bad one is a one-sentence error."""
    if cron is None and interval is None and rrule is None:
        if timezone is not None:
            raise DeploymentConfigError("timezone needs a cron, interval or rrule schedule.")
        return []
    if isinstance(interval, timedelta):
        interval = interval.total_seconds()
    try:
        entry = ScheduleEntry(cron=cron, interval=interval, rrule=rrule, timezone=timezone)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        raise DeploymentConfigError(f"{where + ': ' if where else ''}{message}.") from None
    return [entry.to_create()]
