"""Reading runs back when their processes end, in batches.

When a run's process (or thread) ends, the worker reads the run back to make sure it
has a final state. Runs that end together — a schedule's tick served in threads can
end hundreds in one second — are read with one `POST /api/flow_runs/filter` rather
than a GET each, which would queue on the server in front of other runs' starts.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

from weir.core.schemas.filters import AnyId, FlowRunFilter, FlowRunFilterRequest

if TYPE_CHECKING:
    from weir.client.http import WeirClient
    from weir.core.schemas.runs import FlowRun

# how long a read waits for others to join it; runs that end in one moment go together
GATHER_SECONDS = 0.02
MAX_BATCH = 200


class RunReader:
    def __init__(self, client: WeirClient) -> None:
        self.client = client
        self._waiting: dict[uuid.UUID, list[asyncio.Future[FlowRun | None]]] = {}
        self._sender: asyncio.Task[None] | None = None

    async def read(self, flow_run_id: uuid.UUID) -> FlowRun | None:
        """The run as the API has it; None if it does not (deleted). Raises what the
        client raises (ServerUnreachable, APIError)."""
        future: asyncio.Future[FlowRun | None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(flow_run_id, []).append(future)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        return await future

    async def _send(self) -> None:
        await asyncio.sleep(GATHER_SECONDS)
        while self._waiting:
            ids = list(self._waiting)[:MAX_BATCH]
            futures = {run_id: self._waiting.pop(run_id) for run_id in ids}
            request = FlowRunFilterRequest(
                flow_runs=FlowRunFilter(id=AnyId(any_=ids)), limit=len(ids)
            )
            try:
                found = {run.id: run for run in await self.client.read_flow_runs(request)}
            except BaseException as exc:  # every reader hears of it, cancellation included
                for waiting in futures.values():
                    for future in waiting:
                        if not future.done():
                            future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for run_id, waiting in futures.items():
                for future in waiting:
                    if not future.done():
                        future.set_result(found.get(run_id))
