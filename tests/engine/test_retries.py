"""Retries of tasks and flows, with their delays, on a fake clock (no real sleeping)."""

from __future__ import annotations

import pytest

from weir import exponential_backoff, flow, task
from weir.testing import fake_clock


class Flaky:
    """Fails the first `failures` calls, then returns `value`."""

    def __init__(self, failures: int, value: object = "ok") -> None:
        self.failures, self.value, self.calls = failures, value, 0

    def __call__(self) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"source unavailable (call {self.calls})")
        return self.value


def test_a_task_retries_until_it_succeeds_with_its_delay() -> None:
    source = Flaky(failures=2)

    @task(retries=3, retry_delay_seconds=10)
    def fetch() -> object:
        return source()

    with fake_clock() as clock:
        state = fetch(return_state=True)
    assert state.is_completed() and state.result() == "ok"
    assert source.calls == 3
    assert clock.sleeps == [10, 10]


def test_retry_history_reads_awaiting_retry_then_retrying() -> None:
    source = Flaky(failures=1)
    runs = []

    @task(retries=1, on_completion=[lambda t, run, s: runs.append(run)])
    def fetch() -> object:
        return source()

    with fake_clock():
        fetch()
    names = [s.name for s in runs[0].state_history]
    assert names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    assert runs[0].run_count == 2


def test_a_task_that_keeps_failing_raises_after_its_last_retry() -> None:
    source = Flaky(failures=10)

    @task(retries=2, retry_delay_seconds=[1, 5, 30])
    def fetch() -> object:
        return source()

    with fake_clock() as clock, pytest.raises(ConnectionError, match="call 3"):
        fetch()
    assert source.calls == 3
    assert clock.sleeps == [1, 5]


def test_a_delay_list_shorter_than_the_retries_repeats_its_last_value() -> None:
    source = Flaky(failures=3)

    @task(retries=3, retry_delay_seconds=[2, 4])
    def fetch() -> object:
        return source()

    with fake_clock() as clock:
        fetch()
    assert clock.sleeps == [2, 4, 4]


def test_exponential_backoff() -> None:
    source = Flaky(failures=3)

    @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10))
    def fetch() -> object:
        return source()

    with fake_clock() as clock:
        fetch()
    assert clock.sleeps == [10, 20, 40]


def test_jitter_keeps_delays_within_the_factor() -> None:
    source = Flaky(failures=20)

    @task(retries=20, retry_delay_seconds=100, retry_jitter_factor=0.5)
    def fetch() -> object:
        return source()

    with fake_clock() as clock:
        fetch()
    assert len(clock.sleeps) == 20
    assert all(50 <= s <= 150 for s in clock.sleeps)
    assert len(set(clock.sleeps)) > 1


def test_retry_condition_fn_decides_whether_to_retry() -> None:
    calls = []

    def only_connection_errors(task, task_run, state) -> bool:
        return isinstance(state.data, ConnectionError)

    @task(retries=5, retry_condition_fn=only_connection_errors)
    def parse(kind: str) -> None:
        calls.append(kind)
        raise (ConnectionError if kind == "net" else ValueError)(kind)

    with fake_clock():
        assert parse("bad", return_state=True).is_failed()
        assert parse("net", return_state=True).is_failed()
    assert calls.count("bad") == 1
    assert calls.count("net") == 6


def test_flow_retries_rerun_the_body() -> None:
    source = Flaky(failures=1)

    @flow(retries=2, retry_delay_seconds=30)
    def nightly() -> object:
        return source()

    with fake_clock() as clock:
        state = nightly(return_state=True)
    assert state.is_completed()
    assert source.calls == 2
    assert clock.sleeps == [30]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "retries must be 0 or more"),
        ({"retries": 1, "retry_delay_seconds": -5}, "must not be negative"),
        ({"retries": 1, "retry_delay_seconds": [1] * 51}, "at most 50"),
        ({"retry_jitter_factor": -1}, "retry_jitter_factor"),
    ],
)
def test_bad_retry_options_are_rejected_at_decoration(options, message) -> None:
    with pytest.raises(ValueError, match=message):
        task(**options)(lambda: None)
