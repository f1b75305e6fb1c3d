"""weir: write pipelines as Python functions under `@flow` and `@task`; weir runs them.

    from weir import flow, task

    @task(retries=3, retry_delay_seconds=10)
    def fetch(url: str) -> bytes: ...

    @flow(log_prints=True)
    def etl(urls: list[str]) -> int:
        pages = fetch.map(urls)
        return sum(len(p) for p in pages.result())

`import weir` does no work: every name below is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Flow": "weir.engine.flows",
    "ProcessPoolTaskRunner": "weir.engine.process_pool",
    "State": "weir.core.states",
    "Task": "weir.engine.tasks",
    "ThreadPoolTaskRunner": "weir.engine.task_runners",
    "WeirFuture": "weir.engine.futures",
    "allow_failure": "weir.engine.annotations",
    "as_completed": "weir.engine.futures",
    "concurrency": "weir.engine.concurrency",
    "exponential_backoff": "weir.engine.retries",
    "flow": "weir.engine.flows",
    "get_run_context": "weir.engine.contexts",
    "get_run_logger": "weir.engine.logging",
    "quote": "weir.engine.annotations",
    "runtime": "weir",
    "serve": "weir.workers.serve",
    "tags": "weir.engine.contexts",
    "task": "weir.engine.tasks",
    "unmapped": "weir.engine.annotations",
    "wait": "weir.engine.futures",
}

__all__ = [
    "Flow",
    "ProcessPoolTaskRunner",
    "State",
    "Task",
    "ThreadPoolTaskRunner",
    "WeirFuture",
    "__version__",
    "allow_failure",
    "as_completed",
    "concurrency",
    "exponential_backoff",
    "flow",
    "get_run_context",
    "get_run_logger",
    "quote",
    "runtime",
    "serve",
    "tags",
    "task",
    "unmapped",
    "wait",
]

if TYPE_CHECKING:
    from weir import runtime
    from weir.core.states import State
    from weir.engine.annotations import allow_failure, quote, unmapped
    from weir.engine.concurrency import concurrency
    from weir.engine.contexts import get_run_context, tags
    from weir.engine.flows import Flow, flow
    from weir.engine.futures import WeirFuture, as_completed, wait
    from weir.engine.logging import get_run_logger
    from weir.engine.process_pool import ProcessPoolTaskRunner
    from weir.engine.retries import exponential_backoff
    from weir.engine.task_runners import ThreadPoolTaskRunner
    from weir.engine.tasks import Task, task
    from weir.workers.serve import serve


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'weir' has no attribute {name!r}")
    if name == "runtime":
        value: Any = importlib.import_module("weir.runtime")
    else:
        value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
