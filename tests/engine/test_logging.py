"""Run loggers, the log line format, setup_logging and print capture.

Runs are simulated by setting the context variables to real contexts built from
`core.runs` records, as the engine does.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from weir.core.runs import FlowRun, TaskRun
from weir.core.states import State, StateType
from weir.engine import logging as run_logging
from weir.engine.contexts import (
    FlowRunContext,
    TaskRunContext,
    flow_run_context,
    task_run_context,
)
from weir.engine.logging import (
    RunFormatter,
    disable_print_capture,
    enable_print_capture,
    flow_run_logger,
    get_run_logger,
    setup_logging,
    task_run_logger,
)
from weir.exceptions import MissingContextError

LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (?P<level>[A-Z ]{7,8}) \| (?P<rest>.*)$")


def make_flow_run(name: str = "crimson-otter") -> FlowRun:
    return FlowRun(
        id=uuid.uuid4(),
        name=name,
        flow_name="etl",
        parameters={"day": "monday"},
        state=State(StateType.RUNNING),
    )


def make_task_run(flow_run: FlowRun | None, name: str = "extract-0") -> TaskRun:
    return TaskRun(
        id=uuid.uuid4(),
        name=name,
        task_name="extract",
        task_key="extract-abc",
        flow_run_id=None if flow_run is None else flow_run.id,
        state=State(StateType.RUNNING),
    )


@contextlib.contextmanager
def in_flow_run(flow_run: FlowRun, log_prints: bool = False) -> Iterator[FlowRunContext]:
    context = FlowRunContext(flow=None, flow_run=flow_run, task_runner=None, log_prints=log_prints)
    token = flow_run_context.set(context)
    try:
        yield context
    finally:
        flow_run_context.reset(token)


@contextlib.contextmanager
def in_task_run(task_run: TaskRun, log_prints: bool = False) -> Iterator[TaskRunContext]:
    task: Any = None  # the real Task is not needed by what is tested here
    context = TaskRunContext(task=task, task_run=task_run, parameters={}, log_prints=log_prints)
    token = task_run_context.set(context)
    try:
        yield context
    finally:
        task_run_context.reset(token)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog, seeing everything logged under "weir" (read `log.records` in the test)."""
    caplog.set_level(logging.DEBUG, logger="weir")
    return caplog


@pytest.fixture
def fresh_weir_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[logging.Logger]:
    """The "weir" logger as if setup_logging had never run; restored afterwards."""
    logger = logging.getLogger("weir")
    level, handlers = logger.level, logger.handlers[:]
    monkeypatch.setattr(run_logging, "_configured", False)
    logger.handlers.clear()
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture
def capture_prints() -> Iterator[None]:
    enable_print_capture()
    yield
    disable_print_capture()


def test_flow_run_logger_line(log: pytest.LogCaptureFixture) -> None:
    flow_run = make_flow_run()
    flow_run_logger(flow_run).info("Beginning flow run")

    (record,) = log.records
    assert record.name == "weir.flow_runs"
    assert record.getMessage() == "Beginning flow run"  # the prefix is the formatter's job
    assert record.__dict__["flow_run_id"] == str(flow_run.id)
    assert record.__dict__["flow_run_name"] == "crimson-otter"
    assert record.__dict__["flow_name"] == "etl"

    line = LINE.match(RunFormatter().format(record))
    assert line is not None
    assert line["level"] == "INFO   "
    assert line["rest"] == "Flow run 'crimson-otter' - Beginning flow run"


def test_task_run_logger_line(log: pytest.LogCaptureFixture) -> None:
    flow_run = make_flow_run()
    task_run = make_task_run(flow_run)
    task_run_logger(task_run, flow_run).warning("Retrying in %ss", 5)

    (record,) = log.records
    assert record.name == "weir.task_runs"
    assert record.getMessage() == "Retrying in 5s"
    fields = {k: record.__dict__[k] for k in ("task_run_id", "task_run_name", "task_name")}
    assert fields == {
        "task_run_id": str(task_run.id),
        "task_run_name": "extract-0",
        "task_name": "extract",
    }
    assert record.__dict__["flow_run_id"] == str(flow_run.id)
    assert record.__dict__["flow_run_name"] == "crimson-otter"

    line = LINE.match(RunFormatter().format(record))
    assert line is not None
    assert line["level"] == "WARNING"
    assert line["rest"] == "Task run 'extract-0' - Retrying in 5s"


def test_task_run_logger_outside_a_flow(log: pytest.LogCaptureFixture) -> None:
    task_run_logger(make_task_run(None)).info("alone")
    (record,) = log.records
    assert record.__dict__["flow_run_id"] is None
    assert "Task run 'extract-0' - alone" in RunFormatter().format(record)


