"""Logging for runs: the "weir" logger's handler, run loggers, and capturing `print`.

A run logger is a `LoggerAdapter` whose extra fields (flow_run_id, task_run_name,
…) land on every record, so a handler can tell which run a line belongs to. The
`Flow run 'x' - ` prefix is added by `RunFormatter` from those fields; the
record's message itself stays clean.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TextIO

from weir.engine.contexts import FlowRunContext, TaskRunContext, flow_run_context, task_run_context
from weir.exceptions import MissingContextError

if TYPE_CHECKING:
    from weir.core.runs import FlowRun, TaskRun

_lock = threading.Lock()
_configured = False
_capturing_prints = False
original_print: Callable[..., None] = builtins.print  # what `print` was before capture


class RunFormatter(logging.Formatter):
    """`12:03:04.567 | INFO    | Flow run 'crimson-otter' - Beginning flow run`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d | %(levelname)-7s | %(message)s", "%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        # The format string above documents the layout and makes `format()` set
        # `record.asctime`; the run prefix goes between the level and the message.
        header = f"{record.asctime}.{int(record.msecs):03d} | {record.levelname:<7} | "
        return header + run_prefix(record) + record.message


def run_prefix(record: logging.LogRecord) -> str:
    """`Task run 'y' - ` or `Flow run 'x' - ` for records from run loggers, else ''."""
    task_run_name = getattr(record, "task_run_name", None)
    if task_run_name is not None:
        return f"Task run '{task_run_name}' - "
    flow_run_name = getattr(record, "flow_run_name", None)
    if flow_run_name is not None:
        return f"Flow run '{flow_run_name}' - "
    return ""


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is now (pytest and others swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def setup_logging() -> None:
    """Give the "weir" logger a stderr handler and the configured level, once per process.

    If the user already attached handlers to "weir", it is left as they set it up.
    """
    global _configured
    if _configured:
        return
    with _lock:
        if _configured:
            return
        from weir.settings import get_settings

        logger = logging.getLogger("weir")
        if not logger.handlers:
            handler = _StderrHandler()
            handler.setFormatter(RunFormatter())
            logger.addHandler(handler)
            logger.setLevel(get_settings().logging.level)
        _configured = True


class RunLoggerAdapter(logging.LoggerAdapter[logging.Logger]):
    """Adds the run's fields to every record, merged with any `extra=` of the call."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        extra = kwargs.get("extra")
        kwargs["extra"] = {**self.extra, **extra} if extra else self.extra  # type: ignore[dict-item]
        return msg, kwargs


def flow_run_logger(flow_run: FlowRun) -> RunLoggerAdapter:
    """The logger for `flow_run` ("weir.flow_runs"); build it once per run."""
    return RunLoggerAdapter(
        logging.getLogger("weir.flow_runs"),
        {
            "flow_run_id": str(flow_run.id),
            "flow_run_name": flow_run.name,
            "flow_name": flow_run.flow_name,
        },
    )


def task_run_logger(task_run: TaskRun, flow_run: FlowRun | None = None) -> RunLoggerAdapter:
    """The logger for `task_run` ("weir.task_runs"); `flow_run` is None outside a flow."""
    flow_run_id = task_run.flow_run_id if flow_run is None else flow_run.id
    extra: Mapping[str, object] = {
        "task_run_id": str(task_run.id),
        "task_run_name": task_run.name,
        "task_name": task_run.task_name,
        "flow_run_id": None if flow_run_id is None else str(flow_run_id),
        "flow_run_name": None if flow_run is None else flow_run.name,
        "flow_name": None if flow_run is None else flow_run.flow_name,
    }
    return RunLoggerAdapter(logging.getLogger("weir.task_runs"), extra)


def get_run_logger() -> RunLoggerAdapter:
    """The logger of the task run or flow run in progress.

    Raises MissingContextError outside a run.
    """
    return _logger_for(task_run_context.get(), flow_run_context.get())


def _logger_for(
    task_context: TaskRunContext | None, flow_context: FlowRunContext | None
) -> RunLoggerAdapter:
    context = task_context or flow_context
    if context is None:
        raise MissingContextError(
            "get_run_logger() was called outside a flow or task run; "
            "use logging.getLogger(...) there instead."
        )
    # A context that carries a prebuilt logger (built once per run) saves rebuilding it.
    cached = getattr(context, "logger", None)
    if isinstance(cached, RunLoggerAdapter):
        return cached
    if task_context is not None:
        flow_run = flow_context.flow_run if flow_context is not None else None
        return task_run_logger(task_context.task_run, flow_run)
    assert flow_context is not None
    return flow_run_logger(flow_context.flow_run)


def enable_print_capture() -> None:
    """Replace `builtins.print` (once) so runs with `log_prints=True` log what they print.

    Outside such runs, or when printing to a file other than stdout, the
    replacement calls the original `print`.
    """
    global _capturing_prints, original_print
    if _capturing_prints:
        return
    with _lock:
        if not _capturing_prints:
            original_print = builtins.print
            builtins.print = _print
            _capturing_prints = True


def disable_print_capture() -> None:
    """Put the original `print` back (tests use it)."""
    global _capturing_prints
    with _lock:
        if _capturing_prints:
            builtins.print = original_print
            _capturing_prints = False


def _print(
    *values: object,
    sep: str | None = " ",
    end: str | None = "\n",
    file: Any = None,
    flush: bool = False,
) -> None:
    if file is None or file is sys.stdout:
        task_context = task_run_context.get()
        flow_context = flow_run_context.get()
        context = task_context or flow_context
        if context is not None and context.log_prints:
            text = (" " if sep is None else sep).join(map(str, values))
            text += "\n" if end is None else end
            _logger_for(task_context, flow_context).info(text.rstrip("\n"))
            return
    original_print(*values, sep=sep, end=end, file=file, flush=flush)
