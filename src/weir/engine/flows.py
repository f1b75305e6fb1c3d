"""`@flow`: a function whose calls become tracked flow runs.

Calling a flow runs it and returns its value, or raises its exception; an async
flow returns a coroutine. A flow called inside another flow is a subflow: a
child run linked to its parent.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar, overload

from weir.engine.hooks import Hook
from weir.engine.parameters import Signature
from weir.engine.retries import normalise_delays

if TYPE_CHECKING:
    from weir.core.schemas.deployments import Deployment, DeploymentCreate
    from weir.engine.flow_engine import ReturnType
    from weir.engine.results import ResultStore
    from weir.engine.serializers import Serializer
    from weir.engine.task_runners import TaskRunner

P = ParamSpec("P")
R = TypeVar("R")

_OPTIONS = (
    "name", "version", "description", "flow_run_name", "retries", "retry_delay_seconds",
    "timeout_seconds", "validate_parameters", "log_prints", "task_runner", "persist_result",
    "result_storage", "result_serializer", "cache_result_in_memory", "on_completion",
    "on_failure", "on_cancellation", "on_crashed", "on_running",
)  # fmt: skip


class Flow(Generic[P, R]):
    """A function under `@flow`. Options as in Prefect 3's `@flow`."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        version: str | None = None,
        description: str | None = None,
        flow_run_name: str | Callable[[], str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | None = None,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        log_prints: bool | None = None,
        task_runner: TaskRunner | None = None,
        persist_result: bool | None = None,
        result_storage: ResultStore | str | None = None,
        result_serializer: Serializer | str | None = None,
        cache_result_in_memory: bool = True,
        on_completion: list[Hook] | None = None,
        on_failure: list[Hook] | None = None,
        on_cancellation: list[Hook] | None = None,
        on_crashed: list[Hook] | None = None,
        on_running: list[Hook] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError("@flow must decorate a function.")
        # the options as given, for with_options()
        self._options: dict[str, Any] = {k: v for k, v in locals().items() if k in _OPTIONS}
        self.fn = fn
        self.name = name or fn.__name__.replace("_", "-")
        _check_name(self.name)
        self.version = version
        self.description = description if description is not None else inspect.getdoc(fn)
        self.flow_run_name = flow_run_name
        self.retries = retries or 0
        if self.retries < 0:
            raise ValueError(f"Flow {self.name!r}: retries must be 0 or more, got {self.retries}.")
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_delays = normalise_delays(
            retry_delay_seconds, self.retries, f"Flow {self.name!r}"
        )
        if timeout_seconds is not None and timeout_seconds <= 0:
            raise ValueError(f"Flow {self.name!r}: timeout_seconds must be positive.")
        self.timeout_seconds = timeout_seconds
        self.validate_parameters = validate_parameters
        self.log_prints = log_prints
        if task_runner is None:
            from weir.engine.task_runners import ThreadPoolTaskRunner

            task_runner = ThreadPoolTaskRunner()
        elif isinstance(task_runner, type):
            task_runner = task_runner()
        self.task_runner = task_runner
        self.persist_result = persist_result
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.cache_result_in_memory = cache_result_in_memory
        self.hooks: dict[str, list[Hook]] = {
            "on_completion": list(on_completion or ()),
            "on_failure": list(on_failure or ()),
            "on_cancellation": list(on_cancellation or ()),
            "on_crashed": list(on_crashed or ()),
            "on_running": list(on_running or ()),
        }
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = Signature(fn, f"Flow {self.name!r}")
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn

    @overload
    def __call__(
        self: Flow[P, Coroutine[Any, Any, R]], *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, R]: ...

    @overload
    def __call__(self: Flow[P, R], *args: P.args, **kwargs: P.kwargs) -> R: ...

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the flow. `return_state=True` returns its final state instead of its value."""
        return_type: ReturnType = "state" if kwargs.pop("return_state", False) else "result"
        if self.is_async:
            from weir.engine.flow_engine import run_flow_async

            return run_flow_async(self, args, kwargs, return_type=return_type)
        from weir.engine.flow_engine import run_flow_sync

        return run_flow_sync(self, args, kwargs, return_type=return_type)

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed."""
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(
                f"Flow.with_options() got unknown option(s): {', '.join(sorted(unknown))}."
            )
        current: dict[str, Any] = {**self._options, **options}
        if "task_runner" not in options:
            current["task_runner"] = self.task_runner.duplicate()
        return Flow(self.fn, **current)

    def on_completion(self, fn: Hook) -> Hook:
        self.hooks["on_completion"].append(fn)
        return fn

    def on_failure(self, fn: Hook) -> Hook:
        self.hooks["on_failure"].append(fn)
        return fn

    def on_cancellation(self, fn: Hook) -> Hook:
        self.hooks["on_cancellation"].append(fn)
        return fn

    def on_crashed(self, fn: Hook) -> Hook:
        self.hooks["on_crashed"].append(fn)
        return fn

    def on_running(self, fn: Hook) -> Hook:
        self.hooks["on_running"].append(fn)
        return fn

    def deploy(self, name: str, work_pool_name: str, **options: Any) -> Deployment:
        """Register this flow as deployment `name` on a work pool; the options are
        `weir.deployments.publish.to_deployment`'s (cron=, interval=, parameters=, tags=,
        catchup="all" | "latest" | "skip", max_lateness="2h", …)."""
        from weir.deployments.publish import deploy

        return deploy(self, name, work_pool_name, **options)

    def to_deployment(self, name: str, **options: Any) -> DeploymentCreate:
        """The body `deploy` would send, without sending it."""
        from weir.deployments.publish import to_deployment

        return to_deployment(self, name, **options)

    def serve(
        self,
        name: str | None = None,
        *,
        limit: int | None = None,
        execution: Literal["process", "thread"] = "process",
        **options: Any,
    ) -> None:
        """Serve this flow as a deployment from this process until stopped (SIGTERM,
        Ctrl-C): options are cron=, interval=, rrule=, timezone=, parameters=, tags=,
        description=, version=, catchup= ("all", "latest" or "skip": the runs that became
        late while nothing served them) and max_lateness= (e.g. "2h": a run that late is
        marked Missed, not started); `limit` caps the runs at once; `execution` runs each
        run in a process of its own ("process") or a thread of this one ("thread")."""
        from weir.workers.serve import serve

        serve((self, {"name": name or self.name, **options}), limit=limit, execution=execution)

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


def flow(__fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make a function a flow: `@flow` or `@flow(name="etl", retries=2)`."""
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)


def _check_name(name: str) -> None:
    bad = set(name) & set("/%&><")
    if bad:
        raise ValueError(
            f"Flow name {name!r} contains {''.join(sorted(bad))!r}; names may not contain / % & > <."
        )
