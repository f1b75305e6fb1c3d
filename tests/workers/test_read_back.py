"""Reading ended runs back in batches, against a real server."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from weir.client import WeirClient
from weir.core.schemas.runs import FlowRunCreate
from weir.testing import temporary_server
from weir.workers.read_back import RunReader

pytestmark = pytest.mark.timeout(60)


def test_runs_read_back_together_take_one_request() -> None:
    with temporary_server() as server:
        asyncio.run(_read_together(server.api_url))


async def _read_together(api_url: str) -> None:
    requests: list[int] = []

    class CountingClient(WeirClient):
        async def read_flow_runs(self, filter: Any = None) -> Any:
            requests.append(len(filter.flow_runs.id.any_))
            return await super().read_flow_runs(filter)

    async with CountingClient(api_url) as client:
        runs = [await client.create_flow_run(FlowRunCreate(flow_name="ended")) for _ in range(30)]
        reader = RunReader(client)
        missing = uuid.uuid4()
        found = await asyncio.gather(*(reader.read(run.id) for run in runs), reader.read(missing))
        assert [run.id for run in found[:-1] if run] == [run.id for run in runs]
        assert found[-1] is None  # a run the API does not have (deleted)
        assert requests == [31]
        # a read on its own still gets its answer
        alone = await reader.read(runs[0].id)
        assert alone is not None and alone.id == runs[0].id
        assert requests == [31, 1]
