"""`SyncWeirClient`: the blocking face of `WeirClient`, for scripts and threads.

It owns a private event loop in a daemon thread and runs the async client's
coroutines there, so there is one implementation of every request. Each method
is generated from the async one by `_blocking` (or `_blocking_iter` for async
iterators), which keeps its signature for type checkers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from weir.client.http import WeirClient, settings_options

if TYPE_CHECKING:
    from weir.settings import Settings

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class _blocking(Generic[P, R]):
    """A descriptor: `SyncWeirClient.x(...)` runs `WeirClient.x(...)` on the private loop."""

    def __init__(self, method: Callable[Concatenate[WeirClient, P], Coroutine[Any, Any, R]]):
        self.method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, owner: None, cls: type) -> _blocking[P, R]: ...
    @overload
    def __get__(self, owner: SyncWeirClient, cls: type) -> Callable[P, R]: ...
    def __get__(self, owner: SyncWeirClient | None, cls: type) -> Any:
        if owner is None:
            return self
        method, client = self.method, owner.client

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return owner.run(method(client, *args, **kwargs))

        call.__name__ = method.__name__
        call.__doc__ = method.__doc__
        return call


class _blocking_iter(Generic[P, T]):
    """Like `_blocking`, for methods that return an async iterator."""

    def __init__(self, method: Callable[Concatenate[WeirClient, P], AsyncIterator[T]]):
        self.method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, owner: None, cls: type) -> _blocking_iter[P, T]: ...
    @overload
    def __get__(self, owner: SyncWeirClient, cls: type) -> Callable[P, Iterator[T]]: ...
    def __get__(self, owner: SyncWeirClient | None, cls: type) -> Any:
        if owner is None:
            return self
        method, client = self.method, owner.client

        def call(*args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
            return owner.iterate(method(client, *args, **kwargs))

        call.__name__ = method.__name__
        return call


class SyncWeirClient:
    """The weir API, blocking. Use as `with SyncWeirClient.from_settings() as client:`.

    Safe to call from several threads at once: calls are queued onto one loop.
    """

    def __init__(self, api_url: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="weir-client", daemon=True
        )
        self._thread.start()
        self._closed = False

        async def make() -> WeirClient:  # httpx binds its pool to the loop that uses it
            return WeirClient(api_url, **options)

        self.client: WeirClient = self.run(make())

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **options: Any) -> SyncWeirClient:
        """A client for `settings.api.url` (WEIR_API_URL), its auth string and project."""
        return cls(**settings_options(settings), **options)

    @property
    def api_url(self) -> str:
        return self.client.api_url

    def run(self, coroutine: Coroutine[Any, Any, R], timeout: float | None = None) -> R:
        """Run one coroutine on the client's loop and wait for its result."""
        if self._closed:
            coroutine.close()
            raise RuntimeError("This SyncWeirClient is closed.")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """Pull an async iterator one item at a time through the client's loop."""
        try:
            while True:
                try:
                    yield self.run(_next(iterator))
                except StopAsyncIteration:
                    return
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None and not self._closed:
                self.run(close())

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        try:
            self.run(self.client.aclose(), timeout=timeout)
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=timeout)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> SyncWeirClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    health = _blocking(WeirClient.health)
    ready = _blocking(WeirClient.ready)
    create_project = _blocking(WeirClient.create_project)
    read_projects = _blocking(WeirClient.read_projects)
    delete_project = _blocking(WeirClient.delete_project)
    create_flow = _blocking(WeirClient.create_flow)
    read_flows = _blocking(WeirClient.read_flows)
    create_flow_run = _blocking(WeirClient.create_flow_run)
    read_flow_run = _blocking(WeirClient.read_flow_run)
    read_flow_runs = _blocking(WeirClient.read_flow_runs)
    read_flow_runs_page = _blocking(WeirClient.read_flow_runs_page)
    iter_flow_runs = _blocking_iter(WeirClient.iter_flow_runs)
    count_flow_runs = _blocking(WeirClient.count_flow_runs)
    set_flow_run_state = _blocking(WeirClient.set_flow_run_state)
    set_flow_run_states = _blocking(WeirClient.set_flow_run_states)
    read_flow_run_states = _blocking(WeirClient.read_flow_run_states)
    delete_flow_run = _blocking(WeirClient.delete_flow_run)
    upsert_task_runs = _blocking(WeirClient.upsert_task_runs)
    read_task_runs = _blocking(WeirClient.read_task_runs)
    create_logs = _blocking(WeirClient.create_logs)
    read_logs = _blocking(WeirClient.read_logs)
    stream_logs = _blocking_iter(WeirClient.stream_logs)
    # work pools
    create_work_pool = _blocking(WeirClient.create_work_pool)
    read_work_pool = _blocking(WeirClient.read_work_pool)
    read_work_pools = _blocking(WeirClient.read_work_pools)
    update_work_pool = _blocking(WeirClient.update_work_pool)
    delete_work_pool = _blocking(WeirClient.delete_work_pool)
    create_work_queue = _blocking(WeirClient.create_work_queue)
    read_work_queue = _blocking(WeirClient.read_work_queue)
    read_work_queues = _blocking(WeirClient.read_work_queues)
    read_all_work_queues = _blocking(WeirClient.read_all_work_queues)
    update_work_queue = _blocking(WeirClient.update_work_queue)
    delete_work_queue = _blocking(WeirClient.delete_work_queue)
    read_workers = _blocking(WeirClient.read_workers)
    worker_heartbeat = _blocking(WeirClient.worker_heartbeat)
    delete_worker = _blocking(WeirClient.delete_worker)
    claim_flow_runs = _blocking(WeirClient.claim_flow_runs)
    claim_deployment_runs = _blocking(WeirClient.claim_deployment_runs)
    renew_flow_run_lease = _blocking(WeirClient.renew_flow_run_lease)
    # deployments
    apply_deployment = _blocking(WeirClient.apply_deployment)
    read_deployment = _blocking(WeirClient.read_deployment)
    read_deployment_by_name = _blocking(WeirClient.read_deployment_by_name)
    read_deployments = _blocking(WeirClient.read_deployments)
    count_deployments = _blocking(WeirClient.count_deployments)
    update_deployment = _blocking(WeirClient.update_deployment)
    delete_deployment = _blocking(WeirClient.delete_deployment)
    pause_deployment = _blocking(WeirClient.pause_deployment)
    resume_deployment = _blocking(WeirClient.resume_deployment)
    create_deployment_run = _blocking(WeirClient.create_deployment_run)
    read_deployment_next_runs = _blocking(WeirClient.read_deployment_next_runs)
    read_deployment_schedules = _blocking(WeirClient.read_deployment_schedules)
    create_deployment_schedules = _blocking(WeirClient.create_deployment_schedules)
    update_deployment_schedule = _blocking(WeirClient.update_deployment_schedule)
    delete_deployment_schedule = _blocking(WeirClient.delete_deployment_schedule)
    # concurrency
    create_concurrency_limit = _blocking(WeirClient.create_concurrency_limit)
    read_concurrency_limit = _blocking(WeirClient.read_concurrency_limit)
    read_concurrency_limits = _blocking(WeirClient.read_concurrency_limits)
    delete_concurrency_limit = _blocking(WeirClient.delete_concurrency_limit)
    acquire_concurrency_slots = _blocking(WeirClient.acquire_concurrency_slots)
    release_concurrency_slots = _blocking(WeirClient.release_concurrency_slots)
    renew_concurrency_slots = _blocking(WeirClient.renew_concurrency_slots)
    # services
    read_services = _blocking(WeirClient.read_services)


async def _next(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()
