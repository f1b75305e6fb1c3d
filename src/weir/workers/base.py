"""The worker: claims runs and starts them on its infrastructure (DESIGN.md §2, path 2).

One asyncio loop does everything: it heartbeats (which renews the leases of the
runs it holds and tells it which to cancel), long-polls for runs with as many free
slots as it has, starts each on the infrastructure, and watches the processes.
When a process ends without its run in a final state (read back from the API) the
worker ends the run: CANCELLED if it was being cancelled, CRASHED otherwise — so a
run never stays RUNNING because its process died. On SIGTERM or SIGINT it stops
claiming, lets running flows finish within `settings.worker.shutdown_grace_seconds`,
then kills them and crashes their runs (so the retry rule re-queues those with
retries left), and deregisters.

Where runs come from is a `WorkSource` (workers/sources.py): a work pool, or the
deployments a `flow.serve()` process serves (workers/serve.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import signal
import socket
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from weir.core.schemas.states import StateSchema
from weir.core.schemas.work_pools import MAX_CLAIM, ClaimedRun
from weir.core.states import TERMINAL_TYPES, StateType
from weir.exceptions import (
    APIError,
    ServerError,
    ServerUnreachable,
)
from weir.workers.output import OutputShipper
from weir.workers.read_back import RunReader

if TYPE_CHECKING:
    from weir.client.http import WeirClient
    from weir.settings import Settings
    from weir.workers.infrastructure import Infrastructure
    from weir.workers.sources import WorkSource

logger = logging.getLogger("weir.worker")
T = TypeVar("T")

# how long a killed process may take to end after SIGTERM before it gets SIGKILL
KILL_GRACE_SECONDS = 5.0
# how often the worker looks at its processes
POLL_SECONDS = 0.05
# runs claimed at once when the worker has no --limit
DEFAULT_CLAIM_BATCH = 10
MAX_BACKOFF_SECONDS = 30.0


def default_worker_name() -> str:
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


@dataclass(eq=False)
class RunningRun:
    claimed: ClaimedRun
    handle: Any
    # why the worker killed it: "cancel" or "shutdown"; None while it runs on its own
    stopped_for: str | None = None
    # the API no longer wants this worker to hold it: its end is not ours to report
    lost: bool = False

    @property
    def id(self) -> uuid.UUID:
        return self.claimed.flow_run.id

    @property
    def name(self) -> str:
        return self.claimed.flow_run.name


class Worker:
    def __init__(
        self,
        client: WeirClient,
        source: WorkSource,
        settings: Settings,
        *,
        name: str,
        limit: int | None = None,
        run_once: bool = False,
        infrastructure: Infrastructure | None = None,
        claim_batch: int = DEFAULT_CLAIM_BATCH,
    ) -> None:
        """`claim_batch`: runs claimed at once when there is no `limit`."""
        self.client, self.source, self.settings = client, source, settings
        self.name, self.limit, self.run_once = name, limit, run_once
        self.claim_batch = claim_batch
        self.infrastructure = infrastructure
        self.running: dict[uuid.UUID, RunningRun] = {}
        self._endings: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._force = asyncio.Event()  # a second signal: don't wait for running flows
        self._changed = asyncio.Event()  # a run ended (a slot is free)
        self._unreachable = False
        self._executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix="weir-worker")
        self._reader = RunReader(client)

    # -- lifecycle ------------------------------------------------------------------
    async def run(self) -> None:
        """Work until stopped (SIGTERM/SIGINT, `stop()`) or, with run_once, until the
        runs of one claim ended. ConfigurationError if the source does not exist."""
        self._install_signal_handlers()
        pool_type = await self._retrying(self.source.register)
        if pool_type is None:
            return  # stopped before the API answered
        if self.infrastructure is None:
            from weir.workers.infrastructure import infrastructure_for

            environment = worker_environment(self.settings, self.client.api_url)
            self.infrastructure = infrastructure_for(pool_type, environment)
        self.shipper = OutputShipper(self.client)
        background = [
            asyncio.create_task(self._heartbeats(), name="weir-heartbeats"),
            asyncio.create_task(self._watch(), name="weir-watch"),
            asyncio.create_task(self.shipper.run(), name="weir-output"),
        ]
        logger.info(
            "Worker %r started; waiting for runs of %s.", self.name, self.source.description
        )
        try:
            await self._claim_loop()
        finally:  # also when claiming failed for good: nothing is left running unreported
            await self._wind_down()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            with contextlib.suppress(ServerUnreachable, APIError):
                await self.source.deregister()
            self._executor.shutdown(wait=False)
            logger.info("Worker %r stopped.", self.name)

    def stop(self) -> None:
        """Stop claiming and wind down; a second call stops the running flows at once."""
        if self._stop.is_set():
            self._force.set()
        self._stop.set()

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        logger.info(
            "Worker %r got %s: %s.",
            self.name,
            signal.Signals(signum).name,
            "stopping its flow runs now"
            if self._stop.is_set()
            else "no more claims; waiting for running flows to finish",
        )
        self.stop()

    # -- claiming -------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        while not self._stop.is_set():
            free = self._free_slots()
            if free == 0:
                self._changed.clear()
                await self._until(self._changed.wait())
                continue
            wait = self.settings.worker.claim_wait_seconds
            claimed = await self._retrying(functools.partial(self.source.claim, free, wait))
            for run in claimed or []:
                if self._stop.is_set():
                    await self._hand_back(run)
                else:
                    self._start(run)
            if self.run_once:
                return

    def _free_slots(self) -> int:
        if self.limit is None:
            return self.claim_batch
        return min(max(self.limit - len(self.running), 0), MAX_CLAIM)

    def _start(self, claimed: ClaimedRun) -> None:
        assert self.infrastructure is not None
        run = claimed.flow_run
        to_api = claimed.job_configuration.get("stream_output", True) is not False
        on_output = self.shipper.callback_for(run.id, run.name, to_api)
        try:  # on the loop's thread: a process child dies with the thread that forked it
            handle = self.infrastructure.start(claimed, on_output)
        except Exception as exc:
            logger.error("Flow run %r could not be started: %s", run.name, exc)
            self._track_ending(self._end_unstarted(claimed, exc))
            return
        self.running[run.id] = RunningRun(claimed, handle)
        logger.info("Started flow run %r (%s).", run.name, run.id)

    async def _hand_back(self, claimed: ClaimedRun) -> None:
        """A run claimed as the worker stopped goes back to its queue."""
        back = StateSchema(type=StateType.SCHEDULED, message="The worker stopped; queued again.")
        with contextlib.suppress(ServerUnreachable, APIError):
            await self.client.set_flow_run_state(claimed.flow_run.id, back)

    async def _end_unstarted(self, claimed: ClaimedRun, exc: Exception) -> None:
        message = f"The flow run's infrastructure could not start: {exc}"
        await self._propose(claimed.flow_run.id, StateType.CRASHED, message)

    # -- heartbeats and cancellation -------------------------------------------------
    async def _heartbeats(self) -> None:
        """Heartbeat once per interval. A pool's heartbeat long-polls for the interval,
        so a cancellation reaches the worker as soon as it is asked for; a heartbeat
        that answered early for nothing new (or failed) waits out the interval."""
        loop = asyncio.get_running_loop()
        interval = self.settings.worker.heartbeat_seconds
        while True:
            started = loop.time()
            if not await self._heartbeat():
                await asyncio.sleep(max(0.0, started + interval - loop.time()))

    async def _heartbeat(self) -> bool:
        """One heartbeat; whether it asked to cancel a run not being cancelled yet."""
        held = [r.id for r in self.running.values() if not r.lost]
        try:
            answer = await self.source.heartbeat(held)
        except ServerUnreachable:
            self._went_away()
            return False
        except APIError as exc:
            logger.warning("Worker %r heartbeat refused: %s", self.name, exc)
            return False
        self._came_back()
        for run_id in answer.lost:
            if run_id in self.running:
                self.running[run_id].lost = True
        cancelled = False
        for run_id in answer.cancel:
            run = self.running.get(run_id)
            if run is not None and run.stopped_for is None:
                logger.info("Cancelling flow run %r: killing its process.", run.name)
                self._kill(run, "cancel")
                cancelled = True
        return cancelled

    def _kill(self, run: RunningRun, reason: str) -> None:
        assert self.infrastructure is not None
        run.stopped_for = reason
        loop = asyncio.get_running_loop()
        loop.run_in_executor(
            self._executor, self.infrastructure.kill, run.handle, KILL_GRACE_SECONDS
        )

    # -- watching processes --------------------------------------------------------------
    async def _watch(self) -> None:
        assert self.infrastructure is not None
        while True:
            for run in list(self.running.values()):
                code = self.infrastructure.poll(run.handle)
                if code is not None:
                    del self.running[run.id]
                    self._track_ending(self._ended(run, code))
            await asyncio.sleep(POLL_SECONDS)

    def _track_ending(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._endings.add(task)
        task.add_done_callback(self._endings.discard)
        task.add_done_callback(lambda _: self._changed.set())

    async def _ended(self, run: RunningRun, code: int) -> None:
        """The run's process exited: make sure its run has a final state."""
        assert self.infrastructure is not None
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.infrastructure.wait, run.handle, 5.0)
        if run.lost:
            logger.info("Flow run %r's process exited with code %d.", run.name, code)
            return
        try:
            api_run = await self._reader.read(run.id)
        except ServerUnreachable:
            api_run = None
        else:
            if api_run is None:
                return  # deleted: nothing to end
        state_type = api_run.state_type if api_run else None
        if state_type in TERMINAL_TYPES:
            logger.info("Flow run %r ended %s (exit code %d).", run.name, state_type, code)
            return
        if run.stopped_for == "cancel" or state_type is StateType.CANCELLING:
            await self._propose(run.id, StateType.CANCELLED, "The flow run was cancelled.")
        elif run.stopped_for == "shutdown":
            message = f"The worker {self.name!r} stopped before the flow run finished."
            await self._propose(run.id, StateType.CRASHED, message)
        else:
            message = (
                f"The flow run's process exited with code {code} without reporting a final state."
            )
            await self._propose(run.id, StateType.CRASHED, message)

    async def _propose(self, run_id: uuid.UUID, state_type: StateType, message: str) -> None:
        state = StateSchema(type=state_type, message=message)
        try:
            answer = await self.client.set_flow_run_state(run_id, state)
        except (ServerUnreachable, APIError) as exc:
            logger.error("Could not set flow run %s %s: %s", run_id, state_type, exc)
            return
        log = logger.error if state_type is StateType.CRASHED else logger.info
        log("Flow run %s: %s (%s %s).", run_id, message, state_type, answer.status)

    # -- stopping -------------------------------------------------------------------------
    async def _wind_down(self) -> None:
        """Let running flows finish (run_once: until they end or a signal; then within
        the grace period), kill what is left, and wait until every end is reported."""
        loop = asyncio.get_running_loop()
        if self.run_once:
            await self._wait_for_runs(None, self._stop)
        if self.running:
            logger.info("Waiting for %d running flow run(s) to finish.", len(self.running))
            await self._wait_for_runs(loop.time() + self._grace(), self._force)
        if self.running:
            logger.warning(
                "Stopping %d flow run(s) that did not finish in time.", len(self.running)
            )
            for run in self.running.values():
                if run.stopped_for is None:
                    self._kill(run, "shutdown")
            await self._wait_for_runs(None, None)
        while self._endings:
            await asyncio.gather(*list(self._endings), return_exceptions=True)

    def _grace(self) -> float:
        return self.settings.worker.shutdown_grace_seconds

    async def _wait_for_runs(self, deadline: float | None, interrupt: asyncio.Event | None) -> None:
        """Until no run is left, `deadline` (loop time) passes, or `interrupt` is set."""
        loop = asyncio.get_running_loop()
        while self.running:
            if interrupt is not None and interrupt.is_set():
                return
            if deadline is not None and loop.time() >= deadline:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.2)

    # -- the API being away ----------------------------------------------------------------
    async def _retrying(self, call: Callable[[], Coroutine[Any, Any, T]]) -> T | None:
        """Call until the API answers, backing off while it is unreachable; None if the
        worker was stopped meanwhile."""
        failures = 0
        while not self._stop.is_set():
            task = asyncio.ensure_future(call())
            done = await self._until(task)
            if not done:
                return None
            try:
                result = task.result()
            except (ServerUnreachable, ServerError):
                self._went_away()
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (failures - 1))
                await self._until(asyncio.sleep(delay * random.uniform(0.5, 1.0)))
                continue
            self._came_back()
            return result
        return None

    async def _until(self, awaitable: Any) -> bool:
        """Await `awaitable` unless the worker is stopped first (then cancel it)."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return False
        return True

    def _went_away(self) -> None:
        if not self._unreachable:
            self._unreachable = True
            logger.warning("weir API at %s unreachable; retrying.", self.client.api_url)

    def _came_back(self) -> None:
        if self._unreachable:
            self._unreachable = False
            logger.warning("weir API at %s reachable again.", self.client.api_url)


def worker_environment(settings: Settings, api_url: str) -> dict[str, str]:
    """What every run's process gets from the worker: its API, credentials and project."""
    env = {"WEIR_API_URL": api_url}
    if settings.api.auth_string is not None:
        env["WEIR_API_AUTH_STRING"] = settings.api.auth_string.get_secret_value()
    if settings.project:
        env["WEIR_PROJECT"] = settings.project
    return env
