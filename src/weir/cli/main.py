"""The `weir` command: the root Typer app, `--version`, `weir version`, and the noun registry.

Each noun is one module under `weir/cli/` exposing its own `typer.Typer()` as
`app`, named in `NOUNS` below. A noun's module is imported only when that noun is
invoked (or listed by `--help`), and noun modules import heavy dependencies
(server, database, httpx) inside their commands: `weir deployment run` pays for
the deployment commands alone, which keeps a trigger from the shell fast.
"""

from __future__ import annotations

import importlib
import os
import platform
from typing import TYPE_CHECKING

import typer
from typer.core import TyperGroup
from typer.main import get_group_from_info
from typer.models import TyperInfo

from weir.cli import deploy
from weir.cli.output import exit_with_error, print_json
from weir.exceptions import WeirException

if TYPE_CHECKING:  # Typer's vendored click, in which it types its own groups
    from typer._click import Command, Context

# Nouns: the command's name -> the module under weir/cli/ whose `app` holds its commands.
NOUNS = {
    "concurrency-limit": "concurrency_limit",
    "config": "config",
    "deployment": "deployment",
    "flow": "flow",
    "flow-run": "flow_run",
    "project": "project",
    "server": "server",
    "worker": "worker",
    "work-pool": "work_pool",
    "work-queue": "work_queue",
}


class NounGroup(TyperGroup):
    """The root group: nouns are built from their module when first asked for."""

    def list_commands(self, ctx: Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *NOUNS])

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        module = NOUNS.get(cmd_name)
        if module is None:
            return super().get_command(ctx, cmd_name)
        if cmd_name not in self.commands:
            noun = importlib.import_module(f"weir.cli.{module}").app
            self.commands[cmd_name] = get_group_from_info(
                TyperInfo(noun, name=cmd_name),
                pretty_exceptions_short=app.pretty_exceptions_short,
                suggest_commands=app.suggest_commands,
                rich_markup_mode=app.rich_markup_mode,
            )
        return self.commands[cmd_name]


app = typer.Typer(
    name="weir",
    cls=NounGroup,
    help="Self-hosted workflow orchestration for Python.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

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
