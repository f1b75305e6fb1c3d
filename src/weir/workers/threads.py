"""Served flows run in the serving process's threads: `serve(..., execution="thread")`.

`flow.serve()` already has its flows imported, so a run needs no process of its own:
each claimed run gets a thread that waits for the run's time and runs the flow there,
reporting through the process's one reporter. Runs that start or end together reach
the API as one request (the reporter batches flow-run states), so a schedule's tick
that makes hundreds of runs due at once starts them on time on a small machine —
where a process per run costs tens of milliseconds of CPU each.

What a thread cannot do that a process can:
- Cancelling raises `CancelledRun` in the run's thread: a flow waiting for its start
  stops at once, running Python code at its next line, but a call blocked in C (a
  socket read, `time.sleep`) only once it returns. A run still going `grace` seconds
  after the cancel is let go: the worker ends it CANCELLED and its thread's later
  reports are refused by the API.
- Output is not captured per run: prints go to the serving process's console (use
  `log_prints=True` to record them as the run's logs).
- The runs share the process: its memory, working directory and environment; a run
  that crashes the interpreter takes the others with it (the zombie reaper crashes
  them, and their retries run).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from weir.engine.timeouts import raise_in_thread
from weir.exceptions import CancelledRun

if TYPE_CHECKING:
    from weir.core.schemas.runs import FlowRun
    from weir.core.schemas.work_pools import ClaimedRun
    from weir.engine.flows import Flow
    from weir.workers.infrastructure import OnOutput

logger = logging.getLogger("weir.worker")

# what poll answers for a run the worker let go of (its thread did not stop in time)
ABANDONED = -9


@dataclass(eq=False)
class ThreadRun:
    """A run in a thread: the handle the worker polls, waits on and kills."""

    name: str
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    code: int | None = None
    # the run's thread while it may be interrupted; guarded by `lock`, so a cancel never
    # raises in a thread that has moved on (or in another that got its id)
    thread_id: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ThreadInfrastructure:
    """Runs the flows of a serving process's deployments, by deployment id."""

    def __init__(self, flows: Mapping[uuid.UUID, Flow[..., Any]]) -> None:
        self.flows = dict(flows)

    def start(self, claimed: ClaimedRun, on_output: OnOutput) -> ThreadRun:
        flow = self.flows.get(claimed.deployment_id) if claimed.deployment_id else None
        if flow is None:
            raise ValueError(
                f"flow run {claimed.flow_run.name!r} is not of a deployment this process serves."
            )
        handle = ThreadRun(claimed.flow_run.name)
        thread = threading.Thread(
            target=self._run,
            args=(flow, claimed.flow_run, handle),
            name=f"weir-run-{claimed.flow_run.name}",
            daemon=True,  # a run left behind after a cancel must not hold the process
        )
        thread.start()
        return handle

    def poll(self, handle: ThreadRun) -> int | None:
        return handle.code

    def wait(self, handle: ThreadRun, timeout: float | None = None) -> int | None:
        handle.done.wait(timeout)
        return handle.code

    def kill(self, handle: ThreadRun, grace: float) -> None:
        """Raise `CancelledRun` in the run's thread; let it go after `grace` seconds."""
        handle.cancel.set()
        with handle.lock:
            if handle.thread_id is not None:
                raise_in_thread(handle.thread_id, CancelledRun)
        if not handle.done.wait(grace) and handle.code is None:
            logger.warning(
                "Flow run %r did not stop within %g s of being cancelled (blocked in a call "
                "Python cannot interrupt); letting it go.",
                handle.name,
                grace,
            )
            handle.code = ABANDONED

    def _run(self, flow: Flow[..., Any], flow_run: FlowRun, handle: ThreadRun) -> None:
        from weir.engine.flow_engine import run_flow_run

        code = 1
        try:
            with handle.lock:
                handle.thread_id = threading.get_ident()
            try:
                if not handle.cancel.is_set():
                    wait = lambda: _wait(flow_run, handle)  # noqa: E731
                    code = (
                        0 if run_flow_run(flow, flow_run, before_start=wait).is_completed() else 1
                    )
            finally:
                with handle.lock:
                    handle.thread_id = None
        except CancelledRun:
            pass  # cancelled outside the flow's body: the worker ends the run CANCELLED
        except BaseException as exc:  # the thread's end must reach the worker whatever it was
            logger.error("Flow run %r stopped: %s: %s", handle.name, type(exc).__name__, exc)
        finally:
            if handle.code is None:
                handle.code = code
            handle.done.set()


def _wait(flow_run: FlowRun, handle: ThreadRun) -> None:
    """Until the run's expected start (it may be claimed ahead of it), unless cancelled."""
    from weir.deployments.execute import start_delay

    if handle.cancel.wait(start_delay(flow_run)):
        raise CancelledRun("The flow run was cancelled before it started.")
