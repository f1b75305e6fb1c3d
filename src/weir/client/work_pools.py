"""Work pools, work queues, workers, claims and flow-run leases (`WeirClient` mixin)."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from weir.client.resource import ResourceAPI, parse
from weir.core.schemas.work_pools import (
    ClaimedRun,
    ClaimRequest,
    Lease,
    LeaseRenewal,
    Worker,
    WorkerFilterRequest,
    WorkerHeartbeat,
    WorkerHeartbeatResponse,
    WorkPool,
    WorkPoolCreate,
    WorkPoolFilterRequest,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueFilterRequest,
    WorkQueueUpdate,
)

# how much longer than its long poll a claim (or heartbeat) may take before the client
# gives up
CLAIM_GRACE_SECONDS = 10.0


def _pool(name: str) -> str:
    return f"work_pools/{quote(name, safe='')}"


class WorkPoolsAPI(ResourceAPI):
    # -- pools ----------------------------------------------------------------------
    async def create_work_pool(self, pool: WorkPoolCreate) -> WorkPool:
        return parse(WorkPool, await self._send("POST", "work_pools/", body=pool))

    async def read_work_pool(self, name: str) -> WorkPool:
        return parse(WorkPool, await self._send("GET", _pool(name)))

    async def read_work_pools(self, filter: WorkPoolFilterRequest | None = None) -> list[WorkPool]:
        body = filter or WorkPoolFilterRequest()
        return parse(list[WorkPool], await self._send("POST", "work_pools/filter", body=body))

    async def update_work_pool(self, name: str, update: WorkPoolUpdate) -> WorkPool:
        """Change the fields set on `update` (a field set to None clears it)."""
        content = update.model_dump_json(exclude_unset=True).encode()
        return parse(WorkPool, await self._send("PATCH", _pool(name), content=content))

    async def delete_work_pool(self, name: str) -> None:
        await self._send("DELETE", _pool(name))

    # -- queues ---------------------------------------------------------------------
    async def create_work_queue(self, pool: str, queue: WorkQueueCreate) -> WorkQueue:
        return parse(WorkQueue, await self._send("POST", f"{_pool(pool)}/queues", body=queue))

    async def read_work_queue(self, pool: str, name: str) -> WorkQueue:
        path = f"{_pool(pool)}/queues/{quote(name, safe='')}"
        return parse(WorkQueue, await self._send("GET", path))

    async def read_work_queues(
        self, pool: str, filter: WorkQueueFilterRequest | None = None
    ) -> list[WorkQueue]:
        body = filter or WorkQueueFilterRequest()
        path = f"{_pool(pool)}/queues/filter"
        return parse(list[WorkQueue], await self._send("POST", path, body=body))

    async def read_all_work_queues(
        self, filter: WorkQueueFilterRequest | None = None
    ) -> list[WorkQueue]:
        """The queues of every pool of the project."""
        body = filter or WorkQueueFilterRequest()
        return parse(list[WorkQueue], await self._send("POST", "work_queues/filter", body=body))

    async def update_work_queue(self, pool: str, name: str, update: WorkQueueUpdate) -> WorkQueue:
        content = update.model_dump_json(exclude_unset=True).encode()
        path = f"{_pool(pool)}/queues/{quote(name, safe='')}"
        return parse(WorkQueue, await self._send("PATCH", path, content=content))

    async def delete_work_queue(self, pool: str, name: str) -> None:
        await self._send("DELETE", f"{_pool(pool)}/queues/{quote(name, safe='')}")

    # -- workers --------------------------------------------------------------------
    async def read_workers(
        self, pool: str, filter: WorkerFilterRequest | None = None
    ) -> list[Worker]:
        body = filter or WorkerFilterRequest()
        path = f"{_pool(pool)}/workers/filter"
        return parse(list[Worker], await self._send("POST", path, body=body))

    async def worker_heartbeat(
        self, pool: str, heartbeat: WorkerHeartbeat
    ) -> WorkerHeartbeatResponse:
        """Register or refresh a worker; renews the leases of the runs it names and
        answers which of them to cancel (with `heartbeat.wait_seconds`, waiting up to
        that long for a cancellation)."""
        path = f"{_pool(pool)}/workers/heartbeat"
        wait = heartbeat.wait_seconds
        timeout = None if not wait else wait + CLAIM_GRACE_SECONDS
        response = await self._send("POST", path, body=heartbeat, read_timeout=timeout)
        return parse(WorkerHeartbeatResponse, response)

    async def delete_worker(self, pool: str, name: str) -> None:
        await self._send("DELETE", f"{_pool(pool)}/workers/{quote(name, safe='')}")

    # -- claims and leases ------------------------------------------------------------
    async def claim_flow_runs(self, pool: str, claim: ClaimRequest) -> list[ClaimedRun]:
        """Claim due runs of the pool, long-polling up to `claim.wait_seconds`."""
        response = await self._send(
            "POST",
            f"{_pool(pool)}/claim",
            body=claim,
            read_timeout=claim.wait_seconds + CLAIM_GRACE_SECONDS,
        )
        return parse(list[ClaimedRun], response)

    async def claim_deployment_runs(self, claim: ClaimRequest) -> list[ClaimedRun]:
        """Claim due runs of the pool-less deployments `claim.deployment_ids` (what a
        `flow.serve()` process serves), long-polling up to `claim.wait_seconds`."""
        response = await self._send(
            "POST",
            "deployments/claim",
            body=claim,
            read_timeout=claim.wait_seconds + CLAIM_GRACE_SECONDS,
        )
        return parse(list[ClaimedRun], response)

    async def renew_flow_run_lease(
        self, flow_run_id: uuid.UUID | str, renewal: LeaseRenewal | None = None
    ) -> Lease:
        body = renewal or LeaseRenewal()
        return parse(Lease, await self._send("POST", f"flow_runs/{flow_run_id}/lease", body=body))
