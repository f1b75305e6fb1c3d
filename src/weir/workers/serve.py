"""`flow.serve()` / `serve(...)`: run deployments from the current process, no worker.

The flows are registered as pool-less deployments (their entrypoint is their file,
their path the current directory), then this process works like a worker whose
runs come from those deployments (`POST /api/deployments/claim`). With
`execution="process"` (the default) each run starts in a subprocess like the process
infrastructure's; with `execution="thread"` in a thread of this process
(workers/threads.py): no process to start, so hundreds of runs due at once start on
time, at the price of isolation. With no pool there is no worker heartbeat; the runs
are read back instead, to learn which to cancel.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, get_args

from weir.core.schemas.filters import AnyId, FlowRunFilter, FlowRunFilterRequest
from weir.core.schemas.work_pools import (
    MAX_CLAIM,
    ClaimedRun,
    ClaimRequest,
    WorkerHeartbeatResponse,
)
from weir.core.states import TERMINAL_TYPES, StateType
from weir.workers.base import DEFAULT_CLAIM_BATCH, Worker, default_worker_name
from weir.workers.sources import prefetch_seconds

if TYPE_CHECKING:
    from weir.client.http import WeirClient
    from weir.core.schemas.deployments import Deployment
    from weir.engine.flows import Flow
    from weir.settings import Settings
    from weir.workers.infrastructure import Infrastructure

FlowWithOptions = tuple["Flow[..., Any]", Mapping[str, Any]]
Execution = Literal["process", "thread"]
EXECUTIONS = get_args(Execution)
# deployments named in the worker's start line; the rest are counted
SHOWN_NAMES = 5


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
        names = [f"'{d.flow_name}/{d.name}'" for d in deployments]
        shown = ", ".join(names[:SHOWN_NAMES])
        more = len(names) - SHOWN_NAMES
        self.description = f"deployment(s) {shown}" + (f" and {more} more" if more > 0 else "")

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


def serve(
    *flows_with_options: FlowWithOptions,
    limit: int | None = None,
    execution: Execution = "process",
) -> None:
    """Register `(flow, options)` pairs as deployments (options as `Flow.serve`'s) and
    run their runs until SIGTERM or Ctrl-C; at most `limit` at once if given. Each run
    in a process of its own (`execution="process"`) or in a thread of this one
    (`"thread"`: see workers/threads.py for what that gives up)."""
    from weir.deployments.publish import register_served
    from weir.engine.logging import setup_logging
    from weir.settings import get_settings

    if limit is not None and limit < 1:
        raise ValueError(f"limit must be 1 or more, got {limit}.")
    if execution not in EXECUTIONS:
        raise ValueError(f"execution must be 'process' or 'thread', got {execution!r}.")
    settings = get_settings()
    setup_logging()
    flows = [flow for flow, _ in flows_with_options]
    deployments = register_served(flows_with_options)
    by_id = {deployment.id: flow for deployment, flow in zip(deployments, flows, strict=True)}
    asyncio.run(_serve(deployments, settings, limit, by_id if execution == "thread" else None))


async def _serve(
    deployments: list[Deployment],
    settings: Settings,
    limit: int | None,
    in_threads: dict[uuid.UUID, Flow[..., Any]] | None,
) -> None:
    """`in_threads`: the flows by deployment id, when the runs execute in threads."""
    from weir.client.http import WeirClient

    infrastructure: Infrastructure | None = None
    if in_threads is not None:
        from weir.workers.threads import ThreadInfrastructure

        infrastructure = ThreadInfrastructure(in_threads)
    name = default_worker_name()
    async with WeirClient.from_settings(settings) as client:
        source = DeploymentSource(client, deployments, name, settings)
        print(f"Serving {source.description}; start a run with:")
        for deployment in deployments:
            print(f"  weir deployment run '{deployment.flow_name}/{deployment.name}'")
        worker = Worker(
            client,
            source,
            settings,
            name=name,
            limit=limit,
            infrastructure=infrastructure,
            # a thread per run costs nearly nothing: claim as many as a claim hands out
            claim_batch=DEFAULT_CLAIM_BATCH if infrastructure is None else MAX_CLAIM,
        )
        await worker.run()
