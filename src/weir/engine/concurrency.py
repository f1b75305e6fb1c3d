"""Concurrency limits in flow code and on task tags.

`with concurrency("db", occupy=1):` (or `async with`) takes slots of the named global
limits before the block runs and gives them back after it, even when it raises. Slots
are leases on the server: while the block runs a daemon thread renews them every
third of the lease, so a process that dies frees them when the lease lapses.

Task runs take a slot of every `tag:<tag>` limit their tags have before they start
(`tag_slots`). With no API configured both cost nothing; with one, the names of the
project's limits are fetched at most every `LIMIT_NAMES_TTL` seconds per process, so
tasks whose tags have no limit make no request.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from weir.core.schemas.concurrency import (
    TAG_PREFIX,
    SlotAcquire,
    SlotRelease,
    SlotRenewal,
    tag_limit_name,
)
from weir.core.schemas.filters import MAX_LIMIT, Page
from weir.engine.contexts import flow_run_context, task_run_context
from weir.exceptions import APIError, ConcurrencySlotTimeout, ConfigurationError, ServerUnreachable

if TYPE_CHECKING:
    from weir.client.sync import SyncWeirClient
    from weir.core.runs import TaskRun

logger = logging.getLogger("weir.concurrency")

LIMIT_NAMES_TTL = 5.0
MIN_BACKOFF, MAX_BACKOFF = 0.02, 1.0


class ConcurrencySlots:
    """Slots of concurrency limits, held for the duration of a `with` or `async with`
    block; see `concurrency()`."""

    def __init__(
        self,
        names: list[str],
        *,
        occupy: int = 1,
        timeout_seconds: float | None = None,
        strict: bool = False,
        lease_seconds: float | None = None,
        holder: str | None = None,
        on_wait: Any = None,
    ) -> None:
        self.names = names
        self.occupy = occupy
        self.timeout_seconds = timeout_seconds
        self.strict = strict
        self.lease_seconds = lease_seconds
        self.holder = holder
        self.on_wait = on_wait
        self._client: SyncWeirClient | None = None
        self._stop: threading.Event | None = None

    # -- the block ---------------------------------------------------------------
    def __enter__(self) -> ConcurrencySlots:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def __aenter__(self) -> ConcurrencySlots:
        await self.acquire_async()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release_async()

    async def acquire_async(self) -> None:
        """`acquire` in a thread, so waiting never blocks the event loop."""
        await asyncio.to_thread(self.acquire)

    async def release_async(self) -> None:
        await asyncio.to_thread(self.release)

    # -- the steps ---------------------------------------------------------------
    def acquire(self) -> None:
        """Wait for the slots (all or none), then keep them renewed until `release`."""
        client = api_client()
        if client is None:
            logger.debug("no API configured: concurrency(%s) does not limit", self.names)
            return
        if self.lease_seconds is None:
            from weir.settings import get_settings

            self.lease_seconds = get_settings().worker.lease_seconds
        self.holder = self.holder or block_holder()
        request = SlotAcquire(
            names=self.names,
            occupy=self.occupy,
            holder=self.holder,
            lease_seconds=self.lease_seconds,
        )
        deadline = None if self.timeout_seconds is None else time.monotonic() + self.timeout_seconds
        waited = False
        backoff = MIN_BACKOFF
        while True:
            answer = client.acquire_concurrency_slots(request)
            if answer.unlimited and self.strict:
                if answer.granted:
                    self._release_with(client)
                missing = answer.unlimited[0]
                raise ConfigurationError(
                    f"Concurrency limit '{missing}' does not exist or is inactive; create it "
                    f"with `weir concurrency-limit create {missing} N --global`."
                )
            if answer.granted:
                break
            if not waited and self.on_wait is not None:
                self.on_wait(answer.blocked_by)
            waited = True
            # short holds are common: look again soon, then back off to the server's pace
            pause = min(answer.retry_after_seconds or 1.0, backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ConcurrencySlotTimeout(
                        f"No slot of concurrency limit '{answer.blocked_by}' within "
                        f"{self.timeout_seconds:g} s."
                    )
                pause = min(pause, left)
            time.sleep(pause)
        self._client = client
        self._stop = threading.Event()
        threading.Thread(
            target=self._renew, args=(client, self._stop), name="weir-slot-renewal", daemon=True
        ).start()

    def release(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if self._stop is not None:
            self._stop.set()
        self._release_with(client)

    def _release_with(self, client: SyncWeirClient) -> None:
        assert self.holder is not None
        try:
            client.release_concurrency_slots(SlotRelease(holder=self.holder, names=self.names))
        except (APIError, ServerUnreachable) as exc:  # the lease frees them in time
            logger.warning("could not release slots of %s: %s", self.names, exc)

    def _renew(self, client: SyncWeirClient, stop: threading.Event) -> None:
        assert self.lease_seconds is not None and self.holder is not None
        renewal = SlotRenewal(holder=self.holder, lease_seconds=self.lease_seconds)
        while not stop.wait(self.lease_seconds / 3):
            try:
                client.renew_concurrency_slots(renewal)
            except (APIError, ServerUnreachable) as exc:
                logger.warning("could not renew slots of %s: %s", self.names, exc)


def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
    *,
    lease_seconds: float | None = None,
) -> ConcurrencySlots:
    """Hold `occupy` slots of each named global limit for a `with` / `async with` block.

        with concurrency("db", occupy=1):
            write_rows()

    It waits until every limit has room (all or none), up to `timeout_seconds`
    (then `ConcurrencySlotTimeout`). A name with no limit does not limit, unless
    `strict`, which raises `ConfigurationError`. With no API configured it does
    nothing. Slots are leases of `lease_seconds` (default `WEIR_WORKER_LEASE_SECONDS`),
    renewed while the block runs."""
    listed = [names] if isinstance(names, str) else list(names)
    return ConcurrencySlots(
        listed,
        occupy=occupy,
        timeout_seconds=timeout_seconds,
        strict=strict,
        lease_seconds=lease_seconds,
    )


def block_holder() -> str:
    """A holder for one `concurrency()` block: `run:<id>/<block>` inside a task run or
    flow run (so `weir concurrency-limit inspect` shows who holds a slot), else
    `<block>` alone. Each block needs its own: two blocks of one run on the same limit
    (threads, `asyncio.gather`) each release, and renew, only their own slots."""
    block = uuid.uuid4().hex[:12]
    task_ctx = task_run_context.get()
    if task_ctx is not None:
        return f"run:{task_ctx.task_run.id}/{block}"
    flow_ctx = flow_run_context.get()
    if flow_ctx is not None:
        return f"run:{flow_ctx.flow_run.id}/{block}"
    return block


# -- the API client ----------------------------------------------------------------------
_clients: dict[tuple[Any, ...], SyncWeirClient] = {}
_clients_lock = threading.Lock()


def api_client() -> SyncWeirClient | None:
    """The client of the run's reporter if there is one, else one per process for the
    settings' API; None when no API is configured."""
    flow_ctx = flow_run_context.get()
    client = getattr(flow_ctx.recorder, "client", None) if flow_ctx else None
    if client is not None:
        return client
    from weir.settings import get_settings

    settings = get_settings()
    if not settings.api.url:
        return None
    secret = settings.api.auth_string
    key = (settings.api.url, secret.get_secret_value() if secret else None, settings.project)
    with _clients_lock:
        cached = _clients.get(key)
        if cached is None:
            from weir.client.sync import SyncWeirClient

            cached = _clients[key] = SyncWeirClient.from_settings(settings)
        return cached


