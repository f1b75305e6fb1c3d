"""`weir deploy` (register deployments from weir.yaml or the command line) and `weir init`
(write a starter weir.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from weir.cli.output import exit_with_error, print_json

if TYPE_CHECKING:
    from weir.core.schemas.deployments import Catchup, Deployment
    from weir.deployments.config import DeploymentEntry


def deploy(
    entrypoint: str = typer.Argument(
        None, help="path/to/file.py:flow_function, to deploy without a weir.yaml entry."
    ),
    names: list[str] = typer.Option(
        None, "--name", "-n", help="Deploy this deployment of the file (repeatable)."
    ),
    all_: bool = typer.Option(False, "--all", help="Deploy every deployment of the file."),
    file: Path = typer.Option(
        None, "--file", help="The file to read (default: ./weir.yaml, else ./prefect.yaml)."
    ),
    pool: str = typer.Option(None, "--pool", "-p", help="The work pool."),
    queue: str = typer.Option(None, "--queue", "-q", help="The pool's work queue."),
    cron: str = typer.Option(None, "--cron", help="A cron schedule, e.g. '0 8 * * *'."),
    interval: str = typer.Option(None, "--interval", help="An interval schedule in seconds."),
    rrule: str = typer.Option(None, "--rrule", help="An RFC 5545 schedule, e.g. FREQ=DAILY."),
    timezone: str = typer.Option(None, "--timezone", help="The schedule's time zone."),
    param: list[str] = typer.Option(
        None, "--param", help="A parameter KEY=VALUE (JSON if it parses); repeatable."
    ),
    params: str = typer.Option(None, "--params", help="Parameters as a JSON object."),
    tags: list[str] = typer.Option(None, "--tag", "-t", help="A tag (repeatable)."),
    description: str = typer.Option(None, "--description", "-d", help="A description."),
    version: str = typer.Option(None, "--version", "-v", help="A version."),
    job_variable: list[str] = typer.Option(
        None, "--job-variable", help="A job variable KEY=VALUE (JSON if it parses)."
    ),
    concurrency_limit: int = typer.Option(
        None, "--concurrency-limit", help="At most this many runs at once."
    ),
    collision_strategy: str = typer.Option(
        None, "--collision-strategy", help="ENQUEUE (wait) or CANCEL_NEW, past the limit."
    ),
    catchup: str = typer.Option(
        None, "--catchup", help="Late runs after an outage: all, latest or skip (default all)."
    ),
    max_lateness: str = typer.Option(
        None,
        "--max-lateness",
        help="Mark a run this late Missed instead of starting it: 2h, 30m, 3600.",
    ),
    schema: bool = typer.Option(False, "--schema", help="Print weir.yaml's JSON Schema."),
    json_output: bool = typer.Option(False, "--json", help="Print the deployments as JSON."),
) -> None:
    """Register deployments: from weir.yaml (--all, --name NAME) or an entrypoint."""
    if schema:
        from weir.deployments.config import json_schema

        print_json(json_schema())
        return
    from weir.cli.api import api_client
    from weir.deployments.apply import deploy_entries, select_entries
    from weir.deployments.config import DeploymentEntry, WeirYaml
    from weir.deployments.loading import find_config, load_config

    changes = _overrides(
        pool=pool, queue=queue, cron=cron, interval=interval, rrule=rrule, timezone=timezone,
        param=param or [], params=params, tags=tags, description=description, version=version,
        job_variable=job_variable or [], concurrency_limit=concurrency_limit,
        collision_strategy=collision_strategy, catchup=catchup, max_lateness=max_lateness,
    )  # fmt: skip
    if entrypoint:
        if len(names or []) != 1 or all_:
            exit_with_error("Deploying an entrypoint needs exactly one --name NAME.")
        config, root = WeirYaml(), Path.cwd()
        entries = [DeploymentEntry(name=names[0], entrypoint=entrypoint)]
    else:
        path = file or find_config(Path.cwd())
        if path is None:
            exit_with_error(
                "There is no weir.yaml here; write one with `weir init`, pass --file PATH, "
                "or deploy an entrypoint: `weir deploy flows.py:my_flow --name N --pool P`."
            )
        config, root = load_config(path), path.resolve().parent
        for section in config.ignored_sections():
            typer.echo(f"Warning: {path.name}: '{section}' is ignored; weir does not build or push.", err=True)  # fmt: skip
        entries = select_entries(config, names or [], all=all_, source=str(path))
    entries = [_apply(entry, changes) for entry in entries]
    with api_client() as client:
        deployments = deploy_entries(client, config, entries, root)
    if json_output:
        print_json([d.model_dump(mode="json") for d in deployments])
        return
    for deployment in deployments:
        _print_deployed(deployment)


def _overrides(**options: Any) -> dict[str, Any]:
    """The entry fields the command line sets; `parameters` and `job_variables` merge."""
    from weir.cli.params import parse_json_object, parse_key_values
    from weir.core.schemas.deployments import CollisionStrategy
    from weir.deployments.config import ConcurrencyLimitEntry, ScheduleEntry
    from weir.deployments.publish import schedules_from

    changes: dict[str, Any] = {}
    parameters: dict[str, Any] = {}
    if options["params"] is not None:
        parameters = parse_json_object(options["params"], "--params")
    parameters.update(parse_key_values(options["param"], "--param"))
    if parameters:
        changes["parameters"] = parameters
    if options["job_variable"]:
        changes["job_variables"] = parse_key_values(options["job_variable"], "--job-variable")
    kinds = {k: options[k] for k in ("cron", "interval", "rrule") if options[k] is not None}
    if len(kinds) > 1:
        exit_with_error("Give one of --cron, --interval or --rrule.")
    if "interval" in kinds and kinds["interval"].replace(".", "", 1).isdigit():
        kinds["interval"] = float(kinds["interval"])
    if kinds or options["timezone"] is not None:
        changes["schedules"] = [
            ScheduleEntry(**kinds, timezone=options["timezone"])
            for _ in schedules_from(**kinds, timezone=options["timezone"])  # checks them
        ]
    strategy = options["collision_strategy"]
    if strategy is not None and options["concurrency_limit"] is None:
        exit_with_error("--collision-strategy needs --concurrency-limit N.")
    if strategy is not None and strategy.upper() not in CollisionStrategy.__members__:
        exit_with_error(f"--collision-strategy {strategy!r}: use ENQUEUE or CANCEL_NEW.")
    if options["concurrency_limit"] is not None:
        if options["concurrency_limit"] < 1:
            exit_with_error("--concurrency-limit must be 1 or more.")
        changes["concurrency_limit"] = ConcurrencyLimitEntry(
            limit=options["concurrency_limit"],
            collision_strategy=CollisionStrategy[(strategy or "ENQUEUE").upper()],
        )
    if options["catchup"] is not None:
        changes["catchup"] = catchup_option(options["catchup"])
    if options["max_lateness"] is not None:
        changes["max_lateness"] = lateness_option(options["max_lateness"])
    for key in ("pool", "queue", "tags", "description", "version"):
        if options[key]:
            changes[key] = options[key]
    return changes


def catchup_option(value: str, what: str = "--catchup") -> Catchup:
    """A catch-up policy typed on the command line, or one sentence and exit."""
    from weir.core.schemas.deployments import Catchup

    try:
        return Catchup(value.lower())
    except ValueError:
        exit_with_error(f"{what} {value!r}: use all, latest or skip.")


def lateness_option(value: str) -> float:
    """`--max-lateness`'s value in seconds, or one sentence and exit."""
    from weir.deployments.config import duration_seconds

    try:
        return duration_seconds(value)
    except ValueError as exc:
        exit_with_error(f"--max-lateness: {exc}.")


