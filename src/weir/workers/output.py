"""A run's process output: to the worker's console, and to the run's logs in the API.

Lines arrive from the infrastructure's reader threads; `OutputShipper` prints each
one prefixed with the run's name and queues it for the API, where one coroutine
sends them in batches. Lines the engine in the child already sent through its own
reporter (its formatted log lines, `12:03:04.567 | INFO    | ...`) are printed but
not sent again.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from weir.core.schemas.runs import MAX_BATCH, MAX_LOG_MESSAGE, LogCreate
from weir.exceptions import APIError, ServerUnreachable

if TYPE_CHECKING:
    from weir.client.http import WeirClient
    from weir.workers.infrastructure import OnOutput

logger = logging.getLogger("weir.worker")

OUTPUT_LOGGER = "weir.process.output"
_ENGINE_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ *\| ")
_SEND_EVERY_SECONDS = 0.25


class OutputShipper:
    """Created and run on the worker's event loop; `callback_for` is thread-safe."""

    def __init__(self, client: WeirClient) -> None:
        self.client = client
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[LogCreate] = asyncio.Queue()
        self._print_lock = threading.Lock()
        self._refused = False

    def callback_for(self, flow_run_id: uuid.UUID, run_name: str, to_api: bool) -> OnOutput:
        def on_output(line: str) -> None:
            with self._print_lock:
                print(f"{run_name} | {line}", file=sys.stdout, flush=True)
            if to_api and line.strip() and not _ENGINE_LINE.match(line):
                log = LogCreate(
                    name=OUTPUT_LOGGER,
                    level=logging.INFO,
                    message=line[:MAX_LOG_MESSAGE],
                    timestamp=datetime.now(UTC),
                    flow_run_id=flow_run_id,
                )
                self._loop.call_soon_threadsafe(self._queue.put_nowait, log)

        return on_output

    async def run(self) -> None:
        """Send queued lines every quarter second until cancelled (then once more)."""
        try:
            while True:
                await asyncio.sleep(_SEND_EVERY_SECONDS)
                await self.send()
        except asyncio.CancelledError:
            await self.send()
            raise

    async def send(self) -> None:
        while not self._queue.empty():
            batch: list[LogCreate] = []
            while not self._queue.empty() and len(batch) < MAX_BATCH:
                batch.append(self._queue.get_nowait())
            try:
                await self.client.create_logs(batch)
            except ServerUnreachable:
                return  # dropped: the console has them, and the worker says the API is away
            except APIError as exc:
                if not self._refused:
                    self._refused = True
                    logger.warning("The weir API refused the output of a flow run: %s", exc)
