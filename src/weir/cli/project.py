"""`weir project …`: the namespaces that keep environments apart (finance-report-prod, …)."""

from __future__ import annotations

import typer

from weir.cli.api import api_client, print_models, print_table, when
from weir.cli.output import confirm

app = typer.Typer(help="Create, list and delete projects.", no_args_is_help=True)


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Lower-case letters, digits, '.', '_' and '-'."),
    description: str = typer.Option(None, "--description", "-d"),
) -> None:
    """Create a project; work in it with `weir --project NAME …` or WEIR_PROJECT."""
    with api_client() as client:
        project = client.create_project(name, description)
    typer.echo(f"Created project {project.name!r}. Use it with: weir --project {project.name} …")


@app.command("ls")
def list_projects(json_output: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List projects."""
    with api_client() as client:
        projects = client.read_projects()
    if json_output:
        print_models(projects)
        return
    print_table(
        ["NAME", "DESCRIPTION", "CREATED"],
        [(p.name, p.description or "", when(p.created)) for p in projects],
    )


@app.command("delete")
def delete(
    name: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a project and everything in it (flows, runs, logs)."""
    if not confirm(f"Delete project {name!r} and all its flows, runs and logs?", assume_yes=yes):
        raise typer.Exit(1)
    with api_client() as client:
        client.delete_project(name)
    typer.echo(f"Deleted project {name!r}.")
