"""`WeirClient`: the async HTTP client of the weir API.

One method per route, taking and returning the wire models of `core/schemas`.
Requests name their project with `X-Weir-Project`; transient failures (429,
502-504, connection errors) are retried with backoff; error answers become
`weir.exceptions.APIError` subclasses whose message is the server's detail.
`SyncWeirClient` (client/sync.py) is the blocking face of this same class.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from weir.client import _lean_httpx  # noqa: F401  (before httpx is first imported)

# isort: split
import httpx
from pydantic import BaseModel

from weir.client.auth import WeirAuth
from weir.client.concurrency import ConcurrencyAPI
from weir.client.deployments import DeploymentsAPI
from weir.client.resource import adapter, parse
from weir.client.retries import RETRY_STATUSES, RetryPolicy, describe_connection_error
from weir.client.services import ServicesAPI
from weir.client.wire import CURSOR_HEADER, PROJECT_HEADER, api_error
from weir.client.work_pools import WorkPoolsAPI
from weir.core.schemas.filters import (
    FlowFilterRequest,
    FlowRunFilterRequest,
    LogFilterRequest,
    TaskRunFilterRequest,
)
from weir.core.schemas.runs import (
    Flow,
    FlowCreate,
    FlowRun,
    FlowRunCreate,
    FlowRunStateProposal,
    Log,
    LogCreate,
    Project,
    ProjectCreate,
    SetStateRequest,
    SetStatesRequest,
    TaskRun,
    TaskRunUpsert,
)
from weir.core.schemas.states import OrchestrationResult, StateSchema
from weir.exceptions import ConfigurationError, ServerUnreachable

if TYPE_CHECKING:
    from weir.settings import Settings

M = TypeVar("M", bound=BaseModel)
RunId = uuid.UUID | str
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
RETRY_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


class WeirClient(WorkPoolsAPI, DeploymentsAPI, ConcurrencyAPI, ServicesAPI):
    """The weir API over HTTP. Use as `async with WeirClient.from_settings() as client:`."""

    def __init__(
        self,
        api_url: str,
        *,
        auth_string: str | None = None,
        project: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.project = project
        self.retry = retry or RetryPolicy()
        headers = {PROJECT_HEADER: project} if project else {}
        self._http = httpx.AsyncClient(
            base_url=self.api_url + "/",
            auth=WeirAuth(self.api_url, auth_string),
            headers=headers,
            timeout=timeout,
            transport=transport,
            verify=tls_context() if self.api_url.startswith("https:") else _no_tls_context(),
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **options: Any) -> WeirClient:
        """A client for `settings.api.url` (WEIR_API_URL), its auth string and project."""
        return cls(**settings_options(settings), **options)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> WeirClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- health and projects -----------------------------------------------------
    async def health(self) -> bool:
        """True when the server process answers; ServerUnreachable when nothing does."""
        response = await self._send("GET", "health", check=False)
        return response.is_success

    async def ready(self) -> bool:
        """True when the server can reach its database (`/ready` answers 503 otherwise)."""
        response = await self._send("GET", "ready", check=False, retry=False)
        return response.is_success

    async def create_project(self, name: str, description: str | None = None) -> Project:
        body = ProjectCreate(name=name, description=description)
        return parse(Project, await self._send("POST", "projects/", body=body))

    async def read_projects(self) -> list[Project]:
        return parse(list[Project], await self._send("GET", "projects/"))

    async def delete_project(self, name: str) -> None:
        await self._send("DELETE", f"projects/{name}")

    # -- flows -----------------------------------------------------------------------
    async def create_flow(self, name: str, tags: Sequence[str] = ()) -> Flow:
        body = FlowCreate(name=name, tags=list(tags))
        return parse(Flow, await self._send("POST", "flows/", body=body))

    async def read_flows(self, filter: FlowFilterRequest | None = None) -> list[Flow]:
        body = filter or FlowFilterRequest()
        return parse(list[Flow], await self._send("POST", "flows/filter", body=body))

    # -- flow runs -------------------------------------------------------------------
    async def create_flow_run(self, flow_run: FlowRunCreate) -> FlowRun:
        """Create a flow run; with a client-chosen `id`, creating it again is harmless."""
        return parse(FlowRun, await self._send("POST", "flow_runs/", body=flow_run))

    async def read_flow_run(self, flow_run_id: RunId) -> FlowRun:
        return parse(FlowRun, await self._send("GET", f"flow_runs/{flow_run_id}"))

    async def read_flow_runs(self, filter: FlowRunFilterRequest | None = None) -> list[FlowRun]:
        return (await self.read_flow_runs_page(filter))[0]

    async def read_flow_runs_page(
        self, filter: FlowRunFilterRequest | None = None
    ) -> tuple[list[FlowRun], str | None]:
        """One page of flow runs and the cursor of the next page (None after the last)."""
        body = filter or FlowRunFilterRequest()
        response = await self._send("POST", "flow_runs/filter", body=body)
        return parse(list[FlowRun], response), response.headers.get(CURSOR_HEADER) or None

    async def iter_flow_runs(
        self, filter: FlowRunFilterRequest | None = None
    ) -> AsyncIterator[FlowRun]:
        """Every flow run matching `filter`, page by page (keyset: `X-Next-Cursor`)."""
        page_filter = filter or FlowRunFilterRequest()
        while True:
            runs, cursor = await self.read_flow_runs_page(page_filter)
            for run in runs:
                yield run
            if not cursor or not runs:
                return
            page_filter = page_filter.model_copy(update={"cursor": cursor, "offset": 0})

    async def count_flow_runs(self, filter: FlowRunFilterRequest | None = None) -> int:
        body = filter or FlowRunFilterRequest()
        return int((await self._send("POST", "flow_runs/count", body=body)).json())

    async def set_flow_run_state(
        self, flow_run_id: RunId, state: StateSchema, force: bool = False
    ) -> OrchestrationResult:
        """Propose `state`; the answer says whether the server accepted it."""
        body = SetStateRequest(state=state, force=force)
        response = await self._send("POST", f"flow_runs/{flow_run_id}/set_state", body=body)
        return parse(OrchestrationResult, response)

    async def set_flow_run_states(
        self, proposals: Sequence[FlowRunStateProposal]
    ) -> list[OrchestrationResult]:
        """Propose states for up to 1,000 runs in one request; one answer per proposal,
        in order (ABORT for a run the project does not have)."""
        body = SetStatesRequest(states=list(proposals))
        return parse(
            list[OrchestrationResult], await self._send("POST", "flow_runs/set_states", body=body)
        )

    async def read_flow_run_states(self, flow_run_id: RunId) -> list[StateSchema]:
        return parse(list[StateSchema], await self._send("GET", f"flow_runs/{flow_run_id}/states"))

    async def delete_flow_run(self, flow_run_id: RunId) -> None:
        await self._send("DELETE", f"flow_runs/{flow_run_id}")

    # -- task runs and logs ---------------------------------------------------------
    async def upsert_task_runs(self, task_runs: Sequence[TaskRunUpsert] | bytes) -> None:
        """Create or update up to 1,000 task runs, appending the states they carry.

        Also takes the JSON array already serialised (the reporter builds it directly)."""
        content = _json_array(list[TaskRunUpsert], task_runs)
        await self._send("POST", "task_runs/bulk", content=content)

    async def read_task_runs(self, filter: TaskRunFilterRequest | None = None) -> list[TaskRun]:
        body = filter or TaskRunFilterRequest()
        return parse(list[TaskRun], await self._send("POST", "task_runs/filter", body=body))

    async def create_logs(self, logs: Sequence[LogCreate] | bytes) -> None:
        """Store up to 1,000 log lines (or a JSON array of them, already serialised)."""
        content = _json_array(list[LogCreate], logs)
        await self._send("POST", "logs/", content=content)

    async def read_logs(self, filter: LogFilterRequest | None = None) -> list[Log]:
        body = filter or LogFilterRequest()
        return parse(list[Log], await self._send("POST", "logs/filter", body=body))

    async def stream_logs(self, flow_run_id: RunId, follow: bool = True) -> AsyncIterator[Log]:
        """The flow run's log lines as the server streams them (Server-Sent Events: `log`
        events, until an `end` event or the server closes the stream)."""
        path = f"flow_runs/{flow_run_id}/logs/stream"
        params = {"follow": "true" if follow else "false"}
        timeout = httpx.Timeout(DEFAULT_TIMEOUT.connect, read=None)
        try:
            async with self._http.stream("GET", path, params=params, timeout=timeout) as response:
                if response.is_error:
                    await response.aread()
                    _raise_for_status(response)
                event = "message"
                async for line in response.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        if event == "end":
                            return
                        if event in ("log", "message"):
                            yield Log.model_validate_json(line[5:].strip())
                    elif not line:
                        event = "message"
        except RETRY_ERRORS as exc:
            raise self._unreachable(exc) from None

    # -- plumbing ---------------------------------------------------------------------
    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        content: bytes | None = None,
        check: bool = True,
        retry: bool = True,
        read_timeout: float | None = None,
    ) -> httpx.Response:
        if body is not None:
            content = body.model_dump_json(exclude_none=True).encode()
        headers = {"Content-Type": "application/json"} if content is not None else None
        attempts = self.retry.attempts if retry else 1
        for attempt in range(attempts):
            last = attempt + 1 >= attempts
            try:
                response = await self._http.request(
                    method,
                    path,
                    content=content,
                    headers=headers,
                    timeout=httpx.USE_CLIENT_DEFAULT if read_timeout is None else read_timeout,
                )
            except RETRY_ERRORS as exc:
                if last:
                    raise self._unreachable(exc) from None
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            except httpx.TimeoutException as exc:
                raise self._unreachable(exc) from None
            if response.status_code in RETRY_STATUSES and not last:
                await asyncio.sleep(self.retry.delay(attempt, response.headers))
                continue
            if check:
                _raise_for_status(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _unreachable(self, exc: Exception) -> ServerUnreachable:
        return ServerUnreachable(
            f"Cannot reach the weir API at {self.api_url}: {describe_connection_error(exc)}. "
            "Start it with `weir server start` or check WEIR_API_URL."
        )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CAs, or SSL_CERT_FILE / SSL_CERT_DIR), made
    once per process: loading the CAs costs ~50 ms, which every new client paid."""
    return httpx.create_ssl_context()


@functools.cache
def _no_tls_context() -> ssl.SSLContext:
    """For a plain-HTTP API (the client never follows redirects): no CAs to load, so it
    would refuse any certificate, were a TLS handshake ever asked of it."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def settings_options(
    settings: Settings | None = None, default_api_url: str | None = None
) -> dict[str, Any]:
    """`api_url`, `auth_string` and `project` from the settings (the current ones if None);
    `default_api_url` stands in for an unset WEIR_API_URL (the CLI's local server)."""
    if settings is None:
        from weir.settings import get_settings

        settings = get_settings()
    api_url = settings.api.url or default_api_url
    if not api_url:
        raise ConfigurationError(
            "WEIR_API_URL is not set; set it to your server's API, e.g. http://127.0.0.1:4200/api."
        )
    secret = settings.api.auth_string
    return {
        "api_url": api_url,
        "auth_string": secret.get_secret_value() if secret else None,
        "project": settings.project,
    }


def _json_array(kind: Any, items: Sequence[BaseModel] | bytes) -> bytes:
    if isinstance(items, bytes):
        return items
    return adapter(kind).dump_json(list(items), exclude_none=True)


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise api_error(
            response.status_code,
            response.content,
            response.reason_phrase,
            str(response.request.url),
        )
