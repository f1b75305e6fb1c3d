"""Facts about the run in progress, for code running inside it.

    from weir import runtime

    runtime.flow_run.name      # "crimson-otter", or None outside a flow run
    runtime.task_run.run_count

Each attribute is read from the run contexts when it is accessed.
"""

from __future__ import annotations

from weir.runtime import flow_run, task_run

__all__ = ["flow_run", "task_run"]