# -- task tag limits ---------------------------------------------------------------------
class _LimitNames:
    """The project's limit names per client, fetched at most every `LIMIT_NAMES_TTL` s."""

    def __init__(self) -> None:
        self._names: dict[int, tuple[frozenset[str], float]] = {}
        self._lock = threading.Lock()

    def get(self, client: SyncWeirClient) -> frozenset[str]:
        entry = self._names.get(id(client))
        if entry is not None and entry[1] > time.monotonic():
            return entry[0]
        with self._lock:
            entry = self._names.get(id(client))
            if entry is not None and entry[1] > time.monotonic():
                return entry[0]
            try:
                limits = client.read_concurrency_limits(Page(limit=MAX_LIMIT))
                names = frozenset(limit.name for limit in limits if limit.active)
            except (APIError, ServerUnreachable) as exc:
                logger.debug("could not read the concurrency limits: %s", exc)
                names = frozenset()
            self._names[id(client)] = (names, time.monotonic() + LIMIT_NAMES_TTL)
            return names

    def clear(self) -> None:
        self._names.clear()


limit_names = _LimitNames()


def tag_slots(
    task_run: TaskRun, log: Callable[[], logging.LoggerAdapter[logging.Logger]]
) -> ConcurrencySlots:
    """The slots a task run must hold before it starts: one of every `tag:<tag>` limit
    its tags have (`NO_SLOTS` when there is no API or no such limit). `log()` gives the
    run's logger, to say once that it waits."""
    if not task_run.tags:
        return NO_SLOTS
    flow_ctx = flow_run_context.get()
    if flow_ctx is not None and getattr(flow_ctx.recorder, "client", None) is None:
        return NO_SLOTS  # a flow run without the API
    client = api_client()
    if client is None:
        return NO_SLOTS
    existing = limit_names.get(client)
    names = sorted(name for name in map(tag_limit_name, task_run.tags) if name in existing)
    if not names:
        return NO_SLOTS

    def waiting(blocked_by: str | None) -> None:
        tag = (blocked_by or names[0]).removeprefix(TAG_PREFIX)
        log().info("waiting for a slot of tag '%s'", tag)

    return _TagSlots(names, holder=f"run:{task_run.id}", on_wait=waiting)


class _TagSlots(ConcurrencySlots):
    """A task run's tag slots: when the API cannot be reached the task runs anyway,
    as the rest of the run does."""

    def acquire(self) -> None:
        try:
            super().acquire()
        except (APIError, ServerUnreachable) as exc:
            logger.warning("running without tag concurrency slots %s: %s", self.names, exc)


class _NoSlots(ConcurrencySlots):
    def acquire(self) -> None:
        pass

    async def acquire_async(self) -> None:
        pass

    def release(self) -> None:
        pass

    async def release_async(self) -> None:
        pass


NO_SLOTS: ConcurrencySlots = _NoSlots([])
