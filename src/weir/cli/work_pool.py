"""`weir work-pool …`: the pools where deployment runs wait for a worker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from weir.cli.api import api_client, print_models, print_table, when
from weir.cli.output import confirm, exit_with_error, print_json
from weir.cli.params import request_body

if TYPE_CHECKING:
    from weir.core.schemas.work_pools import WorkPool, WorkPoolUpdate

app = typer.Typer(
    help="Create, list, inspect, pause and delete work pools; set their limits.",
    no_args_is_help=True,
)

_TEMPLATE_HELP = (
    "A JSON file with the pool's base job template (see get-default-base-job-template)."
)


@app.command("create")
def create(
    name: str,
    pool_type: str = typer.Option("process", "--type", "-t", help="The infrastructure: process."),
    concurrency_limit: int = typer.Option(
        None, "--concurrency-limit", help="At most this many runs of the pool at once."
    ),
    paused: bool = typer.Option(False, "--paused", help="Create it paused: workers claim nothing."),
    base_job_template: Path = typer.Option(None, "--base-job-template", help=_TEMPLATE_HELP),
    description: str = typer.Option(None, "--description", "-d"),
) -> None:
    """Create a work pool (with its `default` queue)."""
    from weir.core.schemas.work_pools import WorkPoolCreate

    template = _read_template(base_job_template) if base_job_template else None
    if template is None:
        _default_template(pool_type)  # an unknown type is refused before any request
    body = request_body(
        WorkPoolCreate,
        name=name,
        type=pool_type,
        description=description,
        base_job_template=template,
        is_paused=paused,
        concurrency_limit=concurrency_limit,
    )
    with api_client() as client:
        pool = client.create_work_pool(body)
    typer.echo(f"Created work pool {pool.name!r} ({pool.type}). Start a worker for it with:")
    typer.echo(f"  weir worker start --pool {pool.name}")


@app.command("ls")
def list_pools(json_output: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List work pools."""
    with api_client() as client:
        pools = client.read_work_pools()
    if json_output:
        print_models(pools)
        return
    print_table(
        ["NAME", "TYPE", "STATUS", "CONCURRENCY LIMIT", "DESCRIPTION"],
        [
            (p.name, p.type, p.status.value, limit_text(p.concurrency_limit), p.description or "")
            for p in pools
        ],
    )


@app.command("inspect")
def inspect(
    name: str, json_output: bool = typer.Option(False, "--json", help="Print as JSON.")
) -> None:
    """Show one work pool: its fields, queues and base job template."""
    with api_client() as client:
        pool = client.read_work_pool(name)
        queues = client.read_work_queues(name)
    if json_output:
        print_json(pool.model_dump(mode="json"))
        return
    fields = [
        ("ID", pool.id), ("Name", pool.name), ("Type", pool.type),
        ("Status", pool.status.value), ("Paused", "yes" if pool.is_paused else "no"),
        ("Concurrency limit", limit_text(pool.concurrency_limit)),
        ("Description", pool.description or "-"), ("Created", when(pool.created)),
    ]  # fmt: skip
    for label, value in fields:
        typer.echo(f"{label + ':':<19}{value}")
    typer.echo("")
    print_table(
        ["QUEUE", "PRIORITY", "STATUS", "CONCURRENCY LIMIT"],
        [(q.name, q.priority, q.status.value, limit_text(q.concurrency_limit)) for q in queues],
        title="Work queues",
    )
    typer.echo("\nBase job template:")
    typer.echo(json.dumps(pool.base_job_template, indent=2, sort_keys=True))


