"""`weir worker start`: a worker that claims runs of a work pool and runs them."""

from __future__ import annotations

import typer

from weir.cli.output import exit_with_error

app = typer.Typer(help="Start workers that run the flow runs of a work pool.", no_args_is_help=True)


@app.command("start")
def start_worker(
    pool: str = typer.Option(..., "--pool", "-p", help="The work pool to take runs from."),
    queue: list[str] = typer.Option(
        None, "--queue", "-q", help="Only runs of this work queue (repeatable; default: all)."
    ),
    name: str = typer.Option(
        None, "--name", "-n", help="The worker's name (default: <hostname>-<random>)."
    ),
    limit: int = typer.Option(
        None, "--limit", help="Run at most this many flow runs at once (default: no limit)."
    ),
    run_once: bool = typer.Option(
        False, "--run-once", help="Claim once, run what was claimed, and exit when it ends."
    ),
) -> None:
    """Start a worker: it heartbeats into POOL, waits for runs and starts each in a
    subprocess. SIGTERM or Ctrl-C stops it after its running flows finish."""
    import asyncio

    from weir.client.http import WeirClient, settings_options
    from weir.engine.logging import setup_logging
    from weir.settings import get_settings
    from weir.workers.base import Worker, default_worker_name
    from weir.workers.sources import PoolSource

    if limit is not None and limit < 1:
        exit_with_error(f"--limit must be 1 or more, got {limit}.")
    settings = get_settings()
    setup_logging()
    worker_name = name or default_worker_name()

    async def work() -> None:
        local = f"http://{settings.server.host}:{settings.server.port}/api"
        async with WeirClient(**settings_options(settings, default_api_url=local)) as client:
            source = PoolSource(client, pool, worker_name, queue or [], settings)
            worker = Worker(
                client, source, settings, name=worker_name, limit=limit, run_once=run_once
            )
            typer.echo(f"Worker {worker_name!r} polling {source.description} at {client.api_url}")
            await worker.run()

    asyncio.run(work())
