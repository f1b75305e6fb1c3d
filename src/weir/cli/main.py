"""The `weir` command: the root Typer app, `--version`, `weir version`, and the noun registry.

Each noun is one module under `weir/cli/` exposing its own `typer.Typer()` as
`app`, registered below with `app.add_typer(noun.app, name="noun")`. Noun modules
import heavy dependencies (server, database, httpx) inside their commands, so
that `weir --help` stays fast.
"""

from __future__ import annotations

import os
import platform

import typer

from weir.cli import (
    concurrency_limit,
    config,
    deploy,
    deployment,
    flow,
    flow_run,
    project,
    server,
    work_pool,
    work_queue,
    worker,
)
from weir.cli.output import exit_with_error, print_json
from weir.exceptions import WeirException

app = typer.Typer(
    name="weir",
    help="Self-hosted workflow orchestration for Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# Nouns, one module each, registered here in alphabetical order.
app.add_typer(concurrency_limit.app, name="concurrency-limit")
app.add_typer(config.app, name="config")
app.add_typer(deployment.app, name="deployment")
app.add_typer(flow.app, name="flow")
app.add_typer(flow_run.app, name="flow-run")
app.add_typer(project.app, name="project")
app.add_typer(server.app, name="server")
app.add_typer(worker.app, name="worker")
app.add_typer(work_pool.app, name="work-pool")
app.add_typer(work_queue.app, name="work-queue")

# Commands that are verbs, not nouns.
app.command("deploy")(deploy.deploy)
app.command("init")(deploy.init)


def weir_version() -> str:
    """The installed distribution's version, or "unknown" when run from a bare source tree."""
    from importlib import metadata  # ~60 ms: only for commands that print the version

    try:
        return metadata.version("weir")
    except metadata.PackageNotFoundError:
        return "unknown"


def _print_version_and_exit(value: bool) -> None:
    if value:
        typer.echo(f"weir {weir_version()}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False,
        "--version",
        help="Print weir's version and exit.",
        callback=_print_version_and_exit,
        is_eager=True,
    ),
    project: str = typer.Option(
        None,
        "--project",
        help="Work in this project (e.g. finance-report-prod) (default: WEIR_PROJECT or default).",
    ),
) -> None:
    """Self-hosted workflow orchestration for Python."""
    if project:
        # through the environment, so settings, clients and the flows we start all see it
        os.environ["WEIR_PROJECT"] = project
        from weir.settings import reset_settings

        reset_settings()


def _configured_api_url() -> str | None:
    # Imported here: settings are read only when a command needs them.
    try:
        from weir.settings import get_settings
    except ImportError:
        return None
    return get_settings().api.url


@app.command("version")
def version_command(
    json_output: bool = typer.Option(False, "--json", help="Print the details as JSON."),
) -> None:
    """Show weir's version, the Python it runs on, the platform and the API it talks to."""
    details = {
        "version": weir_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "api_url": _configured_api_url(),
    }
    if json_output:
        print_json(details)
        return
    typer.echo(f"Version:  {details['version']}")
    typer.echo(f"Python:   {details['python']}")
    typer.echo(f"Platform: {details['platform']}")
    typer.echo(f"API URL:  {details['api_url'] or 'none (runs stay local)'}")


def main() -> None:
    """Entry point of the `weir` console script."""
    try:
        app()
    except WeirException as exc:
        exit_with_error(str(exc))
