"""Cache policies: which task runs share a cache key, across runs and processes."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from weir.core.runs import TaskRun
from weir.core.states import Pending
from weir.engine.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    Inputs,
    NoCache,
    hash_objects,
)
from weir.engine.contexts import TaskRunContext

SAFE_KEY = re.compile(r"[0-9a-f]{32}")


def add(x: int, y: int = 0) -> int:
    return x + y


@dataclass
class StandInTask:
    """What cache policies read of a task: its function, name and key."""

    fn: Callable[..., Any] = add
    name: str = "add"
    task_key: str = field(default_factory=lambda: f"add-{uuid.uuid4().hex}")


def make_ctx(
    fn: Callable[..., Any] = add,
    flow_run_id: uuid.UUID | None = None,
    task: StandInTask | None = None,
) -> TaskRunContext:
    task = task or StandInTask(fn=fn, name=getattr(fn, "__name__", "fn"))
    run = TaskRun(
        id=uuid.uuid4(),
        name=f"{task.name}-0",
        task_name=task.name,
        task_key=task.task_key,
        flow_run_id=flow_run_id,
        state=Pending(),
    )
    return TaskRunContext(task=task, task_run=run, parameters={})  # type: ignore[arg-type]


def key(policy: CachePolicy, inputs: dict[str, Any], **kw: Any) -> str | None:
    flow_parameters = kw.pop("flow_parameters", {})
    return policy.compute_key(make_ctx(**kw), inputs, flow_parameters)


class Money:
    def __init__(self, cents: int) -> None:
        self.cents = cents


# -- hash_objects -------------------------------------------------------------


def test_hash_objects_is_a_short_hex_digest() -> None:
    digest = hash_objects({"a": 1}, [2, 3])
    assert digest is not None
    assert SAFE_KEY.fullmatch(digest)


def test_hash_objects_ignores_dict_order_and_tells_values_apart() -> None:
    assert hash_objects({"a": 1, "b": 2}) == hash_objects({"b": 2, "a": 1})
    assert hash_objects({"a": 1}) != hash_objects({"a": 2})
    assert hash_objects(1) != hash_objects("1")


def test_hash_objects_falls_back_to_pickle_for_non_json_values() -> None:
    assert hash_objects(Money(1)) is not None
    assert hash_objects(Money(1)) == hash_objects(Money(1))
    assert hash_objects(Money(1)) != hash_objects(Money(2))


def test_hash_objects_is_none_for_values_that_cannot_be_hashed() -> None:
    assert hash_objects(threading.Lock()) is None


PROBE = """
from __future__ import annotations

import datetime
import json
import uuid
from pathlib import Path

from weir.core.runs import TaskRun
from weir.core.states import Pending
from weir.engine.cache_policies import DEFAULT, FLOW_PARAMETERS, INPUTS, hash_objects
from weir.engine.contexts import TaskRunContext


def triple(x):
    return 3 * x


class Task:
    fn = staticmethod(triple)
    name = "triple"
    task_key = "triple"


FLOW_RUN_ID = uuid.UUID(int=7)
INPUTS_VALUE = {
    "names": {"ada", "grace", "linus", "guido", "barbara"},
    "when": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    "path": Path("/data/in.csv"),
    "nested": {"z": [1, 2.5, None], "a": (True, "x")},
    "keyed_by_tuple": {("a", 1): "not json"},
}


def keys():
    run = TaskRun(uuid.UUID(int=1), "t", "triple", "triple", FLOW_RUN_ID, Pending())
    ctx = TaskRunContext(task=Task(), task_run=run, parameters=INPUTS_VALUE)
    return {
        "hash": hash_objects(INPUTS_VALUE["names"], INPUTS_VALUE["when"]),
        "inputs": INPUTS.compute_key(ctx, INPUTS_VALUE, {}),
        "default": DEFAULT.compute_key(ctx, INPUTS_VALUE, {}),
        "flow": FLOW_PARAMETERS.compute_key(ctx, {}, {"names": INPUTS_VALUE["names"]}),
    }


if __name__ == "__main__":
    print(json.dumps(keys()))
