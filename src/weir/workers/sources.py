"""Where a worker's runs come from: the `WorkSource` protocol, and `PoolSource`, the
runs of a work pool (`weir worker start -p POOL`). The deployments a `flow.serve()`
process serves are the other source (workers/serve.py)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from weir.core.schemas.work_pools import (
    ClaimedRun,
    ClaimRequest,
    WorkerHeartbeat,
    WorkerHeartbeatResponse,
)
from weir.exceptions import ConfigurationError, NotFound

if TYPE_CHECKING:
    from weir.client.http import WeirClient
    from weir.settings import Settings


# the longest the API lets a heartbeat wait
MAX_HEARTBEAT_WAIT_SECONDS = 60.0


def prefetch_seconds(settings: Settings) -> float:
    """How far ahead of their time runs are claimed: `worker.prefetch_seconds`, at most
    half the lease (a run waiting for its time is held by the claim's lease)."""
    return min(settings.worker.prefetch_seconds, settings.worker.lease_seconds / 2)


class WorkSource(Protocol):
    """Where a worker's runs come from, and who it reports to."""

    description: str

    async def register(self) -> str:
        """Check the source exists (else ConfigurationError); the infrastructure type."""

    async def claim(self, limit: int, wait_seconds: float) -> list[ClaimedRun]: ...

    async def heartbeat(self, flow_run_ids: list[uuid.UUID]) -> WorkerHeartbeatResponse:
        """Renew the leases of `flow_run_ids`; which to cancel and which were lost. It may
        wait up to one heartbeat interval for a cancellation to answer with."""
        ...

    async def deregister(self) -> None: ...


class PoolSource:
    """The runs of one work pool (optionally some of its queues)."""

    def __init__(
        self,
        client: WeirClient,
        pool: str,
        worker_name: str,
        queues: Sequence[str],
        settings: Settings,
    ) -> None:
        self.client, self.pool, self.worker_name = client, pool, worker_name
        self.queues = list(queues)
        self.settings = settings
        where = f" (queues {', '.join(self.queues)})" if self.queues else ""
        self.description = f"work pool '{pool}'{where}"

    async def register(self) -> str:
        try:
            pool = await self.client.read_work_pool(self.pool)
        except NotFound:
            raise ConfigurationError(
                f"Work pool '{self.pool}' does not exist; create it with "
                f"`weir work-pool create {self.pool} --type process`."
            ) from None
        await self._beat([], wait_seconds=None)
        return pool.type

    async def claim(self, limit: int, wait_seconds: float) -> list[ClaimedRun]:
        request = ClaimRequest(
            worker_name=self.worker_name,
            work_queue_names=self.queues,
            limit=limit,
            wait_seconds=wait_seconds,
            lease_seconds=self.settings.worker.lease_seconds,
            prefetch_seconds=prefetch_seconds(self.settings),
        )
        return await self.client.claim_flow_runs(self.pool, request)

    async def heartbeat(self, flow_run_ids: list[uuid.UUID]) -> WorkerHeartbeatResponse:
        """A long poll of one heartbeat interval: the API answers at once when one of
        this worker's runs is being cancelled, through whichever replica."""
        wait = min(self.settings.worker.heartbeat_seconds, MAX_HEARTBEAT_WAIT_SECONDS)
        return await self._beat(flow_run_ids, wait_seconds=wait)

    async def _beat(
        self, flow_run_ids: list[uuid.UUID], wait_seconds: float | None
    ) -> WorkerHeartbeatResponse:
        beat = WorkerHeartbeat(
            name=self.worker_name,
            heartbeat_interval_seconds=self.settings.worker.heartbeat_seconds,
            flow_run_ids=flow_run_ids,
            lease_seconds=self.settings.worker.lease_seconds,
            wait_seconds=wait_seconds,
        )
        return await self.client.worker_heartbeat(self.pool, beat)

    async def deregister(self) -> None:
        with contextlib.suppress(NotFound):
            await self.client.delete_worker(self.pool, self.worker_name)
