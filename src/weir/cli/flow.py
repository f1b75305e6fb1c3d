"""`weir flow …`: the flows the server knows."""

from __future__ import annotations

import typer

from weir.cli.api import api_client, print_models, print_table, when

app = typer.Typer(help="List flows.", no_args_is_help=True)


@app.command("ls")
def list_flows(
    limit: int = typer.Option(200, help="Show at most this many flows."),
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the flows of the current project, by name."""
    from weir.core.schemas.filters import FlowFilterRequest

    with api_client() as client:
        flows = client.read_flows(FlowFilterRequest(limit=limit))
    if json_output:
        print_models(flows)
        return
    print_table(["NAME", "ID", "CREATED"], [(f.name, f.id, when(f.created)) for f in flows])
