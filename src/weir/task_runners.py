"""Task runners, as `prefect.task_runners` offers them."""

from weir.engine.process_pool import ProcessPoolTaskRunner
from weir.engine.task_runners import TaskRunner, ThreadPoolTaskRunner

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]
