"""The batching reporter: how a run's records reach the weir API (DESIGN.md §3, path 1).

The engine's threads only append to one queue (O(1), no I/O). One sender thread
drains it in order and sends task runs and logs in batches — one request per
~100 ms or 500 records, whichever comes first — coalescing the states of a task
run into one `TaskRunUpsert`. Flow-run creation and flow-run states travel the
same queue, so they stay in order with the records before them, but their
caller waits for the server's answer (the server orchestrates flow runs).

When the API is unreachable the user's code keeps running: records wait in a
bounded buffer (the oldest are dropped past `max_buffer`), callers stop waiting
for answers, and the sender retries with backoff, saying so once in the
"weir.reporter" log. Its own lines never reach the API.
"""

from __future__ import annotations

import atexit
import logging
import queue
import random
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from weir.client.sync import SyncWeirClient
from weir.core.schemas.runs import FlowRunCreate
from weir.core.schemas.states import OrchestrationResult, OrchestrationStatus, state_to_schema
from weir.core.states import StateType
from weir.engine.leases import LeaseKeeper
from weir.engine.reporter_batch import jsonable, logs_body, task_runs_body
from weir.exceptions import APIError, ServerUnreachable

if TYPE_CHECKING:
    from weir.core.runs import FlowRun, TaskRun
    from weir.core.states import State
    from weir.settings import Settings

logger = logging.getLogger("weir.reporter")

_TASK, _LOG, _CALL, _FLUSH, _STOP, _TICK = range(6)
BATCH_SIZE = 500
# flow-run states waiting together go in one request (a process running many flows)
STATE_BATCH_SIZE = 500
BATCH_SECONDS = 0.1
# While gathering a batch the sender looks at the queue this often, instead of waking
# for every record: each wake-up takes the GIL from the thread running the user's code.
# Flushes, flow-run calls and stop wake it at once.
GATHER_POLL_SECONDS = 0.01


class _Call:
    """A flow-run request queued in order; its caller may wait for the answer."""

    __slots__ = ("args", "done", "method", "result")

    def __init__(self, method: str, *args: Any) -> None:
        self.method, self.args = method, args
        self.done = threading.Event()
        self.result: Any = None


def _joins_states(item: tuple[Any, ...]) -> bool:
    """Whether a buffered item may go with a batch of flow-run states: a state, a flush
    or a record (another call, or the stop, ends the batch)."""
    kind = item[0]
    if kind == _CALL:
        return bool(item[1].method == "set_flow_run_state")
    return kind in (_FLUSH, _TASK, _LOG)


