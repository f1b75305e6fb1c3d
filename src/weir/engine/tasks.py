"""`@task`: a function whose calls become tracked task runs.

Calling a task runs it in the caller's thread and returns its value (an async
task returns a coroutine, like any async function). `.submit()` hands it to the
flow's task runner and returns a future; `.map()` submits one run per element.
"""

from __future__ import annotations

import datetime
import hashlib
import inspect
from collections.abc import Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from weir.engine.hooks import Hook
from weir.engine.parameters import Signature
from weir.engine.retries import RetryDelay, normalise_delays

if TYPE_CHECKING:
    from weir.engine.cache_policies import CachePolicy
    from weir.engine.futures import WeirFuture, WeirFutureList
    from weir.engine.results import ResultStore
    from weir.engine.serializers import Serializer
    from weir.engine.task_engine import ReturnType

P = ParamSpec("P")
R = TypeVar("R")

_NOT_SET: Any = object()
_OPTIONS = (
    "name", "description", "tags", "version", "cache_policy", "cache_key_fn",
    "cache_expiration", "task_run_name", "retries", "retry_delay_seconds",
    "retry_jitter_factor", "persist_result", "result_storage", "result_serializer",
    "cache_result_in_memory", "timeout_seconds", "log_prints", "refresh_cache",
    "on_completion", "on_failure", "on_running", "retry_condition_fn",
)  # fmt: skip


class Task(Generic[P, R]):
    """A function under `@task`. Options as in Prefect 3's `@task`."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        cache_policy: CachePolicy | None = _NOT_SET,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_expiration: datetime.timedelta | None = None,
        task_run_name: str | Callable[[], str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: RetryDelay = None,
        retry_jitter_factor: float | None = None,
        persist_result: bool | None = None,
        result_storage: ResultStore | str | None = None,
        result_serializer: Serializer | str | None = None,
        cache_result_in_memory: bool = True,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        refresh_cache: bool | None = None,
        on_completion: list[Hook] | None = None,
        on_failure: list[Hook] | None = None,
        on_running: list[Hook] | None = None,
        retry_condition_fn: Callable[[Task[..., Any], Any, Any], bool] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("@task must decorate a function.")
        # the options as given, for with_options()
        self._options: dict[str, Any] = {k: v for k, v in locals().items() if k in _OPTIONS}
        self.fn = fn
        self.name = name or fn.__name__
        self.description = description if description is not None else inspect.getdoc(fn)
        self.tags = frozenset(tags or ())
        self.version = version
        self.is_async = inspect.iscoroutinefunction(fn)
        self.retries = _non_negative(retries or 0, "retries", self.name)
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_delays = normalise_delays(
            retry_delay_seconds, self.retries, f"Task {self.name!r}"
        )
        if retry_jitter_factor is not None and retry_jitter_factor < 0:
            raise ValueError(f"Task {self.name!r}: retry_jitter_factor must not be negative.")
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"Task {self.name!r}: timeout_seconds must be positive.")
        self.timeout_seconds = timeout_seconds
        self.task_run_name = task_run_name
        self.log_prints = log_prints
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.cache_result_in_memory = cache_result_in_memory
        self.cache_key_fn = cache_key_fn
        self.cache_expiration = cache_expiration
        self.refresh_cache = refresh_cache
        self._explicit_cache_policy = cache_policy
        self.cache_policy = _cache_policy(cache_policy, cache_key_fn)
        # persistence turns on by itself when the user configured caching or storage
        self.caching_configured = _configures_caching(cache_policy) or any(
            x is not None for x in (cache_key_fn, result_storage, result_serializer)
        )
        self.on_completion_hooks = list(on_completion or ())
        self.on_failure_hooks = list(on_failure or ())
        self.on_running_hooks = list(on_running or ())
        self.signature = Signature(fn, f"Task {self.name!r}")
        self.task_key = _task_key(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn

    # -- calling -------------------------------------------------------------
    @overload
    def __call__(
        self: Task[P, Coroutine[Any, Any, R]], *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, R]: ...

    @overload
    def __call__(self: Task[P, R], *args: P.args, **kwargs: P.kwargs) -> R: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task now, in this thread. `return_state=True` returns its final state;
        `wait_for=[futures]` waits for those first."""
        return_state = kwargs.pop("return_state", False)
        wait_for = kwargs.pop("wait_for", None)
        parameters = self.signature.bind(args, kwargs)
        return_type: ReturnType = "state" if return_state else "result"
        if self.is_async:
            from weir.engine.task_engine import run_task_async

            return run_task_async(self, parameters, wait_for, return_type=return_type)
        from weir.engine.task_engine import run_task_sync

        return run_task_sync(self, parameters, wait_for, return_type=return_type)

    def submit(self, *args: Any, **kwargs: Any) -> WeirFuture[R]:
        """Hand the task to the flow's task runner; return a future of its run."""
        wait_for = kwargs.pop("wait_for", None)
        kwargs.pop("return_state", None)
        parameters = self.signature.bind(args, kwargs)
        from weir.engine.task_runners import current_task_runner

        return current_task_runner().submit(self, parameters, wait_for)

    def map(self, *args: Any, **kwargs: Any) -> WeirFutureList[R]:
        """Submit one run per element of the iterable arguments (`unmapped(x)` passes x whole)."""
        wait_for = kwargs.pop("wait_for", None)
        kwargs.pop("return_state", None)
        from weir.engine.mapping import expand_map_arguments
        from weir.engine.task_runners import current_task_runner

        calls = expand_map_arguments(self, args, kwargs)
        return current_task_runner().map(self, calls, wait_for)

    # -- configuring -----------------------------------------------------------
    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed."""
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(
                f"Task.with_options() got unknown option(s): {', '.join(sorted(unknown))}."
            )
        current: dict[str, Any] = {**self._options, **options}
        return Task(self.fn, **current)

    def on_completion(self, fn: Hook) -> Hook:
        self.on_completion_hooks.append(fn)
        return fn

    def on_failure(self, fn: Hook) -> Hook:
        self.on_failure_hooks.append(fn)
        return fn

    def on_running(self, fn: Hook) -> Hook:
        self.on_running_hooks.append(fn)
        return fn

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


def task(__fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make a function a task: `@task` or `@task(retries=3, retry_delay_seconds=10)`."""
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)


def _cache_policy(policy: Any, cache_key_fn: Any) -> CachePolicy:
    from weir.engine import cache_policies

    chosen = cache_policies.DEFAULT if policy is _NOT_SET or policy is None else policy
    if cache_key_fn is not None:
        key_policy = cache_policies.CacheKeyFnPolicy(cache_key_fn)
        return key_policy if policy is _NOT_SET or policy is None else chosen + key_policy
    return chosen


def _configures_caching(policy: Any) -> bool:
    if policy is _NOT_SET or policy is None:
        return False
    from weir.engine.cache_policies import NO_CACHE

    return policy is not NO_CACHE


def _task_key(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    where = f"{getattr(code, 'co_filename', '')}:{getattr(code, 'co_firstlineno', 0)}"
    digest = hashlib.sha256(where.encode()).hexdigest()[:10]
    return f"{getattr(fn, '__qualname__', 'task')}-{digest}"


def _non_negative(value: int, option: str, name: str) -> int:
    if value < 0:
        raise ValueError(f"Task {name!r}: {option} must be 0 or more, got {value}.")
    return value