def _apply(entry: DeploymentEntry, changes: dict[str, Any]) -> DeploymentEntry:
    update = {k: v for k, v in changes.items() if k not in ("pool", "queue", "job_variables")}
    if "parameters" in update:
        update["parameters"] = {**entry.parameters, **update["parameters"]}
    pool = entry.work_pool.model_copy(
        update={
            **({"name": changes["pool"]} if "pool" in changes else {}),
            **({"work_queue_name": changes["queue"]} if "queue" in changes else {}),
            "job_variables": {**entry.work_pool.job_variables, **changes.get("job_variables", {})},
        }
    )
    return entry.model_copy(update={**update, "work_pool": pool})


def _print_deployed(deployment: Deployment) -> None:
    from weir.core.schemas.schedules import describe_schedule

    full_name = f"{deployment.flow_name}/{deployment.name}"
    pool = deployment.work_pool_name or "no pool"
    typer.echo(f"Deployed {full_name!r} (pool {pool}, {deployment.id}).")
    if deployment.catchup != "all" or deployment.max_lateness_seconds is not None:
        typer.echo(f"  catch-up: {catchup_text(deployment)}")
    for schedule in deployment.schedules:
        typer.echo(f"  schedule: {describe_schedule(schedule.schedule)}" + ("" if schedule.active else " (inactive)"))  # fmt: skip
    typer.echo(f"  Run it with: weir deployment run '{full_name}'")


def catchup_text(deployment: Deployment) -> str:
    """`latest, max lateness 2 h`: the deployment's catch-up policy in words."""
    from weir.core.schemas.deployments import describe_seconds

    text = deployment.catchup.value
    if deployment.max_lateness_seconds is not None:
        text += f", max lateness {describe_seconds(deployment.max_lateness_seconds)}"
    return text


STARTER = """\
# weir.yaml: this project's deployments. Reference: docs/deployments.md
# JSON Schema for editors: `weir deploy --schema > weir.schema.json`
name: {name}

# Steps a worker runs before loading a flow, from its working directory.
# Without them the worker reads the flows from this directory.
# pull:
#   - git_clone:
#       repository: https://github.com/acme/{name}.git
#       branch: main
#       # access_token: ...   (private https repositories)
#   - run_shell_script:
#       script: pip install -r requirements.txt

deployments:
  - name: my-deployment
    entrypoint: flows.py:my_flow        # path/to/file.py:function or package.module:function
    description: What this deployment does.
    tags: []
    parameters: {{}}                    # overrides the flow's defaults
    work_pool:
      name: default                     # create it: weir work-pool create default --type process
      # work_queue_name: default
      # job_variables: {{env: {{LOG_LEVEL: INFO}}}}
    schedules: []
    #  - cron: "0 8 * * *"
    #    timezone: Europe/Oslo
    #  - interval: 3600                 # seconds, or an ISO 8601 duration like PT1H
    # concurrency_limit: 1              # or {{limit: 1, collision_strategy: CANCEL_NEW}}
    # catchup: all                      # late runs after an outage: all, latest or skip
    # max_lateness: 2h                  # a run this late is marked Missed, not started
"""


def init(
    force: bool = typer.Option(False, "--force", help="Overwrite an existing weir.yaml."),
) -> None:
    """Write a starter weir.yaml in the current directory."""
    path = Path.cwd() / "weir.yaml"
    if path.exists() and not force:
        exit_with_error("weir.yaml already exists; pass --force to overwrite it.")
    path.write_text(STARTER.format(name=Path.cwd().name or "project"), encoding="utf-8")
    typer.echo("Wrote weir.yaml; edit its deployment, then run `weir deploy --all`.")