class Reporter:
    """Sends this process's run records to the API; see the module docstring."""

    def __init__(
        self,
        client: SyncWeirClient,
        *,
        max_buffer: int = 100_000,
        answer_timeout: float = 30.0,
        max_backoff: float = 30.0,
        lease_seconds: float | None = None,
    ) -> None:
        """`lease_seconds`: lease the top-level flow runs it moves to RUNNING for this
        long, renewed every third of it (engine/leases.py); None: no leases."""
        self.client = client
        self.leases = LeaseKeeper(lease_seconds) if lease_seconds else None
        self.api_url = client.api_url
        self.max_buffer = max_buffer
        self.answer_timeout = answer_timeout
        self.max_backoff = max_backoff
        self.dropped = 0
        self.sent = 0
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._put = self._queue.put
        self._wake = threading.Event()  # set after queueing what must not wait for a batch
        self._pending: deque[tuple[Any, ...]] = deque()
        self._down = False
        self._failures = 0
        self._sent_while_down = 0
        # refusals (4xx) by reason: the first of each is logged, the rest only counted
        self._refused: dict[str, int] = {}
        self._thread = threading.Thread(target=self._run, name="weir-reporter", daemon=True)
        self._thread.start()
        self.log_handler = APILogHandler(self._put)

    # -- what the engine calls (RunRecorder) ------------------------------------------
    def task_run_state(self, task_run: TaskRun, state: State) -> None:
        self._put((_TASK, task_run, state))

    def flow_run_created(self, flow_run: FlowRun) -> None:
        body = FlowRunCreate(
            id=flow_run.id,
            name=flow_run.name,
            flow_name=flow_run.flow_name,
            parameters=jsonable(flow_run.parameters),
            tags=sorted(flow_run.tags),
            parent_flow_run_id=flow_run.parent_flow_run_id,
            parent_task_run_id=flow_run.parent_task_run_id,
            deployment_id=flow_run.deployment_id,
            state=state_to_schema(flow_run.state),
            expected_start_time=flow_run.expected_start_time,
        )
        self._call("create_flow_run", body)

    def flow_run_state(
        self, flow_run: FlowRun, state: State, **details: Any
    ) -> OrchestrationResult | None:
        leases = self.leases if flow_run.parent_flow_run_id is None else None
        running = state.type is StateType.RUNNING
        if leases is not None and running:
            details.setdefault("lease_seconds", leases.lease_seconds)
            details.setdefault("lease_owner", leases.owner)
        result = self._call("set_flow_run_state", flow_run.id, state_to_schema(state, **details))
        answer = result if isinstance(result, OrchestrationResult) else None
        if leases is not None:
            if running and (answer is None or answer.status is OrchestrationStatus.ACCEPT):
                leases.hold(flow_run.id)
                self._put((_TICK,))  # the sender may be waiting with no renewal due
            else:
                leases.release(flow_run.id)
        return answer

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued before this call is sent or given up."""
        if not self._thread.is_alive():
            return False
        call = _Call("flush")
        self._put((_FLUSH, call))
        self._wake.set()
        return call.done.wait(self.answer_timeout if timeout is None else timeout) and not (
            self._down
        )

    def close(self, timeout: float = 2.0, *, wait_for_api: bool = False) -> None:
        """Flush for at most `timeout` seconds, then stop the sender and the client.
        `wait_for_api`: while the API is away, keep trying until `timeout` is up (a
        worker's run: its final state is worth a wait) rather than give up at once."""
        if self._thread.is_alive():
            self.flush(timeout)
            deadline = time.monotonic() + (timeout if wait_for_api else 0.0)
            self._put((_STOP, deadline))
            self._wake.set()
            self._thread.join(timeout + 1.0 if wait_for_api else timeout)
        if self._pending and not self._thread.is_alive():
            logger.warning(
                "weir API at %s unreachable; %d records were not sent.",
                self.api_url,
                len(self._pending),
            )
        for reason, count in self._refused.items():
            if count > 1:
                logger.warning("The weir API refused %d more requests: %s", count - 1, reason)
        try:
            self.client.close(timeout)
        except Exception:  # at exit, a stuck connection must not print a traceback
            pass

    def _call(self, method: str, *args: Any) -> Any:
        call = _Call(method, *args)
        self._put((_CALL, call))
        self._wake.set()
        if self._down or not self._thread.is_alive():
            return None  # it stays queued and is sent once the API answers again
        call.done.wait(self.answer_timeout)
        return call.result

    # -- the sender thread ---------------------------------------------------------------
    def _run(self) -> None:
        pending, get = self._pending, self._queue.get
        next_try = 0.0
        while True:
            lease_wait = self._renew_leases()
            if not pending:
                try:
                    self._accept(get(timeout=lease_wait))
                except queue.Empty:  # a lease renewal is due
                    continue
            if self._down:  # buffer whatever arrives until the next try is due
                wait = next_try - time.monotonic()
                if wait > 0 and not (pending and pending[-1][0] == _STOP):
                    try:
                        self._accept(get(timeout=wait))
                    except queue.Empty:
                        pass
                    continue
            else:  # gather a batch: BATCH_SIZE records, BATCH_SECONDS, or a call that waits
                due = time.monotonic() + BATCH_SECONDS
                while self._gathering():
                    self._drain()
                    wait = due - time.monotonic()
                    if wait <= 0 or not self._gathering():
                        break
                    self._wake.wait(min(wait, GATHER_POLL_SECONDS))
                    self._wake.clear()
            if pending and pending[-1][0] == _STOP:
                self._deliver_before(pending.pop()[1])
                return
            if self._deliver():
                self._failures = 0
            else:
                self._failures += 1
                backoff = min(self.max_backoff, 0.5 * 2 ** (self._failures - 1))
                next_try = time.monotonic() + backoff * random.uniform(0.5, 1.0)

    def _deliver_before(self, deadline: float) -> None:
        """At close: send what is left; while the API is away, try again until `deadline`."""
        if self._down and time.monotonic() >= deadline:
            return  # the API is away, and there is no time to wait for it
        pause = 0.1
        while not self._deliver():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 2.0)

    def _renew_leases(self) -> float | None:
        """Renew the leases that are due; the seconds until the next one (None: none held)."""
        leases = self.leases
        if leases is None or self._down:
            return None
        try:
            leases.renew_due(self.client)
        except ServerUnreachable:
            pass  # tried again shortly; records being sent notice the API is away
        except Exception:  # a bug here must not kill the sender
            logger.exception("The weir reporter failed to renew leases.")
        return leases.seconds_to_next()

    def _gathering(self) -> bool:
        """The buffer holds fewer than BATCH_SIZE records, and nobody waits on it."""
        pending = self._pending
        return 0 < len(pending) < BATCH_SIZE and pending[-1][0] in (_TASK, _LOG)

    def _drain(self) -> None:
        """Take what is queued into the buffer without waiting, up to and including the
        first item that is not a record (so it is last, and sent without delay)."""
        get = self._queue.get_nowait
        for _ in range(self._queue.qsize()):
            item = get()
            self._accept(item)
            if item[0] not in (_TASK, _LOG):
                return

    def _accept(self, item: tuple[Any, ...]) -> None:
        """Take one item off the queue into the ordered buffer."""
        kind = item[0]
        if kind == _TICK:  # only woke the sender (to look at its leases)
            return
        if self._down:
            if kind == _FLUSH:  # nothing will be sent soon; don't hold the caller
                item[1].done.set()
                return
            if kind == _CALL:
                item[1].done.set()
        self._pending.append(item)
        if len(self._pending) > self.max_buffer:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        pending, kept = self._pending, []
        while len(pending) > self.max_buffer:
            item = pending.popleft()
            if item[0] in (_TASK, _LOG):
                if self.dropped == 0:
                    logger.warning(
                        "weir API at %s unreachable; the buffer of %d records is full, "
                        "dropping the oldest.",
                        self.api_url,
                        self.max_buffer,
                    )
                self.dropped += 1
            else:
                kept.append(item)
        pending.extendleft(reversed(kept))

    def _deliver(self) -> bool:
        """Send the buffer in order; False if the API became (or stayed) unreachable."""
        pending = self._pending
        try:
            while pending:
                head = pending[0]
                if head[0] == _FLUSH:
                    pending.popleft()[1].done.set()
                elif head[0] == _CALL and head[1].method == "set_flow_run_state":
                    self._send_states()
                elif head[0] == _CALL:
                    self._send_call(head[1])
                    pending.popleft()
                elif head[0] == _STOP:
                    break  # the run loop delivers what is left before it, then stops
                else:
                    self._send_records()
        except ServerUnreachable:
            self._went_down()
            return False
        except Exception:  # a bug here must not kill the sender, nor reach user code
            logger.exception("The weir reporter failed to send records; dropping them.")
            self._release_waiters()
            pending.clear()
            return True
        if self._down:
            self._down = False
            logger.warning(
                "weir API at %s reachable again, sent %d records.",
                self.api_url,
                self._sent_while_down,
            )
        return True

    def _send_call(self, call: _Call) -> None:
        try:
            call.result = getattr(self.client, call.method)(*call.args)
        except APIError as exc:
            self._note_refusal(f"{call.method.replace('_', ' ')}: {exc}")
        else:
            if self._down:
                self._sent_while_down += 1
        call.done.set()

    def _send_states(self) -> None:
        """Send the flow-run state at the head of the buffer together with the states
        queued behind it meanwhile, in one request: runs that turn RUNNING together (a
        serving process's at a schedule's tick) cost the server one transaction, not a
        request each. Records and flushes among those states are sent (answered) first:
        records only ever move earlier, so what was queued before a state still reaches
        the server before it."""
        pending, get = self._pending, self._queue.get_nowait
        while len(pending) < 2 * STATE_BATCH_SIZE and _joins_states(pending[-1]):
            try:
                self._accept(get())
            except queue.Empty:
                break
        group: list[tuple[Any, ...]] = []
        calls = 0
        while pending and calls < STATE_BATCH_SIZE and _joins_states(pending[0]):
            item = pending.popleft()
            calls += item[0] == _CALL
            group.append(item)
        records = [item for item in group if item[0] in (_TASK, _LOG)]
        waiting = [item for item in group if item[0] not in (_TASK, _LOG)]
        pending.extendleft(reversed(records + waiting))
        while pending and pending[0][0] in (_TASK, _LOG):
            self._send_records()
        for _ in waiting:
            pending.popleft()
        states = [call for kind, call in waiting if kind == _CALL]
        try:
            if len(states) == 1:
                self._send_call(states[0])
            else:
                self._send_state_batch(states)
        except ServerUnreachable:
            pending.extendleft(reversed(waiting))  # what was not sent, back in front
            raise
        for kind, flush in waiting:
            if kind == _FLUSH:
                flush.done.set()

    def _send_state_batch(self, calls: list[_Call]) -> None:
        from weir.core.schemas.runs import FlowRunStateProposal

        proposals = [FlowRunStateProposal(flow_run_id=c.args[0], state=c.args[1]) for c in calls]
        try:
            results = self.client.set_flow_run_states(proposals)
        except APIError as exc:
            self._note_refusal(f"set flow run states: {exc}")
        else:
            for call, result in zip(calls, results, strict=True):
                call.result = result
            if self._down:
                self._sent_while_down += len(calls)
        for call in calls:
            call.done.set()

    def _send_records(self) -> None:
        """Send the task runs and logs at the head of the buffer (up to BATCH_SIZE)."""
        pending = self._pending
        tasks: list[tuple[Any, ...]] = []
        logs: list[tuple[Any, ...]] = []
        while pending and len(tasks) + len(logs) < BATCH_SIZE and pending[0][0] in (_TASK, _LOG):
            item = pending.popleft()
            (tasks if item[0] == _TASK else logs).append(item)
        try:
            if tasks:
                self._post("upsert_task_runs", task_runs_body(tasks), len(tasks))
                tasks = []
            if logs:
                self._post("create_logs", logs_body(logs), len(logs))
        except ServerUnreachable:
            pending.extendleft(reversed(tasks + logs))  # what was not sent, back in front
            raise

    def _post(self, method: str, body: bytes, count: int) -> None:
        try:
            getattr(self.client, method)(body)
        except APIError as exc:
            self._note_refusal(f"{method.replace('_', ' ')} (records dropped): {exc}")
            return
        self.sent += count
        if self._down:
            self._sent_while_down += count

    def _note_refusal(self, reason: str) -> None:
        """Log a refusal (wrong credentials, a bad project, …) once; count repeats."""
        count = self._refused.get(reason, 0) + 1
        self._refused[reason] = count
        if count == 1:
            logger.warning(
                "The weir API refused %s (repeats are counted, not logged, until exit)", reason
            )

    def _went_down(self) -> None:
        if not self._down:
            self._down = True
            self._sent_while_down = 0
            logger.warning(
                "weir API at %s unreachable; buffering %d records; retrying.",
                self.api_url,
                len(self._pending),
            )
        self._release_waiters()

    def _release_waiters(self) -> None:
        kept: deque[tuple[Any, ...]] = deque()
        for item in self._pending:
            if item[0] in (_FLUSH, _CALL):
                item[1].done.set()
            if item[0] != _FLUSH:
                kept.append(item)
        self._pending.clear()
        self._pending.extend(kept)


