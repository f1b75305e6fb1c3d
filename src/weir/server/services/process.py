"""A services process (`weir server services start`): every loop service, no HTTP.

It opens the settings' database (bringing its schema up to date, as `weir server
start` does) and broker, runs the services of `SERVICES` with a `ServiceRunner` until
SIGTERM or SIGINT, then stops them and releases their leases, so another process
(a server, or another services process) takes them over at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from weir.server.db.engine import Database, default_database_url
from weir.server.db.migrate import ensure_schema
from weir.server.messaging import open_wakeups
from weir.server.services import SERVICES
from weir.server.services.base import ServiceRunner
from weir.settings import Settings

logger = logging.getLogger("weir.server.services")


async def run_services(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the services until `stop` is set (by default: until SIGTERM or SIGINT)."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT) if stop is None else ()
    stop = stop or asyncio.Event()
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    database = Database(settings.server.database_url or default_database_url(settings.home))
    try:
        await ensure_schema(database)
        async with open_wakeups(settings) as wakeups:
            services = [service(database, settings, wakeups) for service in SERVICES]
            runner = ServiceRunner(database, services)
            runner.start()
            logger.info(
                "weir services running as %s: %s",
                runner.owner,
                ", ".join(service.name for service in services),
            )
            try:
                await stop.wait()
            finally:
                await runner.stop()
                logger.info("weir services stopped; their leases are released")
    finally:
        await database.dispose()
        for signum in signals:
            loop.remove_signal_handler(signum)
