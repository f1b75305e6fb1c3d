"""`weir concurrency-limit …`: limits on task runs by tag, and global named limits.

`create TAG N` limits the task runs tagged TAG (the limit is stored as `tag:TAG`);
`create --global NAME N` makes a limit that flow code takes with
`with concurrency("NAME"):`. Other commands take a tag, or the name of a global limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from weir.cli.api import api_client, print_models, print_table, when
from weir.cli.output import print_json
from weir.cli.params import request_body

if TYPE_CHECKING:
    from weir.client.sync import SyncWeirClient
    from weir.core.schemas.concurrency import ConcurrencyLimit

app = typer.Typer(
    help="Create, list, inspect and delete concurrency limits (by task tag, or global).",
    no_args_is_help=True,
)

_GLOBAL_HELP = "NAME is a global limit (for `with concurrency(NAME)`), not a task tag."


@app.command("create")
def create(
    name: str = typer.Argument(..., help="The task tag (or, with --global, the limit's name)."),
    limit: int = typer.Argument(..., help="How many slots: runs holding one at once."),
    global_limit: bool = typer.Option(False, "--global", help=_GLOBAL_HELP),
) -> None:
    """Create a concurrency limit, or change the number of slots of an existing one."""
    from weir.core.schemas.concurrency import ConcurrencyLimitCreate, tag_limit_name

    full_name = name if global_limit else tag_limit_name(name)
    body = request_body(ConcurrencyLimitCreate, name=full_name, limit=limit)
    with api_client() as client:
        created = client.create_concurrency_limit(body)
    what = f"global limit {name!r}" if global_limit else f"task runs tagged {name!r}"
    typer.echo(f"Set a concurrency limit of {created.limit} on {what}.")


@app.command("ls")
def list_limits(json_output: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List concurrency limits with their slots in use."""
    with api_client() as client:
        limits = client.read_concurrency_limits()
    if json_output:
        print_models(limits)
        return
    print_table(
        ["NAME", "KIND", "SLOTS", "ACTIVE"],
        [
            (
                _display_name(c),
                _kind(c),
                f"{c.active_slots}/{c.limit}",
                "yes" if c.active else "no",
            )
            for c in limits
        ],
    )


@app.command("inspect")
def inspect(
    name: str = typer.Argument(..., help="The task tag or global limit's name."),
    global_limit: bool = typer.Option(False, "--global", help=_GLOBAL_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show one concurrency limit and who holds its slots."""
    with api_client() as client:
        found = _read(client, name, global_limit)
    if json_output:
        print_json(found.model_dump(mode="json"))
        return
    fields = [
        ("Name", _display_name(found)), ("Kind", _kind(found)), ("Stored as", found.name),
        ("Slots in use", f"{found.active_slots}/{found.limit}"),
        ("Active", "yes" if found.active else "no"),
        ("Holders", ", ".join(found.holders) or "-"), ("Created", when(found.created)),
    ]  # fmt: skip
    for label, value in fields:
        typer.echo(f"{label + ':':<14}{value}")


@app.command("delete")
def delete(
    name: str = typer.Argument(..., help="The task tag or global limit's name."),
    global_limit: bool = typer.Option(False, "--global", help=_GLOBAL_HELP),
) -> None:
    """Delete a concurrency limit; the runs waiting on it go on."""
    with api_client() as client:
        found = _read(client, name, global_limit)
        client.delete_concurrency_limit(found.name)
    typer.echo(f"Deleted the concurrency limit {_display_name(found)!r} ({_kind(found)}).")


def _display_name(limit: ConcurrencyLimit) -> str:
    """A tag limit as its tag; a global limit as its name."""
    from weir.core.schemas.concurrency import TAG_PREFIX

    return limit.name.removeprefix(TAG_PREFIX)


def _kind(limit: ConcurrencyLimit) -> str:
    from weir.core.schemas.concurrency import TAG_PREFIX

    return "tag" if limit.name.startswith(TAG_PREFIX) else "global"


def _read(client: SyncWeirClient, name: str, global_limit: bool) -> ConcurrencyLimit:
    """The limit of tag `name`, else the global limit `name` (only that one with
    `global_limit`); NotFound in one sentence naming both."""
    from weir.core.schemas.concurrency import TAG_PREFIX, tag_limit_name
    from weir.exceptions import NotFound

    if global_limit or name.startswith(TAG_PREFIX):
        return client.read_concurrency_limit(name)
    try:
        return client.read_concurrency_limit(tag_limit_name(name))
    except NotFound:
        try:
            return client.read_concurrency_limit(name)
        except NotFound as exc:
            raise NotFound(
                exc.status,
                f"No concurrency limit for tag {name!r} and no global limit named {name!r}; "
                "see `weir concurrency-limit ls`.",
                url=exc.url,
            ) from None