class APILogHandler(logging.Handler):
    """Queues the log records of runs (those with a flow_run_id or task_run_id) for the API."""

    def __init__(self, put: Any) -> None:
        super().__init__()
        self._put = put
        self.setFormatter(logging.Formatter("%(message)s"))

    def handle(self, record: logging.LogRecord) -> bool:
        # No handler lock: the queue is thread-safe, and this runs on every run log line.
        if record.name.startswith("weir.reporter"):
            return False
        flow_run_id = getattr(record, "flow_run_id", None)
        task_run_id = getattr(record, "task_run_id", None)
        if flow_run_id is None and task_run_id is None:
            return False
        try:
            message = self.format(record)
        except Exception:
            self.handleError(record)
            return False
        self._put(
            (_LOG, record.name, record.levelno, message, record.created, flow_run_id, task_run_id)
        )
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)


# -- one reporter per process ------------------------------------------------------------
_lock = threading.Lock()
_reporter: Reporter | None = None
_reporter_key: tuple[Any, ...] | None = None
_atexit_registered = False


def get_reporter(settings: Settings) -> Reporter:
    """The process's reporter for these settings, started on first use."""
    global _reporter, _reporter_key, _atexit_registered
    secret = settings.api.auth_string
    key = (settings.api.url, secret.get_secret_value() if secret else None, settings.project)
    reporter = _reporter
    if reporter is not None and _reporter_key == key:
        return reporter
    with _lock:
        if _reporter is not None and _reporter_key == key:
            return _reporter
        shutdown_reporter()
        from weir.client.retries import RetryPolicy

        client = SyncWeirClient.from_settings(settings, retry=RetryPolicy(attempts=3, base=0.2))
        _reporter = Reporter(client, lease_seconds=settings.worker.lease_seconds)
        _reporter_key = key
        from weir.engine.logging import setup_logging

        setup_logging()  # first, so the "weir" logger still gets its stderr handler
        logging.getLogger("weir").addHandler(_reporter.log_handler)
        if not _atexit_registered:
            atexit.register(shutdown_reporter)
            _atexit_registered = True
        return _reporter


def shutdown_reporter(timeout: float = 2.0, *, wait_for_api: bool = False) -> None:
    """Flush (bounded by `timeout`) and stop the process's reporter, if one is running;
    `wait_for_api` as `Reporter.close`."""
    global _reporter, _reporter_key
    reporter, _reporter, _reporter_key = _reporter, None, None
    if reporter is not None:
        logging.getLogger("weir").removeHandler(reporter.log_handler)
        reporter.close(timeout, wait_for_api=wait_for_api)
