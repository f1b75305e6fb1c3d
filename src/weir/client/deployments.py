"""Deployments, their schedules and their runs (`WeirClient` mixin)."""

from __future__ import annotations

import uuid
from urllib.parse import quote

from weir.client.resource import ResourceAPI, parse
from weir.core.schemas.deployments import (
    Deployment,
    DeploymentCreate,
    DeploymentFilterRequest,
    DeploymentNextRun,
    DeploymentRunCreate,
    DeploymentUpdate,
)
from weir.core.schemas.runs import FlowRun
from weir.core.schemas.schedules import (
    DeploymentSchedule,
    DeploymentScheduleCreate,
    DeploymentScheduleUpdate,
)

DeploymentId = uuid.UUID | str


class DeploymentsAPI(ResourceAPI):
    async def apply_deployment(self, deployment: DeploymentCreate) -> Deployment:
        """Create the deployment, or make the existing one (same flow and name) match."""
        return parse(Deployment, await self._send("POST", "deployments/", body=deployment))

    async def read_deployment(self, deployment_id: DeploymentId) -> Deployment:
        return parse(Deployment, await self._send("GET", f"deployments/{deployment_id}"))

    async def read_deployment_by_name(self, name: str) -> Deployment:
        """`FLOW/DEPLOYMENT`, e.g. `etl/daily`."""
        flow, _, deployment = name.partition("/")
        path = f"deployments/name/{quote(flow, safe='')}/{quote(deployment, safe='')}"
        return parse(Deployment, await self._send("GET", path))

    async def read_deployments(
        self, filter: DeploymentFilterRequest | None = None
    ) -> list[Deployment]:
        body = filter or DeploymentFilterRequest()
        return parse(list[Deployment], await self._send("POST", "deployments/filter", body=body))

    async def count_deployments(self, filter: DeploymentFilterRequest | None = None) -> int:
        body = filter or DeploymentFilterRequest()
        return int((await self._send("POST", "deployments/count", body=body)).json())

    async def update_deployment(
        self, deployment_id: DeploymentId, update: DeploymentUpdate
    ) -> Deployment:
        """Change the fields set on `update`; `schedules`, when set, replaces them all."""
        content = update.model_dump_json(exclude_unset=True).encode()
        path = f"deployments/{deployment_id}"
        return parse(Deployment, await self._send("PATCH", path, content=content))

    async def delete_deployment(self, deployment_id: DeploymentId) -> None:
        await self._send("DELETE", f"deployments/{deployment_id}")

    async def pause_deployment(self, deployment_id: DeploymentId) -> Deployment:
        path = f"deployments/{deployment_id}/pause"
        return parse(Deployment, await self._send("POST", path))

    async def resume_deployment(self, deployment_id: DeploymentId) -> Deployment:
        path = f"deployments/{deployment_id}/resume"
        return parse(Deployment, await self._send("POST", path))

    async def create_deployment_run(
        self, deployment_id: DeploymentId, run: DeploymentRunCreate | None = None
    ) -> FlowRun:
        """A SCHEDULED run of the deployment (now, or at `run.scheduled_time`)."""
        body = run or DeploymentRunCreate()
        return parse(
            FlowRun, await self._send("POST", f"deployments/{deployment_id}/runs", body=body)
        )

    async def read_deployment_next_runs(
        self, deployment_id: DeploymentId, limit: int = 5
    ) -> list[DeploymentNextRun]:
        """The deployment's next SCHEDULED runs by expected start time (`Late` first)."""
        path = f"deployments/{deployment_id}/next_runs?limit={int(limit)}"
        return parse(list[DeploymentNextRun], await self._send("GET", path))

    # -- schedules -------------------------------------------------------------------
    async def read_deployment_schedules(
        self, deployment_id: DeploymentId
    ) -> list[DeploymentSchedule]:
        path = f"deployments/{deployment_id}/schedules"
        return parse(list[DeploymentSchedule], await self._send("GET", path))

    async def create_deployment_schedules(
        self, deployment_id: DeploymentId, schedules: list[DeploymentScheduleCreate]
    ) -> list[DeploymentSchedule]:
        from weir.client.resource import adapter

        content = adapter(list[DeploymentScheduleCreate]).dump_json(schedules)
        path = f"deployments/{deployment_id}/schedules"
        return parse(list[DeploymentSchedule], await self._send("POST", path, content=content))

    async def update_deployment_schedule(
        self,
        deployment_id: DeploymentId,
        schedule_id: uuid.UUID | str,
        update: DeploymentScheduleUpdate,
    ) -> DeploymentSchedule:
        content = update.model_dump_json(exclude_unset=True).encode()
        path = f"deployments/{deployment_id}/schedules/{schedule_id}"
        return parse(DeploymentSchedule, await self._send("PATCH", path, content=content))

    async def delete_deployment_schedule(
        self, deployment_id: DeploymentId, schedule_id: uuid.UUID | str
    ) -> None:
        await self._send("DELETE", f"deployments/{deployment_id}/schedules/{schedule_id}")