@app.command("update")
def update(
    name: str,
    description: str = typer.Option(None, "--description", "-d"),
    concurrency_limit: int = typer.Option(
        None, "--concurrency-limit", help="At most this many runs of the pool at once."
    ),
    base_job_template: Path = typer.Option(None, "--base-job-template", help=_TEMPLATE_HELP),
) -> None:
    """Change a work pool's description, concurrency limit or base job template."""
    from weir.core.schemas.work_pools import WorkPoolUpdate

    fields: dict[str, Any] = {}
    if description is not None:
        fields["description"] = description
    if concurrency_limit is not None:
        fields["concurrency_limit"] = concurrency_limit
    if base_job_template is not None:
        fields["base_job_template"] = _read_template(base_job_template)
    if not fields:
        exit_with_error(
            "Nothing to update; give --description, --concurrency-limit or --base-job-template."
        )
    _update(name, request_body(WorkPoolUpdate, **fields), f"Updated work pool {name!r}.")


@app.command("pause")
def pause(name: str) -> None:
    """Pause a work pool: its workers claim no new runs until it is resumed."""
    from weir.core.schemas.work_pools import WorkPoolUpdate

    _update(name, WorkPoolUpdate(is_paused=True), f"Paused work pool {name!r}.")


@app.command("resume")
def resume(name: str) -> None:
    """Resume a paused work pool."""
    from weir.core.schemas.work_pools import WorkPoolUpdate

    _update(name, WorkPoolUpdate(is_paused=False), f"Resumed work pool {name!r}.")


@app.command("set-concurrency-limit")
def set_concurrency_limit(name: str, limit: int) -> None:
    """Run at most LIMIT flow runs of the pool at once."""
    from weir.core.schemas.work_pools import WorkPoolUpdate

    message = f"Set the concurrency limit of work pool {name!r} to {limit}."
    _update(name, request_body(WorkPoolUpdate, concurrency_limit=limit), message)


@app.command("clear-concurrency-limit")
def clear_concurrency_limit(name: str) -> None:
    """Remove the pool's concurrency limit."""
    from weir.core.schemas.work_pools import WorkPoolUpdate

    message = f"Cleared the concurrency limit of work pool {name!r}."
    _update(name, WorkPoolUpdate(concurrency_limit=None), message)


@app.command("delete")
def delete(
    name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
) -> None:
    """Delete a work pool with its queues and workers."""
    if not confirm(f"Delete work pool {name!r} with its queues?", assume_yes=yes):
        raise typer.Exit(1)
    with api_client() as client:
        client.delete_work_pool(name)
    typer.echo(f"Deleted work pool {name!r}.")


@app.command("get-default-base-job-template")
def get_default_base_job_template(
    pool_type: str = typer.Option("process", "--type", "-t", help="The pool type."),
    file: Path = typer.Option(None, "--file", "-f", help="Write it to this file."),
) -> None:
    """Print (or write) the default base job template of a pool type, to edit and pass
    to `create --base-job-template`."""
    template = _default_template(pool_type)
    text = json.dumps(template, indent=2, sort_keys=True) + "\n"
    if file is None:
        typer.echo(text, nl=False)
        return
    try:
        file.write_text(text)
    except OSError as exc:
        exit_with_error(f"Cannot write {file}: {exc.strerror or exc}.")
    typer.echo(f"Wrote the default base job template of {pool_type!r} pools to {file}.")


def _update(name: str, change: WorkPoolUpdate, message: str) -> WorkPool:
    with api_client() as client:
        pool = client.update_work_pool(name, change)
    typer.echo(message)
    return pool


def _default_template(pool_type: str) -> dict[str, Any]:
    from weir.core.job_templates import default_base_job_template

    try:
        return default_base_job_template(pool_type)
    except ValueError as exc:
        exit_with_error(str(exc))


def _read_template(path: Path) -> dict[str, Any]:
    from weir.core.job_templates import validate_base_job_template

    try:
        template = json.loads(path.read_text())
    except OSError as exc:
        exit_with_error(f"Cannot read the base job template {path}: {exc.strerror or exc}.")
    except ValueError as exc:
        exit_with_error(f"The base job template {path} is not valid JSON: {exc}.")
    try:
        validate_base_job_template(template)
    except ValueError as exc:
        exit_with_error(f"{path}: {exc}")
    return dict(template)


def limit_text(limit: int | None) -> str:
    return "-" if limit is None else str(limit)