def test_plain_records_have_no_prefix(log: pytest.LogCaptureFixture) -> None:
    logging.getLogger("weir.server").error("boom")
    line = LINE.match(RunFormatter().format(log.records[0]))
    assert line is not None
    assert line["rest"] == "boom"


def test_extra_of_a_call_is_merged(log: pytest.LogCaptureFixture) -> None:
    flow_run = make_flow_run()
    flow_run_logger(flow_run).info("x", extra={"rows": 3})
    assert log.records[0].__dict__["rows"] == 3
    assert log.records[0].__dict__["flow_run_id"] == str(flow_run.id)


def test_get_run_logger_outside_a_run() -> None:
    with pytest.raises(MissingContextError, match=r"outside a flow or task run"):
        get_run_logger()


def test_get_run_logger_in_a_flow_run(log: pytest.LogCaptureFixture) -> None:
    flow_run = make_flow_run()
    with in_flow_run(flow_run):
        get_run_logger().info("hi")
    assert log.records[0].name == "weir.flow_runs"
    assert log.records[0].__dict__["flow_run_id"] == str(flow_run.id)


def test_get_run_logger_in_a_task_run(log: pytest.LogCaptureFixture) -> None:
    flow_run = make_flow_run()
    task_run = make_task_run(flow_run)
    with in_flow_run(flow_run), in_task_run(task_run):
        get_run_logger().info("hi")
    assert log.records[0].name == "weir.task_runs"
    assert log.records[0].__dict__["task_run_id"] == str(task_run.id)
    assert log.records[0].__dict__["flow_name"] == "etl"


def test_setup_logging_adds_one_stderr_handler(
    fresh_weir_logger: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WEIR_LOGGING_LEVEL", "debug")
    setup_logging()
    setup_logging()
    assert len(fresh_weir_logger.handlers) == 1
    assert fresh_weir_logger.level == logging.DEBUG

    flow_run_logger(make_flow_run()).debug("Beginning flow run")
    err = capsys.readouterr().err.splitlines()
    line = LINE.match(err[-1])
    assert line is not None
    assert line["level"] == "DEBUG  "
    assert line["rest"] == "Flow run 'crimson-otter' - Beginning flow run"


def test_setup_logging_keeps_the_users_handlers(fresh_weir_logger: logging.Logger) -> None:
    mine = logging.NullHandler()
    fresh_weir_logger.addHandler(mine)
    setup_logging()
    assert fresh_weir_logger.handlers == [mine]


def test_setup_logging_keeps_propagating(fresh_weir_logger: logging.Logger) -> None:
    setup_logging()
    assert fresh_weir_logger.propagate is True


@pytest.mark.usefixtures("capture_prints")
def test_prints_in_a_log_prints_flow_run_are_logged(
    log: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with in_flow_run(make_flow_run(), log_prints=True):
        print("rows:", 3)
        print("a", "b", sep="-", end="!\n")
    assert [(r.name, r.levelno, r.getMessage()) for r in log.records] == [
        ("weir.flow_runs", logging.INFO, "rows: 3"),
        ("weir.flow_runs", logging.INFO, "a-b!"),
    ]
    assert capsys.readouterr().out == ""


@pytest.mark.usefixtures("capture_prints")
def test_prints_in_a_log_prints_task_run_are_logged(log: pytest.LogCaptureFixture) -> None:
    flow_run = make_flow_run()
    with in_flow_run(flow_run), in_task_run(make_task_run(flow_run), log_prints=True):
        print("from the task")
    assert [(r.name, r.getMessage()) for r in log.records] == [("weir.task_runs", "from the task")]


@pytest.mark.usefixtures("capture_prints")
def test_the_innermost_run_decides(
    log: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    flow_run = make_flow_run()
    with in_flow_run(flow_run, log_prints=True), in_task_run(make_task_run(flow_run)):
        print("printed")
    assert log.records == []
    assert capsys.readouterr().out == "printed\n"


@pytest.mark.usefixtures("capture_prints")
def test_prints_elsewhere_are_printed(
    log: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    print("outside", end="")
    with in_flow_run(make_flow_run(), log_prints=False):
        print("no log_prints")
    with in_flow_run(make_flow_run(), log_prints=True):
        print("to stderr", file=sys.stderr)
    assert log.records == []
    captured = capsys.readouterr()
    assert captured.out == "outsideno log_prints\n"
    assert captured.err == "to stderr\n"


def test_capture_installs_once_and_keeps_the_original() -> None:
    import builtins

    before = builtins.print
    enable_print_capture()
    try:
        replacement = builtins.print
        assert replacement is not before
        enable_print_capture()
        assert builtins.print is replacement
        assert run_logging.original_print is before
    finally:
        disable_print_capture()
    assert builtins.print is before
