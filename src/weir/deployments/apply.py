"""From weir.yaml entries to deployments on the server.

Each entry becomes a `DeploymentCreate` (its flow loaded from the entrypoint for
the flow's name and parameter schema) and is applied with
`client.apply_deployment`, which makes the server's deployment match it:
deploying the same file twice changes nothing, and a schedule removed from the
file is removed from the server. Every entry is built before any is applied, so
a bad entrypoint deploys nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from weir.core.schemas.deployments import DeploymentCreate
from weir.deployments.config import DeploymentEntry, WeirYaml
from weir.deployments.entrypoints import load_flow
from weir.deployments.parameters import parameter_schema
from weir.exceptions import DeploymentConfigError

if TYPE_CHECKING:
    from weir.client.sync import SyncWeirClient
    from weir.core.schemas.deployments import Deployment
    from weir.engine.flows import Flow


def select_entries(
    config: WeirYaml, names: Sequence[str], *, all: bool, source: str = "weir.yaml"
) -> list[DeploymentEntry]:
    """The entries to deploy: all of them, those named (`name` or `flow/name`), or the
    only one."""
    entries = config.deployments
    if not entries:
        raise DeploymentConfigError(
            f"{source} has no deployments; add one under 'deployments:' (see `weir init`)."
        )
    if all:
        return list(entries)
    if not names:
        if len(entries) == 1:
            return list(entries)
        raise DeploymentConfigError(
            f"{source} has {len(entries)} deployments; pass --all or --name NAME "
            f"({', '.join(e.name for e in entries)})."
        )
    chosen = []
    for name in names:
        wanted = name.rpartition("/")[2]
        matches = [e for e in entries if e.name == wanted]
        if not matches:
            raise DeploymentConfigError(
                f"{source} has no deployment named {wanted!r}; its deployments are "
                f"{', '.join(e.name for e in entries)}."
            )
        chosen += [m for m in matches if m not in chosen]
    return chosen


def build_deployment(
    entry: DeploymentEntry, root: Path, pull_steps: list[dict[str, Any]] | None = None
) -> DeploymentCreate:
    """The body that registers `entry`; its entrypoint is loaded relative to `root`."""
    if not entry.entrypoint:
        raise DeploymentConfigError(
            f"Deployment {entry.name!r} has no entrypoint; set 'entrypoint: "
            "path/to/file.py:function' or pass it to `weir deploy`."
        )
    if not entry.work_pool.name:
        raise DeploymentConfigError(
            f"Deployment {entry.name!r} has no work pool; set 'work_pool: {{name: POOL}}' "
            "or pass --pool POOL."
        )
    flow = load_flow(entry.entrypoint, root)
    limit = entry.concurrency_limit
    return deployment_create(
        flow,
        name=entry.name,
        entrypoint=entry.entrypoint,
        # with pull steps the working directory is theirs to set on the worker
        path=None if pull_steps else str(root.resolve()),
        description=entry.description,
        version=entry.version,
        tags=entry.tags,
        parameters=entry.parameters,
        enforce_parameter_schema=entry.enforce_parameter_schema,
        paused=entry.paused,
        work_pool_name=entry.work_pool.name,
        work_queue_name=entry.work_pool.work_queue_name,
        job_variables=entry.work_pool.job_variables,
        pull_steps=pull_steps or None,
        concurrency_limit=limit.limit if limit else None,
        collision_strategy=limit.collision_strategy if limit else None,
        catchup=entry.catchup,
        max_lateness_seconds=entry.max_lateness,
        schedules=[s.to_create() for s in entry.schedules],
    )


def deployment_create(flow: Flow[..., Any], **fields: Any) -> DeploymentCreate:
    """A `DeploymentCreate` of `flow`: its name, description, version and parameter
    schema filled in; a field that does not fit is a one-sentence error."""
    fields = {k: v for k, v in fields.items() if v is not None}
    fields.setdefault("description", flow.description)
    fields.setdefault("version", flow.version)
    try:
        return DeploymentCreate(
            flow_name=flow.name, parameter_openapi_schema=parameter_schema(flow), **fields
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        raise DeploymentConfigError(
            f"Deployment {fields.get('name')!r}: {where}: {message} (got {error.get('input')!r})."
        ) from None


def deploy_entries(
    client: SyncWeirClient, config: WeirYaml, entries: Sequence[DeploymentEntry], root: Path
) -> list[Deployment]:
    """Build every entry's body, then apply them in order."""
    bodies = [build_deployment(e, root, config.pull_steps(e)) for e in entries]
    return [client.apply_deployment(body) for body in bodies]
