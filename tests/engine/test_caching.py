"""Task caching and result persistence, end to end through `@task` and `@flow`."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from weir import flow, task
from weir.cache_policies import FLOW_PARAMETERS, INPUTS, NO_CACHE, TASK_SOURCE
from weir.core.states import State
from weir.exceptions import SerializationError
from weir.settings import reset_settings
from weir.testing import fake_clock


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def read_record(path: Path) -> tuple[dict[str, Any], bytes]:
    """A stored result: its JSON header line and its serialized payload."""
    header, _, payload = path.read_bytes().partition(b"\n")
    return json.loads(header), payload


# -- cache policies ------------------------------------------------------------------
def test_inputs_policy_caches_by_input(tmp_path: Path) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    @flow
    def pipeline(x: int) -> int:
        return square(x)

    first, second, other = (square(x, return_state=True) for x in (3, 3, 4))
    assert pipeline(3) == 9

    assert (first.name, first.result()) == ("Completed", 9)
    assert (second.name, second.result()) == ("Cached", 9)
    assert (other.name, other.result()) == ("Completed", 16)
    # the flow run found the value cached too
    assert calls == [3, 4]


def test_cached_results_expire(tmp_path: Path) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=60), result_storage=str(tmp_path))
    def fetch(day: str) -> int:
        calls.append(1)
        return len(calls)

    with fake_clock() as clock:
        assert fetch("mon", return_state=True).name == "Completed"
        clock.advance(59)
        still_cached = fetch("mon", return_state=True)
        clock.advance(2)
        expired = fetch("mon", return_state=True)

    assert (still_cached.name, still_cached.result()) == ("Cached", 1)
    assert (expired.name, expired.result()) == ("Completed", 2)
    assert len(calls) == 2


def test_refresh_cache_runs_and_overwrites_the_cached_value(tmp_path: Path) -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def fetch(day: str) -> int:
        calls.append(1)
        return len(calls)

    refreshing = fetch.with_options(refresh_cache=True)

    assert fetch("mon") == 1
    assert refreshing("mon", return_state=True).name == "Completed"
    after = fetch("mon", return_state=True)

    assert (after.name, after.result()) == ("Cached", 2)
    assert len(calls) == 2


def test_cache_key_fn_chooses_the_key(tmp_path: Path) -> None:
    calls: list[str] = []

    @task(
        cache_key_fn=lambda ctx, params: f"user-{params['user_id']}", result_storage=str(tmp_path)
    )
    def profile(user_id: int, request_id: str) -> str:
        calls.append(request_id)
        return f"profile of {user_id} (request {request_id})"

    assert profile(7, "r1") == "profile of 7 (request r1)"
    cached = profile(7, "r2", return_state=True)
    assert profile(8, "r3") == "profile of 8 (request r3)"

    assert (cached.name, cached.result()) == ("Cached", "profile of 7 (request r1)")
    assert calls == ["r1", "r3"]
    # a key that is a plain file name is used as it is
    assert {p.name for p in files_under(tmp_path)} == {"user-7", "user-8"}


def test_no_cache_never_caches(tmp_path: Path) -> None:
    calls: list[int] = []

    @task(cache_policy=NO_CACHE, result_storage=str(tmp_path))
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    states = [square(3, return_state=True) for _ in range(2)]

    assert [s.name for s in states] == ["Completed", "Completed"]
    assert calls == [3, 3]


def test_task_source_and_inputs_keep_different_tasks_apart(tmp_path: Path) -> None:
    @task(cache_policy=TASK_SOURCE + INPUTS, result_storage=str(tmp_path))
    def to_cents(x: int) -> int:
        return x * 100

    @task(cache_policy=TASK_SOURCE + INPUTS, result_storage=str(tmp_path))
    def to_thousandths(x: int) -> int:
        return x * 1000

    assert to_cents(2) == 200
    assert to_cents(2, return_state=True).name == "Cached"
    # same inputs, different code: not the other task's cached value
    assert to_thousandths(2, return_state=True).name == "Completed"
    assert to_thousandths(2) == 2000


def test_a_failed_run_is_not_cached(tmp_path: Path) -> None:
    attempts: list[int] = []

    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def fetch(day: str) -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("timed out")
        return f"{day} data"

    assert fetch("mon", return_state=True).is_failed()
    assert fetch("mon", return_state=True).name == "Completed"
    assert fetch("mon", return_state=True).name == "Cached"
    assert len(attempts) == 2


def test_flow_parameters_policy_caches_across_runs_with_the_same_parameters(
    tmp_path: Path,
) -> None:
    calls: list[str] = []

    @task(cache_policy=FLOW_PARAMETERS, result_storage=str(tmp_path))
    def load() -> str:
        calls.append("load")
        return f"rows #{len(calls)}"

    states: list[State] = []

    @flow
    def report(region: str) -> str:
        state = load(return_state=True)
        states.append(state)
        return state.result()

    assert [report(region) for region in ("eu", "eu", "us")] == ["rows #1", "rows #1", "rows #2"]
    assert [s.name for s in states] == ["Completed", "Cached", "Completed"]
    assert calls == ["load", "load"]


def test_without_cache_options_nothing_is_cached_or_written(weir_home: Path) -> None:
    calls: list[int] = []

    @task
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    @flow
    def pipeline() -> list[str]:
        return [square(3, return_state=True).name for _ in range(2)]

    assert pipeline() == ["Completed", "Completed"]
    assert calls == [3, 3]
    assert files_under(weir_home) == []


def test_a_cache_hit_across_processes(tmp_path: Path) -> None:
    body_runs = tmp_path / "body-runs.txt"
    script = textwrap.dedent(
        """
        import sys
        from weir import task
        from weir.cache_policies import INPUTS

        body_runs, storage = sys.argv[1:]

        @task(cache_policy=INPUTS, result_storage=storage)
        def square(x):
            with open(body_runs, "a") as f:
                f.write("ran\\n")
            return x * x

        state = square(7, return_state=True)
        print(state.name, state.result())
        """
    )

    outputs = [
        subprocess.run(
            [sys.executable, "-c", script, str(body_runs), str(tmp_path / "results")],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        for _ in range(2)
    ]

    assert outputs == ["Completed 49", "Cached 49"]
    assert body_runs.read_text() == "ran\n"


# -- persistence and serializers ---------------------------------------------------------
def test_json_serializer_stores_json_after_the_header(tmp_path: Path) -> None:
    @task(persist_result=True, result_serializer="json", result_storage=str(tmp_path))
    def summarise() -> dict[str, Any]:
        return {"total": 3, "items": [1, 2]}

    assert summarise() == {"total": 3, "items": [1, 2]}
    (stored,) = files_under(tmp_path)
    header, payload = read_record(stored)
    assert header["serializer"] == "json"
    assert json.loads(payload) == {"total": 3, "items": [1, 2]}


def test_a_value_json_cannot_write_fails_the_run(tmp_path: Path) -> None:
    class Point:
        pass

    @task(persist_result=True, result_serializer="json", result_storage=str(tmp_path))
    def make_point() -> Point:
        return Point()

    state = make_point(return_state=True)

    assert state.is_failed()
    assert "cannot be written as JSON" in (state.message or "")
    assert "Point" in (state.message or "")
    with pytest.raises(SerializationError):
        state.result()
    assert files_under(tmp_path) == []


def test_persist_by_default_setting_stores_in_weir_home(
    weir_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIR_RESULTS_PERSIST_BY_DEFAULT", "true")
    reset_settings()

    @task
    def square(x: int) -> int:
        return x * x

    @flow
    def pipeline() -> int:
        return square(5)

    assert pipeline() == 25
    stored = files_under(weir_home)
    # the task's result and the flow's
    assert [p.parent for p in stored] == [weir_home / "storage"] * 2
    records = [read_record(p) for p in stored]
    assert [header["serializer"] for header, _ in records] == ["pickle", "pickle"]
    assert [pickle.loads(payload) for _, payload in records] == [25, 25]


def test_a_flow_with_persist_result_stores_its_result(tmp_path: Path) -> None:
    @flow(persist_result=True, result_storage=str(tmp_path))
    def pipeline() -> dict[str, int]:
        return {"rows": 3}

    assert pipeline() == {"rows": 3}
    (stored,) = files_under(tmp_path)
    _, payload = read_record(stored)
    assert pickle.loads(payload) == {"rows": 3}


def test_a_flow_result_not_kept_in_memory_is_read_from_storage(tmp_path: Path) -> None:
    @flow(persist_result=True, result_storage=str(tmp_path), cache_result_in_memory=False)
    def pipeline() -> list[int]:
        return [1, 2, 3]

    assert pipeline() == [1, 2, 3]

    state = pipeline(return_state=True)
    # the state holds no copy of the value: without the stored file it cannot give it
    for stored in files_under(tmp_path):
        stored.unlink()
    with pytest.raises(SerializationError, match="no longer in"):
        state.result()


def test_without_persistence_a_flow_writes_nothing_under_weir_home(weir_home: Path) -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def pipeline() -> list[int]:
        submitted = double.submit(1).result()
        return [double(submitted), *double.map([1, 2]).result()]

    assert pipeline() == [4, 2, 4]
    assert files_under(weir_home) == []