"""


def test_keys_are_the_same_in_separate_processes(tmp_path: Path) -> None:
    probe = tmp_path / "cache_key_probe.py"
    probe.write_text(PROBE)
    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, str(probe)], capture_output=True, text=True, env=env, check=True
        )
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1]
    assert all(value is not None for value in outputs[0].values())


# -- INPUTS -------------------------------------------------------------------


def test_inputs_key_depends_on_the_inputs() -> None:
    assert key(INPUTS, {"x": 1, "y": 2}) == key(INPUTS, {"y": 2, "x": 1})
    assert key(INPUTS, {"x": 1, "y": 2}) != key(INPUTS, {"x": 1, "y": 3})
    assert key(INPUTS, {"x": 1}) != key(INPUTS, {"y": 1})


def test_inputs_key_ignores_the_task_and_the_run() -> None:
    assert key(INPUTS, {"x": 1}, flow_run_id=uuid.uuid4()) == key(INPUTS, {"x": 1})


def test_no_inputs_gives_no_key() -> None:
    assert key(INPUTS, {}) is None


def test_subtracting_a_parameter_leaves_it_out() -> None:
    policy = INPUTS - "debug"
    assert policy == Inputs(exclude=("debug",))
    assert key(policy, {"x": 1, "debug": True}) == key(policy, {"x": 1, "debug": False})
    assert key(policy, {"x": 1, "debug": True}) != key(policy, {"x": 2, "debug": True})
    assert key(INPUTS, {"x": 1, "debug": True}) != key(INPUTS, {"x": 1, "debug": False})


def test_subtracting_twice_and_from_a_compound() -> None:
    both = INPUTS - "a" - "b"
    assert key(both, {"x": 1, "a": 1, "b": 1}) == key(both, {"x": 1, "a": 2, "b": 2})
    default = DEFAULT - "a"
    assert key(default, {"x": 1, "a": 1}) == key(default, {"x": 1, "a": 2})
    assert key(default, {"x": 1, "a": 1}) != key(default, {"x": 2, "a": 1})


def test_subtracting_a_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="parameter name"):
        INPUTS - 1  # type: ignore[operator]


def test_unhashable_input_means_no_cache_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    task = StandInTask(name="lock_user")
    inputs = {"x": 1, "lock": threading.Lock()}
    with caplog.at_level(logging.WARNING, logger="weir.cache"):
        assert INPUTS.compute_key(make_ctx(task=task), inputs, {}) is None
        assert DEFAULT.compute_key(make_ctx(task=task), inputs, {}) is None
    [record] = caplog.records
    assert record.name == "weir.cache"
    message = record.getMessage()
    assert "'lock_user'" in message
    assert "'lock'" in message
    assert "INPUTS - 'lock'" in message


def test_excluding_the_unhashable_input_makes_the_task_cacheable() -> None:
    assert key(INPUTS - "lock", {"x": 1, "lock": threading.Lock()}) is not None


# -- TASK_SOURCE --------------------------------------------------------------


def _load_module(path: Path, source: str) -> ModuleType:
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(f"mod_{uuid.uuid4().hex}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_task_source_changes_when_the_source_changes(tmp_path: Path) -> None:
    v1 = _load_module(tmp_path / "v1.py", "def work(x):\n    return x + 1\n")
    v1_again = _load_module(tmp_path / "v1_again.py", "def work(x):\n    return x + 1\n")
    v2 = _load_module(tmp_path / "v2.py", "def work(x):\n    return x + 2\n")
    assert key(TASK_SOURCE, {}, fn=v1.work) == key(TASK_SOURCE, {}, fn=v1_again.work)
    assert key(TASK_SOURCE, {}, fn=v1.work) != key(TASK_SOURCE, {}, fn=v2.work)


def test_task_source_without_a_source_file_uses_the_compiled_code() -> None:
    def compiled(body: str) -> Callable[..., Any]:
        namespace: dict[str, Any] = {}
        exec(compile(f"def work(x):\n    {body}\n", "<repl>", "exec"), namespace)
        return namespace["work"]

    one, one_again, two = compiled("return 1"), compiled("return 1"), compiled("return 2")
    assert key(TASK_SOURCE, {}, fn=one) is not None
    assert key(TASK_SOURCE, {}, fn=one) == key(TASK_SOURCE, {}, fn=one_again)
    assert key(TASK_SOURCE, {}, fn=one) != key(TASK_SOURCE, {}, fn=two)


# -- RUN_ID and FLOW_PARAMETERS -----------------------------------------------


def test_run_id_is_the_flow_run_id_and_none_outside_a_flow() -> None:
    run_id = uuid.uuid4()
    assert key(RUN_ID, {"x": 1}, flow_run_id=run_id) == str(run_id)
    assert key(RUN_ID, {"x": 1}) is None


def test_flow_parameters_key_and_none_outside_a_flow() -> None:
    run_id = uuid.uuid4()
    day1 = key(FLOW_PARAMETERS, {}, flow_run_id=run_id, flow_parameters={"day": 1})
    day2 = key(FLOW_PARAMETERS, {}, flow_run_id=run_id, flow_parameters={"day": 2})
    assert day1 is not None
    assert day1 != day2
    assert key(FLOW_PARAMETERS, {}, flow_parameters={"day": 1}) is None


# -- compounds and NO_CACHE ---------------------------------------------------


def test_default_is_inputs_task_source_and_run_id() -> None:
    assert DEFAULT == INPUTS + TASK_SOURCE + RUN_ID
    assert isinstance(DEFAULT, CompoundCachePolicy)
    assert DEFAULT.policies == (INPUTS, TASK_SOURCE, RUN_ID)


def test_default_key_is_per_flow_run_and_per_input() -> None:
    run_a, run_b = uuid.uuid4(), uuid.uuid4()
    a1 = key(DEFAULT, {"x": 1}, flow_run_id=run_a)
    assert a1 is not None
    assert SAFE_KEY.fullmatch(a1)
    assert a1 == key(DEFAULT, {"x": 1}, flow_run_id=run_a)
    assert a1 != key(DEFAULT, {"x": 1}, flow_run_id=run_b)
    assert a1 != key(DEFAULT, {"x": 2}, flow_run_id=run_a)


def test_parts_without_a_key_are_left_out_of_a_compound() -> None:
    # outside a flow RUN_ID and FLOW_PARAMETERS give nothing, so only INPUTS counts
    assert key(INPUTS + RUN_ID, {"x": 1}) == key(INPUTS + FLOW_PARAMETERS, {"x": 1})
    assert key(INPUTS + RUN_ID, {"x": 1}) != key(INPUTS + RUN_ID, {"x": 2})
    assert key(RUN_ID + FLOW_PARAMETERS, {"x": 1}) is None


@pytest.mark.parametrize(
    "policy",
    [NO_CACHE + INPUTS, INPUTS + NO_CACHE, DEFAULT + NO_CACHE, NO_CACHE + NO_CACHE],
)
def test_no_cache_plus_anything_is_no_cache(policy: CachePolicy) -> None:
    assert policy is NO_CACHE
    assert key(policy, {"x": 1}, flow_run_id=uuid.uuid4()) is None


def test_no_cache_inside_a_hand_built_compound_still_means_no_cache() -> None:
    assert key(CompoundCachePolicy((INPUTS, NoCache())), {"x": 1}) is None


# -- cache_key_fn -------------------------------------------------------------


def test_cache_key_fn_gets_the_context_and_the_inputs() -> None:
    seen: list[tuple[TaskRunContext, dict[str, Any]]] = []

    def by_day(ctx: TaskRunContext, params: dict[str, Any]) -> str:
        seen.append((ctx, params))
        return f"report-{params['day']}"

    ctx = make_ctx()
    policy = CachePolicy.from_cache_key_fn(by_day)
    assert policy == CacheKeyFnPolicy(by_day)
    assert policy.compute_key(ctx, {"day": 3}, {}) == "report-3"
    assert seen == [(ctx, {"day": 3})]


def test_cache_key_fn_keys_that_are_not_file_names_are_hashed() -> None:
    policy = CacheKeyFnPolicy(lambda ctx, params: f"../{params['x']}/key with spaces")
    one = key(policy, {"x": 1})
    assert one is not None
    assert SAFE_KEY.fullmatch(one)
    assert one != key(policy, {"x": 2})


def test_cache_key_fn_returning_none_means_no_cache() -> None:
    assert key(CacheKeyFnPolicy(lambda ctx, params: None), {"x": 1}) is None


def test_cache_key_fn_returning_a_non_string_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="must return a str or None"):
        key(CacheKeyFnPolicy(lambda ctx, params: 42), {"x": 1})  # type: ignore[arg-type,return-value]


def test_cache_key_fn_in_a_compound() -> None:
    policy = CacheKeyFnPolicy(lambda ctx, params: "fixed") + INPUTS
    assert key(policy, {"x": 1}) != key(policy, {"x": 2})


def test_a_policy_of_your_own_overriding_compute_key_works_alone_and_combined() -> None:
    class ByRegion(CachePolicy):
        def compute_key(self, task_ctx, inputs, flow_parameters):  # type: ignore[no-untyped-def]
            return inputs.get("region")

    alone = key(ByRegion(), {"region": "emea", "x": 1})
    assert alone == "emea"
    combined = ByRegion() + INPUTS
    assert key(combined, {"region": "emea", "x": 1}) != key(combined, {"region": "amer", "x": 1})
    assert key(combined, {"region": "emea", "x": 1}) == key(combined, {"region": "emea", "x": 1})


def test_a_policy_implementing_no_key_method_says_so() -> None:
    class Empty(CachePolicy):
        pass

    with pytest.raises(NotImplementedError, match="Empty implements neither key method"):
        key(Empty(), {"x": 1})
