"""`timeout_seconds` stops hung sync and async tasks and flows."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from weir import flow, task
from weir.exceptions import RunTimeout


def test_a_hung_sync_task_is_stopped_at_its_timeout() -> None:
    @task(timeout_seconds=0.2)
    def hang() -> None:
        time.sleep(30)

    started = time.monotonic()
    state = hang(return_state=True)
    assert time.monotonic() - started < 5
    assert state.is_failed() and state.name == "TimedOut"
    assert "exceeded its timeout of 0.2 second(s)" in state.message
    with pytest.raises(RunTimeout):
        state.result()


def test_a_hung_async_task_is_stopped_at_its_timeout() -> None:
    @task(timeout_seconds=0.2)
    async def hang() -> None:
        await asyncio.sleep(30)

    started = time.monotonic()
    state = asyncio.run(hang(return_state=True))
    assert time.monotonic() - started < 5
    assert state.name == "TimedOut"


def test_a_busy_sync_task_in_a_worker_thread_is_stopped() -> None:
    stopped = threading.Event()

    @task(timeout_seconds=0.3)
    def spin() -> None:
        try:
            while True:
                pass
        finally:
            stopped.set()

    @flow
    def pipeline() -> str:
        return spin.submit().wait().name

    started = time.monotonic()
    assert pipeline() == "TimedOut"
    assert stopped.wait(5)
    assert time.monotonic() - started < 5


def test_timeouts_nest_and_the_outer_one_still_fires() -> None:
    @task(timeout_seconds=5)
    def quick() -> str:
        return "done"

    @flow(timeout_seconds=0.3)
    def pipeline() -> None:
        quick()
        time.sleep(30)

    state = pipeline(return_state=True)
    assert state.name == "TimedOut"
    assert "Flow run exceeded" in state.message


def test_a_timed_out_task_inside_a_flow_fails_the_flow_but_not_as_timed_out() -> None:
    @task(timeout_seconds=0.2)
    def hang() -> None:
        time.sleep(30)

    @flow(timeout_seconds=20)
    def pipeline() -> None:
        hang()

    state = pipeline(return_state=True)
    assert state.is_failed() and state.name == "Failed"
    assert isinstance(state.data, RunTimeout)


def test_a_timed_out_task_is_retried() -> None:
    attempts = []

    @task(timeout_seconds=0.2, retries=1)
    def slow_then_fast() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(30)
        return "ok"

    assert slow_then_fast() == "ok"
    assert len(attempts) == 2


def test_an_async_flow_timeout() -> None:
    @flow(timeout_seconds=0.2)
    async def pipeline() -> None:
        await asyncio.sleep(30)

    state = asyncio.run(pipeline(return_state=True))
    assert state.name == "TimedOut"


def test_the_alarm_is_cleared_after_a_run_that_finished_in_time() -> None:
    @task(timeout_seconds=0.2)
    def quick() -> int:
        return 1

    assert quick() == 1
    time.sleep(0.4)  # an alarm left armed would raise here


def test_a_non_positive_timeout_is_rejected() -> None:
    with pytest.raises(ValueError, match="timeout_seconds must be positive"):
        task(timeout_seconds=0)(lambda: None)
