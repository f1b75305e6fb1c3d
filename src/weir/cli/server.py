"""`weir server …`: start the server, manage its database."""

from __future__ import annotations

import gc
import logging
import sys

import typer

from weir.cli.server_database import database_app
from weir.cli.server_services import services_app

app = typer.Typer(help="Run the weir server and manage its database.", no_args_is_help=True)
app.add_typer(database_app, name="database")
app.add_typer(services_app, name="services")


@app.command("start")
def start(
    host: str = typer.Option(
        None, help="Address to listen on (default: WEIR_SERVER_HOST or 127.0.0.1)."
    ),
    port: int = typer.Option(None, help="Port to listen on (default: WEIR_SERVER_PORT or 4200)."),
    no_services: bool = typer.Option(
        False,
        "--no-services",
        help="Serve the API only: the background services (scheduler, zombie reaper, …) do not "
        "run in this process; run them with `weir server services start`.",
    ),
    log_level: str = typer.Option("info", help="Server log level (debug, info, warning, error)."),
) -> None:
    """Start the API server with the configured database (migrated on start)."""
    # Start-up makes a million long-lived objects (modules, models, routes), and the
    # collector walked them again and again while they were made: ~0.1 s of the start.
    # serve() collects once, freezes them and turns the collector back on when up.
    gc.disable()
    from weir.cli.server_database import prepare_database
    from weir.server.serve import serve
    from weir.settings import get_settings

    settings = get_settings()
    configure_logging(log_level)
    prepare_database()  # an unusable database is one sentence here, not a uvicorn traceback
    serve(
        host or settings.server.host,
        port or settings.server.port,
        services=not no_services,
        log_level=log_level.lower(),
    )


def configure_logging(level: str) -> None:
    """Server logs (`weir.server…`) on stderr at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s.%(msecs)03d | %(levelname)-7s | %(message)s", "%H:%M:%S")
    )
    logger = logging.getLogger("weir.server")
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
