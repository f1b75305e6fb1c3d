"""`flow.serve()` / `serve(...)`: run deployments from the current process, no worker.

The flows are registered as pool-less deployments (their entrypoint is their file,
their path the current directory), then this process works like a worker whose
runs come from those deployments (`POST /api/deployments/claim`): each run starts
in a subprocess like the process infrastructure's. With no pool there is no worker
heartbeat; the runs are read back instead, to learn which to cancel.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from weir.core.schemas.filters import AnyId, FlowRunFilter, FlowRunFilterRequest
from weir.core.schemas.work_pools import ClaimedRun, ClaimRequest, WorkerHeartbeatResponse
from weir.core.states import TERMINAL_TYPES, StateType
from weir.workers.base import Worker, default_worker_name
from weir.workers.sources import prefetch_seconds

if TYPE_CHECKING:
    from weir.client.http import WeirClient
    from weir.core.schemas.deployments import Deployment
    from weir.engine.flows import Flow
    from weir.settings import Settings

FlowWithOptions = tuple["Flow[..., Any]", Mapping[str, Any]]


class DeploymentSource:
    """The runs of the deployments this process serves."""

    def __init__(
        self,
        client: WeirClient,
        deployments: list[Deployment],
        worker_name: str,
        settings: Settings,
    ) -> None:
        self.client, self.worker_name, self.settings = client, worker_name, settings
        self.deployment_ids = [d.id for d in deployments]
        names = ", ".join(f"'{d.flow_name}/{d.name}'" for d in deployments)
        self.description = f"deployment(s) {names}"

    async def register(self) -> str:
        return "process"

    async def claim(self, limit: int, wait_seconds: float) -> list[ClaimedRun]:
        request = ClaimRequest(
            worker_name=self.worker_name,
            deployment_ids=self.deployment_ids,
            limit=limit,
            wait_seconds=wait_seconds,
            lease_seconds=self.settings.worker.lease_seconds,
            prefetch_seconds=prefetch_seconds(self.settings),
        )
        return await self.client.claim_deployment_runs(request)

    async def heartbeat(self, flow_run_ids: list[uuid.UUID]) -> WorkerHeartbeatResponse:
        """Which of the runs to cancel (CANCELLING) or let go (ended, deleted)."""
        if not flow_run_ids:
            return WorkerHeartbeatResponse()
        request = FlowRunFilterRequest(
            flow_runs=FlowRunFilter(id=AnyId(any_=flow_run_ids)), limit=len(flow_run_ids)
        )
        runs = {run.id: run for run in await self.client.read_flow_runs(request)}
        cancel = [
            i for i in flow_run_ids if i in runs and runs[i].state_type is StateType.CANCELLING
        ]
        lost = [i for i in flow_run_ids if i not in runs or runs[i].state_type in TERMINAL_TYPES]
        return WorkerHeartbeatResponse(cancel=cancel, lost=lost)

    async def deregister(self) -> None:
        pass


def serve(*flows_with_options: FlowWithOptions, limit: int | None = None) -> None:
    """Register `(flow, options)` pairs as deployments (options as `Flow.serve`'s) and
    run their runs until SIGTERM or Ctrl-C; at most `limit` at once if given."""
    from weir.deployments.publish import register_served
    from weir.engine.logging import setup_logging
    from weir.settings import get_settings

    if limit is not None and limit < 1:
        raise ValueError(f"limit must be 1 or more, got {limit}.")
    settings = get_settings()
    setup_logging()
    deployments = register_served(flows_with_options)
    asyncio.run(_serve(deployments, settings, limit))


async def _serve(deployments: list[Deployment], settings: Settings, limit: int | None) -> None:
    from weir.client.http import WeirClient

    name = default_worker_name()
    async with WeirClient.from_settings(settings) as client:
        source = DeploymentSource(client, deployments, name, settings)
        print(f"Serving {source.description}; start a run with:")
        for deployment in deployments:
            print(f"  weir deployment run '{deployment.flow_name}/{deployment.name}'")
        await Worker(client, source, settings, name=name, limit=limit).run()
