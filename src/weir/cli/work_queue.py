"""`weir work-queue …`: the queues inside a work pool (lower priority number goes first).

`--pool` names the pool; it may be left out when the project has exactly one pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from weir.cli.api import api_client, print_models, print_table, when
from weir.cli.output import confirm, exit_with_error, print_json
from weir.cli.params import request_body
from weir.cli.work_pool import limit_text

if TYPE_CHECKING:
    from weir.client.sync import SyncWeirClient
    from weir.core.schemas.work_pools import WorkQueueUpdate

app = typer.Typer(
    help="Create, list, pause and delete the work queues of a pool; set their limits.",
    no_args_is_help=True,
)

_POOL_HELP = "The work pool (needed unless there is exactly one)."


def _pool_option() -> Any:
    return typer.Option(None, "--pool", "-p", help=_POOL_HELP)


@app.command("create")
def create(
    name: str,
    pool: str = _pool_option(),
    priority: int = typer.Option(
        None, "--priority", help="1 goes first (default: after the pool's other queues)."
    ),
    concurrency_limit: int = typer.Option(
        None, "--concurrency-limit", help="At most this many runs of the queue at once."
    ),
    description: str = typer.Option(None, "--description", "-d"),
) -> None:
    """Create a work queue in a pool."""
    from weir.core.schemas.work_pools import WorkQueueCreate

    body = request_body(
        WorkQueueCreate,
        name=name,
        priority=priority,
        concurrency_limit=concurrency_limit,
        description=description,
    )
    with api_client() as client:
        pool_name = _pool_name(client, pool)
        queue = client.create_work_queue(pool_name, body)
    typer.echo(
        f"Created work queue {queue.name!r} in pool {pool_name!r} (priority {queue.priority})."
    )


@app.command("ls")
def list_queues(
    pool: str = typer.Option(None, "--pool", "-p", help="Only the queues of this pool."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List work queues, of one pool or of all of them."""
    with api_client() as client:
        queues = client.read_work_queues(pool) if pool else client.read_all_work_queues()
    if json_output:
        print_models(queues)
        return
    print_table(
        ["POOL", "NAME", "PRIORITY", "STATUS", "CONCURRENCY LIMIT", "LAST POLLED"],
        [
            (
                q.work_pool_name or pool or "",
                q.name,
                q.priority,
                q.status.value,
                limit_text(q.concurrency_limit),
                when(q.last_polled),
            )
            for q in queues
        ],
    )


@app.command("inspect")
def inspect(
    name: str,
    pool: str = _pool_option(),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show one work queue."""
    with api_client() as client:
        pool_name = _pool_name(client, pool)
        queue = client.read_work_queue(pool_name, name)
    if json_output:
        print_json(queue.model_dump(mode="json"))
        return
    fields = [
        ("ID", queue.id), ("Name", queue.name), ("Pool", queue.work_pool_name or pool_name),
        ("Priority", queue.priority), ("Status", queue.status.value),
        ("Paused", "yes" if queue.is_paused else "no"),
        ("Concurrency limit", limit_text(queue.concurrency_limit)),
        ("Last polled", when(queue.last_polled)), ("Description", queue.description or "-"),
    ]  # fmt: skip
    for label, value in fields:
        typer.echo(f"{label + ':':<19}{value}")


@app.command("pause")
def pause(name: str, pool: str = _pool_option()) -> None:
    """Pause a work queue: workers claim none of its runs until it is resumed."""
    from weir.core.schemas.work_pools import WorkQueueUpdate

    _update(name, pool, WorkQueueUpdate(is_paused=True), "Paused work queue {queue}.")


@app.command("resume")
def resume(name: str, pool: str = _pool_option()) -> None:
    """Resume a paused work queue."""
    from weir.core.schemas.work_pools import WorkQueueUpdate

    _update(name, pool, WorkQueueUpdate(is_paused=False), "Resumed work queue {queue}.")


@app.command("set-concurrency-limit")
def set_concurrency_limit(name: str, limit: int, pool: str = _pool_option()) -> None:
    """Run at most LIMIT flow runs of the queue at once."""
    from weir.core.schemas.work_pools import WorkQueueUpdate

    change = request_body(WorkQueueUpdate, concurrency_limit=limit)
    _update(name, pool, change, f"Set the concurrency limit of work queue {{queue}} to {limit}.")


@app.command("clear-concurrency-limit")
def clear_concurrency_limit(name: str, pool: str = _pool_option()) -> None:
    """Remove the queue's concurrency limit."""
    from weir.core.schemas.work_pools import WorkQueueUpdate

    change = WorkQueueUpdate(concurrency_limit=None)
    _update(name, pool, change, "Cleared the concurrency limit of work queue {queue}.")


@app.command("delete")
def delete(
    name: str,
    pool: str = _pool_option(),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a work queue (not a pool's `default` queue)."""
    with api_client() as client:
        pool_name = _pool_name(client, pool)
        if not confirm(f"Delete work queue {name!r} of pool {pool_name!r}?", assume_yes=yes):
            raise typer.Exit(1)
        client.delete_work_queue(pool_name, name)
    typer.echo(f"Deleted work queue {name!r} of pool {pool_name!r}.")


def _update(name: str, pool: str | None, change: WorkQueueUpdate, message: str) -> None:
    with api_client() as client:
        pool_name = _pool_name(client, pool)
        client.update_work_queue(pool_name, name, change)
    typer.echo(message.format(queue=f"{name!r} of pool {pool_name!r}"))


def _pool_name(client: SyncWeirClient, pool: str | None) -> str:
    """`--pool`, or the only pool of the project."""
    if pool:
        return pool
    names = [p.name for p in client.read_work_pools()]
    if len(names) == 1:
        return names[0]
    if not names:
        exit_with_error(
            "There are no work pools; create one with `weir work-pool create NAME --type process`."
        )
    exit_with_error(f"Name the work pool with --pool; there are {len(names)}: {', '.join(names)}.")
