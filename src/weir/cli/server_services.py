"""`weir server services`: the server's loop services (scheduler, zombie reaper, …).

`ls` shows, through the API, who runs each service and how its last pass went;
`start` runs every service in this process, without HTTP, on the server's database
(WEIR_SERVER_DATABASE_URL, migrated first) and broker (WEIR_MESSAGING_BROKER), next
to `weir server start --no-services` processes. Several services processes on one
PostgreSQL database share the work: each service runs in one of them at a time.
"""

from __future__ import annotations

import typer

from weir.cli.api import api_client, print_models, print_table, when
from weir.cli.output import exit_with_error

services_app = typer.Typer(
    name="services",
    help="List the server's background services, or run them in their own process.",
    no_args_is_help=True,
)


@services_app.command("ls")
def list_services(
    json_output: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the background services: status, owner, last pass and last error."""
    with api_client() as client:
        services = client.read_services()
    if json_output:
        print_models(services)
        return
    print_table(
        ["NAME", "STATUS", "EVERY", "OWNER", "LAST PASS", "TOOK", "RESULT", "PASSES", "LAST ERROR"],
        [
            (
                s.name,
                s.status.value,
                f"{s.interval_seconds:g}s" if s.interval_seconds is not None else "-",
                s.owner or "-",
                when(s.last_heartbeat),
                f"{s.last_pass_seconds:.3f}s" if s.last_pass_seconds is not None else "-",
                "-" if s.last_result is None else s.last_result,
                s.passes,
                f"{when(s.last_error_time)} {s.last_error}" if s.last_error else "-",
            )
            for s in services
        ],
    )
    if services and not services[0].runs_here:
        typer.echo(
            "This server runs no services itself (--no-services); the owners above are "
            "other server or services processes."
        )


@services_app.command("start")
def start(
    log_level: str = typer.Option("info", help="Log level (debug, info, warning, error)."),
) -> None:
    """Run every background service in this process, without the API, until Ctrl-C or
    SIGTERM (which release the services to the other processes at once)."""
    import asyncio

    from weir.cli.server import configure_logging
    from weir.cli.server_database import prepare_database
    from weir.exceptions import WeirException
    from weir.server.services.process import run_services
    from weir.settings import get_settings

    configure_logging(log_level)
    prepare_database()  # an unusable database is one sentence here, not a traceback
    try:
        asyncio.run(run_services(get_settings()))
    except WeirException as exc:  # a broker that cannot be used, say
        exit_with_error(str(exc))
