"""State-change hooks (`on_completion`, `on_failure`, …): run in order, never fatal.

A hook that raises is logged and skipped; it cannot change the run's state.
Async hooks are awaited by the async engine and run to completion by the sync one.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

Hook = Callable[[Any, Any, Any], Any]
logger = logging.getLogger("weir.hooks")


def run_hooks_sync(hooks: Sequence[Hook], owner: Any, run: Any, state: Any) -> None:
    for hook in hooks:
        try:
            outcome = hook(owner, run, state)
            if inspect.isawaitable(outcome):
                import asyncio

                asyncio.run(_await(outcome))
        except Exception:
            _log_failure(hook, run)


async def run_hooks_async(hooks: Sequence[Hook], owner: Any, run: Any, state: Any) -> None:
    for hook in hooks:
        try:
            outcome = hook(owner, run, state)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            _log_failure(hook, run)


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _log_failure(hook: Hook, run: Any) -> None:
    logger.exception(
        "Hook %r of run %r raised; the run's state is unchanged.",
        getattr(hook, "__name__", hook),
        getattr(run, "name", run),
    )
